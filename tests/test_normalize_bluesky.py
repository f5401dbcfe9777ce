"""The Bluesky normalizer: real samples (post views, the atproto SDK's test data) and the simulated network's
posts and Jetstream events."""

from __future__ import annotations

import copy
import json

import pytest

from stormwatch.errors import MalformedPage
from stormwatch.normalize.bluesky import (
    normalize_jetstream,
    normalize_page,
    normalize_post_views,
    normalize_profiles,
)
from stormwatch.simulator.atproto import BlueskyNetwork

from . import bluesky_support
from .conftest import sample_path

# Fixtures the tests take by name, shared with the other Bluesky test modules.
storm = bluesky_support.storm
network = bluesky_support.network


def test_real_post_view_with_tag_facets_normalizes_at_utf8_byte_offsets() -> None:
    view = json.loads(sample_path("bluesky", "postview_with_tag_facets.json").read_text(encoding="utf-8"))
    untouched = copy.deepcopy(view)
    text = view["record"]["text"]
    first = view["record"]["facets"][0]["index"]
    # The emoji and curly quotes before the tags make byte offsets differ from character offsets.
    assert text.encode("utf-8")[first["byteStart"]:first["byteEnd"]] == b"#swiftUI"
    assert text[first["byteStart"]:first["byteEnd"]] != "#swiftUI"

    for body in ([view], {"posts": [view], "cursor": "25", "hitsTotal": 1}):
        batch = normalize_post_views(body, "2025-02-09T00:00:00.000Z")
        assert batch.errors == ()
        (post,) = batch.posts
        assert post.uid == "bluesky:at://did:plc:l7mosai5i2u562b5qbosw6c7/app.bsky.feed.post/3lhnr2o6kb22h"
        assert post.id == "at://did:plc:l7mosai5i2u562b5qbosw6c7/app.bsky.feed.post/3lhnr2o6kb22h"
        assert post.author_uid == "bluesky:did:plc:l7mosai5i2u562b5qbosw6c7"
        assert post.tags == ("swiftui", "ios", "beginner", "code", "keeplearning")
        assert post.mentions == ()
        assert (post.created_at, post.ts) == ("2025-02-08T09:03:55.725Z", 1739005435)
        assert (post.kind, post.ref_uid, post.lang, post.text) == ("original", None, "en", text)
        assert post.url == "https://bsky.app/profile/kamhoyung.bsky.social/post/3lhnr2o6kb22h"
        assert (post.like_count, post.repost_count, post.reply_count, post.quote_count) == (0, 0, 0, 0)
        assert post.impression_count is None
        (author,) = batch.accounts
        assert (author.uid, author.handle, author.name) == (
            "bluesky:did:plc:l7mosai5i2u562b5qbosw6c7", "kamhoyung.bsky.social", "Kamhoyung")
        assert author.created_at == "2024-11-16T21:07:24.870Z"
        assert author.followers_count is None  # post views carry no counts: getProfiles brings them
    assert view == untouched


