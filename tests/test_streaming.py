"""stormwatch.streaming: the live feed (Bluesky's Jetstream, simulated) followed beside the scheduled jobs."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from stormwatch import metrics
from stormwatch.collector import Collector
from stormwatch.config import load_config
from stormwatch.simulator.bluesky import mount_bluesky
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.jetstream import JetstreamServer
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.store import Store
from stormwatch.streaming import followers, supervise

from .bluesky_support import eventually
from .conftest import T0, TOKEN, collected_ids, storm_spec, write_config
from .simulator_support import SEARCH_REPOSTS


@pytest.fixture(autouse=True)
def bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def test_only_sources_with_a_live_feed_are_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_path = write_config(tmp_path, "http://127.0.0.1:9",
                               campaign_extra='sources = ["x", "mastodon", "bluesky"]\n',
                               top_extra='[mastodon]\ninstances = ["http://127.0.0.1:9/i/mastodon.social"]\n')
    config = load_config(config_path)
    collector = Collector(config, clock=ManualClock(T0))
    try:
        # X's filtered stream (on by default) and Bluesky's Jetstream; Mastodon has no live feed here
        assert [f.source.name for f in followers(collector, config.campaigns)] == ["x", "bluesky"]
        # a source that cannot be built (its secret is missing) is left to its scheduled job, which says why
        monkeypatch.delenv("X_BEARER_TOKEN")
        fresh = Collector(config, clock=ManualClock(T0))
        assert [f.source.name for f in followers(fresh, config.campaigns)] == ["bluesky"]
        fresh.close()
    finally:
        collector.close()


@pytest.mark.slow  # plays a storm to a live follower
def test_bluesky_live_stream_backfill_and_profiles_give_the_ground_truth(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    spec = storm_spec(posts=1500, seed=9)
    storm = Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.5), ("bluesky", 0.5))}))
    clock = ManualClock(T0 + timedelta(hours=3, minutes=5))
    monkeypatch.setenv("BLUESKY_HANDLE", "organizer.bsky.social")
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "abcd-efgh-ijkl-mnop")
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        xrpc = mount_bluesky(server, accounts={"organizer.bsky.social": "abcd-efgh-ijkl-mnop"})
        jetstream = JetstreamServer(storm, clock, network=xrpc.network).start()
        try:
            bluesky = (f'[bluesky]\njetstream_url = "{jetstream.url}"\nappview_url = "{server.url}"\n'
                       f'service_url = "{server.url}"\n')
            config_path = write_config(tmp_path, server.url, campaign_extra='sources = ["bluesky"]\n',
                                       top_extra=bluesky)
            config = load_config(config_path)
            truth = storm.truth(T0, clock.now(), platform="bluesky", include_reposts=False)
            expected = {xrpc.network.uri_of_id(i) for i in truth.post_ids}
            # the live stream first: it replays the storm from its start, then keeps following
            assert collected_ids(config_path) == []  # the database exists before the follower writes to it
            stop = threading.Event()
            streaming = Collector(config, clock=clock, stop=stop)
            (stream,) = followers(streaming, config.campaigns)
            follower = threading.Thread(target=stream.follow, args=(stop,))
            follower.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and set(collected_ids(config_path)) != expected:
                time.sleep(0.1)
            stop.set()
            follower.join(timeout=10)
            streaming.close()
            assert not follower.is_alive()
            assert set(collected_ids(config_path)) == expected
            # then a scheduled run: search backfill finds nothing new, profiles and counters are filled in
            collector = Collector(config, clock=clock)
            (record,) = collector.run_once()
            collector.close()
        finally:
            jetstream.stop()
    assert record.status in ("ok", "partial"), record.error
    with Store.open(config.storage.database) as store:
        window = metrics.campaign_window(config.campaigns[0], T0, clock.now())
        figures = metrics.totals(store, "standwithissa", window).all
        unknown = store.authors_without_followers("standwithissa", "bluesky", 10)
    assert set(collected_ids(config_path)) == expected
    assert unknown == []
    assert (figures.posts, figures.contributors, figures.potential_reach, figures.engagement) == (
        truth.posts, truth.contributors, truth.potential_reach, truth.engagement)


@pytest.mark.slow  # plays a storm to a live follower
def test_new_bluesky_authors_are_looked_up_beside_the_stream_before_any_scheduled_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = storm_spec(posts=600, seed=11)
    storm = Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.5), ("bluesky", 0.5))}))
    clock = ManualClock(T0 + timedelta(hours=3, minutes=5))
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        xrpc = mount_bluesky(server)
        jetstream = JetstreamServer(storm, clock, network=xrpc.network).start()
        try:
            bluesky = f'[bluesky]\njetstream_url = "{jetstream.url}"\nappview_url = "{server.url}"\n'
            config_path = write_config(tmp_path, server.url, campaign_extra='sources = ["bluesky"]\n',
                                       top_extra=bluesky)
            config = load_config(config_path)
            stop = threading.Event()
            streaming = Collector(config, clock=clock, stop=stop)
            (stream,) = followers(streaming, config.campaigns)
            follower = threading.Thread(target=stream.follow, args=(stop,))
            follower.start()
            try:
                unknown: list[str] = ["not read yet"]
                deadline = time.monotonic() + 30
                with Store.open(config.storage.database) as store:
                    while time.monotonic() < deadline and (unknown or not collected_ids(config_path)):
                        time.sleep(0.2)
                        unknown = store.authors_without_followers("standwithissa", "bluesky", 10)
                    handles = [row[0] for row in store.conn.execute(
                        "SELECT handle FROM accounts WHERE platform = 'bluesky'")]
                    runs = store.last_runs("standwithissa")
            finally:
                stop.set()  # also when the test fails: no follower left reconnecting to a stopped server
                follower.join(timeout=10)
                streaming.close()
        finally:
            jetstream.stop()
    assert not follower.is_alive()
    assert collected_ids(config_path) and unknown == []  # every author known by profile, from the stream alone
    assert runs == []  # no scheduled run did it
    assert handles and not any(handle.startswith("did:") for handle in handles)


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@pytest.mark.slow
def test_a_live_feed_outlives_another_process_holding_the_write_lock_and_says_it_is_down_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    spec = storm_spec(posts=1200, seed=13)
    storm = Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.5), ("bluesky", 0.5))}))
    clock = ManualClock(T0 + timedelta(hours=1))
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    caplog.set_level(logging.INFO, logger="stormwatch")
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        xrpc = mount_bluesky(server)
        jetstream = JetstreamServer(storm, clock, network=xrpc.network).start()
        try:
            bluesky = f'[bluesky]\njetstream_url = "{jetstream.url}"\nappview_url = "{server.url}"\n'
            config_path = write_config(tmp_path, server.url, campaign_extra='sources = ["bluesky"]\n',
                                       top_extra=bluesky)
            config = load_config(config_path)
            (campaign,) = config.campaigns

            def truth(until: datetime) -> set[str]:
                posts = storm.truth(T0, until, platform="bluesky", include_reposts=False).post_ids
                return {xrpc.network.uri_of_id(i) for i in posts}

            def health() -> metrics.SourceHealth:
                return metrics.campaign_health(reader, campaign, clock.now()).sources[0]

            reader = Store.open(config.storage.database)
            stop = threading.Event()
            streaming = Collector(config, clock=clock, stop=stop)
            (stream,) = followers(streaming, config.campaigns)
            stream.busy_timeout = 1.0  # a write gives up on the lock after 1 s (30 s by default)
            thread = threading.Thread(target=supervise, args=(stream, stop))
            thread.start()
            locker = None
            try:
                eventually(lambda: set(collected_ids(config_path)) == truth(clock.now()), 30)
                assert health().live is not None and not health().failed_runs
                # an sqlite3 shell (a backup, Datasette) takes the write lock for longer than the busy timeout
                locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(config.storage.database), "6"],
                                          stdout=subprocess.PIPE, text=True)
                assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
                clock.set(T0 + timedelta(hours=3, minutes=5))  # the rest of the storm comes while it is locked
                eventually(lambda: health().failed_runs > 0, 10)
                down = health()
                assert locker.poll() is None  # still locked: status and the dashboard say so meanwhile
                assert down.last_run is not None and down.last_run.status == "failed"
                assert "locked" in (down.last_run.error or "") and down.live is not None and down.live.held > 0
                assert "live feed down" in down.recent_errors[0]
                assert locker.wait(timeout=20) == 0
                expected = truth(clock.now())
                eventually(lambda: set(collected_ids(config_path)) == expected, 60)
                eventually(lambda: not health().failed_runs, 10)
                back = health()
            finally:
                stop.set()
                thread.join(timeout=10)
                streaming.close()
                reader.close()
                if locker is not None and locker.poll() is None:
                    locker.kill()
        finally:
            jetstream.stop()
    assert not thread.is_alive()
    assert back.live is not None and back.live.failing_since is None
    stored = collected_ids(config_path)
    assert len(stored) == len(set(stored)) and set(stored) == expected  # every post once, none lost
    with Store.open(config.storage.database) as store:
        (rows,) = store.conn.execute("SELECT count(*) FROM posts WHERE platform = 'bluesky'").fetchone()
    # one line per failure, no traceback; the recovery said
    told = [r for r in caplog.records if r.name == "stormwatch.streaming" and "live feed" in r.getMessage()]
    failures = [r for r in told if "failure in a row" in r.getMessage()]
    assert failures and all(r.exc_info is None and "\n" not in r.getMessage() for r in told)
    assert any("storing again" in r.getMessage() for r in told)
    assert rows >= len(expected)
