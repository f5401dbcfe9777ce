"""The Bluesky source against the simulated XRPC service and Jetstream: search, lookups, the live feed.

The source runs its real clients (the atproto SDK over HTTP, websockets for Jetstream) against the simulator
on local ports; nothing here reaches the internet.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest

from stormwatch.errors import CredentialsError, MalformedPage, RateLimited, SourceError
from stormwatch.models import Cursor, RawPage
from stormwatch.normalize.bluesky import normalize_jetstream, normalize_page
from stormwatch.simulator.bluesky import mount_bluesky
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.host import Faults
from stormwatch.simulator.jetstream import JetstreamServer
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.sources.bluesky import (
    JETSTREAM_REWIND_US,
    BlueskySource,
    event_has_tag,
    tag_filter,
)

from . import bluesky_support
from .bluesky_support import (
    APP_PASSWORD,
    HANDLE,
    HANDLE_ENV,
    PASSWORD_ENV,
    SEARCH_PATH,
    STORM_END,
    bluesky_config,
    micros,
    truth_uris,
)
from .conftest import HASHTAGS, T0, sample_path
from .port_support import refused_port
from .simulator_support import SEARCH_REPOSTS

# Fixtures the tests take by name, shared with the other Bluesky test modules.
storm = bluesky_support.storm
network = bluesky_support.network
campaign = bluesky_support.campaign
logged_in = bluesky_support.logged_in
service = bluesky_support.service


def test_search_pages_match_the_searchposts_lexicon(service, network, campaign, logged_in) -> None:
    lexicon = json.loads(sample_path("bluesky", "lexicon_app.bsky.feed.searchPosts.json").read_text(encoding="utf-8"))
    main = lexicon["defs"]["main"]
    parameters, output = main["parameters"]["properties"], main["output"]["schema"]
    platform, _, clock = service
    source = BlueskySource(bluesky_config(platform.url), clock)
    cursor = source.first_cursor(campaign, "#StandWithIssa", clock.now())
    page = next(source.search(cursor, clock.now()))
    source.close()
    assert set(main["output"]["schema"]["required"]) <= set(page.body)
    assert set(page.body) <= set(output["properties"])
    assert isinstance(page.body["posts"], list) and page.body["posts"]
    assert isinstance(page.body["cursor"], str) and isinstance(page.body["hitsTotal"], int)
    (request,) = [r for r in platform.requests() if r.path == SEARCH_PATH]
    assert set(request.params) <= set(parameters)  # every parameter the source sends is in the lexicon
    assert int(request.params["limit"]) == parameters["limit"]["maximum"]
    assert request.params["sort"] in parameters["sort"]["knownValues"]
    assert parameters["tag"]["type"] == "array"
    batch = normalize_page(page.body, "2021-02-07T16:30:00.000Z")
    assert batch.errors == () and len(batch.posts) == len(page.body["posts"])
    assert all("standwithissa" in post.tags for post in batch.posts)


def test_event_has_tag_reads_facets_tags_array_and_text() -> None:
    wanted = frozenset({"standwithissa"})

    def event(record: dict) -> dict:
        return {"did": "did:plc:x", "time_us": 1, "kind": "commit",
                "commit": {"operation": "create", "collection": "app.bsky.feed.post", "rkey": "3k", "record": record}}

    facet = {"index": {"byteStart": 0, "byteEnd": 14},
             "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "StandWithIssa"}]}
    assert event_has_tag(event({"text": "#StandWithIssa", "facets": [facet]}), wanted)
    assert event_has_tag(event({"text": "no tag in the text", "tags": ["STANDWITHISSA"]}), wanted)
    assert event_has_tag(event({"text": "Solidarité ✊ #standwithissa!"}), wanted)  # an app that made no facets
    assert not event_has_tag(event({"text": "#StandWithIssaAmro is another tag"}), wanted)
    assert not event_has_tag(event({"text": "email me: a#standwithissa"}), wanted)
    assert not event_has_tag({"did": "did:plc:x", "time_us": 2, "kind": "identity", "identity": {}}, wanted)
    assert tag_filter(["#StandWithIssa"])(event({"text": "#standwithISSA"}))


# ------------------------------------------------------------------------------ Jetstream


@pytest.mark.slow  # plays the storm through Jetstream
def test_jetstream_stream_delivers_the_truth_resuming_after_a_drop(storm, network, caplog) -> None:
    clock = ManualClock(T0 + timedelta(minutes=20))
    since = storm.spec.window_start
    received: list[tuple[list[dict], int]] = []
    handed_over = threading.Condition()

    def on_events(events: list[dict], time_us: int) -> None:
        with handed_over:
            received.append((events, time_us))
            handed_over.notify_all()

    def position() -> int:
        return received[-1][1] if received else 0

    def wait_for(time_us: int) -> None:
        with handed_over:  # woken by each hand-over; the timeout only bounds a failure
            assert handed_over.wait_for(lambda: position() >= time_us, timeout=10), "never handed over"
            assert position() == time_us

    caplog.set_level(logging.INFO)
    with JetstreamServer(storm, clock, network=network) as server:
        source = BlueskySource(bluesky_config(jetstream_url=server.url), clock)
        stop = threading.Event()
        worker = threading.Thread(target=source.stream, args=(micros(since), stop, on_events),
                                  kwargs={"wanted": tag_filter(HASHTAGS), "batch_seconds": 0.1})
        worker.start()
        try:
            last_before = server.last_time_before(micros(clock.now()), ("app.bsky.feed.post",))
            assert last_before is not None
            wait_for(last_before)
            assert server.drop_connections() == 1
            clock.set(T0 + timedelta(minutes=50))
            wait_for(server.last_time_before(micros(clock.now()), ("app.bsky.feed.post",)))  # type: ignore[arg-type]
        finally:
            stop.set()
            worker.join(timeout=1.5)  # the stream returns within about a second of `stop`
        assert not worker.is_alive()
        source.close()
        first, second = server.connections()[:2]
    # Resumed from the last cursor handed over, a few seconds back, as Jetstream advises.
    assert first.cursor == micros(since) - JETSTREAM_REWIND_US
    assert second.cursor == last_before - JETSTREAM_REWIND_US
    assert first.collections == second.collections == ("app.bsky.feed.post",)
    assert any(r.levelno == logging.WARNING and "reconnecting" in r.getMessage() for r in caplog.records)

    positions = [time_us for _, time_us in received]
    assert positions == sorted(positions)
    assert all(e["time_us"] <= time_us for events, time_us in received for e in events)
    events = [e for batch, _ in received for e in batch]
    assert len({(e["time_us"], e["did"]) for e in events}) == len(events)  # replays after the rewind: once
    collected = normalize_jetstream({"events": events}, "2021-02-07T16:50:00.000Z")
    assert collected.errors == ()
    assert {p.id for p in collected.posts} == truth_uris(storm, network, since, T0 + timedelta(minutes=50))


class _Warnings(logging.Handler):
    """The warnings logged, and an event set when the `count`th arrives (from the stream's thread)."""

    def __init__(self, count: int) -> None:
        super().__init__(logging.WARNING)
        self.count, self.messages, self.arrived = count, [], threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if len(self.messages) >= self.count:
            self.arrived.set()


def test_stop_is_prompt_while_the_feed_is_unreachable() -> None:
    clock = ManualClock(T0)
    with refused_port() as port:
        source = BlueskySource(bluesky_config(jetstream_url=f"ws://127.0.0.1:{port}/subscribe"), clock)
        stop = threading.Event()
        calls: list[int] = []
        worker = threading.Thread(target=source.stream, args=(None, stop, lambda events, t: calls.append(t)))
        # The third refusal backs off 2 s: a stop that did not cut that wait short would outlast the join below.
        warnings = _Warnings(3)
        logger = logging.getLogger("stormwatch")
        logger.addHandler(warnings)
        try:
            worker.start()
            assert warnings.arrived.wait(timeout=30), warnings.messages
            stop.set()
            worker.join(timeout=1.2)
        finally:
            logger.removeHandler(warnings)
            stop.set()
            worker.join(timeout=5)
    assert not worker.is_alive()
    assert calls == []
    first = warnings.messages[0]
    assert f"cannot connect to 127.0.0.1:{port}" in first and "reconnecting in 0.5s" in first
    assert "reconnecting in 2.0s" in warnings.messages[2]


# ------------------------------------------------------------------------------ search


def sweep(source: BlueskySource, cursor: Cursor, clock: ManualClock, pages: list[RawPage]) -> tuple[Cursor, int]:
    """Run sweeps like the collector: store each page's cursor, resume from it after a failure."""
    failures = 0
    while True:
        try:
            for page in source.search(cursor, clock.now()):
                pages.append(page)
                cursor = page.cursor
            return cursor, failures
        except (SourceError, MalformedPage) as exc:
            assert getattr(exc, "transient", True), exc
            failures += 1
            assert failures < 20


@pytest.mark.slow  # sweeps a whole storm again and again
def test_search_backfill_equals_the_truth_without_gaps_across_interrupted_sweeps(
        service, storm, network, campaign, logged_in) -> None:
    platform, xrpc, clock = service
    xrpc.search_depth = 150  # deeper than this, the index stops paging: sweeps continue below the oldest post
    source = BlueskySource(bluesky_config(platform.url), clock)
    pages: list[RawPage] = []
    cursors = {q: source.first_cursor(campaign, q, clock.now()) for q in source.queries(campaign)}
    assert list(cursors) == ["#StandWithIssa", "#DropTheCharges", "#FreePoliticalPrisoners"]

    # The first page of a sweep is stored with the sweep still pending: the position waits for the last page.
    platform.faults.update(drop_every=2, only_paths=(SEARCH_PATH,))
    first = next(source.search(cursors["#StandWithIssa"], clock.now()))
    assert first.cursor.position is None and first.cursor.pending and first.cursor.pending["cursor"]
    interrupted = 0
    for query, cursor in cursors.items():
        cursors[query], failures = sweep(source, cursor, clock, pages)
        interrupted += failures
        assert cursors[query].pending is None and cursors[query].position
    assert interrupted >= 3
    platform.faults.update(drop_every=0, malformed_every=3)

    clock.set(STORM_END + timedelta(minutes=5))
    for query, cursor in cursors.items():
        cursors[query], _ = sweep(source, cursor, clock, pages)
    source.close()

    collected = {post.id for page in pages for post in normalize_page(page.body, "2021-02-07T19:05:00.000Z").posts}
    assert collected == truth_uris(storm, network, T0, STORM_END + timedelta(minutes=5))
    newest = max(post.created_at for page in pages for post in normalize_page(page.body, "x").posts)
    assert max(c.position for c in cursors.values()) == newest  # type: ignore[type-var]
    sweep_ends = {"2021-02-07T16:30:00.000Z", "2021-02-07T19:05:00.000Z"}
    walked_below = [r for r in platform.requests() if r.path == SEARCH_PATH and r.params["until"] not in sweep_ends]
    assert walked_below  # some sweeps paged past the search depth by narrowing `until`
    for page in pages:
        assert page.source == "bluesky" and page.endpoint == "search" and APP_PASSWORD not in page.url


def test_a_refused_search_cursor_resumes_below_the_oldest_post(service, storm, network, campaign, logged_in) -> None:
    platform, _, clock = service
    source = BlueskySource(bluesky_config(platform.url), clock)
    start = source.first_cursor(campaign, "#FreePoliticalPrisoners", clock.now())
    first = next(source.search(start, clock.now()))
    oldest = first.cursor.pending["oldest"]  # type: ignore[index]
    stale = first.cursor.advanced(pending={**first.cursor.pending, "cursor": "no-longer-valid"})  # type: ignore[dict-item]
    rest = list(source.search(stale, clock.now()))
    source.close()
    resumed = [r for r in platform.requests() if r.path == SEARCH_PATH][-len(rest):]
    assert "cursor" not in resumed[0].params and resumed[0].params["until"] > oldest
    assert rest[-1].cursor.pending is None
    collected = {p.id for page in [first, *rest] for p in normalize_page(page.body, "x").posts}
    wanted = {uri for uri in truth_uris(storm, network, T0, clock.now())
              if "freepoliticalprisoners" in network.record(network.post_by_uri(uri)).get("text", "").lower()}  # type: ignore[arg-type]
    assert collected == wanted


def test_search_refusals_are_explained_in_one_line(service, campaign, monkeypatch, caplog) -> None:
    platform, xrpc, clock = service
    caplog.set_level(logging.DEBUG)
    source = BlueskySource(bluesky_config(platform.url), clock)
    cursor = source.first_cursor(campaign, "#StandWithIssa", clock.now())

    with pytest.raises(CredentialsError) as missing:
        next(source.search(cursor, clock.now()))
    assert HANDLE_ENV in str(missing.value) and PASSWORD_ENV in str(missing.value)
    assert "Jetstream" in str(missing.value) and platform.requests() == []  # nothing was asked

    monkeypatch.setenv(HANDLE_ENV, HANDLE)
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password-1234")
    for _ in range(2):
        with pytest.raises(CredentialsError) as refused:
            next(source.search(cursor, clock.now()))
        assert "refused the login of organizer.bsky.social" in str(refused.value)
        assert "Invalid identifier or password" in str(refused.value) and "App passwords" in str(refused.value)
    assert xrpc.refused_logins == 1  # a refused login is not tried again (createSession allows 30 per 5 min)

    monkeypatch.setenv(PASSWORD_ENV, APP_PASSWORD)
    xrpc.refuse_search = True  # the public AppView answers searchPosts with an HTML 403
    with pytest.raises(SourceError) as forbidden:
        next(source.search(cursor, clock.now()))
    message = str(forbidden.value)
    assert message.startswith("bluesky: ") and "(403)" in message and "\n" not in message
    assert HANDLE_ENV in message and PASSWORD_ENV in message and "Jetstream" in message
    assert "<html" not in message and "administrative" not in message and not forbidden.value.transient

    xrpc.refuse_search = False
    pages = list(source.search(cursor, clock.now()))
    assert pages and pages[-1].cursor.pending is None
    xrpc.end_sessions()  # the service forgets the session: the source logs in again and carries on
    assert list(source.search(cursor, clock.now()))
    assert xrpc.logins == 2
    source.close()

    secrets = [APP_PASSWORD, "wrong-password-1234", *xrpc.tokens()]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in page.url for page in pages)
        for error in (missing.value, refused.value, forbidden.value):
            assert secret not in str(error) and secret not in repr(error)


