"""Alerts to the organizers' phones: deciding what to tell (once per condition) and sending it through Apprise,
off the collector's path. The only importer of apprise.

During a storm the organizers are in a Signal, Telegram or Matrix group, not at the terminal. Three parts:

* **conditions** (pure): from read-only figures (`metrics`), every alert whose condition holds now, each with a
  condition key (`goal:posts:50`, `fading:2021-02-07T16:41:00.000Z`, `source_failing:x:812`...);
* **due** (pure): which of those to tell now: not told before (the `alerts` table is the memory, so a restarted
  collector does not tell anything twice), of a kind `[alerts] kinds` chooses, and at least `min_gap` (storm
  time) after the last alert of the same kind (kinds told once per subject excepted);
* the **watcher** (a thread beside the scheduled jobs) reads the figures after each run and every little while, records
  what is due, and hands it to the **sender** (a thread of its own), which delivers each alert through every
  configured service separately, with a timeout, and records how many were reached. A failing or hanging
  service is logged and recorded, and simply tried again with the next alert: collection never waits for it.

Apprise URLs carry secrets (bot tokens, passwords): they come only from the environment variable named by
`[alerts] urls_env`, are never logged or stored (a service is shown as its scheme and host at most). Messages are
short (a headline and two or three lines of figures), in the alerts' time zone, and name only targets, the
campaign's own accounts and accounts a pseudonymized report would name, whatever `[report] names` says (a group
chat is no place to name a supporter): a quoted post goes through the pseudonymized report's naming rules.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from . import intel, metrics
from .config import AlertsConfig, CampaignConfig, Config
from .console import DISK_FULL, log_bug, secret_parts
from .errors import StormwatchError
from .models import RunRecord
from .normalize.text import one_line
from .platforms import label as platform_label
from .privacy.naming import Namer, NamingPolicy
from .store import AlertRecord, Store, utc_day
from .store.live import LiveFeedState
from .times import Clock, format_duration, iso_utc, local_time

log = logging.getLogger(__name__)

SOON = timedelta(minutes=30)  # "the storm starts in 30 minutes"
STARTED_FRESH = timedelta(hours=1)  # a collector started later than this does not announce the start
MILESTONES = (50, 100)  # percent of a goal
FAILING_RUNS = 3  # failed runs in a row before a source is reported failing
LIVE_FAILING_AFTER = timedelta(minutes=2)  # a live feed down this long (storm clock) is reported failing
BUDGET_WARNING_SHARE = 0.8
END_GRACE = timedelta(minutes=15)  # the end is told when every source ran past it, the report is written, or then
# Once per subject (a target, the start, the end): never held back by `min_gap` (two new targets: both told); three
# tags trending at once are told `min_gap` apart, not as three messages in a row.
ONCE_EACH = frozenset({"storm_soon", "storm_started", "storm_ended", "new_target", "target_response"})
RUNS_READ = 20  # recent runs per source the conditions look at
SENDER_IDLE = 0.5  # seconds the sender waits for work between checks of its stop flag
TEST_KIND = "test"


@dataclass(frozen=True)
class Alert:
    """One thing to tell: its kind, the condition it tells of, a headline and a few lines of figures."""

    kind: str
    key: str
    headline: str
    lines: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Headline and lines, one per line (what is stored and shown)."""
        return "\n".join((self.headline, *self.lines))


