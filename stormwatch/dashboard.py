"""The live storm dashboard: `take_snapshot` reads metrics, a pure `render(snapshot)` draws it, `run_live` refreshes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import intel, metrics, platforms
from .config import CampaignConfig, Config
from .normalize.text import one_line
from .store import Store
from .times import format_duration

SPARK = "▁▂▃▄▅▆▇█"
SPARK_MINUTES = 60
INTEL_ROOM = 14  # rows the lists and latest posts keep before storm-intelligence lines are shown


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
    per_minute: tuple[int, ...]
    per_minute_end: datetime
    peak: metrics.Peak
    peak_so_far: int
    new_contributors_5m: int
    goal_posts: int | None
    goal_contributors: int | None
    top_accounts: tuple[metrics.AccountStat, ...]
    co_hashtags: tuple[tuple[str, int], ...]
    targets: tuple[tuple[str, int], ...]
    latest: tuple[metrics.PostStat, ...]
    sources: tuple[SourceLine, ...]
    budget_usd: float | None
    spent_today_usd: float
    alerts: tuple[str, ...] = field(default_factory=tuple)
    fading: metrics.FadingEpisode | None = None  # volume has dropped and not recovered (metrics/fading.py)
    last_alert: tuple[datetime, str] | None = None  # when the last alert was told, and its headline (alerts.py)
    budget_runs_out_at: datetime | None = None  # during the window, at the pace of the last 15 minutes
    intel: intel.LiveIntel | None = None  # trending, targets' responses, copy-paste, counter-hashtags

    @property
    def posts_last_minute(self) -> int:
        """Posts in the newest complete minute."""
        return self.per_minute[-1] if self.per_minute else 0

    @property
    def posts_per_minute_5m(self) -> float:
        """Average posts per minute over the last five complete minutes."""
        recent = self.per_minute[-5:]
        return sum(recent) / len(recent) if recent else 0.0


def take_snapshot(store: Store, config: Config, campaign: CampaignConfig, *, now: datetime | None = None,
                  next_runs: dict[str, datetime | None] | None = None, list_size: int = 8,
                  reader: metrics.ReaderChoice = "auto") -> Snapshot:
    """Read everything the dashboard shows for one campaign (storm window, storm clock), figures through `reader`."""
    now = now or config.clock.now()
    # The whole storm window: while the storm runs, nothing exists after now, so this is "the storm so far",
    # and it is the window the store keeps running tallies for (a refresh reads a few rows, not the posts).
    window = metrics.campaign_window(campaign)
    health = metrics.campaign_health(store, campaign, now, reader=reader)
    complete = metrics.complete_until(health, now)
    spark_end = complete.replace(second=0, microsecond=0)
    spark = metrics.per_minute(store, campaign.name, spark_end - timedelta(minutes=SPARK_MINUTES), spark_end,
                               reader=reader)
    result = metrics.totals(store, campaign.name, window, reader=reader)
    new_recent = metrics.new_contributors(store, campaign.name, window, spark_end - timedelta(minutes=5),
                                          reader=reader)
    peak = metrics.peak_minute(store, campaign.name, window, reader=reader)
    # "Fading" compares with the busiest minute so far (a re-read of an old storm must not see its future peak).
    so_far = metrics.per_minute(store, campaign.name, window.since,
                                max(window.since, min(spark_end, window.until)), reader=reader)
    peak_so_far = max(so_far, default=0)
    sources = tuple(_source_line(s, campaign, next_runs or {}, config) for s in health.sources)
    snapshot = Snapshot(
        campaign=campaign.name, hashtags=campaign.hashtags, timezone=str(campaign.timezone), now=now,
        start=campaign.start, end=campaign.end, totals=result.all,
        by_platform={name: t.posts for name, t in result.by_platform.items()},
        per_minute=tuple(spark), per_minute_end=spark_end, peak=peak, peak_so_far=peak_so_far,
        new_contributors_5m=new_recent,
        goal_posts=campaign.goal_posts, goal_contributors=campaign.goal_contributors,
        top_accounts=tuple(metrics.top_accounts(store, campaign.name, window, limit=list_size, reader=reader)),
        co_hashtags=tuple(metrics.co_hashtags(store, campaign, window, limit=list_size, reader=reader)),
        targets=tuple(metrics.target_mentions(store, campaign, window, reader=reader)),
        latest=tuple(metrics.latest_posts(store, campaign.name, window, limit=list_size)),
        sources=sources, budget_usd=campaign.daily_budget_usd, spent_today_usd=health.spent_today_usd,
        fading=metrics.current_fading(so_far, window.since),
        last_alert=((health.last_alert.sent_at, health.last_alert.headline)
                    if health.last_alert else None),
        budget_runs_out_at=health.budget_runs_out_at, intel=intel.live(store, campaign, now))
    return _with_alerts(snapshot, campaign)


def _source_line(health: metrics.SourceHealth, campaign: CampaignConfig, next_runs: dict[str, datetime | None],
                 config: Config) -> SourceLine:
    last = health.last_run
    planned = next_runs.get(f"{campaign.name}/{health.source}")
    if planned is not None:  # the scheduler in this process knows; its times are wall-clock
        next_at: datetime | None = config.clock.now() + timedelta(
            seconds=(planned.timestamp() - time.time()) * config.clock.speed)
    elif last is not None:
        next_at = last.started_at + campaign.interval_at(last.started_at)
    else:
        next_at = None
    if health.backoff_until and (next_at is None or health.backoff_until > next_at):
        next_at = health.backoff_until
    return SourceLine(name=health.source, last_run_at=last.started_at if last else None,
                      last_status=last.status if last else None, next_run_at=next_at,
                      backoff_until=health.backoff_until, last_error=last.error if last else None,
                      spent_today_usd=health.spent_today_usd, requests_today=health.requests_today)


def _with_alerts(snapshot: Snapshot, campaign: CampaignConfig) -> Snapshot:
    alerts: list[str] = []
    started = snapshot.now >= snapshot.start
    if started and snapshot.fading is not None and snapshot.now < snapshot.end + timedelta(hours=1):
        alerts.append(f"Volume is fading: {snapshot.posts_per_minute_5m:.0f}/min over the last 5 minutes vs a peak "
                      f"of {snapshot.peak_so_far}/min — {metrics.FADING_ADVICE}")
    for source in snapshot.sources:
        if source.last_status == "failed":
            alerts.append(f"{source.name} is failing: {(source.last_error or 'see the log').split(';')[0]}")
        elif source.last_run_at is None:
            alerts.append(f"{source.name} has not collected yet")
        elif snapshot.now - source.last_run_at > 3 * campaign.interval_at(snapshot.now) + timedelta(
                minutes=1) and not source.backoff_until:
            alerts.append(f"{source.name} has not run since {_local(source.last_run_at, snapshot)} — "
                          "is the collector running?")
    if snapshot.budget_usd is not None and snapshot.spent_today_usd >= snapshot.budget_usd:
        alerts.append(f"Daily budget ${snapshot.budget_usd:.2f} reached: X post reads are paused until 00:00 UTC")
    return replace(snapshot, alerts=tuple(alerts))


# --- rendering (pure: a snapshot in, a renderable out) --------------------------------------------------


def render(snapshot: Snapshot) -> RenderableType:
    """The dashboard for one snapshot; it lays itself out for the console's width and height when drawn."""
    return _DashboardView(snapshot)


