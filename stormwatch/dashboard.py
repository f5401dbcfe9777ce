"""The live storm dashboard: `take_snapshot` (metrics/snapshot.py) reads metrics, a pure `render(snapshot)` draws
it, `run_live` refreshes.

The screen is laid out by priority for the space it gets (80x24 and up). The headline figures, both goals with
N/M (P%), each source's state and the spend against the budget are never cut; when the screen is too small
the rest goes whole, lowest priority first: extra notes, the latest posts, the top accounts, then single lines
(last alert, sparkline, platforms, targets). Co-hashtags only stand beside the top accounts on wide screens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import platforms
from .console import GAP, ScreenPart, first_that_fits, fit_parts, in_columns, packed, screen_text, text_part
from .intel.lines import intel_lines
from .metrics.snapshot import (
    FADING_LOUD_FOR,
    NEW_BLUESKY_ACCOUNT,
    AccountLine,
    PostLine,
    Snapshot,
    SourceLine,
    clock_phrases,
    local_time,
    source_parts,
    spend_parts,
    stream_parts,
    take_snapshot,
)

# The snapshot (what is shown) lives in metrics/snapshot.py, shared with the live web page (web/).
__all__ = ["NEW_BLUESKY_ACCOUNT", "AccountLine", "PostLine", "Snapshot", "SourceLine", "print_once", "render",
           "run_live", "screen_text", "take_snapshot"]

SPARK = "▁▂▃▄▅▆▇█"
MIN_GOAL_BAR = 6  # both goals share a line while their bars are at least this long

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
    return local_time(moment, snapshot)


def _compact(number: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}{suffix}"
    return f"{number:,.0f}"


def _header(snapshot: Snapshot, width: int) -> Text:
    clocks = list(clock_phrases(snapshot))
    first = f"#{snapshot.hashtags[0]}" + (f" +{len(snapshot.hashtags) - 1}" if len(snapshot.hashtags) > 1 else "")
    if snapshot.names == "pseudonymized":
        names = [f"names: pseudonymized below {snapshot.names_threshold:,} followers", "names: pseudonymized",
                 "names hidden"]
    else:
        names = ["names: public (everyone named)", "names: public", "names public"]
    local = _local(snapshot.now, snapshot)

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


def _source_segment(source: SourceLine, snapshot: Snapshot, full: bool) -> Text:
    """One source's state in words (metrics/snapshot.py): `x ok 19:39 · next 19:41 · 81 req`."""
    return Text.assemble(*source_parts(source, snapshot, full), no_wrap=True)


def _stream(snapshot: Snapshot) -> tuple[Text | None, int]:
    """X's filtered stream in one line, with its drop priority: connected since when, or the gap going on."""
    parts, drop = stream_parts(snapshot)
    return (Text.assemble(*parts, no_wrap=True) if parts else None), drop


def _spend(snapshot: Snapshot) -> Text | None:
    parts = spend_parts(snapshot)
    return Text.assemble(*parts, no_wrap=True) if parts else None


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
