"""Fuzzing every normalizer: any JSON value in any field of a real-shaped record gives rows that can be stored (typed,
clean, in range) or a located skip, never any other exception.

Deterministic in CI (derandomized); `STORMWATCH_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_normalize.py` searches
harder, at random, by hand.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stormwatch.errors import MalformedPage
from stormwatch.models import Batch
from stormwatch.normalize import bluesky, mastodon, x
from stormwatch.normalize.common import EARLIEST, LATEST, MAX_COUNTER
from stormwatch.store import MEMORY, Store

# Asked for more examples by hand, the search is random too; otherwise it is the same every run.
FUZZ = settings(max_examples=int(os.environ.get("STORMWATCH_FUZZ_EXAMPLES", "60")), deadline=None,
                derandomize="STORMWATCH_FUZZ_EXAMPLES" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RETRIEVED = "2021-02-07T20:00:00.000Z"
# Every character, lone surrogates and control characters included: what a hostile page can hold.
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=30)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | ANY_TEXT
           | st.sampled_from(["", "2021-02-30T16:00:00.000Z", "9999-12-31T23:59:59.000Z", "0001-01-01T00:00:00Z",
                              "2021-02-07T16:00:00.000Z", "at://did:plc:x/app.bsky.feed.post/1", "did:plc:x",
                              "https://a.example/1", "=HYPERLINK(\"x\")", "\x1b[2J", "１２３", str(2**64)]))
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(ANY_TEXT, children, max_size=4), max_leaves=12)
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


# --- real-shaped records to break ----------------------------------------------------------------


def x_page() -> dict[str, Any]:
    user = {"id": "2244994945", "username": "TwitterDev", "name": "Twitter Dev", "verified": True,
            "created_at": "2013-12-14T04:35:55.000Z",
            "public_metrics": {"followers_count": 513958, "following_count": 2039, "tweet_count": 3635}}
    post = {"id": "1358434641312096261", "text": "Free them @Issaamro https://t.co/x #StandWithIssa &amp; more",
            "author_id": "2244994945", "created_at": "2021-02-07T16:00:00.000Z", "lang": "en",
            "referenced_tweets": [{"type": "quoted", "id": "1358434641312096000"}],
            "entities": {"hashtags": [{"start": 0, "end": 5, "tag": "StandWithIssa"}],
                         "mentions": [{"start": 0, "end": 5, "username": "Issaamro", "id": "1"}]},
            "public_metrics": {"retweet_count": 1, "reply_count": 2, "like_count": 3, "quote_count": 4,
                               "impression_count": 5}, "note_tweet": {"text": "long text"}}
    quoted = {**post, "id": "1358434641312096000", "referenced_tweets": [], "note_tweet": None}
    return {"data": [post, {**post, "id": "1358434641312096262"}], "includes": {"users": [user], "tweets": [quoted]},
            "errors": [{"title": "Not Found Error", "detail": "gone"}], "meta": {"result_count": 2}}


def x_counts() -> dict[str, Any]:
    bucket = {"start": "2021-02-07T16:00:00.000Z", "end": "2021-02-07T16:01:00.000Z", "tweet_count": 3}
    return {"data": [bucket, {**bucket, "post_count": 4}], "meta": {"total_tweet_count": 7}}


def mastodon_status(number: int = 1) -> dict[str, Any]:
    account = {"id": "1", "username": "yas", "acct": "yas@kolektiva.social", "url": "https://kolektiva.social/@yas",
               "display_name": "Yas", "followers_count": 10, "following_count": 2, "statuses_count": 3,
               "created_at": "2020-01-01T00:00:00.000Z"}
    quoted = {"id": "90", "uri": "https://kolektiva.social/users/yas/statuses/90", "created_at":
              "2021-02-07T15:00:00.000Z", "content": "<p>quoted</p>", "account": account}
    return {"id": str(100 + number), "uri": f"https://kolektiva.social/users/yas/statuses/{100 + number}",
            "url": f"https://kolektiva.social/@yas/{100 + number}", "created_at": "2021-02-07T16:00:00.000Z",
            "content": "<p>Free them <a href=\"https://x\">#StandWithIssa</a><br>@issa</p>", "language": "en",
            "account": account, "tags": [{"name": "StandWithIssa"}],
            "mentions": [{"acct": "issa@mastodon.social", "username": "issa"}], "in_reply_to_id": None,
            "reblog": None, "quote": {"state": "accepted", "quoted_status": quoted}, "favourites_count": 1,
            "reblogs_count": 2, "replies_count": 3}


def mastodon_page() -> dict[str, Any]:
    reblog = {**mastodon_status(3), "reblog": mastodon_status(4), "content": ""}
    return {"instance": "kolektiva.social", "tag": "standwithissa", "statuses": [mastodon_status(1), reblog]}


def bluesky_view(rkey: str = "3kfx2abc") -> dict[str, Any]:
    record = {"$type": "app.bsky.feed.post", "text": "Free @yas.bsky.social #StandWithIssa",
              "createdAt": "2021-02-07T16:00:00Z", "langs": ["en"], "tags": ["Extra"],
              "facets": [{"index": {"byteStart": 5, "byteEnd": 21},
                          "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:yas"}]},
                         {"index": {"byteStart": 22, "byteEnd": 36},
                          "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "StandWithIssa"}]}],
              "embed": {"$type": "app.bsky.embed.record", "record": {"uri": "at://did:plc:q/app.bsky.feed.post/q1"}},
              "reply": {"parent": {"uri": "at://did:plc:p/app.bsky.feed.post/p1"}}}
    return {"uri": f"at://did:plc:abc/app.bsky.feed.post/{rkey}", "cid": "c", "record": record,
            "author": {"did": "did:plc:abc", "handle": "issa.bsky.social", "displayName": "Issa",
                       "followersCount": 5, "createdAt": "2023-01-01T00:00:00Z",
                       "verification": {"verifiedStatus": "valid"}},
            "indexedAt": "2021-02-07T16:00:05Z", "likeCount": 2, "repostCount": 1,
            "embed": {"$type": "app.bsky.embed.record#view",
                      "record": {"$type": "app.bsky.embed.record#viewRecord",
                                 "uri": "at://did:plc:q/app.bsky.feed.post/q1",
                                 "author": {"did": "did:plc:q", "handle": "q.bsky.social"},
                                 "value": {"text": "quoted", "createdAt": "2021-02-07T15:00:00Z"}}}}


def bluesky_events() -> dict[str, Any]:
    event = {"did": "did:plc:abc", "time_us": 1612713600000000, "kind": "commit",
             "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3kfx2",
                        "record": bluesky_view()["record"], "cid": "c"}}
    return {"events": [event, {**event, "kind": "identity"}]}


def bluesky_profiles() -> dict[str, Any]:
    return {"profiles": [bluesky_view()["author"], {"did": "did:plc:two", "handle": "handle.invalid"}]}


NORMALIZERS: dict[str, tuple[Callable[[], Any], Callable[[Any], Batch | list[Any]]]] = {
    "x page": (x_page, lambda body: x.normalize_page(body, RETRIEVED)),
    "x counts": (x_counts, x.normalize_counts),
    "x flattened post": (lambda: {**x_page()["data"][0], "author": x_page()["includes"]["users"][0]},
                         lambda body: x.normalize_flattened_post(body, RETRIEVED)),
    "mastodon timeline": (mastodon_page, lambda body: mastodon.normalize_timeline(body, RETRIEVED)),
    "mastodon status": (mastodon_status, lambda body: mastodon.normalize_status(body, RETRIEVED)),
    "bluesky post views": (lambda: {"posts": [bluesky_view(), bluesky_view("other")], "cursor": "1"},
                           lambda body: bluesky.normalize_page(body, RETRIEVED)),
    "bluesky feed": (lambda: {"feed": [{"post": bluesky_view()}]},
                     lambda body: bluesky.normalize_post_views(body, RETRIEVED)),
    "bluesky jetstream": (bluesky_events, lambda body: bluesky.normalize_jetstream(body, RETRIEVED)),
    "bluesky profiles": (bluesky_profiles, lambda body: bluesky.normalize_profiles(body, RETRIEVED)),
}


# --- breaking them -------------------------------------------------------------------------------


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (the value itself included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, (*prefix, index)))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    changed = copy.copy(value)
    changed[path[0]] = replaced(value[path[0]], path[1:], new)
    return changed


@st.composite
def broken(draw: st.DrawFn, make: Callable[[], Any]) -> Any:
    """A real-shaped record with one to three fields (anywhere, any depth) replaced by any JSON value."""
    record = make()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        places = paths(record)
        record = replaced(record, draw(st.sampled_from(places)), draw(JSON))
    return record


@functools.cache
def store() -> Store:
    """One store in memory for every example: storing the rows is part of the property."""
    return Store.open(MEMORY)


def assert_storable(result: Batch | list[Any]) -> None:
    if isinstance(result, list):  # counts buckets
        for bucket in result:
            assert bucket.start.tzinfo is not None and EARLIEST <= bucket.start < bucket.end < LATEST
            assert type(bucket.count) is int and 0 <= bucket.count <= MAX_COUNTER
        return
    for post in (*result.posts, *result.context_posts):
        assert type(post.ts) is int and EARLIEST.timestamp() <= post.ts < LATEST.timestamp(), post
        assert STAMP.fullmatch(post.created_at) and STAMP.fullmatch(post.metrics_at), post
        assert post.uid.startswith(f"{post.platform}:") and post.kind in ("original", "repost", "quote", "reply")
        for text in (post.uid, post.id, post.author_uid, post.lang, post.url, post.ref_uid, *post.tags,
                     *post.mentions):
            assert text is None or (type(text) is str and not UNSAFE.search(text)), (text, post)
        assert not UNSAFE.search(post.text), post
        for count in (post.like_count, post.repost_count, post.reply_count, post.quote_count, post.bookmark_count,
                      post.impression_count):
            assert count is None or (type(count) is int and 0 <= count <= MAX_COUNTER), post
    for account in result.accounts:
        for text in (account.uid, account.id, account.handle, account.name, account.created_at):
            assert text is None or (type(text) is str and not UNSAFE.search(text)), account
        assert account.verified in (None, True, False)
    for error in result.errors:
        assert type(error) is str and error
    store().save_page(result, campaign="fuzz", cursor=None, run_id=None,
                      collected_at=EARLIEST.replace(year=2021))


def check(name: str, body: Any) -> None:
    normalize = NORMALIZERS[name][1]
    before = copy.deepcopy(body)
    try:
        result = normalize(body)
    except MalformedPage as exc:
        assert str(exc)  # a located reason
    else:
        assert_storable(result)
    assert body == before or body != body  # never mutated (NaN is not equal to itself)


@pytest.mark.slow  # a Hypothesis search (the fast lane keeps the quick ones)
@FUZZ
@given(st.data())
def test_x_pages_normalize_or_skip(data: st.DataObject) -> None:
    for name in ("x page", "x counts", "x flattened post"):
        check(name, data.draw(broken(NORMALIZERS[name][0]), label=name))


@pytest.mark.slow  # a Hypothesis search (the fast lane keeps the quick ones)
@FUZZ
@given(st.data())
def test_mastodon_statuses_normalize_or_skip(data: st.DataObject) -> None:
    for name in ("mastodon timeline", "mastodon status"):
        check(name, data.draw(broken(NORMALIZERS[name][0]), label=name))


@pytest.mark.slow  # a Hypothesis search (the fast lane keeps the quick ones)
@FUZZ
@given(st.data())
def test_bluesky_pages_events_and_profiles_normalize_or_skip(data: st.DataObject) -> None:
    for name in ("bluesky post views", "bluesky feed", "bluesky jetstream", "bluesky profiles"):
        check(name, data.draw(broken(NORMALIZERS[name][0]), label=name))


@FUZZ
@given(JSON)
def test_any_json_value_as_a_whole_page(value: Any) -> None:
    for name in NORMALIZERS:
        check(name, value)


def test_the_unbroken_records_give_rows() -> None:
    for name, (make, normalize) in NORMALIZERS.items():
        result = normalize(make())
        assert result if isinstance(result, list) else (result.posts or result.accounts), name
        assert_storable(result)
