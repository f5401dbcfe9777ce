"""Hostile and broken input: one odd record never costs the good ones, is never stored, and never crashes a later
command; the importer says where each skipped record is (`FILE:LINE: reason`, `FILE:LINE:[ITEM]: reason`)."""

from __future__ import annotations

import copy
import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stormwatch.collector import Collector
from stormwatch.config import load_config
from stormwatch.errors import MalformedPage
from stormwatch.normalize import bluesky, mastodon, x
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.wire_x import render_twarc_page
from stormwatch.store import MEMORY, Store

from .cli_support import invoke
from .conftest import T0, write_config
from .mastodon_support import odd_instance

RETRIEVED = "2021-02-07T20:00:00.000Z"
IMPOSSIBLE_TIMES = ["2021-02-07T25:00:00.000Z", "2021-02-07T16:99:00.000Z", "2021-02-30T16:00:00.000Z",
                    "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.000Z", "2021-02-07T16:00:60.000Z",
                    "2021-02-07T16:00:00.000+99:00", "２０２１-02-07T16:00:00.000Z", "0001-01-01T00:00:00+01:00",
                    "not a time", 1612713600]


@pytest.fixture(scope="module")
def x_page(small_storm: Storm) -> dict[str, Any]:
    posts = [p for p in small_storm.posts if p.platform == "x" and p.campaign and p.kind == "original"][:3]
    return render_twarc_page(small_storm, posts, retrieved_at=T0 + timedelta(hours=4), query="#StandWithIssa")


