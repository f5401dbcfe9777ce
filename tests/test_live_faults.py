"""A live feed and the scheduled runs on a full disk (a real small tmpfs) and a live feed whose Jetstream is gone:
down states said by `status`, one log line per failure, the disk-full advice once, nothing lost after."""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from stormwatch import metrics
from stormwatch.collector import Collector
from stormwatch.config import Config, load_config
from stormwatch.simulator.bluesky import BlueskyXrpc, mount_bluesky
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.jetstream import JetstreamServer
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.store import Store
from stormwatch.streaming import StreamFollower, followers, supervise
from stormwatch.times import Clock

from .bluesky_support import eventually
from .conftest import T0, TOKEN, clock_section, collected_ids, storm_spec, write_config
from .simulator_support import SEARCH_REPOSTS

ADVICE = "disk full: free space on"


@pytest.fixture(autouse=True)
def bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path/data` (where the test config keeps the database, the raw archive and the log) on a 4 MB tmpfs."""
    folder = tmp_path / "data"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"mounting a small tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """A file that takes every free byte of `folder`'s filesystem (deleting it frees the space)."""
    filler = folder / "filler"
    chunk = b"\0" * 16384
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    for size in (4096, 512, 1):  # the last bytes too
        with filler.open("ab", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                pass
    return filler


def bluesky_storm() -> Storm:
    spec = storm_spec(posts=1200, seed=13)
    return Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.5), ("bluesky", 0.5))}))


def bluesky_config(tmp_path: Path, server: SimulatedPlatform, jetstream: JetstreamServer) -> Path:
    bluesky = f'[bluesky]\njetstream_url = "{jetstream.url}"\nappview_url = "{server.url}"\n'
    return write_config(tmp_path, server.url, campaign_extra='sources = ["bluesky"]\n', top_extra=bluesky)


def truth(storm: Storm, xrpc: BlueskyXrpc, until: datetime) -> set[str]:
    posts = storm.truth(T0, until, platform="bluesky", include_reposts=False).post_ids
    return {xrpc.network.uri_of_id(i) for i in posts}


def feed_health(config: Config, clock: ManualClock) -> metrics.SourceHealth:
    with Store.open(config.storage.database) as reader:
        return metrics.campaign_health(reader, config.campaigns[0], clock.now()).sources[0]


def start_follower(config: Config, clock: ManualClock) -> tuple[StreamFollower, threading.Thread, threading.Event,
                                                                Collector]:
    stop = threading.Event()
    collector = Collector(config, clock=clock, stop=stop)
    (stream,) = followers(collector, config.campaigns)
    thread = threading.Thread(target=supervise, args=(stream, stop))
    thread.start()
    return stream, thread, stop, collector


def told(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("stormwatch")]


def assert_one_line_each(records: list[logging.LogRecord]) -> None:
    for record in records:
        assert record.exc_info is None and record.exc_text is None, record.getMessage()
        assert "\n" not in record.getMessage(), record.getMessage()


@pytest.mark.slow
def test_a_live_feed_on_a_full_disk_says_so_once_and_stores_every_post_once_when_space_is_freed(
        tmp_path: Path, small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    storm = bluesky_storm()
    clock = ManualClock(T0 + timedelta(hours=1))
    caplog.set_level(logging.INFO, logger="stormwatch")
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        xrpc = mount_bluesky(server)
        with JetstreamServer(storm, clock, network=xrpc.network) as jetstream:
            config_path = bluesky_config(tmp_path, server, jetstream)
            config = load_config(config_path)
            stream, thread, stop, collector = start_follower(config, clock)
            try:
                eventually(lambda: set(collected_ids(config_path)) == truth(storm, xrpc, clock.now()), 30)
                before = set(collected_ids(config_path))
                filler = fill(small_disk)
                clock.set(T0 + timedelta(hours=3, minutes=5))  # the rest of the storm comes on a full disk
                eventually(lambda: stream.health.failures >= 3, 30)
                down = feed_health(config, clock)
                assert down.live is not None and down.live.failing and down.live.held > 0
                assert "full" in (down.live.error or "") and "live feed down" in down.recent_errors[0]
                assert down.last_run is not None and down.last_run.status == "failed"
                filler.unlink()
                expected = truth(storm, xrpc, clock.now())
                eventually(lambda: set(collected_ids(config_path)) == expected, 90)
                eventually(lambda: not feed_health(config, clock).failed_runs, 10)
                back = feed_health(config, clock)
            finally:
                stop.set()
                thread.join(timeout=15)
                collector.close()
    assert not thread.is_alive()
    assert back.live is not None and not back.live.failing
    stored = collected_ids(config_path)
    assert len(stored) == len(set(stored)) and set(stored) == expected and before <= set(stored)
    with sqlite3.connect(config.storage.database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    records = told(caplog)
    assert_one_line_each(records)
    assert sum(r.getMessage().startswith(ADVICE) for r in records) == 1
    assert any("storing again" in r.getMessage() for r in records)


LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S")


@pytest.mark.slow
def test_scheduled_runs_on_a_full_disk_log_one_line_each_and_the_advice_once(tmp_path: Path,
                                                                              small_disk: Path) -> None:
    storm = Storm.build(storm_spec(posts=400, seed=17))
    # a storm minute a wall second: the 1-minute storm interval runs a job every second
    clock = Clock(speed=60.0, anchor=T0 + timedelta(minutes=30), anchor_wall=time.time())
    environment = {**os.environ, "X_BEARER_TOKEN": TOKEN}
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        config_path = write_config(tmp_path, server.url, top_extra=clock_section(clock))
        process = subprocess.Popen([sys.executable, "-m", "stormwatch", "collect", "--config", str(config_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        try:
            eventually(lambda: (small_disk / "test.db").exists() and len(collected_ids(config_path)) > 0, 60)
            stored = len(collected_ids(config_path))
            filler = fill(small_disk)  # the disk fills while the collector runs
            time.sleep(8)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        filler.unlink()
    lines = stderr.splitlines()
    failed = [line for line in lines if "standwithissa/x" in line and ("failed" in line or "tried again" in line)]
    assert len(failed) >= 2, stderr  # several scheduled runs met the full disk
    assert "Traceback" not in stderr and "Logging error" not in stderr
    assert sum(ADVICE in line for line in lines) == 1, stderr
    log_file_told = [line for line in lines if line.startswith("stormwatch: cannot write the log file")]
    assert len(log_file_told) <= 1
    assert all(LINE.match(line) for line in lines if line not in log_file_told), stderr
    assert len(collected_ids(config_path)) >= stored
    with sqlite3.connect(small_disk / "test.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.slow
def test_a_live_feed_that_cannot_reach_jetstream_is_down_until_it_connects_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    storm = bluesky_storm()
    clock = ManualClock(T0 + timedelta(hours=1))
    caplog.set_level(logging.INFO, logger="stormwatch")
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        xrpc = mount_bluesky(server)
        jetstream = JetstreamServer(storm, clock, network=xrpc.network).start()
        port = jetstream.port
        config_path = bluesky_config(tmp_path, server, jetstream)
        config = load_config(config_path)
        _stream, thread, stop, collector = start_follower(config, clock)
        again = None
        try:
            eventually(lambda: set(collected_ids(config_path)) == truth(storm, xrpc, clock.now()), 30)
            assert not feed_health(config, clock).failed_runs
            jetstream.stop()  # the network is gone: every attempt is refused
            clock.set(T0 + timedelta(hours=3, minutes=5))
            eventually(lambda: feed_health(config, clock).failed_runs > 0, 30)
            down = feed_health(config, clock)
            assert down.live is not None and "cannot reach Jetstream" in (down.live.error or "")
            assert "live feed down" in down.recent_errors[0] and down.failing_since is not None
            again = JetstreamServer(storm, clock, network=xrpc.network, port=port).start()
            expected = truth(storm, xrpc, clock.now())
            eventually(lambda: set(collected_ids(config_path)) == expected, 60)
            eventually(lambda: not feed_health(config, clock).failed_runs, 10)
            back = feed_health(config, clock)
        finally:
            stop.set()
            thread.join(timeout=15)
            collector.close()
            jetstream.stop()
            if again is not None:
                again.stop()
    assert back.live is not None and not back.live.failing
    stored = collected_ids(config_path)
    assert len(stored) == len(set(stored)) and set(stored) == expected
    records = told(caplog)
    assert_one_line_each(records)
    downs = [r for r in records if "live feed down: cannot reach Jetstream" in r.getMessage()]
    assert len(downs) == 1  # said once; each attempt is the source's own line
    assert any("connected again" in r.getMessage() for r in records)
