"""The live storm dashboard: `take_snapshot` reads metrics, a pure `render(snapshot)` draws it, `run_live` refreshes.

The screen is laid out by priority for the space it gets (80x24 and up). The headline figures, both goals with
N/M (P%), each source's state and the spend against the budget are never cut; when the screen is too small
the rest goes whole, lowest priority first: extra notes, the latest posts, the top accounts, then single lines
(last alert, sparkline, platforms, targets). Co-hashtags only stand beside the top accounts on wide screens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import intel, metrics, platforms
from .config import CampaignConfig, Config
from .console import GAP, ScreenPart, first_that_fits, fit_parts, in_columns, packed, screen_text, text_part
from .intel.lines import intel_lines
from .report.names import Namer, NamingPolicy
from .report.rows import KnownAccount
from .store import Store
from .times import format_duration

SPARK = "▁▂▃▄▅▆▇█"
SPARK_MINUTES = 60
MIN_GOAL_BAR = 6  # both goals share a line while their bars are at least this long
NEW_BLUESKY_ACCOUNT = "(new Bluesky account)"
# A fading storm is shouted about (red) for this long after it began, then said quietly until it recovers.
FADING_LOUD_FOR = timedelta(minutes=10)
# A source failing this long without a success no longer holds the per-minute figures back (metrics.health).
FAILING_SOURCE = timedelta(minutes=10)

# --- the snapshot --------------------------------------------------------------------------------------


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
    peak = metrics.peak_minute(store, campaign.name, window, reader=reader)
    # "Fading" compares with the busiest minute so far (a re-read of an old storm must not see its future peak).
    so_far = metrics.per_minute(store, campaign.name, window.since,
                                max(window.since, min(spark_end, window.until)), reader=reader)
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
        fading=metrics.current_fading(so_far, window.since),
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
    return f"@{screen_text(handle)}"


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
                    text=screen_text(namer.text(post.text, post.platform)), platform=post.platform)


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
            alerts.append(f"{source.name}: the run started {_local(source.last_run_at, snapshot)} is still going — "
                          "slow answers?" if source.last_status == "running" else
                          f"{source.name} has not run since {_local(source.last_run_at, snapshot)} — "
                          "is the collector running?")
    if snapshot.budget_paused_until is not None and snapshot.budget_usd is not None:
        alerts.append(f"Daily budget ${snapshot.budget_usd:,.2f} reached: X post reads are paused until "
                      f"{_local(snapshot.budget_paused_until, snapshot)} (00:00 UTC)")
    return replace(snapshot, alerts=tuple(alerts))


# --- rendering (pure: a snapshot in, a renderable out) --------------------------------------------------


def render(snapshot: Snapshot) -> RenderableType:
    """The dashboard for one snapshot; it lays itself out for the console's width and height when drawn."""
    return _DashboardView(snapshot)


