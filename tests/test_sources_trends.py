"""Trending lists and the targets' posts through the real clients: X's trends by WOEID through tweepy's request,
Mastodon's trending tags through Mastodon.py (against a real recorded Tag entity), the targets' `from:` search,
their Mastodon account timeline and Bluesky author feed; and the normalizers of those pages."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from stormwatch.config import CampaignConfig, MastodonConfig, XConfig
from stormwatch.errors import MalformedPage, SourceError
from stormwatch.models import Cursor, RawPage
from stormwatch.normalize.bluesky import normalize_author_feed
from stormwatch.normalize.mastodon import normalize_trending_tags
from stormwatch.normalize.x import normalize_trends, place_name
from stormwatch.simulator.atproto import BlueskyNetwork
from stormwatch.simulator.bluesky import mount_bluesky
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.mastodon import instance_urls, mount_mastodon
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.sources import registry
from stormwatch.sources.bluesky import BlueskySource
from stormwatch.sources.mastodon import MastodonSource
from stormwatch.sources.x import XSource, target_queries

from .bluesky_support import bluesky_config
from .conftest import HASHTAGS, T0, TOKEN
from .intel_support import intel_spec
from .mastodon_support import cassette
from .simulator_support import SEARCH_REPOSTS

INSTANCES = ("mastodon.social", "kolektiva.social")
SEEN = datetime(2021, 2, 7, 16, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(intel_spec(1500))  # type: ignore[arg-type]


@pytest.fixture
def world(storm: Storm):
    """X, two Mastodon instances and Bluesky's AppView on one port, the storm clock half an hour in."""
    clock = ManualClock(T0 + timedelta(minutes=30))
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        mastodon = mount_mastodon(server, INSTANCES)
        mount_bluesky(server)
        yield server, mastodon, clock


def x_source(server: SimulatedPlatform, clock: object) -> XSource:
    return XSource(XConfig(api_base=server.url, timeout=5.0), TOKEN, clock)  # type: ignore[arg-type]


def campaign_for(storm: Storm, **changes: object) -> CampaignConfig:
    base = CampaignConfig(name="standwithissa", hashtags=HASHTAGS, accounts=("Issaamro",),
                          targets=("antonioguterres", "vonderleyen"), sources=("x",), start=T0,
                          end=T0 + timedelta(hours=3), timezone=ZoneInfo("Asia/Hebron"), interval=timedelta(minutes=5),
                          storm_interval=timedelta(minutes=1), daily_budget_usd=None)
    return dataclasses.replace(base, **changes)


# --- X trends --------------------------------------------------------------------------------------------------


def test_x_trends_come_through_tweepy_as_x_sends_them_and_rank_in_order(world) -> None:
    server, _, clock = world
    source = x_source(server, clock)
    page = source.trends("standwithissa", "44418")
    source.close()
    assert (page.source, page.endpoint, page.query) == ("x", "trends", "44418")
    assert page.cursor.query == "trends 44418" and page.cursor.position == "2021-02-07T16:30:00.000Z"
    assert set(page.body) == {"data"} and all(set(e) <= {"trend_name", "tweet_count"} for e in page.body["data"])
    (request,) = [r for r in server.requests() if r.path == "/2/trends/by/woeid/44418"]
    assert request.params == {"max_trends": "50", "trend.fields": "trend_name,tweet_count"}
    assert request.status == 200  # the simulated X answers 401 without the bearer token
    entries = registry.normalize_trends(page)
    assert [e.rank for e in entries] == list(range(1, len(page.body["data"]) + 1)) and len(entries) <= 50
    assert {(e.platform, e.location, e.woeid) for e in entries} == {("x", "London", 44418)}
    assert [e.name for e in entries] == [item["trend_name"] for item in page.body["data"]]
    # half an hour in, the campaign's tags trend in London (the storm's threshold)
    assert any(e.name == "#StandWithIssa" for e in entries)


def test_x_refuses_a_woeid_that_is_not_a_number(world) -> None:
    server, _, clock = world
    source = x_source(server, clock)
    with pytest.raises(SourceError, match="not a WOEID"):
        source.trends("standwithissa", "london")
    source.close()


def test_trends_entries_are_read_from_x_pages_of_the_documented_shape() -> None:
    # the shape of X's documented example answer (docs.x.com, GET /2/trends/by/woeid/{woeid})
    body = {"data": [{"trend_name": "Europe", "tweet_count": 232408}, {"trend_name": "#AI"},
                     {"trend_name": "  "}, {"tweet_count": 5}, {"trend_name": "Isak", "post_count": 2956}]}
    before = copy.deepcopy(body)
    entries = normalize_trends(body, "26062", SEEN)
    assert body == before  # never mutated
    assert [(e.rank, e.name, e.volume) for e in entries] == [(1, "Europe", 232408), (2, "#AI", None),
                                                             (3, "Isak", 2956)]
    assert entries[0].location == "WOEID 26062" == place_name(26062) and place_name(44418) == "London"
    with pytest.raises(MalformedPage, match="Not Found"):
        normalize_trends({"errors": [{"title": "Not Found", "detail": "no trends here"}]}, "1", SEEN)
    with pytest.raises(MalformedPage):
        normalize_trends({"data": {"trend_name": "x"}}, "1", SEEN)


