"""The report's charts: matplotlib (Agg, no display) figures from bucketed data, saved as PNG.

The only module of stormwatch that imports matplotlib. Every chart is drawn by a function that returns its
Figure, so tests can read exactly the labels a chart shows (`figure_texts`). Colours come from one
colour-blind-safe palette (Okabe–Ito) with a fixed colour per platform across every chart.

Charts are drawn for the narrowest width they are shown at: a phone's 396 CSS px holds a figure 5.2 inches wide,
so 9-point text stays above 9 CSS px there (`min_text_px`), and on paper the figure prints at its own size. No
axis is ever reversed (rankings put the first on top by their positions) or all zero (`_never_flat`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # files only: never a display, and safe in threads and on headless servers

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from ..metrics import VolumeBucket
from ..normalize.text import one_line
from ..platforms import PLATFORMS
from .content import ReportContent, SourceCoverage, account_label, bucket_phrase, platform_name

# Okabe–Ito: distinguishable with the common colour-vision deficiencies and in greyscale by lightness.
PLATFORM_COLOURS: dict[str, str] = {p.name: p.colour for p in PLATFORMS}
FALLBACK_COLOUR = "#999999"
NEUTRAL_COLOUR = "#4D4D4D"
CONTRIBUTORS_COLOUR = "#D55E00"
COUNTED_COLOUR = "#000000"
STORM_SHADE = "#F0E442"
COUNTER_COLOUR = "#D55E00"  # the counter-hashtags (the opponents' tags)
DPI = 200
WIDTH = 5.2  # inches: 1040 px at 200 dpi; 13 cm on paper; a phone's 396 CSS px keep 9-point text at 9.5 px
FIGURE_SIZE = (WIDTH, 2.7)
SMALLEST_TEXT = 9  # points: no text of any chart is smaller
EMPTY_MESSAGE = "No posts in this window"
STYLE = {
    "font.size": SMALLEST_TEXT,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": SMALLEST_TEXT,
    "xtick.labelsize": SMALLEST_TEXT,
    "ytick.labelsize": SMALLEST_TEXT,
    "legend.fontsize": SMALLEST_TEXT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.axisbelow": True,
}

P = ParamSpec("P")
R = TypeVar("R")


def platform_colour(platform: str) -> str:
    """The colour a platform has in every chart."""
    return PLATFORM_COLOURS.get(platform, FALLBACK_COLOUR)


@dataclass(frozen=True)
class ChartFile:
    """A chart written to the report folder, with what the report says about it and its text alternative."""

    file: str
    title: str
    caption: str
    alt: str = ""


def _styled(draw: Callable[P, R]) -> Callable[P, R]:
    """Draw under the report's style without touching matplotlib's global settings."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def _plain(text: str) -> str:
    """Data as literal chart text, on one line: controls stripped; `$` would otherwise start matplotlib math mode."""
    return one_line(text).replace("$", r"\$")


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _new_figure(size: tuple[float, float] = FIGURE_SIZE) -> Figure:
    # A bare Figure (not pyplot): nothing global to leak or close, whatever the number of reports.
    return Figure(figsize=size, layout="constrained")


def _show_empty(ax: Axes, message: str = EMPTY_MESSAGE) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=11, color=NEUTRAL_COLOUR)


def _never_flat(ax: Axes, axis: str = "y") -> None:
    """A count axis from 0 that reaches at least 1: an axis of nothing but zeros (all-zero data) says nothing."""
    high = (ax.get_ylim() if axis == "y" else ax.get_xlim())[1]
    (ax.set_ylim if axis == "y" else ax.set_xlim)(0, max(high, 1))


def _blank(ax: Axes, message: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    _show_empty(ax, message)


def _time_axis(ax: Axes, timezone: ZoneInfo) -> None:
    """Dates in the campaign's zone; the concise formatter keeps tick labels short and apart."""
    locator = mdates.AutoDateLocator(tz=timezone, minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=timezone))
    ax.set_xlabel(f"time ({timezone.key})")


def _count_axis(ax: Axes, axis: str = "y") -> None:
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(nbins=6, integer=True))  # few enough that labels never touch
    target.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _shade_storm(ax: Axes, content: ReportContent, lo: datetime, hi: datetime) -> None:
    """Shade the announced storm window where it overlaps the plotted span (the legend labels it)."""
    start = max(content.campaign.start, lo)
    end = min(content.campaign.end, hi)
    if end <= start:
        return
    tz = content.timezone
    ax.axvspan(start.astimezone(tz), end.astimezone(tz), color=STORM_SHADE, alpha=0.25, zorder=0, linewidth=0,
               label="announced storm window")


