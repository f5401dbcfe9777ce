"""Runs the collector on a schedule (APScheduler 3): one job per campaign and source. The only apscheduler importer."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from .alerts import AlertWatcher, OnAlert, start_watcher
from .collector import Collector
from .config import CampaignConfig
from .console import DISK_FULL, log_bug
from .errors import DatabaseDamaged, StormwatchError
from .normalize.text import one_line
from .store import Store
from .streaming import start_followers
from .times import Clock, from_epoch

log = logging.getLogger(__name__)
MAX_WORKERS = 4


class StormTrigger(BaseTrigger):
    """Fires every `storm_interval` inside the storm window and every `interval` outside it (in storm
    time, converted to wall time), fires at the window's start, and never before a rate-limit reset."""

    def __init__(self, campaign: CampaignConfig, clock: Clock, not_before: Callable[[], float | None]) -> None:
        self.campaign = campaign
        self.clock = clock
        self.not_before = not_before

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        if previous_fire_time is None:
            candidate = now
        else:
            interval = self.campaign.interval_at(self.clock.now())
            candidate = previous_fire_time + timedelta(seconds=self.clock.wall_seconds(interval))
            # The storm's first minutes matter most: poll at the announced start, not up to `interval` late.
            # (Compared as datetimes built the same way: float round-trips must not make the start
            # look still ahead once it has fired, or APScheduler would loop on the same time forever.)
            start = from_epoch(self.clock.wall_time(self.campaign.start))
            if previous_fire_time < start < candidate:
                candidate = start
        blocked_until = self.not_before()
        if blocked_until is not None and blocked_until > candidate.timestamp():
            candidate = from_epoch(blocked_until)
        return candidate

    def __str__(self) -> str:
        return f"storm[{self.campaign.storm_interval} in window, {self.campaign.interval} outside]"


class ScheduledCollector:
    """The collector's jobs on a background scheduler, with per-source rate-limit back-off."""

    def __init__(self, collector: Collector, campaign_name: str | None = None, *,
                 on_alert: OnAlert | None = None) -> None:
        self.collector = collector
        self.on_alert = on_alert
        self._alerts: AlertWatcher | None = None
        self.clock = collector.clock
        self.campaigns = collector.config.selected(campaign_name)
        self._backoff: dict[str, float] = {}
        self._streams: list[threading.Thread] = []
        self.damage: DatabaseDamaged | None = None  # set when the database turned out damaged: collecting stops
        self._lock = threading.Lock()
        jobs = sum(len(c.sources) for c in self.campaigns)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, jobs)))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def start(self) -> None:
        """Add one job per campaign and source (each runs at once) and start the scheduler."""
        self.add_jobs()
        self.scheduler.start()
        # A live feed is a long-running task next to the scheduled jobs, not a job of its own.
        self._streams = start_followers(self.collector, self.campaigns, self.collector.stop)
        # Alerts are decided and sent in threads of their own: a slow service never holds up a run.
        self._alerts = start_watcher(self.collector.config, self.campaigns, self.clock, self.on_alert)

    def add_jobs(self) -> None:
        """One job per campaign and source on the scheduler, held back where a rate limit has not reset yet."""
        with Store.open(self.collector.config.storage.database) as store:
            for campaign in self.campaigns:
                for source in campaign.sources:
                    reset = store.backoff_until(campaign.name, source)
                    if reset is not None and reset > self.clock.now():
                        self._backoff[_job_id(campaign, source)] = self.clock.wall_time(reset)
                        log.info("%s/%s: rate-limited until %s", campaign.name, source, reset.isoformat())
        for campaign in self.campaigns:
            for source in campaign.sources:
                job_id = _job_id(campaign, source)
                self.scheduler.add_job(
                    self._run_job, trigger=StormTrigger(campaign, self.clock, functools.partial(self._blocked, job_id)),
                    args=(campaign, source), id=job_id, name=job_id)

    def next_runs(self) -> dict[str, datetime | None]:
        """When each job runs next (wall time), by `campaign/source`."""
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    def stop(self) -> None:
        """Stop scheduling; waits for the runs in flight (they stop after the page being stored)."""
        self.collector.stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for stream in self._streams:
            stream.join(timeout=10)
        if self._alerts is not None:
            self._alerts.stop()

    def _blocked(self, job_id: str) -> float | None:
        with self._lock:
            until = self._backoff.get(job_id)
        return until if until is not None and until > self.clock.wall_time(self.clock.now()) else None

    def _run_job(self, campaign: CampaignConfig, source: str) -> None:
        job_id = _job_id(campaign, source)
        if self.collector.stop.is_set():
            return
        try:
            with Store.open(self.collector.config.storage.database) as store:
                record = self.collector.run(store, campaign, source)
        except DatabaseDamaged as exc:  # writing on into a damaged file would make it harder to recover
            log.error("%s: %s; collecting stops", job_id, one_line(str(exc)))
            self.damage = exc
            self.collector.stop.set()
            return
        except StormwatchError as exc:  # the store is locked, unreadable or the disk full: try again next time
            DISK_FULL.tell(exc, self.collector.config.storage.database.absolute().parent)
            log.error("%s: %s; tried again at its next run", job_id, one_line(str(exc)))
            return
        except Exception as exc:  # a bug: one line (not APScheduler's traceback with each run)
            log_bug(log, job_id, exc)
            return
        if self._alerts is not None:
            self._alerts.wake()  # what the run stored is told now (a target named for the first time), not later
        if record.status == "rate_limited" and record.rate_limit_reset:
            wall = self.clock.wall_time(record.rate_limit_reset)
            with self._lock:
                self._backoff[job_id] = wall
            if not self.collector.stop.is_set():
                self.scheduler.modify_job(job_id, next_run_time=from_epoch(wall))


def run_until_stopped(collector: Collector, campaign_name: str | None = None) -> None:
    """Collect on the schedule until the collector's stop event is set, then finish the runs in flight."""
    scheduled = ScheduledCollector(collector, campaign_name)
    scheduled.start()
    try:
        while not collector.stop.wait(0.5):
            pass
    finally:
        scheduled.stop()
    if scheduled.damage is not None:
        raise scheduled.damage


def _job_id(campaign: CampaignConfig, source: str) -> str:
    return f"{campaign.name}/{source}"