def with_first_post(page: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(page)
    changed["data"][0].update(changes)
    return changed


def skipped(batch: Any) -> list[str]:
    return [error for error in batch.errors if error.endswith(", skipped")]


# --- X: every field checked, the rest of the page kept --------------------------------------------


@pytest.mark.parametrize(("changes", "field"), [
    ({"entities": ["not", "an", "object"]}, ".entities"),
    ({"entities": {"hashtags": 5}}, ".entities.hashtags"),
    ({"entities": {"hashtags": ["tag"]}}, ".entities.hashtags[0]"),
    ({"lang": {"code": "en"}}, ".lang"),
    ({"text": ["a", "list"]}, ".text"),
    ({"id": "١٢٣٤"}, ".id"),  # digits, but not ASCII digits
    ({"id": "1" * 25}, ".id"),
    ({"id": str(2**64)}, ".id"),
    ({"id": -5}, ".id"),
    ({"author_id": {"id": 1}}, ".author_id"),
    ({"referenced_tweets": {"type": "quoted"}}, ".referenced_tweets"),
    ({"referenced_tweets": [{"type": "quoted", "id": "x1"}]}, ".referenced_tweets[0].id"),
    ({"public_metrics": [1, 2]}, ".public_metrics"),
    ({"note_tweet": "long"}, ".note_tweet"),
    *(({"created_at": stamp}, ".created_at") for stamp in IMPOSSIBLE_TIMES),
])
def test_an_x_post_with_a_wrong_field_is_skipped_alone(x_page: dict[str, Any], changes: dict[str, Any],
                                                       field: str) -> None:
    page = with_first_post(x_page, **changes)
    original = copy.deepcopy(page)
    batch = x.normalize_page(page, RETRIEVED)
    assert page == original  # never mutated
    (error,) = skipped(batch)
    assert error.startswith(f"data[0]{field}"), error
    assert [p.id for p in batch.posts] == [item["id"] for item in x_page["data"][1:]]


def test_x_ids_without_a_time_must_give_a_possible_one(x_page: dict[str, Any]) -> None:
    page = copy.deepcopy(x_page)
    del page["data"][0]["created_at"]
    page["data"][0]["id"] = str(2**64 - 1)  # a snowflake from the year 2109
    assert skipped(x.normalize_page(page, RETRIEVED))[0].startswith("data[0].id (as a time)")


def test_x_counters_too_large_to_store_are_unknown_not_fatal(x_page: dict[str, Any]) -> None:
    page = with_first_post(x_page, public_metrics={"like_count": 2**70, "retweet_count": -1, "reply_count": "12"})
    (post, *_) = x.normalize_page(page, RETRIEVED).posts
    assert (post.like_count, post.repost_count, post.reply_count) == (None, None, 12)


def test_counts_pages_with_an_impossible_bucket_are_refused_whole() -> None:
    good = {"start": "2021-02-07T16:00:00.000Z", "end": "2021-02-07T16:01:00.000Z", "tweet_count": 3}
    assert len(x.normalize_counts({"data": [good, good]})) == 2
    for broken in ({**good, "end": "2021-02-30T16:01:00.000Z"}, {**good, "tweet_count": 2**70},
                   {**good, "end": good["start"]}):
        with pytest.raises(MalformedPage, match=r"data\[1\]"):
            x.normalize_counts({"data": [good, broken]})


# --- Mastodon ------------------------------------------------------------------------------------


def status(number: int, **changes: Any) -> dict[str, Any]:
    base = {"id": str(105690798489600000 + number),
            "uri": f"https://kolektiva.social/users/yas/statuses/{100 + number}",
            "url": f"https://kolektiva.social/@yas/{100 + number}", "created_at": "2021-02-07T16:00:00.000Z",
            "content": "<p>Free them <a href=\"x\">#StandWithIssa</a></p>", "language": "en",
            "account": {"id": "1", "username": "yas", "acct": "yas", "url": "https://kolektiva.social/@yas",
                        "display_name": "Yas", "followers_count": 10, "statuses_count": 3},
            "tags": [{"name": "StandWithIssa"}], "mentions": [], "reblog": None, "favourites_count": 1}
    base.update(changes)
    return base


@pytest.mark.parametrize(("changes", "field"), [
    *(({"created_at": stamp}, ".created_at") for stamp in IMPOSSIBLE_TIMES),
    ({"content": {"html": "x"}}, ".content"),
    ({"tags": 5}, ".tags"),
    ({"tags": ["StandWithIssa"]}, ".tags[0]"),
    ({"mentions": {"acct": "x"}}, ".mentions"),
    ({"uri": "javascript:alert(1)"}, ".uri"),
    ({"uri": ["https://a.example/1"]}, ".uri"),
    ({"url": 7}, ".url"),
    ({"reblog": "yes"}, ".reblog"),
    ({"in_reply_to_id": {"id": 1}}, ".in_reply_to_id"),
    ({"account": {"username": "=cmd|' /C calc'!A0", "acct": "=cmd"}}, ".account"),
])
def test_a_mastodon_status_with_a_wrong_field_is_skipped_alone(changes: dict[str, Any], field: str) -> None:
    batch = mastodon.normalize_timeline({"instance": "kolektiva.social", "tag": "standwithissa",
                                         "statuses": [status(1, **changes), status(2)]}, RETRIEVED)
    (error,) = skipped(batch)
    assert error.startswith(f"statuses[0]{field}"), error
    assert [p.id for p in batch.posts] == [status(2)["uri"]]


def test_nesting_a_thousand_levels_deep_is_not_followed() -> None:
    deep: dict[str, Any] = status(0)
    for number in range(1, 3000):
        deep = status(number, reblog=None, quote={"state": "accepted", "quoted_status": deep})
    batch = mastodon.normalize_statuses([deep, status(9999)], RETRIEVED, "kolektiva.social")
    assert len(batch.posts) == 2 and batch.posts[0].kind == "quote"
    reblogs: dict[str, Any] = status(0)
    for number in range(1, 3000):
        reblogs = status(number, reblog=reblogs)
    batch = mastodon.normalize_statuses([reblogs, status(9999)], RETRIEVED, "kolektiva.social")
    assert [p.kind for p in batch.posts] == ["repost", "original"]  # a reblog's own reblog is not followed


# --- Bluesky -------------------------------------------------------------------------------------


def post_view(**record_changes: Any) -> dict[str, Any]:
    record = {"$type": "app.bsky.feed.post", "text": "Free them #StandWithIssa", "createdAt": "2021-02-07T16:00:00Z",
              "langs": ["en"], "facets": [], **record_changes}
    return {"uri": "at://did:plc:abc/app.bsky.feed.post/3kfx2abc", "cid": "c",
            "author": {"did": "did:plc:abc", "handle": "yas.bsky.social", "displayName": "Yas"},
            "record": record, "indexedAt": "2021-02-07T16:00:05Z", "likeCount": 2}


@pytest.mark.parametrize(("changes", "field"), [
    ({"text": {"t": 1}}, ".record.text"),
    ({"langs": "en"}, ".record.langs"),
    ({"facets": {"index": 1}}, ".record.facets"),
    ({"reply": "parent"}, ".record.reply"),
])
def test_a_bluesky_post_with_a_wrong_field_is_skipped_alone(changes: dict[str, Any], field: str) -> None:
    good = post_view()
    good["uri"] = "at://did:plc:abc/app.bsky.feed.post/3kfx2good"
    batch = bluesky.normalize_post_views({"posts": [post_view(**changes), good]}, RETRIEVED)
    (error,) = skipped(batch)
    assert error.startswith(f"posts[0]{field}"), error
    assert [p.id for p in batch.posts] == [good["uri"]]


def test_bluesky_ids_and_times_follow_the_protocol() -> None:
    for uri in ("at://did:plc:abc/app.bsky.feed.post/a/b", "at://did:plc:a\x1bbc/app.bsky.feed.post/1",
                "at://=cmd/app.bsky.feed.post/1", "at://did:plc:abc/app.bsky.feed.post/.."):
        assert bluesky.parse_at_uri(uri) is None, uri
    # An impossible createdAt (client-set) gives way to the AppView's indexedAt.
    (post,) = bluesky.normalize_post_views([post_view(createdAt="2021-02-30T16:00:00Z")], RETRIEVED).posts
    assert post.created_at == "2021-02-07T16:00:05.000Z"
    hostile = post_view()
    hostile["author"]["handle"] = "=HYPERLINK(\"x\")"
    (account,) = bluesky.normalize_post_views([hostile], RETRIEVED).accounts
    assert account.handle == "did:plc:abc"  # not a handle: shown by its DID


# --- strangers' strings are stored clean ---------------------------------------------------------


def test_control_characters_and_lone_surrogates_never_reach_the_database(x_page: dict[str, Any]) -> None:
    page = with_first_post(x_page, text="evil\x1b[2J\x00 \ud800 text\u202e", lang="en\x07")
    page["data"][0]["entities"] = {"hashtags": [{"tag": "Stand\x1bWithIssa"}, {"tag": "x" * 5000}]}
    page["includes"]["users"][0]["name"] = "Name\x9b31m\udc80"
    batch = x.normalize_page(page, RETRIEVED)
    first = batch.posts[0]
    assert first.text == "evil[2J \ufffd text" and first.lang == "en" and first.tags == ("standwithissa",)
    assert batch.accounts[0].name == "Name31m\ufffd"
    with Store.open(MEMORY) as store:  # every string encodes: nothing for SQLite to refuse
        store.save_page(batch, campaign="c", cursor=None, run_id=None, collected_at=T0)


# --- the importer, end to end -------------------------------------------------------------------


@pytest.mark.slow  # import and whole reports
def test_a_hostile_archive_costs_only_its_bad_records(x_page: dict[str, Any], tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    good = json.dumps(x_page)
    lines = [
        good[: len(good) // 2],  # line 1: broken (a JSONL file must not be taken for one document)
        json.dumps(with_first_post(x_page, created_at="2021-02-30T16:00:00.000Z")),  # 2: one bad post
        "[" * 5000 + "]" * 5000,  # 3: nested deeper than the parser goes
        good.replace('"text": "', '"text": "\\ud800', 1),  # 4: a lone surrogate escape
        json.dumps(with_first_post(x_page, entities=[1])),  # 5: a wrong type
        json.dumps({"data": [{"id": "1", "text": "x"}], "includes": {"users": 5}}),  # 6: a page of the wrong shape
    ]
    jsonl = tmp_path / "hostile.jsonl"
    jsonl.write_bytes(("\n".join(lines) + "\n").encode() + b'{"data": [{"id": "\xff1", "text": "x"}]}\n'
                      + (good + "\n").encode())
    statuses = [status(1), status(2, created_at="2021-02-07T25:00:00.000Z"), "junk", status(3)]
    array = tmp_path / "statuses.json"
    array.write_bytes(("[\n" + ",\n".join(json.dumps(s) for s in statuses) + ',\n{"uri": broken},\n'
                       ).encode() + b'{"content": "\xfe"},\n' + (json.dumps(status(4)) + "\n]").encode())
    result = invoke("import", jsonl, array, "--config", config)
    assert result.returncode == 1, result.stderr
    problems = result.stderr.strip().splitlines()
    assert problems[0].startswith(f"{jsonl}:1: not valid JSON")
    assert problems[1].startswith(f"{jsonl}:2:data[0].created_at: '2021-02-30T16:00:00.000Z'")
    assert problems[2].startswith(f"{jsonl}:3: not valid JSON") and "depth" in problems[2]
    assert problems[3].startswith(f"{jsonl}:4: not valid JSON")
    assert problems[4].startswith(f"{jsonl}:5:data[0].entities: expected an object, got a list")
    assert problems[5].startswith(f"{jsonl}:6: includes.users: expected a list")
    assert problems[6].startswith(f"{jsonl}:7: not valid JSON")
    assert problems[7:] == [
        f"{array}:3:[1]:statuses[0].created_at: '2021-02-07T25:00:00.000Z' is not a possible time between 2006 "
        "and 2100, skipped",
        f"{array}:4:[2]: not a post, status, API page or archive line stormwatch knows",
        f"{array}:6:[4]: not valid JSON (Expecting value)",
        f"{array}:7:[5]: not UTF-8 text",
    ]
    assert f"{len(problems)} skipped" in result.stdout
    with sqlite3.connect(tmp_path / "data" / "test.db") as conn:
        stored = {row[0] for row in conn.execute("SELECT uid FROM posts")}
        times = [row[0] for row in conn.execute("SELECT created_at FROM posts")]
    kept = {f"x:{item['id']}" for item in x_page["data"]} | {
        f"mastodon:{status(n)['uri']}" for n in (1, 3, 4)}
    assert kept <= stored and f"mastodon:{status(2)['uri']}" not in stored
    assert all("2006" <= t[:4] < "2100" for t in times)
    # what was stored is readable by every later command
    for command in (("summary", "--json"), ("report", "--out", tmp_path / "reports"), ("dashboard",), ("status",)):
        later = invoke(*command, "--config", config)
        assert later.returncode == 0, (command, later.stderr)


# --- live pages: recorded on the run, never stored -----------------------------------------------


@pytest.mark.slow  # import and whole reports
def test_a_hostile_instance_costs_its_bad_statuses_not_the_run(tmp_path: Path) -> None:
    page = json.dumps([status(7, created_at="2021-02-07T16:02:00.000Z"),
                       status(6, created_at="2021-02-30T16:01:00.000Z"),
                       status(5, created_at="2021-02-07T16:00:00.000Z", content={"html": 1})])
    served: list[str] = []

    def answer(path: str) -> str:
        """The hostile page for the first tag-timeline request, nothing new afterwards."""
        if "/timelines/tag/" not in path:
            return "{}"
        served.append(path)
        return page if len(served) == 1 else "[]"

    with odd_instance(answer) as url:
        path = write_config(tmp_path, "http://127.0.0.1:9", campaign_extra='sources = ["mastodon"]\n',
                            top_extra=f'[mastodon]\ninstances = ["{url}/kolektiva.social"]\nretries = 0\n')
        config = load_config(path)
        clock = ManualClock(T0 + timedelta(minutes=30))
        collector = Collector(config, clock=clock)
        (record,) = collector.run_once()
        collector.close()
    assert record.status == "partial", record.error
    assert "statuses[1].created_at: '2021-02-30T16:01:00.000Z'" in (record.error or "")
    assert "statuses[2].content: expected a string" in (record.error or "")
    with sqlite3.connect(config.storage.database) as conn:
        assert [row[0] for row in conn.execute("SELECT uid FROM posts")] == [f"mastodon:{status(7)['uri']}"]
    later = invoke("report", "--config", path, "--out", tmp_path / "reports")
    assert later.returncode == 0, later.stderr