class _DashboardView:
    """A renderable that chooses what to show from the space it is given (80x24 and up)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or console.height or 24
        yield Group(*(part.draw(rows) for part, rows in fit_parts(_parts(self.snapshot, console, width), height)))


def _parts(snapshot: Snapshot, console: Console, width: int) -> list[ScreenPart]:
    """Every part of the screen with its priority (drop 0: never dropped)."""
    figures = _figures(snapshot, width)
    goals = _goals(snapshot, width)
    health = _health(snapshot, width)
    parts = [
        ScreenPart(0, 0, 1, 1, lambda _rows: _header(snapshot, width)),
        ScreenPart(1, 0, len(figures), len(figures), lambda _rows: Group(*figures)),
        *text_part(2, 4, _platforms(snapshot), console, width),
        *text_part(3, 5, _sparkline(snapshot, width), console, width),
        ScreenPart(4, 0, len(goals), len(goals), lambda _rows: Group(*goals)),
        *text_part(5, 3, _targets(snapshot), console, width),
        ScreenPart(9, 0, len(health), len(health), lambda _rows: Group(*health)),
    ]
    # X's stream beside the sources' state: a gap going on is never dropped (reposts are being missed).
    stream, stream_drop = _stream(snapshot)
    parts += text_part(8, stream_drop, stream, console, width)
    for index, alert in enumerate(snapshot.alerts):
        parts += text_part(10 + index, 0, Text(f"⚠ {screen_text(alert)}", style="bold white on red"), console, width)
    parts += text_part(40, 2, _fading_note(snapshot), console, width)
    parts += text_part(41, 6, _last_alert(snapshot), console, width)
    for index, note in enumerate(_notes(snapshot)):
        parts += text_part(50 + index, 9, note, console, width)
    # Storm intelligence below the targets: a copy-paste warning holds its place, the rest gives way first.
    for index, (line, drop) in enumerate(_intel_lines(snapshot, width)):
        parts += text_part(30 + index, drop, line, console, width)
    # The lists: top accounts (with co-hashtags beside them when wide), then the latest posts.
    accounts = len(snapshot.top_accounts)
    if accounts:
        parts.append(ScreenPart(6, 7, 3 + min(3, accounts), 3 + accounts,
                           lambda rows: _lists(snapshot, width, rows - 3)))
    latest = max(1, len(snapshot.latest))
    parts.append(ScreenPart(7, 8, 2 + min(2, latest), 2 + latest, lambda rows: _latest(snapshot, rows - 2)))
    return parts


def _local(moment: datetime, snapshot: Snapshot) -> str:
    return moment.astimezone(ZoneInfo(snapshot.timezone)).strftime("%H:%M")


def _compact(number: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}{suffix}"
    return f"{number:,.0f}"


def _header(snapshot: Snapshot, width: int) -> Text:
    now, start, end = snapshot.now, snapshot.start, snapshot.end
    if now < start:
        clocks = [f"storm starts in {format_duration(start - now)}", f"starts in {format_duration(start - now)}"]
    elif now < end:
        clocks = [f"{format_duration(now - start)} into the storm · ends in {format_duration(end - now)}",
                  f"{format_duration(now - start)} in · {format_duration(end - now)} left"]
    else:
        ago = f", {format_duration(now - end)} ago" if now - end >= timedelta(minutes=1) else ""
        clocks = [f"storm over: ended {_local(end, snapshot)}{ago}",
                  f"ended {_local(end, snapshot)}"]
    first = f"#{snapshot.hashtags[0]}" + (f" +{len(snapshot.hashtags) - 1}" if len(snapshot.hashtags) > 1 else "")
    if snapshot.names == "pseudonymized":
        names = [f"names: pseudonymized below {snapshot.names_threshold:,} followers", "names: pseudonymized",
                 "names hidden"]
    else:
        names = ["names: public (everyone named)", "names: public", "names public"]
    local = _local(now, snapshot)

    def variant(tags: str, clock: str, zone: str, mode: str) -> Text:
        text = Text(no_wrap=True)
        text.append(f" {tags} ", style="bold black on yellow")
        text.append(f"  {clock}", style="bold")
        text.append(f"  {zone}", style="dim")
        text.append(f"  {mode}", style="bold magenta" if snapshot.names == "public" else "dim")
        return text

    # What gives way, one after the other, when narrow: the mode's long form, the other tags, the zone's name,
    # the long clock, and last the mode's medium form.
    choice = [" ".join(f"#{t}" for t in snapshot.hashtags), clocks[0], f"{local} {snapshot.timezone}", names[0]]
    variants = [variant(*choice)]
    for position, shorter in ((3, names[1]), (0, first), (2, local), (1, clocks[1]), (3, names[2])):
        choice[position] = shorter
        variants.append(variant(*choice))
    return first_that_fits(variants, width)


def _figure(label: str, value: str) -> Text:
    return Text.assemble((f"{label} ", "dim"), (value, "bold cyan"))


def _figures(snapshot: Snapshot, width: int) -> list[Text]:
    """The headline figures, as many to a line as fit, never one cut."""
    totals = snapshot.totals
    peak = snapshot.peak
    cells = [
        _figure("posts", f"{totals.posts:,}"),
        _figure("last full minute", f"{snapshot.posts_last_minute:,}"),
        _figure("5-min mean", f"{snapshot.posts_per_minute_5m:,.1f}/min"),
        _figure("peak minute", f"{peak.posts:,}" + (f" at {_local(peak.minute, snapshot)}" if peak.minute else "")),
        _figure("people", f"{totals.contributors:,}"),
        _figure("new in 5 min", f"{snapshot.new_contributors_5m:,}"),
        _figure("reach", _compact(totals.potential_reach)),
        _figure("engagement", _compact(totals.engagement)),
    ]
    if snapshot.impressions_from:
        only = snapshot.not_reporting_impressions
        shown = " + ".join(platforms.label(p) for p in snapshot.impressions_from)
        cells.append(_figure("impressions", _compact(totals.impressions) + (f" ({shown} only)" if only else "")))
    elif snapshot.by_platform:
        names = " and ".join(platforms.label(p) for p in snapshot.by_platform)
        cells.append(_figure("impressions", f"— (not reported by {names})"))
    return in_columns(cells, width)


def _platforms(snapshot: Snapshot) -> Text | None:
    """Posts per platform, when the campaign runs on more than one."""
    if len(snapshot.by_platform) < 2:
        return None
    text = Text()
    text.append("by platform ", style="dim")
    for index, (name, posts) in enumerate(sorted(snapshot.by_platform.items(), key=lambda item: -item[1])):
        text.append(f"{' · ' if index else ''}{platforms.label(name)} ")
        text.append(f"{posts:,}", style="bold cyan")
    return text


def _sparkline(snapshot: Snapshot, width: int) -> Text:
    """Posts per minute over the last hour, as bars, with the busiest of those minutes."""
    busiest = max(snapshot.per_minute, default=0)
    tail = f" busiest {busiest:,}/min"
    values = list(snapshot.per_minute)[-max(10, width - 16 - len(tail)):]
    top = max(values, default=0)
    line = "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] if top else SPARK[0]
                   for v in values)
    text = Text(no_wrap=True)
    text.append(f"last {len(values)} min ", style="dim")
    text.append(line, style="green")
    text.append(f" busiest {top:,}/min", style="dim")
    return text


def _bar(done: int, goal: int, width: int) -> str:
    share = min(1.0, done / goal) if goal else 0.0
    filled = int(share * width + 0.5)
    return "█" * filled + "░" * (width - filled)


def _goals(snapshot: Snapshot, width: int) -> list[Text]:
    """Both goals with N/M (P%) and a bar each: on one line when they fit, else one a line."""
    goals = [(label, done, goal) for label, done, goal in (
        ("posts", snapshot.totals.posts, snapshot.goal_posts),
        ("people", snapshot.totals.contributors, snapshot.goal_contributors)) if goal]
    if not goals:
        return []

    def line(items: list[tuple[str, int, int]]) -> tuple[Text, int]:
        words = [(f"goal {label} ", f" {done:,}/{goal:,} ({done / goal:.0%})") for label, done, goal in items]
        fixed = sum(cell_len(a) + cell_len(b) for a, b in words) + len(GAP) * (len(items) - 1)
        bar = max(0, min(30, (width - fixed) // len(items)))
        text = Text(no_wrap=True)
        for index, ((label, figures), (_, done, goal)) in enumerate(zip(words, items, strict=True)):
            text.append(GAP if index else "")
            text.append(label, style="dim")
            text.append(_bar(done, goal, bar), style="magenta")
            text.append(figures)
        return text, bar

    together, bar = line(goals)
    if len(goals) == 1 or (bar >= MIN_GOAL_BAR and cell_len(together.plain) <= width):
        return [together]
    return [line([goal])[0] for goal in goals]  # one a line rather than bars too short to read


def _lists(snapshot: Snapshot, width: int, rows: int) -> Table:
    wide = width >= 100
    accounts = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False, title_style="bold",
                     title="top accounts", title_justify="left")
    accounts.add_column("account", overflow="ellipsis", no_wrap=True, ratio=3)
    accounts.add_column("posts", justify="right", no_wrap=True)
    accounts.add_column("followers", justify="right", no_wrap=True)
    if wide:
        accounts.add_column("engagement", justify="right", no_wrap=True)
    for account in snapshot.top_accounts[:rows]:
        cells: list[RenderableType] = [Text(screen_text(account.shown)), f"{account.posts:,}",
                                       _compact(account.followers)]
        if wide:
            cells.append(_compact(account.engagement))
        accounts.add_row(*cells)
    if not wide or not snapshot.co_hashtags:
        return accounts  # co-hashtags give way first: never squeeze the accounts for them
    tags = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False, title="co-hashtags",
                 title_justify="left", title_style="bold")
    tags.add_column("tag", overflow="ellipsis", no_wrap=True, ratio=2)
    tags.add_column("posts", justify="right", no_wrap=True)
    for tag, count in snapshot.co_hashtags[:rows]:
        tags.add_row(Text(f"#{screen_text(tag)}"), f"{count:,}")
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(ratio=3)
    grid.add_column(ratio=2)
    grid.add_row(accounts, tags)
    return grid


def _targets(snapshot: Snapshot) -> Text | None:
    if not snapshot.targets:
        return None
    text = Text()
    text.append("targets named ", style="bold")
    for index, (target, count) in enumerate(snapshot.targets):
        text.append(f"{' · ' if index else ''}@{screen_text(target)} ")
        text.append(f"{count:,}", style="green" if count else "bold red")
    return text


def _intel_lines(snapshot: Snapshot, width: int) -> list[tuple[Text, int]]:
    """Storm intelligence lines (intel/lines.py) fitted to the width: parts dropped from the end until the line
    fits, and a line whose first part does not fit left out (never cut half-way); each with its drop priority."""
    if snapshot.intel is None:
        return []
    fitted = []
    for line in intel_lines(snapshot.intel, lambda moment: _local(moment, snapshot)):
        parts = line.parts
        while parts and cell_len("".join(text for text, _ in parts)) > width:
            parts = parts[:-1]
        if parts:
            fitted.append((Text.assemble(*parts, no_wrap=True, overflow="crop"), line.drop))
    return fitted


def _latest(snapshot: Snapshot, rows: int) -> Panel:
    lines = Table.grid(padding=(0, 1), expand=True)
    lines.add_column(no_wrap=True, style="dim")
    lines.add_column(no_wrap=True, overflow="ellipsis", max_width=22)
    lines.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for post in snapshot.latest[:rows]:
        # Made safe when the snapshot was taken; again here, so that no snapshot can put a control character on screen.
        lines.add_row(_local(post.created_at, snapshot), Text(screen_text(post.author), style="cyan"),
                      Text(screen_text(post.text)))
    if not snapshot.latest:
        lines.add_row("", "", Text("no posts in the storm window yet", style="dim"))
    return Panel(lines, title="latest posts", title_align="left", box=box.ROUNDED, padding=(0, 1))


_STATUS_STYLES = {"ok": "green", "partial": "yellow", "rate_limited": "yellow", "failed": "bold red"}


def _source_segment(source: SourceLine, snapshot: Snapshot, full: bool) -> Text:
    """One source's state in words: `x ok 19:39 · next 19:41 · 81 req`, `x failing since 19:20 (4 runs)`."""
    text = Text(no_wrap=True)
    text.append(f"{source.name} ", style="bold")
    if source.last_status == "failed":
        since = _local(source.failing_since or source.last_run_at or snapshot.now, snapshot)
        runs = f" ({source.failed_runs} runs)" if source.failed_runs > 1 else ""
        text.append(f"failing since {since}{runs}", style="bold red")
    elif source.backoff_until and source.backoff_until > snapshot.now:
        text.append(f"rate-limited until {_local(source.backoff_until, snapshot)}", style="yellow")
    elif source.paused_until is not None:
        text.append(f"paused by the budget until {_local(source.paused_until, snapshot)}", style="yellow")
    else:
        status = (source.last_status or "not run").replace("_", "-")
        text.append(status + (" since" if status == "running" else ""),
                    style=_STATUS_STYLES.get(source.last_status or "", "dim"))
        if source.last_run_at:
            text.append(f" {_local(source.last_run_at, snapshot)}")
        if source.last_status == "partial" and source.reason:
            text.append(f" ({source.reason})", style="yellow")
    if full and source.next_run_at and source.next_run_at > snapshot.now:
        text.append(f" · next {_local(source.next_run_at, snapshot)}")
    text.append(f" · {source.requests_today:,} req")
    return text