def test_mentions_are_read_at_their_byte_range_after_non_ascii_text() -> None:
    view = json.loads(sample_path("bluesky", "postview_with_tag_facets.json").read_text(encoding="utf-8"))
    record = view["record"]
    suffix = " cc @YASHebron.bsky.social"
    start = len((record["text"] + " cc ").encode("utf-8"))
    mention = {"index": {"byteStart": start, "byteEnd": start + len("@YASHebron.bsky.social")},
               "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}]}
    mentioned = {**view, "record": {**record, "text": record["text"] + suffix, "facets": [*record["facets"], mention],
                                    "tags": ["StandWithIssa"]}}
    (post,) = normalize_post_views([mentioned], "2025-02-09T00:00:00.000Z").posts
    assert post.mentions == ("yashebron.bsky.social",)
    assert post.tags[-1] == "standwithissa"  # the record's own `tags` count as hashtags too


def test_sdk_records_normalize_to_quote_context_and_plain_records() -> None:
    thread = json.loads(sample_path("bluesky", "atproto_testdata_thread_view_post_with_embed_media.json")
                        .read_text(encoding="utf-8"))
    batch = normalize_post_views([thread["thread"]["post"]], "2024-01-01T00:00:00.000Z")
    (post,) = batch.posts
    assert post.kind == "quote"  # recordWithMedia: images plus a quoted post
    assert post.ref_uid == "bluesky:at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kahesw26il2z"
    assert (post.text, post.created_at, post.quote_count) == ("", "2023-09-28T12:49:36.735Z", None)
    (quoted,) = batch.context_posts
    assert (quoted.uid, quoted.text, quoted.kind) == (post.ref_uid, "test", "original")
    assert {a.handle for a in batch.accounts} == {"test.marshal.dev"}

    record = json.loads(sample_path("bluesky", "atproto_testdata_post_record.json").read_text(encoding="utf-8"))
    generator = json.loads(sample_path("bluesky", "atproto_testdata_feed_record.json").read_text(encoding="utf-8"))
    listed = normalize_post_views({"records": [generator, record]}, "2024-03-01T00:00:00.000Z")
    (plain,) = listed.posts
    assert plain.id == "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3k2yihcrp6f2c"
    assert (plain.text, plain.created_at, plain.like_count, plain.author_uid) == (
        "new text114", "2024-02-22T19:58:13.903Z", None, "bluesky:did:plc:kvwvcn5iqfooopmyzvb4qzba")
    assert plain.url == "https://bsky.app/profile/did:plc:kvwvcn5iqfooopmyzvb4qzba/post/3k2yihcrp6f2c"
    assert len(listed.errors) == 1 and listed.errors[0].startswith("records[0]: ")
    assert "app.bsky.feed.generator" in listed.errors[0] and listed.errors[0].endswith(", skipped")

    follows = json.loads(sample_path("bluesky", "atproto_testdata_get_follows.json").read_text(encoding="utf-8"))
    people = normalize_page(follows, "2024-06-15T00:00:00.000Z")
    assert len(people.accounts) == len(follows["follows"]) and people.posts == ()
    assert people.accounts[0].handle == "why.bsky.team" and people.accounts[0].id.startswith("did:plc:")


def test_normalizers_skip_unreadable_items_and_refuse_wrong_shapes(network: BlueskyNetwork) -> None:
    good = network.post_view(network.posts[3], 2**60)
    like = {"uri": f"at://{good['author']['did']}/app.bsky.feed.like/3kabc", "record": {"$type": "app.bsky.feed.like"}}
    batch = normalize_post_views({"posts": [good, 42, like, {"uri": good["uri"]}]}, "2021-02-07T16:00:00.000Z")
    assert [p.id for p in batch.posts] == [good["uri"]]
    assert [e.split(":")[0] for e in batch.errors] == ["posts[1]", "posts[2]", "posts[3].record"]
    assert all(error.endswith(", skipped") for error in batch.errors)
    for body in ({"cursor": "x"}, {"posts": {"uri": "x"}}, "posts"):
        with pytest.raises(MalformedPage):
            normalize_post_views(body, "2021-02-07T16:00:00.000Z")  # type: ignore[arg-type]
    with pytest.raises(MalformedPage):
        normalize_jetstream({"events": "none"}, "2021-02-07T16:00:00.000Z")
    with pytest.raises(MalformedPage):
        normalize_profiles({"nobody": []}, "2021-02-07T16:00:00.000Z")

    post = network.posts[3]
    did = network.did(network.author(post))
    create = {"did": did, "time_us": 1612713600123456, "kind": "commit",
              "commit": {"rev": "3hus", "operation": "create", "collection": "app.bsky.feed.post",
                         "rkey": network.rkey(post), "record": network.record(post), "cid": network.cid(post)}}
    events = [
        {"did": did, "time_us": 1612713600000001, "kind": "identity", "identity": {"did": did, "handle": "a.b"}},
        {**create, "commit": {**create["commit"], "collection": "app.bsky.feed.like"}},
        {**create, "commit": {**create["commit"], "operation": "delete", "record": None}},
        {**create, "commit": {**create["commit"], "record": "not a record"}},
        create,
    ]
    untouched = copy.deepcopy(events)
    jet = normalize_jetstream({"events": events}, "2021-02-07T17:00:00.000Z")
    assert events == untouched
    assert [p.id for p in jet.posts] == [network.uri(post)] and jet.accounts == ()
    assert jet.errors == ("events[3].commit.record: not an object, skipped",)
    (row,) = jet.posts
    assert (row.like_count, row.repost_count, row.reply_count, row.quote_count) == (None, None, None, None)
    assert row.metrics_at == "2021-02-07T16:00:00.123Z"  # as old as the event: any later view's counters win
    assert row.url == f"https://bsky.app/profile/{did}/post/{network.rkey(post)}"


def test_kinds_from_reply_and_quote_records(network: BlueskyNetwork) -> None:
    reply = next(p for p in network.posts if p.kind == "reply")
    quote = next(p for p in network.posts if p.kind == "quote")
    batch = normalize_post_views([network.post_view(reply, 2**60), network.post_view(quote, 2**60)],
                                 "2021-02-08T00:00:00.000Z")
    replied, quoted = batch.posts
    assert (replied.kind, replied.ref_uid) == ("reply", "bluesky:" + network.uri_of_id(reply.ref_id))  # type: ignore[arg-type, operator]
    assert (quoted.kind, quoted.ref_uid) == ("quote", "bluesky:" + network.uri_of_id(quote.ref_id))  # type: ignore[arg-type, operator]
    assert not replied.text.startswith("@")  # Bluesky replies name their parent in the record, not the text
