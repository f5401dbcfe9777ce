"""Bluesky: normalizing real samples, and the source against the simulated XRPC service and Jetstream.

The source runs its real clients (the atproto SDK over HTTP, websockets for Jetstream) against the simulator
on local ports; nothing here reaches the internet.
"""

from __future__ import annotations

import copy
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from stormwatch.config import BlueskyConfig, CampaignConfig
from stormwatch.errors import CredentialsError, MalformedPage, RateLimited, SourceError
from stormwatch.models import Cursor, RawPage
from stormwatch.normalize.bluesky import (
    normalize_jetstream,
    normalize_page,
    normalize_post_views,
    normalize_profiles,
)
from stormwatch.simulator.atproto import BlueskyNetwork
from stormwatch.simulator.bluesky import BlueskyXrpc, mount_bluesky
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.host import Faults
from stormwatch.simulator.jetstream import JetstreamServer, accept_key
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.sources.bluesky import (
    JETSTREAM_REWIND_US,
    BlueskySource,
    event_has_tag,
    tag_filter,
)

from .conftest import HASHTAGS, T0, sample_path, storm_spec

HANDLE = "organizer.bsky.social"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
HANDLE_ENV = "STORMWATCH_TEST_BSKY_HANDLE"
PASSWORD_ENV = "STORMWATCH_TEST_BSKY_APP_PASSWORD"
STORM_END = T0 + timedelta(hours=3)
SEARCH_PATH = "/xrpc/app.bsky.feed.searchPosts"


def micros(moment: datetime) -> int:
    """Epoch microseconds, as Jetstream cursors count."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.fixture(scope="module")
def storm() -> Storm:
    """A storm on three platforms; a fifth of it on Bluesky (about 600 campaign posts, reposts aside)."""
    return Storm.build(replace(storm_spec(8000), platforms=(("x", 0.5), ("mastodon", 0.3), ("bluesky", 0.2))))


@pytest.fixture(scope="module")
def network(storm: Storm) -> BlueskyNetwork:
    """The storm as Bluesky shows it."""
    return BlueskyNetwork(storm)


@pytest.fixture
def campaign() -> CampaignConfig:
    """The #StandWithIssa campaign over the storm's window."""
    return CampaignConfig(name="standwithissa", hashtags=HASHTAGS, accounts=(), targets=(), sources=("bluesky",),
                          start=T0, end=STORM_END, timezone=ZoneInfo("Asia/Hebron"), interval=timedelta(minutes=5),
                          storm_interval=timedelta(minutes=1), daily_budget_usd=None)


@pytest.fixture
def logged_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The organizer's handle and app password in the environment."""
    monkeypatch.setenv(HANDLE_ENV, HANDLE)
    monkeypatch.setenv(PASSWORD_ENV, APP_PASSWORD)


@pytest.fixture
def service(storm: Storm, network: BlueskyNetwork) -> Iterator[tuple[SimulatedPlatform, BlueskyXrpc, ManualClock]]:
    """The simulated platform with Bluesky's XRPC mounted, its clock half an hour into the storm."""
    clock = ManualClock(T0 + timedelta(minutes=30))
    with SimulatedPlatform(storm, clock, faults=Faults()) as platform:
        xrpc = mount_bluesky(platform, accounts={HANDLE: APP_PASSWORD}, network=network)
        yield platform, xrpc, clock


def bluesky_config(base_url: str = "http://127.0.0.1:9", jetstream_url: str = "ws://127.0.0.1:9/subscribe"
                   ) -> BlueskyConfig:
    """Source settings pointing every Bluesky service at the simulator."""
    return BlueskyConfig(jetstream_url=jetstream_url, appview_url=base_url, service_url=base_url,
                         handle_env=HANDLE_ENV, app_password_env=PASSWORD_ENV, timeout=5.0)


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `condition()` holds (for what another thread finishes), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def truth_uris(storm: Storm, network: BlueskyNetwork, since: datetime, until: datetime) -> set[str]:
    """The at-uris of the campaign's Bluesky posts in [since, until) (reposts are records, not posts)."""
    truth = storm.truth(since, until, platform="bluesky", include_reposts=False)
    return {network.uri_of_id(post_id) for post_id in truth.post_ids}  # type: ignore[misc]


# ------------------------------------------------------------------------------ real samples


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


# ------------------------------------------------------------------------------ normalizers


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


def test_jetstream_stream_delivers_the_truth_resuming_after_a_drop(storm, network, caplog) -> None:
    clock = ManualClock(T0 + timedelta(minutes=20))
    since = storm.spec.window_start
    received: list[tuple[list[dict], int]] = []
    lock = threading.Lock()

    def on_events(events: list[dict], time_us: int) -> None:
        with lock:
            received.append((events, time_us))

    def position() -> int:
        with lock:
            return received[-1][1] if received else 0

    def wait_for(time_us: int) -> None:
        deadline = time.monotonic() + 10
        while position() < time_us and time.monotonic() < deadline:
            time.sleep(0.02)
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
            stopped_at = time.monotonic()
            stop.set()
            worker.join(timeout=5)
        assert not worker.is_alive() and time.monotonic() - stopped_at < 1.5
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


def test_stop_is_prompt_while_the_feed_is_unreachable(caplog) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = ManualClock(T0)
    source = BlueskySource(bluesky_config(jetstream_url=f"ws://127.0.0.1:{port}/subscribe"), clock)
    stop = threading.Event()
    calls: list[int] = []
    worker = threading.Thread(target=source.stream, args=(None, stop, lambda events, t: calls.append(t)))
    with caplog.at_level(logging.WARNING):
        worker.start()
        time.sleep(0.8)
        stopped_at = time.monotonic()
        stop.set()
        worker.join(timeout=5)
    assert not worker.is_alive() and time.monotonic() - stopped_at < 1.2
    assert calls == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and f"cannot connect to 127.0.0.1:{port}" in warnings[0] and "reconnecting in 0.5s" in warnings[0]


def test_jetstream_server_speaks_rfc6455_and_filters_collections(storm, network) -> None:
    # The handshake example of RFC 6455 section 1.3.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    clock = ManualClock(T0 + timedelta(minutes=10))
    with JetstreamServer(storm, clock, network=network) as server:
        start = micros(T0)
        with connect(f"{server.url}?wantedCollections=app.bsky.feed.repost&cursor={start}") as ws:
            events = []
            while True:
                try:
                    events.append(json.loads(ws.recv(timeout=0.3)))
                except TimeoutError:
                    break
            assert ws.ping().wait(2)  # the server answers pings
            ws.close()
        eventually(lambda: server.connections()[0].closed)
        kinds = {e["kind"] for e in events}
        assert kinds == {"commit", "identity", "account"}  # identity and account events come whatever is wanted
        assert {e["commit"]["collection"] for e in events if e["kind"] == "commit"} == {"app.bsky.feed.repost"}
        times = [e["time_us"] for e in events]
        assert times == sorted(set(times)) and start <= times[0] and times[-1] < micros(clock.now())
        assert server.connections()[0].closed and server.connections()[0].events_sent == len(events)

        with connect(f"{server.url}?cursor={start}") as ws:
            first = json.loads(ws.recv(timeout=2))
            assert first["time_us"] >= start
            server.stop()
            with pytest.raises(ConnectionClosedOK):
                while True:
                    ws.recv(timeout=2)

    with JetstreamServer(storm, clock, network=network) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/subscribe?cursor=soon")
        assert connection.getresponse().status == 400
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/subscribe")
        assert connection.getresponse().status == 426


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
    with SimulatedPlatform(storm, clock, faults=Faults()) as platform:
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