@dataclass(frozen=True)
class Figures:
    """What the conditions are decided from, read at one moment (storm clock)."""

    now: datetime
    totals: metrics.Totals
    minutes: tuple[int, ...]  # posts per complete minute of the storm window so far, from its start
    runs: dict[str, tuple[RunRecord, ...]]  # finished runs per source, newest first
    runway: metrics.BudgetRunway | None
    targets: tuple[tuple[str, int], ...]
    loudest_named: tuple[str, int] | None = None  # (handle, posts) of the busiest account a report would name
    report: Path | None = None
    trending: tuple[intel.TrendHit, ...] = ()  # the campaign's tags in the trending lists now
    target_posts: tuple[intel.TargetPost, ...] = ()  # the targets' posts in the window so far
    peak: int = 0  # after the window, its busiest minute (`minutes` stops where collection is complete)
    live: dict[str, LiveFeedState] = field(default_factory=dict)  # live feeds' states, by source
    copies: intel.Rise | None = None  # the copy-paste share above its threshold, since when (complete minutes)
    hijack: intel.Rise | None = None  # the counter-hashtags' share of voice above its threshold, since when
    counter_tags: tuple[str, ...] = ()
    storm_cost_usd: float = 0.0  # every UTC day of the storm window and the plan (metrics.storm_spending)


@dataclass(frozen=True)
class ServiceResult:
    """How one service took one message; `service` is its scheme and host at most (URLs carry secrets)."""

    service: str
    ok: bool
    error: str | None = None


# --- figures ------------------------------------------------------------------------------------


def read_figures(store: Store, config: Config, campaign: CampaignConfig, now: datetime, *,
                 report: Path | None = None) -> Figures:
    """Read everything the conditions need for one campaign at `now` (read-only)."""
    window = metrics.campaign_window(campaign)
    health = metrics.campaign_health(store, campaign, now)
    complete = metrics.complete_until(health, now).replace(second=0, microsecond=0)
    minutes = metrics.per_minute(store, campaign.name, window.since, max(window.since, min(complete, window.until)))
    runs = {source: tuple(r for r in store.last_runs(campaign.name, source, limit=RUNS_READ) if r.status != "running")
            for source in campaign.sources}
    ended = now >= campaign.end
    loudest = _loudest_named(store, config, campaign, window) if ended else None
    hits = intel.trending(store, campaign.name, campaign.hashtags, window.since, max(window.since, now))
    rising = campaign.in_window(now) and complete > window.since  # shares of the storm's complete minutes
    return Figures(now=now, totals=metrics.totals(store, campaign.name, window).all, minutes=tuple(minutes),
                   copies=intel.copy_rise(store, campaign, complete) if rising else None,
                   hijack=intel.hijack_rise(store, campaign, complete) if rising else None,
                   counter_tags=campaign.counter_hashtags, runs=runs, storm_cost_usd=health.storm_spent_usd,
                   runway=metrics.budget_runway(store, campaign, now),
                   targets=tuple(metrics.target_mentions(store, campaign, window)), loudest_named=loudest,
                   report=report, trending=tuple(hit for hit in hits if hit.rank_now is not None),
                   target_posts=tuple(intel.target_posts(store, campaign.name, window.since,
                                                         max(window.since, min(now, window.until)))),
                   peak=metrics.peak_minute(store, campaign.name, window).posts if ended else 0,
                   live={s.source: s.live for s in health.sources if s.live is not None})


def _loudest_named(store: Store, config: Config, campaign: CampaignConfig,
                   window: metrics.Window) -> tuple[str, int] | None:
    """The busiest account the report would name (the campaign's own, targets, or large enough), if any."""
    policy = NamingPolicy.for_campaign(campaign, "pseudonymized", config.report.pseudonymize_below)
    for account in metrics.top_accounts(store, campaign.name, window, limit=50):
        if policy.is_named(account.handle, account.followers):
            return account.handle, account.posts
    return None


# --- conditions (pure) --------------------------------------------------------------------------


def conditions(campaign: CampaignConfig, figures: Figures, told: set[str], zone: ZoneInfo) -> list[Alert]:
    """Every alert whose condition holds at `figures.now` (told or not; `due` chooses)."""
    words = _Words(campaign, figures, zone)
    found: list[Alert] = []
    for make in (_storm_clock, _goals, _fading, _budget, _targets, _trending, _responses, _copy_paste, _hijack):
        found.extend(make(words))
    found.extend(_sources(words, told))
    return found