def test_rate_limits_and_server_errors(storm, network, campaign, logged_in) -> None:
    clock = ManualClock(STORM_END)
    with SimulatedPlatform(storm, clock, faults=Faults(), search_reposts=SEARCH_REPOSTS) as platform:
        mount_bluesky(platform, accounts={HANDLE: APP_PASSWORD}, network=network, rate_limit=2)
        source = BlueskySource(bluesky_config(platform.url), clock)
        cursor = source.first_cursor(campaign, "#DropTheCharges", clock.now())
        pages = []
        with pytest.raises(RateLimited) as used_up:
            for page in source.search(cursor, clock.now()):
                pages.append(page)
        # Two pages used the window; the source stops before a request the service would refuse.
        assert len(pages) == 2 and pages[-1].rate_limit.remaining == 0 and not used_up.value.request_made
        assert used_up.value.reset_at == pages[-1].rate_limit.reset_at
        with pytest.raises(RateLimited) as limited:
            next(source.search(pages[-1].cursor, clock.now()))
        assert limited.value.request_made and limited.value.reset_at == used_up.value.reset_at
        assert str(limited.value) == "bluesky: rate limited (429) on app.bsky.feed.searchPosts"

        clock.advance(301)  # the window resets; injected faults take over
        platform.faults.update(server_error_every=1, only_paths=(SEARCH_PATH,))
        with pytest.raises(SourceError) as failed:
            next(source.search(pages[-1].cursor, clock.now()))
        assert failed.value.transient and "server error 500" in str(failed.value)
        platform.faults.update(server_error_every=0, rate_limit_every=1, rate_limit_reset_seconds=120)
        with pytest.raises(RateLimited) as injected:
            next(source.search(pages[-1].cursor, clock.now()))
        assert abs((injected.value.reset_at - clock.now()).total_seconds() - 120) <= 1
        source.close()


