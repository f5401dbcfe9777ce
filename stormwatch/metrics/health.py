"""Collector health: each campaign's sources, cursors, last runs, errors, back-off, requests and spend."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..config import COUNTER_SUFFIX, TARGETS_SUFFIX, CampaignConfig, Config
from ..models import Cursor, RunRecord
from ..store import AlertRecord, Store, utc_day
from ..store.live import LiveFeedState, read_live_state
from ..times import iso_utc, iso_utc_compact, parse_optional_time
from .budget import budget_runway
from .campaign import campaign_size, totals
from .reader import ReaderChoice
from .spending import spending, storm_spending
from .stream import StreamCoverage, stream_coverage
from .windows import campaign_window

# X serves posts up to 30 s before a request: the newest minute a finished run has completely.
PLATFORM_LAG = timedelta(seconds=30)
# A failing source with no success for this long no longer holds the dashboard's "complete minutes" back.
FAILING_SOURCE = timedelta(minutes=10)


@dataclass(frozen=True)
class CursorState:
    """Where one query's collection stands."""

    query: str
    position: str | None
    pending: bool
    since: datetime | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (`since` at the precision it was set with, as the store keeps it)."""
        return {"query": self.query, "position": self.position, "pending": self.pending,
                "since": iso_utc_compact(self.since) if self.since else None, "updated_at": iso_utc(self.updated_at)}


@dataclass(frozen=True)
class SourceHealth:
    """One source of one campaign: its last run, cursors, errors, requests and spend today."""

    source: str
    last_run: RunRecord | None
    last_success_at: datetime | None
    backoff_until: datetime | None
    cursors: tuple[CursorState, ...]
    runs_today: int
    requests_today: int
    spent_today_usd: float
    recent_errors: tuple[str, ...]
    last_success_started_at: datetime | None = None  # what it covers: posts up to about then are collected
    failed_runs: int = 0  # failed runs in a row, up to the last finished run (0: the last one did not fail)
    failing_since: datetime | None = None  # when the first of those failed runs started
    live: LiveFeedState | None = None  # the source's live feed in a running collector, if it has one

    @property
    def last_reason(self) -> str | None:
        """Why the last finished run was not simply `ok`, in a few words (`1 deleted original`)."""
        return run_reason(self.last_run.error) if self.last_run else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times as ISO-8601 UTC."""
        return {"source": self.source, "last_run": _run_json(self.last_run) if self.last_run else None,
                "last_success_at": _iso(self.last_success_at), "backoff_until": _iso(self.backoff_until),
                "cursors": [c.to_json() for c in self.cursors], "runs_today": self.runs_today,
                "requests_today": self.requests_today, "spent_today_usd": self.spent_today_usd,
                "recent_errors": list(self.recent_errors),
                "last_success_started_at": _iso(self.last_success_started_at),
                "failed_runs": self.failed_runs, "failing_since": _iso(self.failing_since),
                # only for a source whose live feed runs in a collector now
                **({} if self.live is None else {"live_feed": {
                    "failing_since": _iso(self.live.failing_since), "error": self.live.error,
                    "held": self.live.held, "updated_at": iso_utc(self.live.updated_at)}})}


@dataclass(frozen=True)
class CampaignHealth:
    """Collection status of one campaign."""

    name: str
    window_start: datetime
    window_end: datetime
    posts: int
    daily_budget_usd: float | None
    spent_today_usd: float
    sources: tuple[SourceHealth, ...]
    budget_runs_out_at: datetime | None = None  # during the storm window, at the pace of the last 15 minutes
    last_alert: AlertRecord | None = None
    posts_in_window: int | None = None  # campaign posts in the storm window (`posts` counts all collected)
    x_stream: StreamCoverage | None = None  # X's filtered stream over the storm window so far (None: off, no X)
    storm_spent_usd: float = 0.0  # the storm's UTC days and its plan (spending.storm_spending)
    spent_total_usd: float = 0.0  # every run of the campaign, any day

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times as ISO-8601 UTC."""
        return {"name": self.name, "window_start": iso_utc(self.window_start), "window_end": iso_utc(self.window_end),
                "posts": self.posts, "posts_in_window": self.posts_in_window,
                "daily_budget_usd": self.daily_budget_usd,
                "spent_today_usd": self.spent_today_usd, "storm_spent_usd": self.storm_spent_usd,
                "spent_total_usd": self.spent_total_usd, "sources": [s.to_json() for s in self.sources],
                "budget_runs_out_at": _iso(self.budget_runs_out_at),
                "last_alert": self.last_alert.to_json() if self.last_alert else None,
                "x_stream": self.x_stream.to_json() if self.x_stream else None}


@dataclass(frozen=True)
class CollectionStatus:
    """Collection status of every selected campaign, as of `now` (storm clock)."""

    database: str
    now: datetime
    campaigns: tuple[CampaignHealth, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times as ISO-8601 UTC."""
        return {"database": self.database, "now": iso_utc(self.now),
                "campaigns": [c.to_json() for c in self.campaigns]}


