"""The schedule: storm_interval inside the window, interval outside, a poll at the start, rate-limit back-off.

Fire times are computed from the storm clock, so the trigger and the back-off are checked on a storm clock whose
wall time moves only when the test moves it, through APScheduler's own jobs and trigger API; one short test runs
the real background scheduler.
"""

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
from stormwatch.times import Clock, from_epoch

from .conftest import T0, TOKEN, clock_section, write_config
from .simulator_support import SEARCH_REPOSTS

SEARCH = "/2/tweets/search/recent"
JOB = "standwithissa/x"


def wall(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class ManualWall:
    """Wall time (epoch seconds) that moves only when the test says so: a storm clock's `wall`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> datetime:
        """Move wall time forward and return it as a datetime."""
        self.seconds += seconds
        return wall(self.seconds)


def campaign_for(tmp_path: Path, clock: Clock):
    return load_config(write_config(tmp_path, "http://127.0.0.1:9", top_extra=clock_section(clock))).campaigns[0]


def test_trigger_intervals_window_start_and_backoff(tmp_path: Path) -> None:
    anchor_wall = 1_000_000.0
    # storm time runs 60x: a storm minute is a wall second; the storm starts 10 storm minutes after the anchor
    clock = Clock(speed=60.0, anchor=T0 - timedelta(minutes=10), anchor_wall=anchor_wall, wall=ManualWall(anchor_wall))
    campaign = campaign_for(tmp_path, clock)
    blocked: list[float | None] = [None]
    trigger = StormTrigger(campaign, clock, lambda: blocked[0])
    now = wall(anchor_wall)
    assert trigger.get_next_fire_time(None, now) == now
    # outside the window: every 5 storm minutes = 5 wall seconds (the storm clock stands still 10 minutes early)
    start_wall = clock.wall_time(T0)
    previous = wall(start_wall - 8)
    assert trigger.get_next_fire_time(previous, previous) == wall(start_wall - 3)
    # the next interval would jump past the announced start: fire exactly at the start instead
    previous = wall(start_wall - 3)
    assert trigger.get_next_fire_time(previous, previous) == wall(start_wall)
    # a rate-limit reset later than the next poll wins
    blocked[0] = start_wall + 30
    assert trigger.get_next_fire_time(previous, previous) == wall(start_wall + 30)


def test_trigger_uses_storm_interval_inside_the_window(tmp_path: Path) -> None:
    manual = ManualWall(1_000_000.0)
    clock = Clock(speed=60.0, anchor=T0 + timedelta(minutes=5), anchor_wall=manual(), wall=manual)
    campaign = campaign_for(tmp_path, clock)
    trigger = StormTrigger(campaign, clock, lambda: None)
    previous = wall(manual())
    assert trigger.get_next_fire_time(previous, previous) == previous + timedelta(seconds=1)


@pytest.fixture
def manual_storm_platform(small_storm):
    """The simulated platform on a 120x storm clock (a storm minute is half a wall second) 10 minutes into the
    storm, whose wall time moves only by hand."""
    manual = ManualWall(1_000_000.0)
    clock = Clock(speed=120.0, anchor=T0 + timedelta(minutes=10), anchor_wall=manual(), wall=manual)
    with SimulatedPlatform(small_storm, clock, token=TOKEN, faults=Faults(), search_reposts=SEARCH_REPOSTS) as server:
        yield server, clock, manual


def paused_schedule(collector: Collector) -> ScheduledCollector:
    """The collector's jobs on a started but paused scheduler: APScheduler's real jobs and triggers, nothing runs
    by itself (the test runs a job by calling it, as the scheduler's worker would)."""
    scheduled = ScheduledCollector(collector)
    scheduled.add_jobs()
    scheduled.scheduler.start(paused=True)
    return scheduled


def test_a_rate_limited_job_waits_for_the_reset_then_polls_at_the_storm_interval(
        tmp_path: Path, manual_storm_platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    server, clock, manual = manual_storm_platform
    server.faults.update(rate_limit_every=1, rate_limit_reset_seconds=240, only_paths=(SEARCH,))
    config = load_config(write_config(tmp_path, server.url))
    collector = Collector(config, clock=clock)
    scheduled = paused_schedule(collector)
    try:
        job = scheduled.scheduler.get_job(JOB)
        job.func(*job.args)  # the job's run: its first search is refused
        with Store.open(config.storage.database) as store:
            (refused,) = store.last_runs("standwithissa", "x")
        assert refused.status == "rate_limited" and refused.rate_limit_reset is not None
        assert refused.rate_limit_reset >= refused.started_at + timedelta(seconds=239)
        reset = from_epoch(clock.wall_time(refused.rate_limit_reset))
        # The job is moved to the reset, and until then every fire time the trigger gives is the reset.
        assert scheduled.next_runs()[JOB] == reset
        now = wall(manual())
        assert job.trigger.get_next_fire_time(now, now) == reset
        now = manual.advance(clock.wall_seconds(timedelta(minutes=3)))
        assert now < reset and job.trigger.get_next_fire_time(now, now) == reset
        # A collector started afresh (a restart) holds the job back too: the back-off is read from the store.
        restarted = paused_schedule(Collector(config, clock=clock))
        assert restarted.scheduler.get_job(JOB).trigger.get_next_fire_time(now, now) == reset
        restarted.stop()
        # Past the reset it polls at the storm interval again: a storm minute, half a wall second.
        now = manual.advance(clock.wall_seconds(timedelta(minutes=2)))
        assert now > reset
        assert job.trigger.get_next_fire_time(now, now) == now + timedelta(seconds=0.5)
        server.faults.update(rate_limit_every=0)
        job.func(*job.args)
    finally:
        scheduled.stop()
        collector.close()
    searches = [r for r in server.requests() if r.path == SEARCH]
    limited = [r for r in searches if r.status == 429]
    assert limited, "the fault must have fired"
    for refusal in limited:
        reset_storm = refusal.storm_time + timedelta(seconds=240)
        early = [r for r in searches if refusal.storm_time < r.storm_time < reset_storm - timedelta(seconds=2)]
        assert early == [], f"polled during the back-off after {refusal.storm_time}"
    with Store.open(config.storage.database) as store:
        runs = store.last_runs("standwithissa", limit=100)
        assert [r.status for r in runs][1:] == ["rate_limited"] and runs[0].status in ("ok", "partial")
        assert store.count_campaign_posts("standwithissa") > 0


def test_the_background_scheduler_runs_each_job_at_once_and_stop_waits_for_it(
        tmp_path: Path, small_storm, monkeypatch: pytest.MonkeyPatch) -> None:
    # What only the real scheduler shows: it calls the trigger and the job in its own threads as soon as it
    # starts, and stopping it leaves no run open. (Waits for the first run, a fraction of a second.)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    clock = Clock(speed=120.0, anchor=T0 + timedelta(minutes=10), anchor_wall=time.time())
    with SimulatedPlatform(small_storm, clock, token=TOKEN, faults=Faults(), search_reposts=SEARCH_REPOSTS) as server:
        config = load_config(write_config(tmp_path, server.url))
        collector = Collector(config, clock=clock)
        scheduled = ScheduledCollector(collector)
        scheduled.start()
        try:
            deadline = time.monotonic() + 30
            while not _finished_runs(config) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            scheduled.stop()
            collector.close()
    with Store.open(config.storage.database) as store:
        runs = store.last_runs("standwithissa", limit=100)
        assert runs and all(r.status != "running" for r in runs)
        assert runs[-1].status in ("ok", "partial") and store.count_campaign_posts("standwithissa") > 0


def _finished_runs(config) -> int:
    with Store.open(config.storage.database) as store:
        return sum(r.status != "running" for r in store.last_runs("standwithissa", limit=100))


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
