"""The live snapshot: everything the dashboard and the team's live page show of a campaign, read at one moment.

`take_snapshot` reads the figures through this package (the running tallies on a refresh), names accounts by the
report's naming rules (`privacy.naming`: pseudonyms for small accounts unless names are public) and says what needs
someone now (`alerts`). Drawing is the caller's: the terminal dashboard (dashboard.py) and the web page (web/)
draw the same snapshot. Strangers' texts are one line without control characters here; each output cleans them
again for its own medium.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .. import intel, metrics, platforms
from ..config import CampaignConfig, Config
from ..normalize.text import one_line
from ..privacy.naming import KnownAccount, Namer, NamingPolicy
from ..store import Store
from ..times import format_duration

SPARK_MINUTES = 60
NEW_BLUESKY_ACCOUNT = "(new Bluesky account)"
# A fading storm is shouted about (red) for this long after it began, then said quietly until it recovers.
FADING_LOUD_FOR = timedelta(minutes=10)
# A source failing this long without a success no longer holds the per-minute figures back (metrics.health).
FAILING_SOURCE = timedelta(minutes=10)

@dataclass(frozen=True)
class SourceLine:
    """One source's collector health as the dashboard shows it."""

    name: str
    last_run_at: datetime | None
    last_status: str | None
    next_run_at: datetime | None
    backoff_until: datetime | None
    last_error: str | None
    spent_today_usd: float
    requests_today: int
    reason: str | None = None  # why the last run was not plain `ok`, in a few words (`1 deleted original`)
    failed_runs: int = 0  # failed runs in a row
    failing_since: datetime | None = None
    paused_until: datetime | None = None  # post reads paused by the daily budget until then


@dataclass(frozen=True)
class AccountLine:
    """One account of the top list, as the naming mode shows it."""

    shown: str  # `@handle`, or the pseudonym
    platform: str
    posts: int
    followers: int
    engagement: int


@dataclass(frozen=True)
class PostLine:
    """One of the latest posts, author and text as the naming mode shows them."""

    created_at: datetime
    author: str
    text: str
    platform: str


@dataclass(frozen=True)
class Snapshot:
    """Everything the dashboard shows, read at one moment (storm clock)."""

    campaign: str
    hashtags: tuple[str, ...]
    timezone: str
    now: datetime
    start: datetime
    end: datetime
    totals: metrics.Totals
    by_platform: dict[str, int]
    per_minute: tuple[int, ...]  # complete minutes up to `per_minute_end`, oldest first
    per_minute_end: datetime
    peak: metrics.Peak
    peak_so_far: int
    new_contributors_5m: int
    goal_posts: int | None
    goal_contributors: int | None
    top_accounts: tuple[AccountLine, ...]
    co_hashtags: tuple[tuple[str, int], ...]
    targets: tuple[tuple[str, int], ...]
    latest: tuple[PostLine, ...]
    sources: tuple[SourceLine, ...]
    budget_usd: float | None
    spent_today_usd: float
    names: str = "public"  # how accounts are named: "public" or "pseudonymized"
    names_threshold: int = 0  # pseudonymized: accounts with fewer followers are hidden
    alerts: tuple[str, ...] = field(default_factory=tuple)
    fading: metrics.FadingEpisode | None = None  # volume has dropped and not recovered (metrics/fading.py)
    last_alert: tuple[datetime, str] | None = None  # when the last alert was told, and its headline (alerts.py)
    budget_runs_out_at: datetime | None = None  # during the window, at the pace of the last 15 minutes
    budget_paused_until: datetime | None = None  # the daily budget is spent: X post reads resume then
    impressions_from: tuple[str, ...] = ()  # platforms with posts here that report impressions
    notes: tuple[str, ...] = ()  # low-priority lines, shown when there is room (dropped whole first)
    intel: intel.LiveIntel | None = None  # trending, targets' responses, copy-paste, counter-hashtags
    x_stream: metrics.StreamCoverage | None = None  # X's filtered stream over the storm so far (metrics/stream.py)
    x_stream_off: bool = False  # the campaign collects X without the stream: search only, no reposts
    storm_spent_usd: float = 0.0  # every UTC day of the storm window and the plan (told beside today's when more)
    # Complete minutes of the whole window so far, oldest first (from `start`): the web page's storm chart.
    per_minute_window: tuple[int, ...] = ()

    @property
    def posts_last_minute(self) -> int:
        """Posts in the newest complete minute."""
        return self.per_minute[-1] if self.per_minute else 0

    @property
    def posts_per_minute_5m(self) -> float:
        """Average posts per minute over the last five complete minutes."""
        recent = self.per_minute[-5:]
        return sum(recent) / len(recent) if recent else 0.0

    @property
    def not_reporting_impressions(self) -> tuple[str, ...]:
        """Platforms with posts here that do not report impressions."""
        return tuple(p for p in self.by_platform if p not in self.impressions_from)