def due(found: Sequence[Alert], told: set[str], last_by_kind: dict[str, datetime], now: datetime,
        settings: AlertsConfig) -> list[Alert]:
    """The alerts to tell now: not told before, of a chosen kind, `min_gap` after the last of their kind."""
    last = dict(last_by_kind)
    chosen = []
    for alert in found:
        if alert.key in told or alert.kind not in settings.kinds:
            continue
        previous = last.get(alert.kind)
        if alert.kind not in ONCE_EACH and previous is not None and now - previous < settings.min_gap:
            continue  # told again later, if the condition still holds then
        chosen.append(alert)
        last[alert.kind] = now
    return chosen


class _Words:
    """The shared pieces of every message: the campaign's tag, local times, figures in words."""

    def __init__(self, campaign: CampaignConfig, figures: Figures, zone: ZoneInfo) -> None:
        self.campaign = campaign
        self.figures = figures
        self.zone = zone
        self.now = figures.now
        self.tag = f"#{campaign.hashtags[0]}"

    def at(self, moment: datetime) -> str:
        """A moment as local HH:MM (with the date when it is not today, locally)."""
        return local_time(moment, self.zone, self.now)

    @property
    def pace(self) -> float | None:
        """Posts per minute over the last five complete minutes (None before five are complete)."""
        recent = self.figures.minutes[-5:]
        return sum(recent) / 5 if len(recent) == 5 else None

    def so_far(self) -> str:
        """Posts and people so far."""
        totals = self.figures.totals
        return f"{totals.posts:,} posts by {totals.contributors:,} people so far"

    def time_left(self) -> str:
        """When the storm ends and how long that is from now."""
        return (f"The storm ends at {self.at(self.campaign.end)} ({format_duration(self.campaign.end - self.now)} "
                "left)")


def _storm_clock(words: _Words) -> list[Alert]:
    campaign, now = words.campaign, words.now
    goals = [f"{goal:,} {name}" for name, goal in (("posts", campaign.goal_posts),
                                                     ("people", campaign.goal_contributors)) if goal]
    goal_line = f"Goals: {', '.join(goals)}" if goals else f"Hashtags: {' '.join('#' + t for t in campaign.hashtags)}"
    zone = f"{words.at(campaign.start)} {words.zone.key}"
    if campaign.start - SOON <= now < campaign.start:
        minutes = max(1, round((campaign.start - now).total_seconds() / 60))
        return [Alert("storm_soon", "storm_soon", f"{words.tag} storm starts in {minutes} minutes ({zone})",
                      (goal_line, f"Collecting already: {words.so_far()}"))]
    if campaign.start <= now < min(campaign.end, campaign.start + STARTED_FRESH):
        return [Alert("storm_started", "storm_started", f"{words.tag} storm has started ({zone})",
                      (goal_line, words.time_left()))]
    figures = words.figures
    collected = all(runs and runs[0].started_at >= campaign.end for runs in figures.runs.values())
    if now >= campaign.end and (figures.report is not None or collected or now >= campaign.end + END_GRACE):
        totals = figures.totals
        lines = [f"{totals.posts:,} posts by {totals.contributors:,} people; peak {figures.peak:,} posts a minute",
                 f"Potential reach {_compact(totals.potential_reach)}; engagement {_compact(totals.engagement)}"
                 + (f"; cost ${figures.storm_cost_usd:,.2f}" if figures.storm_cost_usd else "")]  # days and plan
        if figures.loudest_named:
            handle, posts = figures.loudest_named
            lines[-1] += f"; most active named account @{_clean(handle)} ({posts:,} posts)"
        lines.append(f"The report is written: {figures.report}" if figures.report is not None
                     else "Every platform is collected past the end: the report can be written now")
        return [Alert("storm_ended", "storm_ended", f"{words.tag} storm has ended ({words.at(campaign.end)} "
                                                    f"{words.zone.key})", tuple(lines))]
    return []