def collection_status(store: Store, config: Config, campaigns: tuple[CampaignConfig, ...],
                      now: datetime | None = None) -> CollectionStatus:
    """Campaigns, sources, cursors, last runs, errors, requests and spend."""
    now = now or config.clock.now()
    return CollectionStatus(database=str(store.path), now=now, campaigns=tuple(
        replace(campaign_health(store, c, now), posts_in_window=totals(store, c.name, campaign_window(c)).all.posts,
                # (a status read without a config, as some callers do, has no stream to tell of)
                x_stream=stream_coverage(store, config, c, campaign_window(c), now, estimate=False) if config
                else None)
        for c in campaigns))


def campaign_health(store: Store, campaign: CampaignConfig, now: datetime, *,
                    reader: ReaderChoice = "auto") -> CampaignHealth:
    """Collection status of one campaign (its post count read through `reader`)."""
    day = utc_day(now)
    cursors = list(store.cursors(campaign.name))
    # The companions collected in the campaign's own runs (config.py): their cursors show with the campaign's.
    for suffix, what in ((COUNTER_SUFFIX, "counter-hashtags"), (TARGETS_SUFFIX, "targets' posts")):
        cursors += [(replace(cursor, query=f"{what}: {cursor.query}"), updated)
                    for cursor, updated in store.cursors(campaign.name + suffix)]
    sources = tuple(_source_health(store, campaign.name, source, cursors, day) for source in campaign.sources)
    runway = budget_runway(store, campaign, now) if campaign.in_window(now) else None
    last_alerts = store.alerts(campaign.name, limit=1)
    return CampaignHealth(
        name=campaign.name, window_start=campaign.start, window_end=campaign.end,
        posts=campaign_size(store, campaign.name, reader=reader), daily_budget_usd=campaign.daily_budget_usd,
        spent_today_usd=round(store.spent(campaign.name, day), 4), sources=sources,
        budget_runs_out_at=runway.runs_out_at if runway else None,
        last_alert=last_alerts[0] if last_alerts else None,
        storm_spent_usd=round(storm_spending(store, campaign).total_usd, 4),
        spent_total_usd=round(spending(store, campaign.name, "", "9999-12-31").total_usd, 4))


def complete_until(health: CampaignHealth, now: datetime, *, failing_after: timedelta | None = None) -> datetime:
    """The moment up to which collection is complete: the start of each source's newest successful run (a run
    still going does not count yet), the earliest of them, less X's lag.

    With `failing_after`, a source that is failing (its last finished run failed) and has had no success for that
    long holds nothing back: the screen says it is failing, and the others' figures must not freeze at the
    moment it stopped. A slow or silent source always holds back: its minutes are still to come."""
    starts = [s.last_success_started_at for s in health.sources if s.last_success_started_at
              and not (failing_after is not None and s.failed_runs
                       and now - s.last_success_started_at > failing_after)]
    return min([now, *starts]) - PLATFORM_LAG


def _source_health(store: Store, campaign: str, source: str, cursors: list[tuple[Cursor, datetime]],
                   day: str) -> SourceHealth:
    runs = store.last_runs(campaign, source, limit=50)
    finished = [r for r in runs if r.status != "running"]
    runs_today, requests_today, spent_today = store.run_totals(campaign, source, day)
    failed = list(itertools.takewhile(lambda r: r.status == "failed", finished))
    backoff = store.backoff_until(campaign, source)
    errors = tuple(dict.fromkeys(f"{iso_utc(r.started_at)}: {r.error}" for r in finished[:10] if r.error))[:5]
    live = read_live_state(store.path, source)
    if live is not None and live.failing_since is not None:
        # A live feed that is down is the source's news, whatever the scheduled runs say: it shows as a failed
        # run going on since the feed began failing (the screens and `status` say "failing since").
        down = RunRecord(id=0, campaign=campaign, source=source, started_at=live.failing_since, finished_at=None,
                         status="failed", requests=0, posts_read=0, users_read=0, posts_new=0, posts_updated=0,
                         cost_usd=0.0, error=f"live feed down: {live.error}", rate_limit_reset=None)
        runs = [down, *runs]
        finished = [down, *finished]
        failed = [down, *failed]
        errors = (f"{iso_utc(live.failing_since)}: live feed down: {live.error}"
                  + (f" ({live.held:,} events held)" if live.held else ""), *errors[:4])
    return SourceHealth(
        source=source,
        last_run=runs[0] if runs else None,
        last_success_at=next((r.finished_at for r in finished if r.status in ("ok", "partial")), None),
        backoff_until=backoff,
        cursors=tuple(CursorState(c.query, c.position, c.pending is not None, c.since, updated)
                      for c, updated in cursors if c.source == source),
        runs_today=runs_today,
        requests_today=requests_today,
        spent_today_usd=round(spent_today, 4),
        recent_errors=errors,
        last_success_started_at=next((r.started_at for r in finished if r.status in ("ok", "partial")), None),
        failed_runs=len(failed),
        failing_since=min(r.started_at for r in failed) if failed else None,
        live=live,
    )


