"""stormwatch.platforms: the one place platform facts live, checked against real samples where they exist."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from stormwatch import platforms
from stormwatch.config import KNOWN_SOURCES
from stormwatch.normalize.x import normalize_page
from stormwatch.platforms import BLUESKY, MASTODON, PLATFORMS, Platform, X, is_valid_handle, snowflake_ms
from stormwatch.report.charts import PLATFORM_COLOURS
from stormwatch.report.content import platform_name

from .conftest import sample_lines, sample_path

HEX_COLOUR = re.compile(r"#[0-9A-F]{6}")


def first_link(platform: Platform, text: str) -> dict[str, str] | None:
    """The groups of the first link to an account in `text`, or None."""
    for pattern in platform.handles.links():
        found = pattern.search(text)
        if found:
            return {k: v for k, v in found.groupdict().items() if v is not None}
    return None


def mentions(platform: Platform, text: str) -> list[str]:
    return [m.group("handle") for pattern in platform.handles.mention_patterns() for m in pattern.finditer(text)]


def test_every_platform_is_listed_once_with_its_label_and_a_distinct_colour() -> None:
    assert [p.name for p in PLATFORMS] == ["x", "mastodon", "bluesky"] == list(platforms.PLATFORM_NAMES)
    assert [p.label for p in PLATFORMS] == ["X", "Mastodon", "Bluesky"]
    assert all(HEX_COLOUR.fullmatch(p.colour) for p in PLATFORMS)
    assert len({p.colour for p in PLATFORMS}) == len(PLATFORMS)
    assert platforms.platform("mastodon") is MASTODON and platforms.find_platform("threads") is None
    with pytest.raises(KeyError, match="'threads' is not a known platform"):
        platforms.platform("threads")


def test_config_dashboard_and_report_read_the_platforms() -> None:
    assert KNOWN_SOURCES == platforms.PLATFORM_NAMES
    assert {p.name: p.colour for p in PLATFORMS} == PLATFORM_COLOURS
    assert [platform_name(p.name) for p in PLATFORMS] == ["X", "Mastodon", "Bluesky"]
    assert platform_name("threads") == platforms.label("threads") == "threads"


def test_what_each_platform_reports() -> None:
    assert X.reports.impressions and X.reports.billed and X.reports.volume_counts and X.reports.reposts_as_posts
    assert not MASTODON.reports.billed and MASTODON.reports.reposts_as_posts  # a reblog is a status of its own
    assert not BLUESKY.reports.reposts_as_posts  # reposts are records, counted only in repostCount
    assert not any(p.reports.impressions for p in (MASTODON, BLUESKY))
    # Mastodon's tag timelines carry no boosts, Bluesky's reposts are not posts: neither has reposts to count, and
    # every figure that would count them is "—" (null in JSON), never 0 (issue 17)
    assert X.reports.reposts_missing is None
    assert platforms.not_reported("x") == ()
    assert platforms.not_reported("mastodon") == platforms.not_reported("bluesky") == ("impressions", "reposts")
    assert platforms.not_reported_note(["x", "mastodon", "bluesky"]) == (
        "Mastodon and Bluesky do not report impressions; no reposts are collected from Mastodon (tag timelines "
        "carry no boosts) or Bluesky (reposts are records).")


@pytest.mark.parametrize(("platform", "text", "expected"), [
    (X, "see https://x.com/Issaamro/status/1358000000000000000 now", {"handle": "Issaamro",
                                                                      "post": "1358000000000000000"}),
    (X, "http://twitter.com/YASHebron", {"handle": "YASHebron"}),
    (X, "mobile.twitter.com/Issaamro?s=20", {"handle": "Issaamro"}),
    (X, "https://twitter.com/i/web/status/1576994746135764992", None),  # a post link without its author
    (X, "https://about.twitter.com/careers and dropbox.com/issa", None),  # other hosts
    (MASTODON, "https://kolektiva.social/@yas/109876543210987654", {"instance": "kolektiva.social", "handle": "yas",
                                                                    "post": "109876543210987654"}),
    (MASTODON, "https://mastodon.social/users/issa/statuses/1098", {"instance": "mastodon.social", "handle": "issa",
                                                                     "post": "1098"}),
    (MASTODON, "follow mastodon.social/@issa", {"instance": "mastodon.social", "handle": "issa"}),
    (BLUESKY, "https://bsky.app/profile/issa.bsky.social/post/3kfx2abcd", {"handle": "issa.bsky.social",
                                                                          "post": "3kfx2abcd"}),
    (BLUESKY, "bsky.app/profile/did:plc:z72i7hdynmk6r22z27h6tvur", {"handle": "did:plc:z72i7hdynmk6r22z27h6tvur"}),
    (BLUESKY, "at://did:plc:abc/app.bsky.feed.post/3kfx2", {"handle": "did:plc:abc", "post": "3kfx2"}),
    (BLUESKY, "find me at issa.bsky.social.", {"handle": "issa.bsky.social"}),
])
def test_every_link_form_names_the_account(platform: Platform, text: str, expected: dict[str, str] | None) -> None:
    assert first_link(platform, text) == expected


def test_mentions_as_each_platform_writes_them() -> None:
    assert mentions(X, "RT @Issaamro: thanks @YASHebron! mail me: a@b.org") == ["Issaamro", "YASHebron"]
    assert mentions(MASTODON, "cc @issa@kolektiva.social and @yas") == ["issa@kolektiva.social", "yas"]
    assert mentions(BLUESKY, "thanks @issa.bsky.social, @yas.example.org") == ["issa.bsky.social", "yas.example.org"]
    assert X.handles.mention_of("Issaamro") == "@Issaamro"
    assert MASTODON.handles.profile_url.format(instance="kolektiva.social", handle="yas") == \
        "https://kolektiva.social/@yas"


def test_handles_a_campaign_may_list() -> None:
    for handle in ("Issaamro", "YAS_Hebron", "issa@kolektiva.social", "issa.bsky.social",
                   "did:plc:z72i7hdynmk6r22z27h6tvur"):
        assert is_valid_handle(handle), handle
    for handle in ("", "two words", "a/b", "issa@", "x" * 101, "-issa."):
        assert not is_valid_handle(handle), handle
    assert X.handles.is_valid("Issaamro") and not X.handles.is_valid("issa.bsky.social")
    assert BLUESKY.handles.is_valid("issa.bsky.social") and not BLUESKY.handles.is_valid("Issaamro")


def test_real_x_mentions_and_post_links_are_recognized() -> None:
    checked = 0
    for name in ("mentions_tweet.jsonl", "cashtags.jsonl", "media_tweet.jsonl", "quoted_edit.jsonl"):
        for page in sample_lines("x-twarc2", name):
            includes = page.get("includes", {})
            users = {u["id"]: u["username"] for u in includes.get("users", [])}
            posts = [*page["data"], *includes.get("tweets", [])]
            known = {(users.get(p.get("author_id")), p["id"]) for p in posts}
            for post in page["data"]:
                entities = post.get("entities") or {}
                assert mentions(X, post["text"])[:len(entities.get("mentions", []))] == [
                    m["username"] for m in entities.get("mentions", [])]
                for url in entities.get("urls") or []:
                    link = first_link(X, url["expanded_url"])
                    if "/status/" in url["expanded_url"] and "/i/web/" not in url["expanded_url"]:
                        assert link is not None and (link["handle"], link["post"]) in known
                        checked += 1
    assert checked >= 3


def test_the_snowflake_epoch_gives_every_real_x_post_its_creation_time() -> None:
    checked = 0
    for path in sorted(sample_path("x-twarc2").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            page = json.loads(line)
            data = page.get("data")
            for post in [*(data if isinstance(data, list) else []), *page.get("includes", {}).get("tweets", [])]:
                if "created_at" not in post or "id" not in post:
                    continue
                created = datetime.fromisoformat(post["created_at"].replace("Z", "+00:00"))
                assert snowflake_ms(post["id"]) // 1000 == int(created.timestamp()), post["id"]
                checked += 1
    assert checked > 10
    # and posts without created_at get it from their id, through the same epoch
    (post,) = normalize_page({"data": [{"id": "1394735776701816833", "text": "hi"}]}, "2021-05-19T00:00:00.000Z").posts
    assert post.created_at.startswith("2021-05-18T19:24:56")