def _goals(words: _Words) -> list[Alert]:
    campaign, totals = words.campaign, words.figures.totals
    measures = (("posts", totals.posts, campaign.goal_posts), ("people", totals.contributors,
                                                              campaign.goal_contributors))
    found = []
    for name, value, goal in measures:
        reached = [m for m in MILESTONES if goal and value * 100 >= m * goal]
        if not reached or not goal:
            continue
        milestone = max(reached)  # reaching 100% at once tells of 100% only
        headline = (f"{words.tag}: {name} goal reached, {value:,} of {goal:,}" if milestone == 100
                    else f"{words.tag}: {milestone}% of the {name} goal, {value:,} of {goal:,}")
        others = [f"{other.capitalize()} {v:,} of {g:,} ({v / g:.0%})"
                  for other, v, g in measures if other != name and g]
        paced = campaign.start + timedelta(minutes=len(words.figures.minutes))  # the last complete minute's end
        pace = f"Pace: {words.pace:.0f} posts a minute in the 5 minutes to {words.at(paced)}" if words.pace else ""
        lines = ["; ".join(part for part in (pace, *others[:1]) if part)] if pace or others else []
        if words.now < campaign.end:
            lines.append(words.time_left())
        found.append(Alert("goal", f"goal:{name}:{milestone}", headline, tuple(lines)))
    return found


def _fading(words: _Words) -> list[Alert]:
    campaign = words.campaign
    if not campaign.in_window(words.now):
        return []
    episode = metrics.current_fading(words.figures.minutes, campaign.start)
    if episode is None:
        return []
    advice = metrics.FADING_ADVICE[0].upper() + metrics.FADING_ADVICE[1:]
    return [Alert("fading", f"fading:{iso_utc(episode.started_at)}",
                  f"{words.tag} is fading: {words.pace or episode.rate:.0f} posts a minute, peak {episode.peak:,}",
                  (f"{advice}.", f"Since {words.at(episode.started_at)}; {words.so_far()}", words.time_left()))]


def _sources(words: _Words, told: set[str]) -> list[Alert]:
    found = []
    for source, runs in words.figures.runs.items():
        streak: list[RunRecord] = []
        for run in runs:
            if run.status != "failed":
                break
            streak.append(run)
        if len(streak) >= FAILING_RUNS:
            first, last = streak[-1], streak[0]
            error = _clean((last.error or "see the log").split(";")[0])[:160]
            found.append(Alert("source_failing", f"source_failing:{source}:{first.id}",
                               f"{source} collection failing: {len(streak)} runs in a row since "
                               f"{words.at(first.started_at)}",
                               (f"Last error: {error}", "The other sources go on; see `stormwatch status`")))
        for key in told:
            prefix = f"source_failing:{source}:"
            if not key.startswith(prefix) or key.startswith(prefix + "live:"):
                continue
            first_failed = int(key[len(prefix):])
            newest = runs[0] if runs else None
            if newest is not None and newest.id > first_failed and newest.status in ("ok", "partial"):
                found.append(Alert("source_recovered", f"source_recovered:{source}:{first_failed}",
                                   f"{source} collection recovered at {words.at(newest.started_at)}",
                                   (f"The last run stored {newest.posts_new:,} new posts", words.so_far())))
    return found + _live_feeds(words, told)


def _live_feeds(words: _Words, told: set[str]) -> list[Alert]:
    """A live feed down for a while (its posts are not stored), and back: from its state, not from runs."""
    found = []
    for source, live in words.figures.live.items():
        since = live.failing_since
        if since is not None and words.now - since >= LIVE_FAILING_AFTER:
            error = _clean(live.error or "see the log")[:160]
            held = f"; {live.held:,} posts held until it can store them" if live.held else ""
            found.append(Alert("source_failing", f"source_failing:{source}:live:{iso_utc(since)}",
                               f"{source} live feed down since {words.at(since)}: its posts are not stored",
                               (f"Last error: {error}{held}", "It retries on its own; see `stormwatch status`")))
        prefix = f"source_failing:{source}:live:"
        for key in told:
            if key.startswith(prefix) and since is None:
                found.append(Alert("source_recovered", f"source_recovered:{source}:live:{key[len(prefix):]}",
                                   f"{source} live feed storing again at {words.at(live.updated_at)}",
                                   (words.so_far(),)))
    return found