def _stream(snapshot: Snapshot) -> tuple[Text | None, int]:
    """X's filtered stream in one line, with its drop priority: connected since when, or the gap going on."""
    stream = snapshot.x_stream
    text = Text(no_wrap=True)
    text.append("x stream ", style="bold")
    if snapshot.x_stream_off:
        text.append("off — search only: reposts not collected", style="yellow")
        return text, 1
    if stream is None:
        return None, 1
    gap = stream.current_gap
    if stream.connected_since is not None:
        text.append(f"connected since {_local(stream.connected_since, snapshot)}", style="green")
        text.append(f" · {stream.posts:,} posts")
    elif gap is not None and snapshot.now < snapshot.end:
        text.append(f"disconnected since {_local(gap.start, snapshot)} ({screen_text(gap.reason)})", style="bold red")
        text.append(" — reposts are being missed")
        return text, 0
    elif snapshot.now < snapshot.end:
        text.append("not connected yet", style="dim")
    else:
        text.append(f"connected {format_duration(timedelta(seconds=stream.connected_seconds))} of the storm, "
                    f"{len(stream.gaps):,} gap{'' if len(stream.gaps) == 1 else 's'}")
    return text, 1


def _spend(snapshot: Snapshot) -> Text | None:
    if not any(s.paused_until is not None or s.spent_today_usd for s in snapshot.sources) \
            and snapshot.budget_usd is None and not snapshot.storm_spent_usd:
        return None
    text = Text(no_wrap=True)
    text.append(f"spent today ${snapshot.spent_today_usd:,.2f}", style="bold")
    if snapshot.budget_usd is not None:
        text.append(f" of ${snapshot.budget_usd:,.2f}", style="bold")
    # After midnight UTC (or with the plan's cost) today's spend is not the storm's: both are told.
    if round(snapshot.storm_spent_usd, 2) != round(snapshot.spent_today_usd, 2):
        text.append(f" (storm total ${snapshot.storm_spent_usd:,.2f})")
    if snapshot.budget_runs_out_at is not None:
        text.append(f", runs out {_local(snapshot.budget_runs_out_at, snapshot)} at this pace", style="yellow")
    return text


