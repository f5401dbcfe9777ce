"""Collector health: each campaign's sources, cursors, last runs, errors, back-off, requests and spend."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import CampaignConfig, Config
from ..models import Cursor, RunRecord
from ..store import AlertRecord, Store, utc_day
from ..times import iso_utc, parse_time
from .budget import budget_runway
from .campaign import campaign_size
from .reader import ReaderChoice

# X serves posts up to 30 s before a request: the newest minute a finished run has completely.
PLATFORM_LAG = timedelta(seconds=30)


@dataclass(frozen=True)
class CursorState:
    """Where one query's collection stands."""

    query: str
    position: str | None
    pending: bool
    since: str | None
    updated_at: str


@dataclass(frozen=True)
class SourceHealth:
    """One source of one campaign: its last run, cursors, errors, requests and spend today."""

    source: str
    last_run: RunRecord | None
    last_success_at: str | None
    backoff_until: str | None
    cursors: tuple[CursorState, ...]
    runs_today: int
    requests_today: int
    spent_today_usd: float
    recent_errors: tuple[str, ...]
    last_success_started_at: str | None = None  # what it covers: posts up to about then are collected


@dataclass(frozen=True)
class CampaignHealth:
    """Collection status of one campaign."""

    name: str
    window_start: str
    window_end: str
    posts: int
    daily_budget_usd: float | None
    spent_today_usd: float
    sources: tuple[SourceHealth, ...]
    budget_runs_out_at: str | None = None  # during the storm window, at the pace of the last 15 minutes
    last_alert: AlertRecord | None = None


@dataclass(frozen=True)
class CollectionStatus:
    """Collection status of every selected campaign, as of `now` (storm clock)."""

    database: str
    now: str
    campaigns: tuple[CampaignHealth, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def collection_status(store: Store, config: Config, campaigns: tuple[CampaignConfig, ...],
                      now: datetime | None = None) -> CollectionStatus:
    """Campaigns, sources, cursors, last runs, errors, requests and spend."""
    now = now or config.clock.now()
    return CollectionStatus(database=str(store.path), now=iso_utc(now),
                            campaigns=tuple(campaign_health(store, c, now) for c in campaigns))


def campaign_health(store: Store, campaign: CampaignConfig, now: datetime, *,
                    reader: ReaderChoice = "auto") -> CampaignHealth:
    """Collection status of one campaign (its post count read through `reader`)."""
    day = utc_day(now)
    cursors = store.cursors(campaign.name)
    sources = tuple(_source_health(store, campaign.name, source, cursors, day) for source in campaign.sources)
    runway = budget_runway(store, campaign, now) if campaign.in_window(now) else None
    last_alerts = store.alerts(campaign.name, limit=1)
    return CampaignHealth(
        name=campaign.name, window_start=iso_utc(campaign.start), window_end=iso_utc(campaign.end),
        posts=campaign_size(store, campaign.name, reader=reader), daily_budget_usd=campaign.daily_budget_usd,
        spent_today_usd=round(store.spent(campaign.name, day), 4), sources=sources,
        budget_runs_out_at=iso_utc(runway.runs_out_at) if runway and runway.runs_out_at else None,
        last_alert=last_alerts[0] if last_alerts else None)


def complete_until(health: CampaignHealth, now: datetime) -> datetime:
    """The moment up to which collection is complete: the start of each source's newest successful run (a run
    still going does not count yet), the earliest of them, less X's lag."""
    starts = [parse_time(s.last_success_started_at) for s in health.sources if s.last_success_started_at]
    return min([now, *starts]) - PLATFORM_LAG


def _source_health(store: Store, campaign: str, source: str, cursors: list[tuple[Cursor, str]],
                   day: str) -> SourceHealth:
    runs = store.last_runs(campaign, source, limit=50)
    finished = [r for r in runs if r.status != "running"]
    runs_today, requests_today, spent_today = store.run_totals(campaign, source, day)
    backoff = store.backoff_until(campaign, source)
    errors = tuple(dict.fromkeys(f"{r.started_at}: {r.error}" for r in finished[:10] if r.error))[:5]
    return SourceHealth(
        source=source,
        last_run=runs[0] if runs else None,
        last_success_at=next((r.finished_at for r in finished if r.status in ("ok", "partial")), None),
        backoff_until=iso_utc(backoff) if backoff else None,
        cursors=tuple(CursorState(c.query, c.position, c.pending is not None, c.since, updated)
                      for c, updated in cursors if c.source == source),
        runs_today=runs_today,
        requests_today=requests_today,
        spent_today_usd=round(spent_today, 4),
        recent_errors=errors,
        last_success_started_at=next((r.started_at for r in finished if r.status in ("ok", "partial")), None),
    )


@dataclass(frozen=True)
class SourceRuns:
    """How collection went for one source of a campaign: runs by status and the span they cover."""

    source: str
    runs: int
    by_status: dict[str, int]
    first_started_at: str | None
    last_finished_at: str | None
    posts_new: int


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
    return [SourceRuns(source=source, runs=e["runs"], by_status=e["by_status"], first_started_at=e["first"],
                       last_finished_at=e["last"], posts_new=e["posts"]) for source, e in grouped.items()]