def _budget(words: _Words) -> list[Alert]:
    runway = words.figures.runway
    if runway is None or runway.share_spent < BUDGET_WARNING_SHARE:
        return []
    day = utc_day(words.now)
    spent = f"${runway.spent_today_usd:.2f} of ${runway.budget_usd:.2f}"
    if runway.reached:
        return [Alert("budget_reached", f"budget_reached:{day}", f"Daily budget reached: {spent} spent today",
                      (f"X post reads (search, stream) paused until {words.at(runway.resets_at)}: reposts made "
                       "meanwhile are lost; counts and free platforms go on", "Raise daily_budget_usd to read more"))]
    pace = (f"At this pace (${runway.usd_per_hour:.2f} an hour) it runs out at {words.at(runway.runs_out_at)}"
            if runway.runs_out_at else f"At this pace it lasts until the daily reset at {words.at(runway.resets_at)}")
    return [Alert("budget_warning", f"budget_warning:{day}", f"Daily budget {runway.share_spent:.0%} spent: {spent}",
                  (pace, "Post reads pause when it is spent; counts and free platforms go on"))]


def _targets(words: _Words) -> list[Alert]:
    targets = words.figures.targets
    unnamed = [f"@{t}" for t, count in targets if not count]
    rest = f"Not named yet: {', '.join(unnamed)}" if unnamed else "Every target has been named"
    return [Alert("new_target", f"new_target:{target.casefold()}", f"@{target} named for the first time",
                  (f"Named in {_posts(count)} so far", rest))
            for target, count in targets if count]


def _trending(words: _Words) -> list[Alert]:
    """A campaign tag started trending: told once per tag, naming every place where it trends now."""
    by_tag: dict[str, list[intel.TrendHit]] = {}
    for hit in words.figures.trending:
        by_tag.setdefault(hit.tag.lstrip("#＃").casefold(), []).append(hit)
    found = []
    for tag, hits in by_tag.items():
        hits.sort(key=lambda hit: hit.rank_now or 0)
        places = ", ".join(f"#{hit.rank_now} in {_clean(hit.location)} ({platform_label(hit.platform)})"
                           for hit in hits)
        first = min(hits, key=lambda hit: hit.since or words.now)
        found.append(Alert("trending", f"trending:{tag}", f"{_clean(hits[0].tag)} is trending: {places}"[:200],
                           (f"In the list since {words.at(first.since or words.now)}; keep the pace up to climb",
                            words.so_far())))
    return found


def _responses(words: _Words) -> list[Alert]:
    """A target responded to the storm for the first time (answered a campaign post, or posted with its tags)."""
    # The quote names only the campaign's own accounts and targets: a target answering a supporter writes the
    # supporter's handle, and the alerts know no directory of labels (as `summary --json`'s repeated texts).
    naming = Namer(NamingPolicy.for_campaign(words.campaign, "pseudonymized", 0))
    found = []
    for post in intel.first_responses(list(words.figures.target_posts)):
        what = ("answered a campaign post" if post.in_reply_to_campaign_post else "posted with the campaign's tags")
        where = platform_label(post.platform)
        lines = [f'"{intel.shown(naming.text(post.text, post.platform), 200)}"',
                 f"At {words.at(post.created_at)} on {where}"
                 + (f": {post.url}" if post.url else "")]
        found.append(Alert("target_response", f"target_response:{post.platform}:{post.account.casefold()}",
                           f"@{_clean(post.account)} {what} on {where}", tuple(lines)))
    return found


