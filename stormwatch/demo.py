"""`stormwatch demo`: a seeded #StandWithIssa storm on the simulated platform, collected live, then reported."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import intel
from .alerts import AlertWatcher
from .collector import Collector
from .config import ALERT_URLS_ENV, CampaignConfig, Config, load_config
from .errors import StormwatchError
from .metrics import Summary, campaign_window, summary
from .report.text import alert_text
from .scheduler import ScheduledCollector
from .simulator.storm import Storm
from .simulator.wiring import build_simulation, storm_spec
from .sources import registry
from .store import AlertRecord, Store
from .times import Clock, format_duration, local_span, local_time

log = logging.getLogger(__name__)

DEMO_TOKEN_ENV = "STORMWATCH_DEMO_TOKEN"
DEMO_INSTANCES = ("mastodon.social", "kolektiva.social")
# The simulated Bluesky account the demo logs in with for search backfill (the simulator's, nobody's real one).
DEMO_BLUESKY_HANDLE_ENV = "STORMWATCH_DEMO_BLUESKY_HANDLE"
DEMO_BLUESKY_PASSWORD_ENV = "STORMWATCH_DEMO_BLUESKY_PASSWORD"
# The demo replays the evening of the storm: the announced start, five hours, and an hour of build-up before.
DEMO_START = datetime(2021, 2, 7, 16, 0, tzinfo=UTC)  # 18:00 in Hebron
DEMO_HOURS = 5
DEMO_LEAD = timedelta(hours=1)
SETUP_SECONDS = 3.0  # wall seconds from the clock's making to the build-up's start (see `run_demo`)
# Polls a little more often than twice a (wall) second would be pointless: the platform lags 30 storm seconds.
POLLS_PER_WALL_SECOND = 2.0

DEMO_MARK = "# Written by `stormwatch demo`"
DEMO_CONFIG = """\
# Written by `stormwatch demo`: the #StandWithIssa storm replayed on the simulated platform, {speed:.0f}x faster.
[storage]
database = "stormwatch.db"
raw_archive = "raw"

[x]
bearer_token_env = "{token_env}"
api_base = "{api_base}"
# Reposts come only from the filtered stream. At the demo's speed 30 storm minutes pass in under a second: the
# stream connects as the demo starts, an hour of storm time before the window.
stream_lead = "1h"
retries = 5
retry_backoff = "200ms"
max_backoff = "2s"
timeout = "10s"

[mastodon]
instances = {instances}
retries = 5
retry_backoff = "200ms"
max_backoff = "2s"

[bluesky]
jetstream_url = "{jetstream_url}"
appview_url = "{api_base}"
service_url = "{api_base}"
handle_env = "{bluesky_handle_env}"
app_password_env = "{bluesky_password_env}"
retries = 5
retry_backoff = "200ms"
max_backoff = "2s"

[report]
out_dir = "{reports}"

[alerts]
urls_env = "{alerts_env}"             # set it to Apprise URLs to have the demo's alerts sent too

{clock}
[simulation]
seed = {seed}
posts = {posts}
port = {port}

[[campaigns]]
name = "standwithissa"
hashtags = ["StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners"]
accounts = ["Issaamro", "YASHebron"]
targets = ["antonioguterres", "vonderleyen"]
sources = {sources}
start = "{start}"
end = "{end}"
timezone = "Asia/Hebron"
interval = "{interval}"
storm_interval = "{storm_interval}"
daily_budget_usd = 250.0
goal_posts = {goal_posts}
goal_contributors = {goal_contributors}
trend_locations = [1, 23424975, 44418]  # worldwide, the United Kingdom, London
targets_mastodon = ["antonioguterres@{first_instance}"]
targets_bluesky = ["antonioguterres.bsky.social"]
counter_hashtags = ["StopTheIncitement", "FactsNotFakes"]
"""


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things and what it found."""

    folder: Path
    config_path: Path
    report: Path | None
    summary: Summary
    alerts: tuple[str, ...] = ()  # every alert told, as printed
    intel: dict[str, Any] = field(default_factory=dict)  # what `summary --json` adds: trending, targets, copies...
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # the campaign's, for printing its times