def take_snapshot(store: Store, config: Config, campaign: CampaignConfig, *, now: datetime | None = None,
                  next_runs: dict[str, datetime | None] | None = None, list_size: int = 8,
                  reader: metrics.ReaderChoice = "auto", names: str | None = None) -> Snapshot:
    """Read everything the dashboard shows for one campaign (storm window, storm clock), figures through `reader`;
    accounts named as `names` says (default: `[dashboard] names`, else `[report] names`)."""
    now = now or config.clock.now()
    # The whole storm window: while the storm runs, nothing exists after now, so this is "the storm so far",
    # and it is the window the store keeps running tallies for (a refresh reads a few rows, not the posts).
    window = metrics.campaign_window(campaign)
    health = metrics.campaign_health(store, campaign, now, reader=reader)
    # Complete minutes only, and once the storm is over its last hour (not the quiet after it).
    complete = min(metrics.complete_until(health, now, failing_after=FAILING_SOURCE), window.until)
    spark_end = complete.replace(second=0, microsecond=0)
    spark = metrics.per_minute(store, campaign.name, spark_end - timedelta(minutes=SPARK_MINUTES), spark_end,
                               reader=reader)
    result = metrics.totals(store, campaign.name, window, reader=reader)
    # People whose first post falls in the last five complete minutes.
    new_recent = metrics.new_contributors(store, campaign.name, window, spark_end - timedelta(minutes=5),
                                          reader=reader) - metrics.new_contributors(store, campaign.name, window,
                                                                                    spark_end, reader=reader)
    # "Fading" compares with the busiest minute so far (a re-read of an old storm must not see its future peak), and
    # the peak is of the same complete minutes as the last full minute, the 5-minute mean and the sparkline: a
    # minute still filling (a slow source not caught up) is in none of them.
    so_far = metrics.per_minute(store, campaign.name, window.since,
                                max(window.since, min(spark_end, window.until)), reader=reader)
    busiest = max(range(len(so_far)), key=so_far.__getitem__, default=None)
    peak = metrics.Peak(None if busiest is None or not so_far[busiest]
                        else window.since.replace(second=0, microsecond=0) + timedelta(minutes=busiest),
                        so_far[busiest] if busiest is not None else 0)
    policy = NamingPolicy.for_campaign(campaign, names or config.dashboard_names, config.report.pseudonymize_below)
    top = metrics.top_accounts(store, campaign.name, window, limit=list_size, reader=reader)
    latest = metrics.latest_posts(store, campaign.name, window, limit=list_size)
    namer = _namer(store, campaign, policy, top, latest)
    paused = _paused_until(campaign, now, health.spent_today_usd)
    sources = tuple(_source_line(s, campaign, next_runs or {}, config, paused) for s in health.sources)
    by_platform = {name: t.posts for name, t in result.by_platform.items()}
    snapshot = Snapshot(
        campaign=campaign.name, hashtags=campaign.hashtags, timezone=str(campaign.timezone), now=now,
        start=campaign.start, end=campaign.end, totals=result.all, by_platform=by_platform,
        per_minute=tuple(spark), per_minute_end=spark_end, peak=peak, peak_so_far=max(so_far, default=0),
        new_contributors_5m=new_recent,
        goal_posts=campaign.goal_posts, goal_contributors=campaign.goal_contributors,
        top_accounts=tuple(_account_line(namer, a) for a in top),
        co_hashtags=tuple(metrics.co_hashtags(store, campaign, window, limit=list_size, reader=reader)),
        targets=tuple(metrics.target_mentions(store, campaign, window, reader=reader)),
        latest=tuple(_post_line(namer, p) for p in latest),
        sources=sources, budget_usd=campaign.daily_budget_usd, spent_today_usd=health.spent_today_usd,
        storm_spent_usd=health.storm_spent_usd, names=policy.mode, names_threshold=policy.threshold,
        fading=metrics.current_fading(so_far, window.since), per_minute_window=tuple(so_far),
        last_alert=((health.last_alert.sent_at, health.last_alert.headline)
                    if health.last_alert else None),
        budget_runs_out_at=health.budget_runs_out_at, budget_paused_until=paused,
        impressions_from=tuple(p for p in by_platform if _reports_impressions(p)),
        intel=intel.live(store, campaign, now),
        x_stream=metrics.stream_coverage(store, config, campaign, window, now, estimate=False),
        x_stream_off="x" in campaign.sources and not config.x.stream)
    return _with_alerts(snapshot, campaign)


