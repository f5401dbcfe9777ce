"""The Mastodon source: Mastodon.py over real HTTP against simulated instances, and what it relies on in real
recorded responses (pagination by Link headers and min_id)."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from stormwatch.config import MastodonConfig
from stormwatch.errors import MalformedPage, RateLimited, SourceError
from stormwatch.models import RawPage
from stormwatch.normalize.mastodon import normalize_timeline
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.host import Faults
from stormwatch.simulator.mastodon import InstanceSettings, instance_urls
from stormwatch.simulator.storm import Storm
from stormwatch.sources.mastodon import MastodonSource, base_url, instance_name, min_id_at, split_query
from tests import mastodon_support
from tests.conftest import HASHTAGS, T0
from tests.mastodon_support import (
    CHAOS,
    RETRIEVED,
    SOCIAL,
    TAG,
    TOKEN,
    Fediverse,
    campaign,
    cassette,
    collected_uids,
    expected_uids,
    fediverse,
    odd_instance,
    sweep,
    tag_responses,
    timeline_requests,
)
from tests.port_support import refused_port

# Fixtures the tests take by name, shared with the other Mastodon test modules.
storm = mastodon_support.storm
fedi = mastodon_support.fedi


# -------------------------------------------------------------------------- conformance: real cassettes


def test_recorded_pages_walk_by_their_link_headers_and_normalize_every_status() -> None:
    interactions = cassette("test_pagination_iterator.yaml")
    typed = {json.loads(i["response"]["body"]["string"])["uri"]: parse_qs(i["request"]["body"])["status"][0]
             for i in interactions if i["request"]["method"] == "POST"}
    pages = tag_responses("test_pagination_iterator.yaml")
    seen: dict[str, str] = {}
    for url, statuses, headers in pages:
        ids = [int(s["id"]) for s in statuses]
        assert ids == sorted(ids, reverse=True)  # newest first, always
        if not statuses:
            assert "link" not in headers  # Mastodon sends no Link header with an empty page
            continue
        links = {link["rel"]: link["url"] for link in requests.utils.parse_header_links(headers["link"][0])}
        # What the source relies on: prev's min_id is the page's newest id, next's max_id its oldest.
        assert parse_qs(urlsplit(links["prev"]).query)["min_id"] == [statuses[0]["id"]]
        assert parse_qs(urlsplit(links["next"]).query)["max_id"] == [statuses[-1]["id"]]
        assert parse_qs(urlsplit(links["next"]).query)["limit"] == parse_qs(urlsplit(url).query)["limit"]
        for post in normalize_timeline({"instance": "localhost:3000", "tag": "t", "statuses": statuses},
                                       RETRIEVED).posts:
            seen[post.id] = post.text
    assert seen == typed and len(seen) == 30  # every posted status, once, with the text its author typed


def test_recorded_newest_page_asked_by_min_id_is_empty() -> None:
    pages = tag_responses("test_pagination_iterator.yaml")
    newest = pages[0][1][0]["id"]
    after_newest = [statuses for url, statuses, _ in pages if parse_qs(urlsplit(url).query).get("min_id") == [newest]]
    assert after_newest and all(statuses == [] for statuses in after_newest)


# ---------------------------------------------------------------------------------------------- source


def test_instance_names_queries_and_first_cursor() -> None:
    for entry in ("mastodon.social", "https://mastodon.social", "https://Mastodon.Social/",
                  "http://127.0.0.1:8787/i/mastodon.social"):
        assert instance_name(entry) == SOCIAL
    assert base_url("mastodon.social") == "https://mastodon.social"
    assert base_url("http://127.0.0.1:8787/i/mastodon.social/") == "http://127.0.0.1:8787/i/mastodon.social"
    config = MastodonConfig(instances=("mastodon.social", "https://mastodon.social", "chaos.social"))
    source = MastodonSource(config, ManualClock(T0))
    queries = source.queries(campaign())
    assert queries == [f"{name}#{tag}" for name in (SOCIAL, CHAOS) for tag in HASHTAGS]
    assert split_query(queries[0]) == (SOCIAL, HASHTAGS[0]) and source.server_of(queries[-1]) == CHAOS
    during = source.first_cursor(campaign(), queries[0], T0 + timedelta(hours=1))
    assert during.position == min_id_at(T0) and during.since == T0
    early = source.first_cursor(campaign(), queries[0], T0 - timedelta(hours=1))
    assert early.since == T0 - timedelta(hours=1, minutes=1)  # before the storm: from a minute ago
    # The cursor is a min_id: just below every id minted at the start time.
    assert int(during.position) + 1 == int(T0.timestamp() * 1000) << 16


@pytest.mark.slow  # sweeps a whole storm
def test_full_sweep_over_two_instances_equals_the_truth(storm: Storm, fedi: Fediverse) -> None:
    source = fedi.source()
    now = fedi.clock.now()
    uids: list[str] = []
    for query in (q for q in source.queries(campaign()) if q.endswith(f"#{TAG}")):
        pages, last = sweep(source, source.first_cursor(campaign(), query, now), now)
        assert pages[-1].body["statuses"] == [] and last.position == pages[-2].cursor.position
        for page in pages:
            assert page.source == "mastodon" and page.endpoint == "timeline" and page.query == query
            assert page.rate_limit is not None and page.rate_limit.limit == 300
            assert page.url.startswith(instance_urls(fedi.platform, [query.split("#")[0]])[0])
            assert page.retrieved_at == now
        uids += collected_uids(pages)
    source.close()
    expected = expected_uids(storm, fedi.instances, TAG, T0, now)
    assert set(uids) == expected and len(expected) > 60
    assert len(uids) > len(expected)  # statuses on both instances came twice, and are one post each


def test_each_page_moves_the_cursor_to_its_newest_id(fedi: Fediverse) -> None:
    source = fedi.source(SOCIAL)
    query = f"{SOCIAL}#{TAG}"
    pages, _ = sweep(source, source.first_cursor(campaign(), query, fedi.clock.now()), fedi.clock.now())
    positions = [page.cursor.position for page in pages]
    assert len(pages) > 3
    for page in pages[:-1]:
        assert page.cursor.position == max(page.body["statuses"], key=lambda s: int(s["id"]))["id"]
        assert page.cursor.pending is None
    assert [int(p) for p in positions[:-1]] == sorted(int(p) for p in positions[:-1])
    # Each request asked for what comes right after the previous page.
    asked = [r.params["min_id"] for r in timeline_requests(fedi.platform)]
    assert asked[1:] == positions[:-1]


@pytest.mark.slow  # sweeps the storm twice
def test_resuming_fetches_only_what_is_new(storm: Storm) -> None:
    with fediverse(storm, {SOCIAL: InstanceSettings(), CHAOS: InstanceSettings()},
                   T0 + timedelta(minutes=6)) as world:
        check_resume(storm, world)


def check_resume(storm: Storm, fedi: Fediverse) -> None:
    """Sweep, let the storm go on, sweep again from the stored cursors: only the new statuses come."""
    source = fedi.source(page_size=10)
    queries = [f"{name}#{TAG}" for name in (SOCIAL, CHAOS)]
    cursors = {}
    for query in queries:
        _, cursors[query] = sweep(source, source.first_cursor(campaign(), query, fedi.clock.now()),
                                  fedi.clock.now())
    first_now = fedi.clock.now()
    fedi.platform.reset_observations()
    fedi.instances.reset_observations()
    later = fedi.clock.advance(20 * 60)

    uids: list[str] = []
    for query in queries:
        pages, _ = sweep(source, cursors[query], later)
        uids += collected_uids(pages)
    new = {name: [p for p in fedi.instances.tag_timeline(name, TAG) if p.ms >= first_now.timestamp() * 1000 + 1000]
           for name in (SOCIAL, CHAOS)}
    served = fedi.instances.served()
    assert sum(served.values()) == sum(len(posts) for posts in new.values()) > 10  # nothing fetched twice
    assert max(served.values()) == 1
    expected_requests = sum(math.ceil(len(posts) / 10) + 1 for posts in new.values())  # + one empty page each
    assert len(timeline_requests(fedi.platform)) == expected_requests
    assert set(uids) == (expected_uids(storm, fedi.instances, TAG, T0, later)
                         - expected_uids(storm, fedi.instances, TAG, T0, first_now))


@pytest.mark.slow  # sweeps a whole storm twice
def test_a_failure_mid_sweep_leaves_no_gap(storm: Storm) -> None:
    timeline = f"/i/{SOCIAL}/api/v1/timelines/tag/{TAG}"
    with fediverse(storm, {SOCIAL: InstanceSettings()}, T0 + timedelta(hours=1),
                           Faults(server_error_every=3, only_paths=(timeline,))) as world:
        source = world.source(page_size=10)
        cursor = source.first_cursor(campaign(), f"{SOCIAL}#{TAG}", world.clock.now())
        stored: list[RawPage] = []
        failures = 0
        while True:
            try:
                for page in source.search(cursor, world.clock.now()):
                    stored.append(page)  # the collector stores each page with its cursor
                    cursor = page.cursor
                break
            except SourceError as exc:
                assert exc.transient and "503" in str(exc)
                failures += 1
        assert failures >= 2
        uids = collected_uids(stored)
        assert len(uids) == len(set(uids))  # a failed request never makes a page come twice
        expected = {f"mastodon:{world.instances.uri_of(p)}" for p in world.instances.tag_timeline(SOCIAL, TAG)
                    if p.ms >= T0.timestamp() * 1000}
        assert set(uids) == expected


def test_rate_limit_raises_with_the_iso_reset(storm: Storm) -> None:
    timeline = f"/i/{SOCIAL}/api/v1/timelines/tag/{TAG}"
    with fediverse(storm, {SOCIAL: InstanceSettings()}, T0 + timedelta(hours=1, seconds=42),
                           Faults(rate_limit_every=1, only_paths=(timeline,))) as world:
        source = world.source()
        with pytest.raises(RateLimited) as caught:
            next(source.search(source.first_cursor(campaign(), f"{SOCIAL}#{TAG}", world.clock.now()),
                               world.clock.now()))
        assert caught.value.reset_at == datetime(2021, 2, 7, 17, 5, tzinfo=UTC)  # the window's end
        assert caught.value.request_made and str(caught.value).startswith(f"mastodon: {SOCIAL}: rate limited (429)")


def test_a_used_up_window_stops_before_the_refused_request(storm: Storm) -> None:
    with fediverse(storm, {SOCIAL: InstanceSettings(rate_limit=3)}, T0 + timedelta(hours=1)) as world:
        source = world.source(page_size=5)
        pages: list[RawPage] = []
        with pytest.raises(RateLimited) as caught:
            for page in source.search(source.first_cursor(campaign(), f"{SOCIAL}#{TAG}", world.clock.now()),
                                      world.clock.now()):
                pages.append(page)
        # Mastodon.py's instance check, then two pages: the window's 3 requests; no 429 was provoked.
        assert len(pages) == 2 and not caught.value.request_made
        assert caught.value.reset_at == datetime(2021, 2, 7, 17, 5, tzinfo=UTC)
        assert all(r.status == 200 for r in world.platform.requests())


# Mastodon.py warns that the instance's configuration puts tag timelines behind a login; the source's own
# error (checked here) says the same and what to do. Outside pytest the source filters that warning out.
@pytest.mark.filterwarnings("ignore:Timeline .* appears to be unavailable")
def test_instance_without_public_tag_timelines(storm: Storm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {SOCIAL: InstanceSettings(), CHAOS: InstanceSettings(public_tags=False, token=TOKEN)}
    with fediverse(storm, settings, T0 + timedelta(hours=1)) as world:
        query = f"{CHAOS}#{TAG}"
        anonymous = world.source()
        with pytest.raises(SourceError) as caught:
            list(anonymous.search(anonymous.first_cursor(campaign(), query, world.clock.now()), world.clock.now()))
        message = str(caught.value)
        assert message.startswith(f"mastodon: {CHAOS}: ") and "mastodon.access_token_env" in message
        assert not caught.value.transient

        wrong = world.source(token="not-" + TOKEN, token_env="MASTODON_TOKEN")
        with pytest.raises(SourceError) as refused:
            list(wrong.search(wrong.first_cursor(campaign(), query, world.clock.now()), world.clock.now()))
        assert "$MASTODON_TOKEN" in str(refused.value) and "not-" + TOKEN not in str(refused.value)

        signed_in = world.source(token=TOKEN, token_env="MASTODON_TOKEN")
        pages = list(signed_in.search(signed_in.first_cursor(campaign(), query, world.clock.now()), world.clock.now()))
        assert set(collected_uids(pages)) == {f"mastodon:{world.instances.uri_of(p)}"
                                             for p in world.instances.tag_timeline(CHAOS, TAG)
                                             if p.ms >= T0.timestamp() * 1000}
        assert all(TOKEN not in page.url and TOKEN not in json.dumps(page.body) for page in pages)
        for source in (anonymous, wrong, signed_in):
            source.close()
    assert TOKEN not in caplog.text


def test_unreachable_instance_is_a_transient_error_naming_it() -> None:
    with refused_port() as port:
        config = MastodonConfig(instances=(f"http://127.0.0.1:{port}/i/nowhere.social",), timeout=2.0)
        source = MastodonSource(config, ManualClock(T0), TOKEN)
        with pytest.raises(SourceError) as caught:
            list(source.search(source.first_cursor(campaign(), "nowhere.social#StandWithIssa", T0), T0))
    assert caught.value.transient
    assert str(caught.value).startswith("mastodon: nowhere.social: cannot reach http://127.0.0.1:")
    assert "connection refused" in str(caught.value) and TOKEN not in str(caught.value)


def test_unknown_instance_is_a_lasting_error_naming_it(fedi: Fediverse) -> None:
    config = MastodonConfig(instances=(f"{fedi.platform.url}/i/unknown.example",))
    source = MastodonSource(config, fedi.clock)
    with pytest.raises(SourceError) as caught:
        list(source.search(source.first_cursor(campaign(), f"unknown.example#{TAG}", fedi.clock.now()),
                           fedi.clock.now()))
    assert not caught.value.transient
    assert str(caught.value).startswith("mastodon: unknown.example: ") and "404" in str(caught.value)


@pytest.mark.parametrize(("fault", "error", "words"), [
    ("server_error_every", SourceError, "server error 503"),
    ("malformed_every", MalformedPage, "not valid JSON"),
    ("drop_every", SourceError, "dropped mid-response"),
])
def test_faults_surface_as_transient_errors(storm: Storm, fault: str, error: type[Exception], words: str) -> None:
    timeline = f"/i/{SOCIAL}/api/v1/timelines/tag/{TAG}"
    with fediverse(storm, {SOCIAL: InstanceSettings()}, T0 + timedelta(hours=1),
                           Faults(**{fault: 1}, only_paths=(timeline,))) as world:
        source = world.source(token=TOKEN)
        with pytest.raises(error) as caught:
            list(source.search(source.first_cursor(campaign(), f"{SOCIAL}#{TAG}", world.clock.now()),
                               world.clock.now()))
        assert type(caught.value) is error and words in str(caught.value)
        assert isinstance(caught.value, MalformedPage) or caught.value.transient
        assert str(caught.value).startswith(f"mastodon: {SOCIAL}: ") and TOKEN not in str(caught.value)
        assert Counter(r.fault for r in timeline_requests(world.platform)) == {fault.removesuffix("_every"): 1}


def test_a_server_that_ignores_min_id_is_not_walked_forever(fedi: Fediverse) -> None:
    newest = fedi.instances.tag_timeline(SOCIAL, TAG)[-3:][::-1]
    page = json.dumps([fedi.instances.status_json(SOCIAL, post) for post in newest])

    # A server answering every request with the same newest page, whatever min_id says.
    with odd_instance(lambda path: page if "/timelines/tag/" in path else "{}") as url:
        config = MastodonConfig(instances=(f"{url}/odd.example",))
        source = MastodonSource(config, fedi.clock)
        pages: list[RawPage] = []
        with pytest.raises(MalformedPage, match="did not move past min_id"):
            pages.extend(source.search(source.first_cursor(campaign(), f"odd.example#{TAG}", fedi.clock.now()),
                                       fedi.clock.now()))
        assert len(pages) == 1  # the first page was new; the same page again is not