def fresh_demo_folder(base: Path, folder: Path | None = None) -> Path:
    """Empty the demo's folder (`base/data/demo`, or `folder`: every demo starts clean) and return it; a folder
    holding anything but an earlier demo's files is refused, never emptied."""
    folder = folder or demo_folder(base)
    if folder.exists():
        config = folder / "config.toml"
        earlier = config.is_file() and config.read_text(encoding="utf-8", errors="replace").startswith(DEMO_MARK)
        if not earlier and any(folder.iterdir()):
            raise StormwatchError(f"{folder}: not empty and not a demo's folder; the demo writes its config, database "
                                  "and log into a folder of its own (choose an empty one with --config)")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def demo_folder(base: Path) -> Path:
    """Where the demo keeps its config, database, raw archive and log."""
    return base / "data" / "demo"


def run_demo(*, base: Path, duration: float = 60.0, posts: int = 5000, seed: int = 2021, token: str | None = None,
             live_view: Callable[[Collector, ScheduledCollector, threading.Event], None] | None = None,
             progress: Callable[[str], None] = print, write_report: bool = True,
             folder: Path | None = None,
             page_view: Callable[[Config, ScheduledCollector], AbstractContextManager[Any]] | None = None
             ) -> DemoResult:
    """Run the demo in `base/data/demo` (emptied first by `fresh_demo_folder`); report under `base/reports`.

    With `live_view`, it is called to show the storm until the stop event is set (the dashboard);
    otherwise progress lines are printed. With `page_view`, the context it returns is held while the storm
    plays (the live web page). Ctrl-C ends the storm early; the report covers what was collected.
    """
    folder = folder or demo_folder(base)
    end = DEMO_START + timedelta(hours=DEMO_HOURS)
    storm_span = (end - DEMO_START + DEMO_LEAD).total_seconds()
    speed = storm_span / duration
    poll = timedelta(seconds=max(60.0, speed / POLLS_PER_WALL_SECOND))
    token = token or secrets.token_urlsafe(24)
    os.environ[DEMO_TOKEN_ENV] = token
    os.environ[DEMO_BLUESKY_HANDLE_ENV] = "stormwatch-demo.bsky.social"
    os.environ[DEMO_BLUESKY_PASSWORD_ENV] = secrets.token_urlsafe(12)

    # The platform needs its port before the config can name it, and the clock before either.
    # The storm clock reaches the build-up's start a few seconds from now, once the storm is built and the
    # servers and the collector are up: at the demo's speed a second of setup is most of an hour of storm time,
    # and X's filtered stream cannot read back what was posted before it connected.
    clock = Clock(speed=speed, anchor=DEMO_START - DEMO_LEAD, anchor_wall=time.time() + SETUP_SECONDS)
    config_path = folder / "config.toml"
    draft = _config_text(clock=clock, api_base="http://127.0.0.1:0", seed=seed, posts=posts, poll=poll,
                         reports=base / "reports", end=end, port=0)
    config_path.write_text(draft, encoding="utf-8")
    config = load_config(config_path)
    campaign = config.campaigns[0]
    progress(f"building a seeded #StandWithIssa storm ({posts:,} posts, seed {seed})…")
    storm = Storm.build(storm_spec(config, campaign, seed=seed, posts=posts))
    # Today's X: search serves no reposts, the filtered stream does (the collector follows it in the window).
    simulation = build_simulation(config, campaign, port=0, storm=storm, token=token, instances=DEMO_INSTANCES)
    simulation.start()
    platform = simulation.platform
    try:
        config_path.write_text(_config_text(clock=clock, api_base=platform.url, seed=seed, posts=posts, poll=poll,
                                            reports=base / "reports", end=end, port=platform.port,
                                            instances=simulation.instance_urls(),
                                            jetstream_url=simulation.jetstream.url if simulation.jetstream else None),
                               encoding="utf-8")
        config = load_config(config_path)
        campaign = config.campaigns[0]
        progress(f"simulated X API on {platform.url}, Mastodon instances {', '.join(DEMO_INSTANCES)} and Bluesky; "
                 f"storm clock {speed:.0f}x: {DEMO_HOURS} storm hours and {format_duration(DEMO_LEAD)} of build-up "
                 f"in {duration:.0f} s")
        progress(f"the storm: {local_span(campaign.start, campaign.end, campaign.timezone)}; "
                 f"times in {campaign.timezone.key}")
        told: list[str] = []
        zone = config.alerts.timezone or campaign.timezone

        def on_alert(name: str, record: AlertRecord) -> None:
            told.append(alert_text(record, zone, config.clock.now()))
            if live_view is None:  # the dashboard shows the last alert itself
                progress(told[-1])

        urls = config.alerts.urls()
        progress(f"alerts: sent to {len(urls)} service(s) from ${config.alerts.urls_env}" if urls else
                 f"alerts: printed here, not sent (set {config.alerts.urls_env} to Apprise URLs to send them)")
        stop = threading.Event()
        # The collector's clock stands still at the storm's end: a run of the last moments (and the last run below)
        # is stamped with the end, so the frozen demo's dashboard and `status` show no run after the storm.
        collecting = replace(config.clock, until=end)
        collector = Collector(config, clock=collecting, stop=stop)
        scheduled = ScheduledCollector(collector, on_alert=on_alert)
        scheduled.start()
        watcher = threading.Timer(max(0.0, config.clock.wall_time(end) - time.time()) + 1.0, stop.set)
        watcher.daemon = True
        watcher.start()
        try:
            with page_view(config, scheduled) if page_view is not None else contextlib.nullcontext():
                if live_view is not None:
                    live_view(collector, scheduled, stop)
                else:
                    _print_progress(config.storage.database, campaign, collecting, stop, progress)
        except KeyboardInterrupt:
            progress("stopped early: reporting what was collected")
        finally:
            stop.set()
            watcher.cancel()
            scheduled.stop()
            collector.close()
        # One last run finishes any sweep the stop interrupted, so the report covers the whole storm.
        finisher = Collector(config, clock=collecting)
        try:
            finisher.run_once()
        finally:
            finisher.close()
    finally:
        simulation.stop()
        for name in (DEMO_TOKEN_ENV, DEMO_BLUESKY_HANDLE_ENV, DEMO_BLUESKY_PASSWORD_ENV):
            os.environ.pop(name, None)

    with Store.open(config.storage.database) as store:
        window = campaign_window(campaign)
        result = summary(store, campaign, window, config=config)
        found = intel.summary_fields(store, config, campaign, window)
        report = None
        if write_report:
            from .report import write_report as write

            report = write(store, config, campaign, window, now=config.clock.now())
        # The storm's last word: its end, with the headline figures and where the report is.
        AlertWatcher(config, (campaign,), config.clock, on_alert).check(
            collecting.now(), report=report / "report.html" if report else None, store=store)
    freeze_clock(config_path, end)
    return DemoResult(folder=folder, config_path=config_path, report=report, summary=result, alerts=tuple(told),
                      intel=found, timezone=campaign.timezone)