@dataclass(frozen=True)
class SourceRuns:
    """How collection went for one source of a campaign: runs by status and the span they cover."""

    source: str
    runs: int
    by_status: dict[str, int]
    first_started_at: datetime | None
    last_finished_at: datetime | None
    posts_new: int
    reasons: dict[str, int] = field(default_factory=dict)  # runs that were not `ok`, per kind of reason


def run_history(store: Store, campaign: str) -> list[SourceRuns]:
    """Collection runs per source of a campaign (counts by status, first start, last finish, posts stored)."""
    grouped: dict[str, dict[str, Any]] = {}
    for source, status, runs, first, last, posts_new in store.conn.execute(
            "SELECT source, status, count(*), min(started_at), max(finished_at), coalesce(sum(posts_new), 0) "
            "FROM runs WHERE campaign = ? GROUP BY source, status ORDER BY source, status", (campaign,)):
        entry = grouped.setdefault(source, {"runs": 0, "by_status": {}, "first": None, "last": None, "posts": 0})
        entry["runs"] += runs
        entry["by_status"][status] = runs
        entry["first"] = min(filter(None, (entry["first"], first)), default=None)
        entry["last"] = max(filter(None, (entry["last"], last)), default=None)
        entry["posts"] += posts_new
    reasons: dict[str, Counter[str]] = {}
    for source, error in store.conn.execute(
            "SELECT source, error FROM runs WHERE campaign = ? AND status NOT IN ('ok', 'running') "
            "AND error IS NOT NULL", (campaign,)):
        reasons.setdefault(source, Counter()).update(run_reason_kinds(error))
    return [SourceRuns(source=source, runs=e["runs"], by_status=e["by_status"],
                       first_started_at=parse_optional_time(e["first"]),
                       last_finished_at=parse_optional_time(e["last"]), posts_new=e["posts"],
                       reasons=dict(reasons.get(source, Counter()).most_common()))
            for source, e in grouped.items()]


def _iso(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment is not None else None


def _run_json(record: RunRecord) -> dict[str, Any]:
    """A run record as a JSON-ready dict, times as ISO-8601 UTC."""
    return {**asdict(record), "started_at": iso_utc(record.started_at), "finished_at": _iso(record.finished_at),
            "rate_limit_reset": _iso(record.rate_limit_reset)}


# What a run's recorded problems come to in a few words: (pattern, one, several, kind). Counted where the
# pattern counts things (a deleted original is named once per post that quoted or reposted it); `kind` names
# the reason across runs (the report's methods count runs per kind).
_REASONS: tuple[tuple[re.Pattern[str], str, str, str], ...] = (
    (re.compile(r"Could not find tweet with referenced_tweets\.id"), "{n} deleted original", "{n} deleted originals",
     "an original post deleted or hidden (the repost or quote is kept)"),
    (re.compile(r"Could not find user with"), "{n} missing author", "{n} missing authors", "an author not found"),
    (re.compile(r"daily budget \$[\d,.]+ reached"), "budget reached", "budget reached",
     "the daily budget reached (X post reads paused)"),
    (re.compile(r"rate.limit|Too Many Requests|\b429\b", re.IGNORECASE), "rate-limited", "rate-limited",
     "a rate limit"),
    (re.compile(r"stopped by shutdown"), "stopped by shutdown", "stopped by shutdown",
     "stopped by a shutdown (resumed by the next run)"),
    (re.compile(r"reaches back 7 days"), "window beyond 7 days", "window beyond 7 days",
     "part of the window beyond X's 7 days of search"),
    (re.compile(r"counts not refreshed"), "counts not refreshed", "counts not refreshed",
     "the platform's counts not refreshed"),
    (re.compile(r"profiles and counters"), "profiles not refreshed", "profiles not refreshed",
     "profiles and counters not refreshed"),
    (re.compile(r"every instance failed"), "every instance failed", "every instance failed", "every instance failed"),
    (re.compile(r"(?P<server>[\w.-]+) is skipped until the next run"), "{server} skipped", "{server} skipped",
     "an instance skipped"),
)
_REASON_LIMIT = 40


def run_reason(error: str | None) -> str | None:
    """A run's recorded error or problems shortened for a status line: `1 deleted original`, `budget reached`,
    `mastodon.social skipped`; otherwise the first problem, cut to about 40 characters."""
    if not error:
        return None
    found: list[str] = []
    for pattern, one, several, _kind in _REASONS:
        matches = list(pattern.finditer(error))
        if matches:
            template = one if len(matches) == 1 else several
            server = matches[0].groupdict().get("server") or ""
            found.append(template.format(n=len(matches), server=server))
    if found:
        return ", ".join(dict.fromkeys(found))
    first = " ".join(error.split("; ")[0].split())
    return first if len(first) <= _REASON_LIMIT else first[:_REASON_LIMIT - 1].rstrip() + "…"


def run_reason_kinds(error: str | None) -> list[str]:
    """The kinds of reason a run's recorded error holds (`a rate limit`, ...), for counting runs by reason;
    `other` for a problem of no known kind."""
    if not error:
        return []
    kinds = [kind for pattern, _one, _several, kind in _REASONS if pattern.search(error)]
    return kinds or ["other"]