def _reports_impressions(platform: str) -> bool:
    found = platforms.find_platform(platform)
    return found is not None and found.reports.impressions


def _paused_until(campaign: CampaignConfig, now: datetime, spent: float) -> datetime | None:
    """When X post reads resume, if the daily budget is spent (the budget resets at 00:00 UTC)."""
    if campaign.daily_budget_usd is None or spent < campaign.daily_budget_usd:
        return None
    midnight = now.astimezone(ZoneInfo("UTC")).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=1)


def _namer(store: Store, campaign: CampaignConfig, policy: NamingPolicy, top: Sequence[metrics.AccountStat],
           latest: Sequence[metrics.PostStat]) -> Namer:
    """The report's naming rules for what is on screen: the pseudonyms of the accounts shown are assigned (or
    read) in one store call. Mentions of accounts not on screen show as hidden unless always named."""
    shown = [(a.uid, a.handle, a.followers) for a in top]
    shown += [(p.author_uid, p.handle, p.followers) for p in latest if p.author_uid]
    known = {uid: KnownAccount(uid, uid.split(":", 1)[0], handle, followers or 0)
             for uid, handle, followers in shown if uid and handle and not handle.startswith("did:")}
    return Namer.for_report(store, campaign, policy, shown, known.values())


def _display_handle(platform: str, handle: str) -> str:
    """How a named account is written: `@handle`; a Bluesky account known only by its DID so far (the live
    feed carries no handle until its profile is looked up) as `(new Bluesky account)`."""
    if platform == "bluesky" and handle.startswith("did:"):
        return NEW_BLUESKY_ACCOUNT
    return f"@{one_line(handle)}"


def _shown(namer: Namer, uid: str | None, platform: str, handle: str, followers: int) -> str:
    if namer.is_named(handle, followers):
        return _display_handle(platform, handle)
    return namer.label(uid, handle, followers)


def _account_line(namer: Namer, account: metrics.AccountStat) -> AccountLine:
    return AccountLine(shown=_shown(namer, account.uid, account.platform, account.handle, account.followers),
                       platform=account.platform, posts=account.posts, followers=account.followers,
                       engagement=account.engagement)


def _post_line(namer: Namer, post: metrics.PostStat) -> PostLine:
    return PostLine(created_at=post.created_at,
                    author=_shown(namer, post.author_uid, post.platform, post.handle, post.followers),
                    text=one_line(namer.text(post.text, post.platform)), platform=post.platform)