def _config_text(*, clock: Clock, api_base: str, seed: int, posts: int, poll: timedelta, reports: Path,
                 end: datetime, port: int, instances: list[str] | None = None,
                 jetstream_url: str | None = None) -> str:
    minutes = max(1, round(poll.total_seconds() / 60))
    return DEMO_CONFIG.format(
        speed=clock.speed, token_env=DEMO_TOKEN_ENV, api_base=api_base, reports=reports.resolve().as_posix(),
        clock=_clock_table(clock), seed=seed, posts=posts, port=port,
        start=DEMO_START.isoformat(), end=end.isoformat(), interval=f"{minutes * 3}m",
        instances=json.dumps(instances or [f"http://127.0.0.1:{port}/i/{name}" for name in DEMO_INSTANCES]),
        jetstream_url=jetstream_url or "ws://127.0.0.1:0/subscribe", bluesky_handle_env=DEMO_BLUESKY_HANDLE_ENV,
        bluesky_password_env=DEMO_BLUESKY_PASSWORD_ENV, alerts_env=ALERT_URLS_ENV,
        sources=json.dumps([p.name for p in registry.registered()]),
        storm_interval=f"{minutes}m", goal_posts=max(100, int(round(posts * 0.8, -2))),
        first_instance=DEMO_INSTANCES[0],
        goal_contributors=max(20, int(round(posts * 0.2, -1))))


