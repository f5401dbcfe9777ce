"""The schedule: storm_interval inside the window, interval outside, a poll at the start, rate-limit back-off."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stormwatch.collector import Collector
from stormwatch.config import load_config
from stormwatch.scheduler import ScheduledCollector, StormTrigger
from stormwatch.simulator.host import Faults
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.store import Store
from stormwatch.times import Clock

from .conftest import T0, TOKEN, clock_section, write_config


def wall(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def campaign_for(tmp_path: Path, clock: Clock):
    return load_config(write_config(tmp_path, "http://127.0.0.1:9", top_extra=clock_section(clock))).campaigns[0]


def test_trigger_intervals_window_start_and_backoff(tmp_path: Path) -> None:
    anchor_wall = 1_000_000.0
    # storm time runs 60x: a storm minute is a wall second; the storm starts 10 storm minutes after the anchor
    clock = Clock(speed=60.0, anchor=T0 - timedelta(minutes=10), anchor_wall=anchor_wall)
    campaign = campaign_for(tmp_path, clock)
    blocked: list[float | None] = [None]
    trigger = StormTrigger(campaign, clock, lambda: blocked[0])
    now = wall(anchor_wall)
    assert trigger.get_next_fire_time(None, now) == now
    # outside the window: every 5 storm minutes = 5 wall seconds (the clock is read live: pin it)
    frozen = Clock(speed=60.0, anchor=T0 - timedelta(minutes=10), anchor_wall=time.time())
    trigger = StormTrigger(campaign, frozen, lambda: blocked[0])
    start_wall = frozen.wall_time(T0)
    previous = wall(start_wall - 8)
    assert trigger.get_next_fire_time(previous, previous) == wall(start_wall - 3)
    # the next interval would jump past the announced start: fire exactly at the start instead
    previous = wall(start_wall - 3)
    assert trigger.get_next_fire_time(previous, previous) == wall(start_wall)
    # a rate-limit reset later than the next poll wins
    blocked[0] = start_wall + 30
    assert trigger.get_next_fire_time(previous, previous) == wall(start_wall + 30)


def test_trigger_uses_storm_interval_inside_the_window(tmp_path: Path) -> None:
    clock = Clock(speed=60.0, anchor=T0 + timedelta(minutes=5), anchor_wall=time.time())
    campaign = campaign_for(tmp_path, clock)
    trigger = StormTrigger(campaign, clock, lambda: None)
    previous = wall(time.time())
    assert trigger.get_next_fire_time(previous, previous) == previous + timedelta(seconds=1)


@pytest.fixture
def fast_storm_platform(small_storm):
    # 120x: a storm minute is half a wall second; start 10 minutes into the storm
    clock = Clock(speed=120.0, anchor=T0 + timedelta(minutes=10), anchor_wall=time.time())
    with SimulatedPlatform(small_storm, clock, token=TOKEN, faults=Faults()) as server:
        yield server, clock


def test_scheduled_collection_backs_off_until_the_rate_limit_resets(tmp_path: Path, fast_storm_platform,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    server, clock = fast_storm_platform
    server.faults.update(rate_limit_every=6, rate_limit_reset_seconds=240, only_paths=("/2/tweets/search/recent",))
    config = load_config(write_config(tmp_path, server.url))
    collector = Collector(config, clock=clock)
    scheduled = ScheduledCollector(collector)
    scheduled.start()
    try:
        time.sleep(6)
    finally:
        scheduled.stop()
        collector.close()
    searches = [r for r in server.requests() if r.path == "/2/tweets/search/recent"]
    limited = [r for r in searches if r.status == 429]
    assert limited, "the fault must have fired"
    for refusal in limited:
        reset = refusal.storm_time + timedelta(seconds=240)
        early = [r for r in searches if refusal.storm_time < r.storm_time < reset - timedelta(seconds=2)]
        assert early == [], f"polled during the back-off after {refusal.storm_time}"
    with Store.open(config.storage.database) as store:
        runs = store.last_runs("standwithissa", limit=100)
        assert any(r.status == "rate_limited" for r in runs)
        assert all(r.status != "running" for r in runs)
        # between back-offs it polls at the storm interval: more than one run happened after the first
        assert len(runs) >= 3
        assert store.count_campaign_posts("standwithissa") > 0


@pytest.mark.parametrize("speed", [1.0, 60.0, 1080.0, 1234.567])
def test_fire_times_always_move_forward_across_the_window_start(tmp_path: Path, speed: float) -> None:
    # a fractional wall anchor, as time.time() gives: float round-trips once made the start fire forever
    clock = Clock(speed=speed, anchor=T0 - timedelta(hours=1), anchor_wall=1_763_700_000.123456)
    campaign = campaign_for(tmp_path, clock)
    trigger = StormTrigger(campaign, clock, lambda: None)
    start = wall(clock.wall_time(T0))
    fire = start - timedelta(seconds=clock.wall_seconds(timedelta(minutes=7)))
    fired = []
    for _ in range(20):
        following = trigger.get_next_fire_time(fire, fire)
        assert following > fire
        fired.append(following)
        fire = following
    assert start in fired