def _copy_paste(words: _Words) -> list[Alert]:
    """The copy-paste share of the last 15 minutes rose above its threshold: told once per rise, with the advice."""
    rise = words.figures.copies
    if rise is None:
        return []
    advice = intel.ADVICE[0].upper() + intel.ADVICE[1:]
    return [Alert("copy_paste", f"copy_paste:{iso_utc(rise.since)}",
                  f"{words.tag}: {rise.share:.0%} of the last 15 minutes' posts are copies",
                  (f"{advice}.", f"Above {intel.WARN_SHARE:.0%} since {words.at(rise.since)}; {words.so_far()}"))]


def _hijack(words: _Words) -> list[Alert]:
    """The counter-hashtags' share of voice of the last 15 minutes rose above its threshold: told once per rise."""
    rise = words.figures.hijack
    if rise is None:
        return []
    tags = " ".join(f"#{tag}" for tag in words.figures.counter_tags)
    return [Alert("hijack", f"hijack:{iso_utc(rise.since)}",
                  f"{words.tag} is being hijacked: {tags} have {rise.share:.0%} of the last 15 minutes' posts",
                  (f"Above {intel.HIJACK_SHARE:.0%} since {words.at(rise.since)}; {rise.posts:,} posts in those "
                   "15 minutes", "Keep posting with the campaign's own tags; answering under theirs gives them reach"))]


def _posts(count: int) -> str:
    return f"{count:,} post" if count == 1 else f"{count:,} posts"


def _compact(number: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}{suffix}"
    return f"{number:,.0f}"


def _clean(text: str) -> str:
    """Text written by strangers, on one line, without control characters or bidi overrides."""
    return one_line(text)


# --- delivery -----------------------------------------------------------------------------------