def _source_line(health: metrics.SourceHealth, campaign: CampaignConfig, next_runs: dict[str, datetime | None],
                 config: Config, paused: datetime | None) -> SourceLine:
    last = health.last_run
    planned = next_runs.get(f"{campaign.name}/{health.source}")
    if planned is not None:  # the scheduler in this process knows; its times are wall-clock
        next_at: datetime | None = config.clock.now() + timedelta(
            seconds=(planned.timestamp() - time.time()) * config.clock.speed)
    elif last is not None and not config.clock.frozen:  # a frozen clock (a finished demo) has no next run
        next_at = last.started_at + campaign.interval_at(last.started_at)
    else:
        next_at = None
    if health.backoff_until and (next_at is None or health.backoff_until > next_at):
        next_at = health.backoff_until
    billed = (found := platforms.find_platform(health.source)) is not None and found.reports.billed
    return SourceLine(name=health.source, last_run_at=last.started_at if last else None,
                      last_status=last.status if last else None, next_run_at=next_at,
                      backoff_until=health.backoff_until, last_error=last.error if last else None,
                      spent_today_usd=health.spent_today_usd, requests_today=health.requests_today,
                      reason=health.last_reason, failed_runs=health.failed_runs, failing_since=health.failing_since,
                      paused_until=paused if billed else None)


def _with_alerts(snapshot: Snapshot, campaign: CampaignConfig) -> Snapshot:
    """The red lines: what needs someone now (volume fading just now, a source failing or silent, the budget)."""
    alerts: list[str] = []
    fading = snapshot.fading
    if snapshot.start <= snapshot.now < snapshot.end and fading is not None \
            and snapshot.now - fading.started_at < FADING_LOUD_FOR:
        alerts.append(f"Volume is fading: {snapshot.posts_per_minute_5m:,.0f} posts/min (5-min mean) vs "
                      f"{fading.peak:,} in the peak minute — {metrics.FADING_ADVICE}")
    for source in snapshot.sources:
        if source.last_status == "failed":
            alerts.append(f"{source.name} is failing: {(source.last_error or 'see the log').split(';')[0]}")
        elif source.last_run_at is None:
            alerts.append(f"{source.name} has not collected yet")
        elif snapshot.now - source.last_run_at > 3 * campaign.interval_at(snapshot.now) + timedelta(
                minutes=1) and not source.backoff_until:
            alerts.append(f"{source.name}: the run started {local_time(source.last_run_at, snapshot)} is still going — "
                          "slow answers?" if source.last_status == "running" else
                          f"{source.name} has not run since {local_time(source.last_run_at, snapshot)} — "
                          "is the collector running?")
    if snapshot.budget_paused_until is not None and snapshot.budget_usd is not None:
        alerts.append(f"Daily budget ${snapshot.budget_usd:,.2f} reached: X post reads are paused until "
                      f"{local_time(snapshot.budget_paused_until, snapshot)} (00:00 UTC)")
    return replace(snapshot, alerts=tuple(alerts))


def local_time(moment: datetime, snapshot: Snapshot) -> str:
    """A moment as HH:MM in the campaign's time zone."""
    return moment.astimezone(ZoneInfo(snapshot.timezone)).strftime("%H:%M")


# --- the words: what the dashboard and the web page say of a snapshot, each drawing them its own way -----------

Parts = list[tuple[str, str]]  # (text, style): a rich style name, which the web page maps to a class
_STATUS_STYLES = {"ok": "green", "partial": "yellow", "rate_limited": "yellow", "failed": "bold red"}


def clock_phrases(snapshot: Snapshot) -> tuple[str, str]:
    """The storm clock in words, long and short: starts in, into the storm and ends in, or ended when."""
    now, start, end = snapshot.now, snapshot.start, snapshot.end
    if now < start:
        return f"storm starts in {format_duration(start - now)}", f"starts in {format_duration(start - now)}"
    if now < end:
        return (f"{format_duration(now - start)} into the storm · ends in {format_duration(end - now)}",
                f"{format_duration(now - start)} in · {format_duration(end - now)} left")
    ago = f", {format_duration(now - end)} ago" if now - end >= timedelta(minutes=1) else ""
    return f"storm over: ended {local_time(end, snapshot)}{ago}", f"ended {local_time(end, snapshot)}"


