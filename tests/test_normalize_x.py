"""X page normalization, checked against real recorded API pages (conformance) and edge cases."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from stormwatch.errors import MalformedPage
from stormwatch.normalize.x import is_counts_page, normalize_counts, normalize_page

from .conftest import recorded_bodies, sample_lines

RETRIEVED = "2021-05-19T15:26:17.000Z"


def test_search_page_with_repost_and_context_original() -> None:
    page = next(sample_lines("x-twarc2", "two_tweets.jsonl"))
    pristine = copy.deepcopy(page)
    batch = normalize_page(page, RETRIEVED)
    assert page == pristine, "normalizing must never mutate the raw page"

    (repost,) = batch.posts
    assert repost.uid == "x:1394735776701816833"
    assert repost.kind == "repost"
    assert repost.ref_uid == "x:1391677057810288641"
    assert repost.author_uid == "x:1379899464345923590"
    assert repost.created_at == "2021-05-18T19:24:56.000Z"
    assert repost.ts == 1621365896
    assert repost.tags == ("poiuytrewq",)
    assert repost.mentions == ("bibaigna96",)
    assert repost.repost_count == 1 and repost.like_count == 0 and repost.impression_count is None
    assert repost.url == "https://x.com/LachiVeronica/status/1394735776701816833"
    assert repost.metrics_at == RETRIEVED

    (original,) = batch.context_posts
    assert original.uid == "x:1391677057810288641"
    assert original.kind == "original"
    assert original.author_uid == "x:1380086327023169540"

    accounts = {a.uid: a for a in batch.accounts}
    assert accounts["x:1379899464345923590"].handle == "LachiVeronica"
    assert accounts["x:1379899464345923590"].followers_count == 0
    assert accounts["x:1380086327023169540"].followers_count == 1
    assert accounts["x:1380086327023169540"].posts_count == 3
    assert accounts["x:1380086327023169540"].created_at == "2021-04-08T09:13:42.000Z"
    assert batch.errors == ()


def test_reply_that_quotes_is_a_reply_and_edit_history_is_context_only() -> None:
    page = next(sample_lines("x-twarc2", "quoted_edit.jsonl"))
    batch = normalize_page(page, RETRIEVED)
    (post,) = batch.posts
    assert post.kind == "reply"
    assert post.ref_uid == "x:1576994789110992896"
    assert post.mentions == ("wongmjane",)
    # the post itself also sits in includes.tweets (edit history); it must not appear twice
    assert post.uid not in {p.uid for p in batch.context_posts}
    assert {p.uid for p in batch.context_posts} == {"x:1576994746135764992", "x:1576994789110992896"}


def test_repeated_and_non_ascii_hashtags_are_folded_once() -> None:
    page = next(sample_lines("x-twarc2", "geo_tweets.jsonl"))
    (post,) = normalize_page(page, RETRIEVED).posts
    assert post.tags.count("harrypotter") == 1
    assert "zostańwdomu" in post.tags
    assert all(tag == tag.casefold() and not tag.startswith("#") for tag in post.tags)


def test_new_counter_fields_and_verified_accounts() -> None:
    page = next(sample_lines("x-twarc2", "verified_type.jsonl"))
    batch = normalize_page(page, RETRIEVED)
    (post,) = batch.posts
    assert post.impression_count == 139075
    assert post.repost_count == 104 and post.quote_count == 24
    account = next(a for a in batch.accounts if a.handle == "TwitterDev")
    assert account.verified is True and account.followers_count == 556601


@pytest.mark.parametrize("name", ["cashtags", "cotweet", "edited", "geo_tweets", "many_urls", "media_tweet",
                                  "mentions_tweet", "quoted_edit", "two_tweets", "verified_type"])
def test_every_recorded_page_normalizes_cleanly(name: str) -> None:
    for page in sample_lines("x-twarc2", f"{name}.jsonl"):
        batch = normalize_page(page, RETRIEVED)
        data = page["data"] if isinstance(page["data"], list) else [page["data"]]
        assert [p.id for p in batch.posts] == [t["id"] for t in data]
        assert all(p.author_uid and p.author_uid.startswith("x:") for p in batch.posts)
        assert batch.errors == ()


def test_default_field_search_page_takes_time_from_the_snowflake_id() -> None:
    (body,) = recorded_bodies("x-tweepy", "test_client_search_recent_tweets.decoded.json")
    batch = normalize_page(body, RETRIEVED)
    assert len(batch.posts) == 10
    first = batch.posts[0]
    assert first.id == "1578516068309794817"
    # the text of each recorded post is the (UTC) time the script sent it; X minted the id moments later
    sent = first.text.split(" tweepy")[0].replace(" ", "T")[:23] + "Z"
    assert sent <= first.created_at < "2022-10-07T22:42:14.000Z"
    assert first.author_uid is None and first.kind == "original"


def test_counts_pages_old_and_new_field_names() -> None:
    page = next(sample_lines("x-twarc2", "counts.jsonl"))
    assert is_counts_page(page)
    buckets = normalize_counts(page)
    assert len(buckets) == 169
    assert buckets[0].start == datetime(2021, 10, 16, 18, 21, 34, tzinfo=UTC)
    assert buckets[0].end == datetime(2021, 10, 16, 19, tzinfo=UTC)
    assert sum(b.count for b in buckets) == page["meta"]["total_tweet_count"]
    renamed = {"data": [{"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "post_count": 7}]}
    assert normalize_counts(renamed)[0].count == 7
    (recorded,) = recorded_bodies("x-tweepy", "test_client_get_recent_tweets_count.decoded.json")
    assert sum(b.count for b in normalize_counts(recorded)) == recorded["meta"]["total_tweet_count"]


def test_partial_errors_are_reported_not_fatal() -> None:
    page = {
        "data": [{"id": "1394735776701816833", "text": "RT @a: #x", "author_id": "9",
                  "created_at": "2021-05-18T19:24:56.000Z",
                  "referenced_tweets": [{"type": "retweeted", "id": "55"}]},
                 {"text": "no id here"}],
        "errors": [{"value": "55", "detail": "Could not find tweet with referenced_tweets.id: [55].",
                    "title": "Not Found Error", "resource_type": "tweet", "parameter": "referenced_tweets.id",
                    "resource_id": "55", "type": "https://api.twitter.com/2/problems/resource-not-found"}],
    }
    batch = normalize_page(page, RETRIEVED)
    assert [p.id for p in batch.posts] == ["1394735776701816833"]
    assert batch.posts[0].ref_uid == "x:55"
    assert any("Could not find tweet" in e for e in batch.errors)
    assert any("data[1]" in e for e in batch.errors)


@pytest.mark.parametrize("body, message", [
    ([1, 2], "not a JSON object"),
    ({"data": "oops"}, "data is str"),
    ({"data": [], "includes": []}, "includes is list"),
])
def test_pages_of_the_wrong_shape_raise_with_the_place(body: object, message: str) -> None:
    with pytest.raises(MalformedPage, match=message):
        normalize_page(body, RETRIEVED)  # type: ignore[arg-type]


def test_bad_timestamp_names_the_item() -> None:
    page = {"data": [{"id": "1", "text": "x", "created_at": "yesterday"}]}
    batch = normalize_page(page, RETRIEVED)
    assert batch.posts == ()
    assert "data[0].created_at" in json.dumps(batch.errors)