def service_label(url: str) -> str:
    """A service as it may be shown: its scheme and, when it is a plain host name, its host (no secrets)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower() or "?"
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    plain_host = "@" not in parts.netloc and re.match(r"^(localhost|[\w-]+(\.[\w-]+)+)$", host)
    return f"{scheme}://{host}" if plain_host else scheme


def deliver(urls: Sequence[str], title: str, body: str, timeout: float) -> list[ServiceResult]:
    """Send one message through each service separately; each gets `timeout` seconds, failures are results."""
    return [_deliver_one(url, title, body, timeout) for url in urls]


def _deliver_one(url: str, title: str, body: str, timeout: float) -> ServiceResult:
    label = service_label(url)
    outcome: list[ServiceResult] = []

    def send() -> None:
        try:
            import apprise

            plugin = apprise.Apprise.instantiate(url)
            if plugin is None:
                outcome.append(ServiceResult(label, False, "not an Apprise URL Apprise can use"))
                return
            # Apprise's own socket timeouts, so the sending thread ends about when we stop waiting for it.
            plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
            ok = bool(plugin.notify(body=body, title=title))
            outcome.append(ServiceResult(label, ok, None if ok else "not delivered (see the log)"))
        except Exception as exc:  # a plugin's bug must not end the sender
            outcome.append(ServiceResult(label, False, f"{type(exc).__name__}"))

    worker = threading.Thread(target=send, name=f"alert-{label}", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    if worker.is_alive() or not outcome:
        return ServiceResult(label, False, f"no answer within {timeout:g}s")
    return outcome[0]


def _summary(results: Sequence[ServiceResult]) -> str | None:
    problems = [f"{r.service}: {r.error}" for r in results if not r.ok]
    return "; ".join(problems) or None


class Sender:
    """A thread that delivers recorded alerts to every service and records how it went, one alert at a time."""

    def __init__(self, database: Path, urls: Sequence[str], timeout: float, redact: Callable[[str], str]) -> None:
        self.database = database
        self.urls = tuple(urls)
        self.timeout = timeout
        self.redact = redact
        self._queue: queue.Queue[tuple[int, Alert]] = queue.Queue()  # recorded alerts waiting for the sender
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def submit(self, alert_id: int, alert: Alert) -> None:
        """Queue a recorded alert for delivery (returns at once)."""
        self._queue.put((alert_id, alert))

    def close(self, wait: float) -> None:
        """Deliver what is queued for up to `wait` seconds, then stop (what is left stays recorded, undelivered)."""
        finished = threading.Event()

        def drain() -> None:
            self._queue.join()
            finished.set()

        threading.Thread(target=drain, daemon=True).start()
        finished.wait(wait)
        self._stop.set()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=SENDER_IDLE)
            except queue.Empty:
                continue
            try:
                self.deliver(*item)
            except Exception:  # never let one alert end the sender
                log.exception("alerts: delivering alert %d failed", item[0])
            finally:
                self._queue.task_done()

    def deliver(self, alert_id: int, alert: Alert) -> list[ServiceResult]:
        """Deliver one alert now and record the outcome."""
        results = deliver(self.urls, self.redact(alert.headline), self.redact("\n".join(alert.lines)), self.timeout)
        ok = sum(r.ok for r in results)
        for result in results:
            if not result.ok:
                log.warning("alerts: %s: %s (tried again with the next alert)", result.service, result.error)
        with Store.open(self.database) as store:
            store.alert_delivered(alert_id, len(results), ok, _summary(results))
        return results


# --- the watcher --------------------------------------------------------------------------------

OnAlert = Callable[[str, AlertRecord], None]


@dataclass
class AlertWatcher:
    """Decides and records alerts every little while (storm clock) and hands them to the sender."""

    config: Config
    campaigns: tuple[CampaignConfig, ...]
    clock: Clock
    on_alert: OnAlert | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sender: Sender | None = None

    @property
    def interval(self) -> float:
        """Wall seconds between checks: half a storm minute, between 0.2 s (fast demo clocks) and 5 s."""
        return min(5.0, max(0.2, self.clock.wall_seconds(timedelta(seconds=30))))

    def start(self) -> None:
        """Start checking in a thread of its own (and the sender in another)."""
        self.start_sender()
        self._thread = threading.Thread(target=self._run, name="alert-watcher", daemon=True)
        self._thread.start()

    def start_sender(self) -> None:
        """Start the sender: from now on `check` hands alerts to it and returns at once."""
        self._sender = self._new_sender()
        self._sender.start()

    def wake(self) -> None:
        """Check now rather than at the next interval (a run has just stored what it found)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop checking; give the sender the alerts' timeout to deliver what is queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self._sender is not None:
            self._sender.close(wait=self.config.alerts.timeout + 1.0)

    def check(self, now: datetime | None = None, *, report: Path | None = None,
              store: Store | None = None) -> list[AlertRecord]:
        """Decide and record what is due for every campaign now; queue it for the sender (or deliver it here)."""
        now = now or self.clock.now()
        if store is None:
            with Store.open(self.config.storage.database) as opened:
                return self.check(now, report=report, store=opened)
        recorded = []
        zone_override = self.config.alerts.timezone
        for campaign in self.campaigns:
            told, last = store.alerts_told(campaign.name)
            figures = read_figures(store, self.config, campaign, now, report=report)
            found = conditions(campaign, figures, told, zone_override or campaign.timezone)
            for alert in due(found, told, last, now, self.config.alerts):
                record = self._record(store, campaign, alert, now)
                if record is not None:
                    recorded.append(record)
        return recorded

    def _record(self, store: Store, campaign: CampaignConfig, alert: Alert, now: datetime) -> AlertRecord | None:
        alert = Alert(alert.kind, alert.key, *_redacted(self.config, alert.headline, alert.lines))
        alert_id = store.record_alert(campaign.name, alert.kind, alert.key, alert.text, now)
        if alert_id is None:
            return None  # told meanwhile (another process watching the same campaign)
        urls = self.config.alerts.urls()
        log.info("alert for %s%s: %s", campaign.name, "" if urls else " (no services configured, not sent)",
                 alert.text.replace("\n", " | "))
        if not urls:
            store.alert_delivered(alert_id, 0, 0, None)
        elif self._sender is not None:
            self._sender.submit(alert_id, alert)
        else:  # a one-off check (the demo's last word): deliver here, each service within the timeout
            self._new_sender().deliver(alert_id, alert)
        record = next(r for r in store.alerts(campaign.name, limit=10) if r.id == alert_id)
        if self.on_alert is not None:
            self.on_alert(campaign.name, record)
        return record

    def _new_sender(self) -> Sender:
        return Sender(self.config.storage.database, self.config.alerts.urls(), self.config.alerts.timeout,
                      lambda text: _redact(self.config, text))

    def _run(self) -> None:
        with Store.open(self.config.storage.database) as store:
            while True:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self.check(store=store)
                except StormwatchError as exc:  # the database locked or the disk full: one line, tried again
                    DISK_FULL.tell(exc, self.config.storage.database.absolute().parent)
                    log.warning("alerts: checking conditions failed, trying again: %s", one_line(str(exc)))
                except Exception as exc:  # a bad read must not end the watcher (nor touch collection)
                    log_bug(log, "alerts: checking conditions (tried again)", exc)