def _bucket_starts(content: ReportContent) -> list[datetime]:
    return [b.start.astimezone(content.timezone) for b in content.volume.buckets]


def _span(content: ReportContent) -> tuple[datetime, datetime]:
    """The plotted span: from the first bucket's start to the window's end (an interim report's writing time)."""
    buckets = content.volume.buckets
    lo = buckets[0].start if buckets else content.window.since
    return lo, content.shown_until


def _counter_buckets(content: ReportContent) -> dict[datetime, int]:
    """Posts carrying the counter-hashtags per bucket of the window (nothing without counter-hashtags)."""
    counter = content.intel.counter if content.intel is not None else None
    if counter is None or not counter.posts:
        return {}
    size = content.bucket_seconds
    buckets: dict[datetime, int] = {}
    for minute, _ours, theirs in counter.minutes:
        if minute >= content.shown_until:
            break
        start = datetime.fromtimestamp(int(minute.timestamp()) // size * size, content.timezone)
        buckets[start] = buckets.get(start, 0) + theirs
    return buckets


def _volume_buckets(content: ReportContent) -> tuple[VolumeBucket, ...]:
    """The window's buckets with the hour before and after it where collected (build-up and tail)."""
    return (*content.before, *content.volume.buckets, *content.after)


# --- the charts ---------------------------------------------------------------------------------


@_styled
def volume_figure(content: ReportContent) -> Figure:
    """Posts per bucket over time, platforms stacked, the announced storm window shaded; the counter-hashtags'
    posts per bucket as a line over them (the share of voice told in the same picture, not a second one)."""
    figure = _new_figure()
    ax = figure.add_subplot()
    buckets = _volume_buckets(content)
    starts = [b.start.astimezone(content.timezone) for b in buckets]
    width = timedelta(seconds=content.bucket_seconds)
    phrase = bucket_phrase(content.bucket_seconds)
    bottoms = [0] * len(starts)
    for platform in content.platforms:
        heights = [b.by_platform.get(platform, 0) for b in buckets]
        if not any(heights):
            continue
        ax.bar(starts, heights, width=width, bottom=bottoms, align="edge", color=platform_colour(platform),
               label=platform_name(platform), linewidth=0)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    counter = _counter_buckets(content)
    if counter:
        times = sorted(counter)
        ax.step([*times, times[-1] + width], [*(counter[t] for t in times), counter[times[-1]]], where="post",
                color=COUNTER_COLOUR, linewidth=1.4, label="counter-hashtags")
    lo, hi = _span(content)
    if content.before:
        lo = content.before[0].start
    if content.after:
        hi = content.after[-1].start + width
    _shade_storm(ax, content, lo, hi)
    ax.set_xlim(lo.astimezone(content.timezone), hi.astimezone(content.timezone))
    _time_axis(ax, content.timezone)
    _count_axis(ax)
    _never_flat(ax)
    ax.set_ylabel(f"posts per {phrase}")
    ax.set_title(f"Posts per {phrase}, by platform" + (" and counter-hashtags" if counter else ""))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right")
    if not content.has_posts:
        _show_empty(ax)
    return figure


def _platform_legend(ax: Axes, platforms: Sequence[str]) -> None:
    if len(set(platforms)) > 1:
        ax.legend(handles=[Patch(color=platform_colour(p), label=platform_name(p)) for p in dict.fromkeys(platforms)],
                  loc="lower right")


def _ranked_bars(ax: Axes, labels: Sequence[str], values: Sequence[int], colours: Sequence[str], xlabel: str) -> None:
    """Horizontal bars, the largest on top (by its position: the axis is never reversed), each with its value."""
    positions = list(range(len(labels) - 1, -1, -1))
    bars = ax.barh(positions, values, color=list(colours), height=0.7)
    ax.set_yticks(positions, [_plain(_short(label, 24)) for label in labels])
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=SMALLEST_TEXT)
    ax.margins(x=0.15)
    _never_flat(ax, "x")  # all zero: a plain 0–1 axis rather than matplotlib's symmetric ±0 ticks
    _count_axis(ax, "x")
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)