def test_trends_pages_in_the_raw_archive_import_as_no_posts() -> None:
    x_page = {"data": [{"trend_name": "#StandWithIssa", "tweet_count": 12}]}
    mastodon_page = {"instance": "mastodon.social", "tags": [{"name": "caturday", "history": []}]}
    assert registry.record_kinds()[1].name == "x-trends"
    for body, name in ((x_page, "x-trends"), (mastodon_page, "mastodon-trends")):
        kind = next(k for k in registry.record_kinds() if k.matches(body))
        assert kind.name == name and kind.rows is not None and kind.rows(body, "2021-02-07T16:30:00.000Z").posts == ()


# --- Mastodon trends -------------------------------------------------------------------------------------------


def test_a_real_trending_tags_answer_normalizes_in_rank_with_todays_uses() -> None:
    (answer,) = [i for i in cassette("test_entity_tag.yaml") if i["request"]["uri"].endswith("/api/v1/trends/tags")]
    tags = json.loads(answer["response"]["body"]["string"])
    body = {"instance": "mastodon.social", "tags": tags}
    before = copy.deepcopy(body)
    entries = normalize_trending_tags(body, "mastodon.social", SEEN)
    assert body == before
    assert [e.name for e in entries] == [f"#{t['name']}" for t in tags]
    # the volume is the uses on the newest day of the tag's history
    assert entries[0].name == "#caturday" and entries[0].rank == 1 and entries[0].volume == 806
    assert {(e.platform, e.location, e.woeid) for e in entries} == {("mastodon", "mastodon.social", None)}


def test_the_simulated_tag_entities_have_the_real_ones_fields(world) -> None:
    (answer,) = [i for i in cassette("test_entity_tag.yaml") if i["request"]["uri"].endswith("/api/v1/trends/tags")]
    real = json.loads(answer["response"]["body"]["string"])[0]
    server, _, _ = world
    served = requests.get(f"{instance_urls(server, ['mastodon.social'])[0]}/api/v1/trends/tags", timeout=10,
                          params={"limit": "20"}).json()
    assert 10 < len(served) <= 20
    # anonymous answers leave out what only a signed-in user sees (following, featuring)
    assert set(served[0]) == set(real) - {"following", "featuring"}
    assert set(served[0]["history"][0]) == set(real["history"][0]) == {"day", "accounts", "uses"}
    assert all(isinstance(value, str) for day in served[0]["history"] for value in day.values())
    assert len(served[0]["history"]) == len(real["history"]) == 7


def test_mastodon_trends_come_through_mastodon_py_from_each_instance(world) -> None:
    server, _, clock = world
    config = MastodonConfig(instances=tuple(instance_urls(server, INSTANCES)), timeout=5.0)
    source = MastodonSource(config, clock)
    campaign = campaign_for(server.storm, sources=("mastodon",))
    assert source.trend_locations(campaign) == list(INSTANCES) and source.trends_cost == 0.0
    page = source.trends("standwithissa", "kolektiva.social")
    source.close()
    assert (page.endpoint, page.query, page.cursor.query) == ("trends", "kolektiva.social", "trends kolektiva.social")
    # the instance's everyday tags, and the campaign's, trending half an hour into the storm
    assert page.body["instance"] == "kolektiva.social" and 15 < len(page.body["tags"]) <= 20
    assert {"StandWithIssa", "DropTheCharges"} <= {tag["name"] for tag in page.body["tags"]}
    assert any(r.path == "/i/kolektiva.social/api/v1/trends/tags" and r.params.get("limit") == "20"
               for r in server.requests())
    entries = registry.normalize_trends(page)
    assert [e.rank for e in entries] == list(range(1, len(page.body["tags"]) + 1))


# --- the targets' posts ----------------------------------------------------------------------------------------


def test_the_targets_become_as_few_from_queries_as_fit() -> None:
    assert target_queries(("antonioguterres", "vonderleyen", "not.an.x.handle", "user@mastodon.social"), 512) == [
        "(from:antonioguterres OR from:vonderleyen)"]
    assert target_queries(("antonioguterres", "vonderleyen"), 30) == ["from:antonioguterres", "from:vonderleyen"]
    assert target_queries((), 512) == []