def _redact(config: Config, text: str) -> str:
    for secret in secret_parts(config.secrets()):
        text = text.replace(secret, "[redacted]")
    return text


def _redacted(config: Config, headline: str, lines: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    return _redact(config, headline), tuple(_redact(config, line) for line in lines)


def check_once(config: Config, campaigns: tuple[CampaignConfig, ...], clock: Clock) -> list[tuple[str, AlertRecord]]:
    """(campaign, alert) for each alert due now, decided, recorded and sent here as the scheduled collector's watcher
    does (for `collect --once`, run by cron, which keeps no watcher between runs); none without `[alerts]`."""
    if not config.alerts.enabled:
        return []
    told: list[tuple[str, AlertRecord]] = []
    AlertWatcher(config, campaigns, clock, lambda name, record: told.append((name, record))).check()
    return told


def start_watcher(config: Config, campaigns: tuple[CampaignConfig, ...], clock: Clock,
                  on_alert: OnAlert | None = None) -> AlertWatcher | None:
    """Start watching the campaigns for alerts, when the config has an `[alerts]` table."""
    if not config.alerts.enabled:
        return None
    watcher = AlertWatcher(config, campaigns, clock, on_alert)
    watcher.start()
    return watcher


# --- the commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestOutcome:
    """What `stormwatch alerts test` found: each service's result, and the record of the test message."""

    results: tuple[ServiceResult, ...]
    record: AlertRecord | None


def send_test(store: Store, config: Config, campaign: CampaignConfig, now: datetime) -> TestOutcome:
    """Send a test message through each configured service separately and record it in the history."""
    urls = config.alerts.urls()
    zone = config.alerts.timezone or campaign.timezone
    alert = Alert(TEST_KIND, f"{TEST_KIND}:{iso_utc(now)}", f"stormwatch test for #{campaign.hashtags[0]}",
                  (f"Sent {local_time(now, zone, now)} {zone.key}: alerts for {campaign.name} reach this group.",))
    results: tuple[ServiceResult, ...] = ()
    alert_id = store.record_alert(campaign.name, alert.kind, alert.key, alert.text, now)
    if urls:
        results = tuple(deliver(urls, alert.headline, "\n".join(alert.lines), config.alerts.timeout))
    if alert_id is not None:
        store.alert_delivered(alert_id, len(results), sum(r.ok for r in results), _summary(results))
    record = next((r for r in store.alerts(campaign.name, limit=10) if r.id == alert_id), None)
    return TestOutcome(results=results, record=record)


def history(store: Store, campaign: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """The alerts told, newest first, as JSON-ready dicts."""
    return [record.to_json() for record in store.alerts(campaign, limit)]