def source_parts(source: SourceLine, snapshot: Snapshot, full: bool) -> Parts:
    """One source's state: `x ok 19:39 · next 19:41 · 81 req`, `x failing since 19:20 (4 runs)`; the next run
    only when `full`."""
    parts: Parts = [(f"{source.name} ", "bold")]
    if source.last_status == "failed":
        since = local_time(source.failing_since or source.last_run_at or snapshot.now, snapshot)
        runs = f" ({source.failed_runs} runs)" if source.failed_runs > 1 else ""
        parts.append((f"failing since {since}{runs}", "bold red"))
    elif source.backoff_until and source.backoff_until > snapshot.now:
        parts.append((f"rate-limited until {local_time(source.backoff_until, snapshot)}", "yellow"))
    elif source.paused_until is not None:
        parts.append((f"paused by the budget until {local_time(source.paused_until, snapshot)}", "yellow"))
    else:
        status = (source.last_status or "not run").replace("_", "-")
        parts.append((status + (" since" if status == "running" else ""),
                      _STATUS_STYLES.get(source.last_status or "", "dim")))
        if source.last_run_at:
            parts.append((f" {local_time(source.last_run_at, snapshot)}", ""))
        if source.last_status == "partial" and source.reason:
            parts.append((f" ({one_line(source.reason)})", "yellow"))
    if full and source.next_run_at and source.next_run_at > snapshot.now:
        parts.append((f" · next {local_time(source.next_run_at, snapshot)}", ""))
    parts.append((f" · {source.requests_today:,} req", ""))
    return parts


def stream_parts(snapshot: Snapshot) -> tuple[Parts | None, int]:
    """X's filtered stream, with how readily its line gives way (0: never, a gap going on): connected since when,
    or the gap going on; None when the campaign does not follow the stream."""
    stream = snapshot.x_stream
    parts: Parts = [("x stream ", "bold")]
    if snapshot.x_stream_off:
        return [*parts, ("off — search only: reposts not collected", "yellow")], 1
    if stream is None:
        return None, 1
    gap = stream.current_gap
    if stream.connected_since is not None:
        parts += [(f"connected since {local_time(stream.connected_since, snapshot)}", "green"),
                  (f" · {stream.posts:,} posts", "")]
    elif gap is not None and snapshot.now < snapshot.end:
        parts += [(f"disconnected since {local_time(gap.start, snapshot)} ({one_line(gap.reason)})", "bold red"),
                  (" — reposts are being missed", "")]
        return parts, 0
    elif snapshot.now < snapshot.end:
        parts.append(("not connected yet", "dim"))
    else:
        parts.append((f"connected {format_duration(timedelta(seconds=stream.connected_seconds))} of the storm, "
                      f"{len(stream.gaps):,} gap{'' if len(stream.gaps) == 1 else 's'}", ""))
    return parts, 1


def spend_parts(snapshot: Snapshot) -> Parts | None:
    """The spend against the budget, and when it runs out at this pace; None when nothing is billed or budgeted."""
    if not any(s.paused_until is not None or s.spent_today_usd for s in snapshot.sources) \
            and snapshot.budget_usd is None and not snapshot.storm_spent_usd:
        return None
    parts: Parts = [(f"spent today ${snapshot.spent_today_usd:,.2f}", "bold")]
    if snapshot.budget_usd is not None:
        parts.append((f" of ${snapshot.budget_usd:,.2f}", "bold"))
    # After midnight UTC (or with the plan's cost) today's spend is not the storm's: both are told.
    if round(snapshot.storm_spent_usd, 2) != round(snapshot.spent_today_usd, 2):
        parts.append((f" (storm total ${snapshot.storm_spent_usd:,.2f})", ""))
    if snapshot.budget_runs_out_at is not None:
        parts.append((f", runs out {local_time(snapshot.budget_runs_out_at, snapshot)} at this pace", "yellow"))
    return parts