class _DashboardView:
    """A renderable that chooses how much to show from the space it is given (80x24 and up)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        snapshot = self.snapshot
        width = options.max_width
        height = options.height or console.height or 24
        goals = _goals(snapshot, width)
        narrow = width < 100
        split = _platforms(snapshot)
        fixed = (1 + (2 if narrow else 1) + (split is not None) + 1 + (goals is not None) + bool(snapshot.targets)
                 + 1 + len(snapshot.alerts) + (snapshot.last_alert is not None))
        # Storm intelligence is low priority: its lines go first when the terminal is short, whole lines only.
        intel_lines = _intel_lines(snapshot, width)[:max(0, height - fixed - INTEL_ROOM)]
        fixed += len(intel_lines)
        remaining = max(10, height - fixed)
        # The lists take a title, a header and a rule; the latest-posts panel two borders.
        list_rows = max(3, min(10, (remaining - 5) // 2))
        latest_rows = max(2, remaining - (3 + list_rows) - 2)
        yield _header(snapshot, width)
        yield _figures(snapshot, width)
        if split is not None:
            yield split
        yield _sparkline(snapshot, width)
        if goals is not None:
            yield goals
        yield _lists(snapshot, width, list_rows)
        if snapshot.targets:
            yield _targets(snapshot)
        yield from intel_lines
        yield _latest(snapshot, width, latest_rows)
        yield _health(snapshot, width)
        if snapshot.last_alert is not None:
            yield _last_alert(snapshot)
        for alert in snapshot.alerts:
            yield Text(f"⚠ {one_line(alert)}", style="bold white on red", overflow="ellipsis", no_wrap=True)


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
        clock = f"storm starts in {format_duration(start - now)}"
    elif now < end:
        clock = f"{format_duration(now - start)} into the storm · ends in {format_duration(end - now)}"
    else:
        clock = f"storm ended {format_duration(now - end)} ago"
    tags = " ".join(f"#{t}" for t in snapshot.hashtags)
    if len(tags) + len(clock) + 24 > width and len(snapshot.hashtags) > 1:
        tags = f"#{snapshot.hashtags[0]} +{len(snapshot.hashtags) - 1}"
    local = now.astimezone(ZoneInfo(snapshot.timezone))
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f" {tags} ", style="bold black on yellow")
    text.append(f"  {clock}", style="bold")
    text.append(f"  {local:%H:%M} {snapshot.timezone}", style="dim")
    return text


def _figures(snapshot: Snapshot, width: int) -> Table:
    totals = snapshot.totals
    table = Table.grid(padding=(0, 2), expand=True)
    cells = [
        ("posts", f"{totals.posts:,}"),
        ("per min", f"{snapshot.posts_last_minute:,}"),
        ("peak/min", f"{snapshot.peak.posts:,}" + (f" @{_local(snapshot.peak.minute, snapshot)}"
                                                    if snapshot.peak.minute else "")),
        ("people", f"{totals.contributors:,} (+{snapshot.new_contributors_5m} 5m)"),
        ("reach", _compact(totals.potential_reach)),
        ("engagement", _compact(totals.engagement)),
    ]
    per_row = 3 if width < 100 else 6
    for _ in range(per_row):
        table.add_column(no_wrap=True)
    for row_start in range(0, len(cells), per_row):
        table.add_row(*(Text.assemble((f"{label} ", "dim"), (value, "bold cyan"))
                        for label, value in cells[row_start:row_start + per_row]))
    return table


def _platforms(snapshot: Snapshot) -> Text | None:
    """Posts per platform, when the campaign runs on more than one."""
    if len(snapshot.by_platform) < 2:
        return None
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("by platform ", style="dim")
    for name, posts in sorted(snapshot.by_platform.items(), key=lambda item: -item[1]):
        text.append(f"{platforms.label(name)} ")
        text.append(f"{posts:,}", style="bold cyan")
        text.append("  ")
    return text


def _sparkline(snapshot: Snapshot, width: int) -> Text:
    values = list(snapshot.per_minute)
    room = max(10, width - 24)
    values = values[-room:]
    top = max(values) if values else 0
    line = "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] if top else SPARK[0]
                   for v in values)
    text = Text(no_wrap=True, overflow="crop")
    text.append(f"last {len(values)} min ", style="dim")
    text.append(line, style="green")
    text.append(f" max {top}/min", style="dim")
    return text


def _bar(done: int, goal: int, width: int) -> str:
    share = min(1.0, done / goal) if goal else 0.0
    filled = int(share * width + 0.5)
    return "█" * filled + "░" * (width - filled)


def _goals(snapshot: Snapshot, width: int) -> Text | None:
    parts = []
    bar_width = max(8, min(30, (width - 40) // 2))
    if snapshot.goal_posts:
        parts.append(("posts", snapshot.totals.posts, snapshot.goal_posts))
    if snapshot.goal_contributors:
        parts.append(("people", snapshot.totals.contributors, snapshot.goal_contributors))
    if not parts:
        return None
    text = Text(no_wrap=True, overflow="ellipsis")
    for label, done, goal in parts:
        text.append(f"goal {label} ", style="dim")
        text.append(_bar(done, goal, bar_width), style="magenta")
        text.append(f" {done:,}/{goal:,} ({done / goal:.0%})  ")
    return text


def _lists(snapshot: Snapshot, width: int, rows: int) -> Table:
    grid = Table.grid(padding=(0, 2), expand=True)
    accounts = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False, title_style="bold",
                     title="top accounts", title_justify="left")
    accounts.add_column("account", overflow="ellipsis", no_wrap=True, ratio=3)
    accounts.add_column("posts", justify="right", no_wrap=True)
    accounts.add_column("followers", justify="right", no_wrap=True)
    if width >= 100:
        accounts.add_column("engagement", justify="right", no_wrap=True)
    for account in snapshot.top_accounts[:rows]:
        cells: list[RenderableType] = [Text(f"@{one_line(account.handle)}"), f"{account.posts:,}",
                                       _compact(account.followers)]
        if width >= 100:
            cells.append(_compact(account.engagement))
        accounts.add_row(*cells)
    tags = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False, title="co-hashtags",
                 title_justify="left", title_style="bold")
    tags.add_column("tag", overflow="ellipsis", no_wrap=True, ratio=2)
    tags.add_column("posts", justify="right", no_wrap=True)
    for tag, count in snapshot.co_hashtags[:rows]:
        tags.add_row(Text(f"#{one_line(tag)}"), f"{count:,}")
    grid.add_column(ratio=3)
    grid.add_column(ratio=2)
    grid.add_row(accounts, tags)
    return grid


def _targets(snapshot: Snapshot) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("targets named ", style="bold")
    for target, count in snapshot.targets:
        text.append(f"@{one_line(target)} ")
        text.append(f"{count:,}", style="green" if count else "bold red")
        text.append("  ")
    return text


def _intel_lines(snapshot: Snapshot, width: int) -> list[Text]:
    """Storm intelligence, most pressing first: copy-paste, trending, targets' responses, counter-hashtags.

    Each line is made of parts, the first essential: parts are dropped from the end until the line fits the width,
    and a line whose first part does not fit is left out (never cut half-way).
    """
    found = snapshot.intel
    if found is None:
        return []
    lines = [_copies_line(found), _trending_line(snapshot, found), _targets_line(snapshot, found),
             _counter_line(found)]
    fitted = []
    for parts in lines:
        while parts and sum(len(text) for text, _ in parts) > width:
            parts = parts[:-1]
        if parts:
            fitted.append(Text.assemble(*parts, no_wrap=True, overflow="crop"))
    return fitted


_Parts = list[tuple[str, str]]


def _copies_line(found: intel.LiveIntel) -> _Parts:
    recent, whole = found.recent_copies, found.window_copies
    if not whole.posts:
        return []
    reading = "" if whole.complete else " (still reading the storm's posts)"
    if recent.posts and recent.share > intel.WARN_SHARE:
        return [(f"⚠ {recent.share:.0%} copy-pasted in 15 min — {intel.ADVICE}", "bold white on red"),
                (f"  ({whole.share:.0%} of the storm){reading}", "dim")]
    return [("copy-paste ", "bold"), (f"{recent.share:.0%} of the last 15 min", "green"),
            (f" · {whole.share:.0%} of the storm{reading}", "dim")]


def _trending_line(snapshot: Snapshot, found: intel.LiveIntel) -> _Parts:
    if not found.trending_now:
        return []
    parts: _Parts = [("trending: ", "bold")]
    for hit in found.trending_now:
        since = f" since {_local(hit.since, snapshot)}" if hit.since else ""
        parts.append((f"{intel.shown(hit.tag)} #{hit.rank_now} {intel.shown(hit.location)}{since}  ", "bold green"))
    return parts


def _targets_line(snapshot: Snapshot, found: intel.LiveIntel) -> _Parts:
    posts = found.target_posts
    if not posts:
        return []
    parts: _Parts = [("targets: ", "bold")]
    for post in intel.first_responses(list(posts)):
        verb = "answered" if post.in_reply_to_campaign_post else "posted the tags"
        parts.append((f"@{intel.shown(post.account)} {verb} on {platforms.label(post.platform)} "
                      f"{_local(post.created_at, snapshot)}  ", "bold green"))
    parts.append((f"{len(posts):,} post{'s' if len(posts) != 1 else ''} by targets in the storm", "dim"))
    return parts


def _counter_line(found: intel.LiveIntel) -> _Parts:
    whole, recent = found.counter, found.recent_counter
    if whole is None:
        return []
    share = recent.share_of_voice if recent is not None else None
    overall = whole.share_of_voice
    parts: _Parts = [("counter-tags: ", "bold"),
                     (f"share of voice {share:.0%} last 15 min" if share is not None else "no posts last 15 min",
                      "yellow" if share is not None and share < 0.5 else "green")]
    if overall is not None:
        parts.append((f" ({overall:.0%} overall)", "dim"))
    parts.append((f" · {whole.posts:,} counter posts, {whole.both:,} carry both", "dim"))
    return parts


def _latest(snapshot: Snapshot, width: int, rows: int) -> Panel:
    lines = Table.grid(padding=(0, 1), expand=True)
    lines.add_column(no_wrap=True, style="dim")
    lines.add_column(no_wrap=True, overflow="ellipsis", max_width=18)
    lines.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for post in snapshot.latest[:rows]:
        moment = _local(post.created_at, snapshot)
        # Strangers' text: no control character reaches the terminal, and newlines would break the layout.
        lines.add_row(moment, Text(f"@{one_line(post.handle)}", style="cyan"), Text(one_line(post.text)))
    if not snapshot.latest:
        lines.add_row("", "", Text("no posts in the storm window yet", style="dim"))
    return Panel(lines, title="latest posts", title_align="left", box=box.ROUNDED, padding=(0, 1))


def _health(snapshot: Snapshot, width: int) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for source in snapshot.sources:
        style = {"ok": "green", "partial": "yellow", "rate_limited": "yellow", "failed": "bold red"}.get(
            source.last_status or "", "dim")
        text.append(f"{source.name} ", style="bold")
        text.append(f"{source.last_status or 'not run'}", style=style)
        if source.last_run_at:
            text.append(f" {_local(source.last_run_at, snapshot)}")
        if source.backoff_until:
            text.append(f" · rate-limited until {_local(source.backoff_until, snapshot)}", style="yellow")
        elif source.next_run_at:
            text.append(f" · next {_local(source.next_run_at, snapshot)}")
        text.append(f" · {source.requests_today} req  ")
    budget = f" of ${snapshot.budget_usd:.2f}" if snapshot.budget_usd is not None else ""
    text.append(f"spent today ${snapshot.spent_today_usd:.2f}{budget}", style="bold")
    if snapshot.budget_runs_out_at is not None:
        text.append(f" · runs out {_local(snapshot.budget_runs_out_at, snapshot)} at this pace", style="yellow")
    return text


def _last_alert(snapshot: Snapshot) -> Text:
    assert snapshot.last_alert is not None
    moment, headline = snapshot.last_alert
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("last alert ", style="dim")
    text.append(f"{_local(moment, snapshot)} ")
    text.append(headline, style="bold")
    return text


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
    """Print one snapshot (no TTY: a report-style still frame)."""
    (console or Console(width=100)).print(render(snapshot))