def test_profiles_in_batches_of_25_give_follower_counts(service, network) -> None:
    platform, _, clock = service
    users = list(network.users[:60])
    source = BlueskySource(bluesky_config(platform.url), clock)
    pages = source.profiles([network.did(u) for u in users] + ["did:plc:nobodyhere", network.did(users[0])])
    source.close()
    requests = [r for r in platform.requests() if r.path == "/xrpc/app.bsky.actor.getProfiles"]
    assert len(pages) == len(requests) == 3
    accounts = [a for page in pages for a in normalize_page(page.body, "2021-02-07T16:30:00.000Z").accounts]
    assert [a.id for a in accounts] == [network.did(u) for u in users]
    assert [a.followers_count for a in accounts] == [u.followers for u in users]
    assert [a.handle for a in accounts] == [network.handle(u) for u in users]
    assert all(page.endpoint == "profiles" and page.source == "bluesky" for page in pages)


def test_lookup_brings_counters_to_posts_that_came_through_jetstream(service, network) -> None:
    platform, _, clock = service
    posts = [p for p in network.posts if network.indexed_ms(p) <= clock.now().timestamp() * 1000][:40]
    source = BlueskySource(bluesky_config(platform.url), clock)
    pages = list(source.lookup_pages([network.uri(p) for p in posts]))
    source.close()
    assert len(pages) == 2 and all(page.endpoint == "lookup" for page in pages)
    rows = {row.id: row for page in pages for row in normalize_page(page.body, "2021-02-07T16:30:00.000Z").posts}
    assert [rows[network.uri(p)].like_count for p in posts] == [p.likes for p in posts]
    assert [rows[network.uri(p)].repost_count for p in posts] == [p.reposts for p in posts]