def _clock_table(clock: Clock) -> str:
    """The config's `[clock]`: the running storm clock, or one frozen at a moment."""
    assert clock.anchor is not None
    if clock.frozen:
        return (f"# The demo is over: the clock stands still at the storm's end, so `stormwatch dashboard --config "
                f"<this file>` shows the storm as it ended.\n[clock]\nfrozen_at = \"{clock.anchor.isoformat()}\"\n")
    return (f'[clock]\nspeed = {clock.speed!r}\nanchor = "{clock.anchor.isoformat()}"\n'
            f"anchor_wall = {clock.anchor_wall!r}\n")


def freeze_clock(config_path: Path, at: datetime) -> None:
    """Stop the demo config's storm clock at `at` (the storm's end): its dashboard then shows the storm as it ended
    rather than a clock still running hundreds of times faster than the wall clock."""
    text = config_path.read_text(encoding="utf-8")
    clock = load_config(config_path).clock
    config_path.write_text(text.replace(_clock_table(clock), _clock_table(Clock(anchor=at, frozen=True))),
                           encoding="utf-8")


def _print_progress(database: Path, campaign: CampaignConfig, clock: Clock, stop: threading.Event,
                    progress: Callable[[str], None], every: float = 5.0) -> None:
    """Headless: a line every few seconds with storm time, posts, the last run and storm intelligence (copies in
    the last 15 minutes, share of voice against the counter-hashtags; trending and targets come as alerts)."""
    with Store.open(database) as store:  # one store: the copy-paste audit reads only what is new each time
        while not stop.wait(every):
            try:
                posts = store.count_campaign_posts(campaign.name)
                runs = store.last_runs(campaign.name, limit=1)
                found = intel.live(store, campaign, clock.now())
            except StormwatchError as exc:
                progress(f"  (database busy: {exc})")
                continue
            status = f", last run {runs[0].status}" if runs else ""
            copies = found.recent_copies
            extra = f"; last 15 min: {copies.share:.0%} copy-pasted" if copies.posts else ""
            voice = found.recent_counter.share_of_voice if found.recent_counter is not None else None
            extra += (f"{',' if extra else '; last 15 min:'} share of voice {voice:.0%}" if voice is not None else "")
            progress(f"  storm time {local_time(clock.now(), campaign.timezone, campaign.start)}: {posts:,} posts "
                     f"collected{status}{extra}")


def serve_during_demo(port: int, tell: Callable[[str], object]
                      ) -> Callable[[Config, ScheduledCollector], AbstractContextManager[Any]]:
    """`run_demo`'s `page_view` for `demo --serve`: the live page on `port` with a new secret link (given to
    `tell`), pseudonymized, served in a thread while the storm plays."""
    def page_view(config: Config, scheduled: ScheduledCollector) -> AbstractContextManager[Any]:
        from .store import Store
        from .web import in_thread, link_file, link_secret, prepare

        Store.open(config.storage.database).close()  # made before the page opens it read-only
        secret = link_secret(link_file(config), new=True)
        page = prepare(config, config.campaigns[0], secret, port=port, next_runs=scheduled.next_runs)
        tell(page.url)
        return in_thread(page)

    return page_view