@_styled
def top_accounts_figure(content: ReportContent) -> Figure:
    """The accounts with the most posts, coloured by platform."""
    figure = _new_figure()
    ax = figure.add_subplot()
    ax.set_title("Accounts with the most posts")
    accounts = content.top_by_posts
    if not accounts:
        _blank(ax, EMPTY_MESSAGE)
        return figure
    _ranked_bars(ax, [account_label(a) for a in accounts], [a.posts for a in accounts],
                 [platform_colour(a.platform) for a in accounts], "posts in the window (all kinds)")
    _platform_legend(ax, [a.platform for a in accounts])
    return figure


@_styled
def co_hashtags_figure(content: ReportContent) -> Figure:
    """The other hashtags posts carried alongside the campaign's."""
    figure = _new_figure()
    ax = figure.add_subplot()
    ax.set_title("Hashtags used alongside the campaign's")
    if not content.co_hashtags:
        _blank(ax, EMPTY_MESSAGE if not content.has_posts else "No other hashtags in this window")
        return figure
    _ranked_bars(ax, [f"#{tag}" for tag, _ in content.co_hashtags], [n for _, n in content.co_hashtags],
                 [NEUTRAL_COLOUR] * len(content.co_hashtags), "campaign posts carrying the hashtag")
    return figure


@_styled
def coverage_figure(content: ReportContent) -> Figure | None:
    """Posts collected against the platform's own counts per bucket; None when no counts were fetched."""
    sources = [c for c in content.coverage if c.has_counts]
    if not sources:
        return None
    figure = _new_figure((WIDTH, 1.6 + 1.5 * len(sources)))
    axes = figure.subplots(len(sources), 1, sharex=True, squeeze=False)[:, 0]
    phrase = bucket_phrase(content.bucket_seconds)
    lo, hi = _span(content)
    for ax, coverage in zip(axes, sources, strict=True):
        _coverage_axes(ax, content, coverage, lo, hi)
        ax.set_ylabel(f"posts per {phrase}")
    for ax in axes[:-1]:
        ax.set_xlabel("")
    axes[0].set_title("Posts collected vs the platform's count")
    return figure


def _coverage_axes(ax: Axes, content: ReportContent, coverage: SourceCoverage, lo: datetime, hi: datetime) -> None:
    tz = content.timezone
    starts = [b.start.astimezone(tz) for b in coverage.buckets]
    width = timedelta(seconds=content.bucket_seconds)
    ax.bar(starts, [b.collected for b in coverage.buckets], width=width, align="edge",
           color=platform_colour(coverage.source), label=f"collected ({platform_name(coverage.source)})", linewidth=0)
    # The count as a step line over the same buckets; NaN leaves a gap where no count was fetched.
    counted = [float(b.counted) if b.counted is not None else float("nan") for b in coverage.buckets]
    if starts:
        ax.step([*starts, starts[-1] + width], [*counted, counted[-1]], where="post", color=COUNTED_COLOUR,
                linewidth=1.2, label=f"{platform_name(coverage.source)}'s own count")
    ax.set_xlim(lo.astimezone(tz), hi.astimezone(tz))
    _time_axis(ax, tz)
    _count_axis(ax)
    _never_flat(ax)
    ax.legend(loc="upper right")


# --- files --------------------------------------------------------------------------------------

FIGURES: tuple[tuple[str, str, Callable[[ReportContent], Figure | None]], ...] = (
    ("volume.png", "Volume over time", volume_figure),
    ("top_accounts.png", "Top accounts by posts", top_accounts_figure),
    ("co_hashtags.png", "Co-hashtags", co_hashtags_figure),
    ("coverage.png", "Coverage", coverage_figure),
)


def captions(content: ReportContent) -> dict[str, str]:
    """What each chart shows, in the words the report uses under it."""
    phrase = bucket_phrase(content.bucket_seconds)
    zone = content.timezone_name
    return {
        "volume.png": f"Campaign posts collected per {phrase}, stacked by platform; times in {zone}. "
                      "The shaded band is the announced storm window"
                      + ("; the build-up before it and the tail after it are shown where they were collected."
                         if content.before or content.after else ".")
                      + (" The orange line is the posts carrying the counter-hashtags (a post carrying both "
                         "counts in each)." if _counter_buckets(content) else "")
                      + (" The chart ends when this interim report was written." if content.interim else ""),
        "top_accounts.png": "The accounts with the most campaign posts in the window (originals, reposts, quotes "
                            "and replies), coloured by platform.",
        "co_hashtags.png": "Other hashtags carried by campaign posts, by number of posts.",
        "coverage.png": f"Posts collected (bars) against the platform's own count of matching posts (line) per "
                        f"{phrase}; bars below the line mean posts were missed. Times in {zone}.",
    }