def _health(snapshot: Snapshot, width: int) -> list[Text]:
    """Each source's state and the spend against the budget, packed onto lines, never one cut; the next run
    times are left out when they would cost a line."""
    spend = [spend] if (spend := _spend(snapshot)) is not None else []
    full = packed([_source_segment(s, snapshot, True) for s in snapshot.sources] + spend, width)
    short = packed([_source_segment(s, snapshot, False) for s in snapshot.sources] + spend, width)
    return full if len(full) <= len(short) else short


def _fading_note(snapshot: Snapshot) -> Text | None:
    """After the first minutes of a drop, a quiet line until volume recovers (the red line said it once)."""
    fading = snapshot.fading
    if fading is None or not snapshot.start <= snapshot.now < snapshot.end \
            or snapshot.now - fading.started_at < FADING_LOUD_FOR:
        return None
    return Text(f"fading since {_local(fading.started_at, snapshot)}: {snapshot.posts_per_minute_5m:,.1f}/min "
                f"(5-min mean), peak {fading.peak:,}/min — time for a push", style="yellow")


def _last_alert(snapshot: Snapshot) -> Text | None:
    if snapshot.last_alert is None:
        return None
    moment, headline = snapshot.last_alert
    text = Text()
    text.append("last alert ", style="dim")
    text.append(f"{_local(moment, snapshot)} ")
    text.append(screen_text(headline), style="bold")
    return text


def _notes(snapshot: Snapshot) -> list[Text]:
    """Low-priority one-line notes (shown when there is room, dropped whole first)."""
    return [Text(screen_text(note), style="dim") for note in snapshot.notes]


# --- the live loop ------------------------------------------------------------------------------------


def run_live(read: Callable[[], Snapshot], stop: threading.Event, *, refresh_seconds: float = 1.0,
             console: Console | None = None) -> None:
    """Redraw the dashboard from `read()` about once a second until `stop` is set (or Ctrl-C)."""
    console = console or Console()
    with Live(render(read()), console=console, screen=True, auto_refresh=False, transient=False) as live:
        try:
            while not stop.wait(refresh_seconds):
                live.update(render(read()), refresh=True)
        except KeyboardInterrupt:
            stop.set()


def print_once(snapshot: Snapshot, console: Console | None = None) -> None:
    """Print one snapshot (no TTY: a report-style still frame, tall enough for every part)."""
    (console or Console(width=100, height=60)).print(render(snapshot))