def test_x_targets_are_swept_like_a_search_from_the_storm_start(world) -> None:
    server, _, clock = world
    clock.set(T0 + timedelta(hours=3))
    source = x_source(server, clock)
    campaign = campaign_for(server.storm, name="standwithissa~targets")
    (query,) = source.target_queries(campaign)
    cursor = source.first_target_cursor(campaign, query, clock.now())
    assert cursor.since == T0 and cursor.campaign == "standwithissa~targets"
    pages = list(source.target_posts(cursor, clock.now()))
    source.close()
    assert {p.endpoint for p in pages} == {"targets"} and pages[-1].cursor.pending is None
    ids = [post.id for page in pages for post in registry.normalize_page(page).posts]
    expected = [p.native_id for p in server.storm.posts if p.platform == "x" and p.ms >= T0.timestamp() * 1000
                and server.storm.users[p.author].role == "target" and p.ms < clock.now().timestamp() * 1000]
    assert sorted(ids) == sorted(expected) and len(ids) == 2


def test_a_mastodon_targets_timeline_is_read_at_its_home_instance_by_min_id(world) -> None:
    server, mastodon, clock = world
    clock.set(T0 + timedelta(hours=3))
    target = next(u for u in server.storm.users if u.role == "target" and u.platform == "mastodon")
    account = f"{target.username}@{mastodon.home_of(target)}"
    config = MastodonConfig(instances=tuple(instance_urls(server, INSTANCES)), timeout=5.0, page_size=40)
    source = MastodonSource(config, clock)
    campaign = campaign_for(server.storm, targets_mastodon=(account,))
    (query,) = source.target_queries(campaign)
    pages = list(source.target_posts(source.first_target_cursor(campaign, query, clock.now()), clock.now()))
    assert [len(p.body["statuses"]) for p in pages] == [1, 0] and pages[0].body["account"] == account
    (post,) = registry.normalize_page(pages[0]).posts
    assert post.author_uid == f"mastodon:{account.lower()}" and "on our agenda" in post.text
    lookups = [r for r in server.requests() if r.path.endswith("/api/v1/accounts/lookup")]
    assert len(lookups) == 1 and lookups[0].path.startswith(f"/i/{mastodon.home_of(target)}/")
    # the id is remembered: a second sweep asks for the timeline only
    list(source.target_posts(pages[-1].cursor, clock.now()))
    assert len([r for r in server.requests() if r.path.endswith("/api/v1/accounts/lookup")]) == 1
    with pytest.raises(SourceError, match="404"):
        list(source.target_posts(Cursor("c", "mastodon", "nobody@mastodon.social"), clock.now()))
    source.close()


def test_a_bluesky_targets_author_feed_is_read_without_login_and_without_reposts(world, storm: Storm) -> None:
    server, _, clock = world
    clock.set(T0 + timedelta(hours=3))
    source = BlueskySource(bluesky_config(server.url), clock)
    campaign = campaign_for(storm, targets_bluesky=("antonioguterres.bsky.social",))
    (query,) = source.target_queries(campaign)
    pages = list(source.target_posts(source.first_target_cursor(campaign, query, clock.now()), clock.now()))
    source.close()
    (post,) = [p for page in pages for p in registry.normalize_page(page).posts]
    assert post.kind == "quote" and post.ref_uid is not None and pages[-1].cursor.position is not None
    assert source.config.credentials() is None  # no login: author feeds are public
    # an ordinary reposter's feed: the reposts (items with a reason) are not the author's posts
    reposter = next(p for p in storm.posts if p.platform == "bluesky" and p.kind == "repost")
    handle = BlueskyNetwork(storm).handle(storm.users[reposter.author])
    body = requests.get(f"{server.url}/xrpc/app.bsky.feed.getAuthorFeed", params={"actor": handle, "limit": "100"},
                        timeout=10).json()
    reasons = [item for item in body["feed"] if "reason" in item]
    assert reasons and reasons[0]["reason"]["$type"] == "app.bsky.feed.defs#reasonRepost"
    before = copy.deepcopy(body)
    batch = normalize_author_feed(body, "2021-02-07T19:00:00.000Z")
    assert body == before and len(batch.posts) == len(body["feed"]) - len(reasons)
    assert {p.author_uid for p in batch.posts} <= {f"bluesky:{BlueskyNetwork(storm).did(storm.users[reposter.author])}"}


def test_pages_of_each_kind_go_to_their_normalizer() -> None:
    page = RawPage(source="mastodon", endpoint="targets", url="", retrieved_at=SEEN,
                   body={"instance": "mastodon.social", "account": "a@mastodon.social", "statuses": []},
                   cursor=Cursor("c", "mastodon", "a@mastodon.social"))
    assert registry.normalize_page(page).posts == ()
    with pytest.raises(MalformedPage):
        registry.normalize_trends(dataclasses.replace(page, source="bluesky", endpoint="trends"))