def alt_texts(content: ReportContent) -> dict[str, str]:
    """Each chart in words for those who cannot see it: what it shows, with its key figures."""
    tz, zone, phrase = content.timezone, content.timezone_name, bucket_phrase(content.bucket_seconds)

    def at(moment: datetime) -> str:
        return f"{moment.astimezone(tz):%H:%M}"

    def listed(pairs: Sequence[tuple[str, int]], unit: str = "posts", limit: int = 5) -> str:
        shown = [f"{name} {count:,}" for name, count in pairs[:limit]]
        return ", ".join(shown) + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "") + f" {unit}"

    totals = content.summary.totals
    window = f"{at(content.window.since)}–{at(content.shown_until)} {zone}"
    texts: dict[str, str] = {}
    buckets = content.volume.buckets
    if not content.has_posts:
        texts["volume.png"] = f"Bar chart of posts per {phrase}, {window}: no campaign posts in this window."
    else:
        busiest = max(buckets, key=lambda b: b.posts)
        split = ", ".join(f"{platform_name(p)} {t.posts:,}" for p, t in totals.by_platform.items())
        around = [f"{_posts(sum(b.posts for b in part))} in the {label}" for label, part in (
            ("build-up before it", content.before), ("hour after it", content.after)) if part]
        texts["volume.png"] = (
            f"Bar chart of campaign posts per {phrase}, stacked by platform, times in {zone}. The shaded storm "
            f"window, {window}, holds {totals.all.posts:,} posts ({split}); the busiest {phrase} began at "
            f"{at(busiest.start)} with {busiest.posts:,} posts." + (f" {'; '.join(around)}." if around else "")
            + _counter_alt(content))
    top = [(account_label(a), a.posts) for a in content.top_by_posts]
    texts["top_accounts.png"] = (f"Horizontal bar chart of the {len(top)} accounts with the most posts: {listed(top)}."
                                 if top else "No accounts posted in this window.")
    tags = [(f"#{tag}", count) for tag, count in content.co_hashtags]
    texts["co_hashtags.png"] = (f"Horizontal bar chart of other hashtags used with the campaign's: {listed(tags)}."
                                if tags else "No other hashtags in this window.")
    shares = "; ".join(f"{platform_name(c.source)}: {c.collected:,} collected of {c.counted:,} counted"
                       + (f" ({c.share:.1%})" if c.share is not None else "")
                       + f", {c.short_buckets:,} of {c.counted_buckets:,} buckets short"
                       for c in content.coverage if c.has_counts)
    texts["coverage.png"] = (f"Bars of posts collected per {phrase} against a line of the platform's own count. "
                             f"{shares}.")
    return texts


def _counter_alt(content: ReportContent) -> str:
    """The counter-hashtags' line of the volume chart in words (nothing without one)."""
    counter = content.intel.counter if content.intel is not None else None
    if not _counter_buckets(content) or counter is None:
        return ""
    share = counter.share_of_voice
    return (f" A line shows the {counter.posts:,} posts carrying the counter-hashtags: the campaign's share of voice "
            f"{'—' if share is None else f'{share:.0%}'}.")


def _posts(count: int) -> str:
    return f"{count:,} post" + ("" if count == 1 else "s")


def draw_charts(content: ReportContent) -> list[tuple[ChartFile, Figure]]:
    """Every chart the report has data for (coverage only where the platform's counts exist)."""
    texts, alts = captions(content), alt_texts(content)
    drawn: list[tuple[ChartFile, Figure]] = []
    for file, title, draw in FIGURES:
        figure = draw(content)
        if figure is not None:
            drawn.append((ChartFile(file=file, title=title, caption=texts[file], alt=alts[file]), figure))
    return drawn


def write_charts(content: ReportContent, folder: Path) -> list[ChartFile]:
    """Draw every chart and save it as PNG in `folder`."""
    written = []
    for chart, figure in draw_charts(content):
        figure.savefig(folder / chart.file, dpi=DPI, format="png",
                       metadata={"Software": f"stormwatch {content.version}"})
        figure.clear()  # free the figure's artists now: a report draws several large ones
        written.append(chart)
    return written


def figure_texts(figure: Figure) -> list[str]:
    """Every piece of text a figure shows (titles, tick labels, legends, annotations), for checks."""
    figure.canvas.draw()  # tick labels exist only once the figure is laid out
    return [text.get_text() for text in figure.findobj(Text) if text.get_text()]
