"""The report's charts: matplotlib (Agg, no display) figures from bucketed data, saved as PNG.

The only module of stormwatch that imports matplotlib. Every chart is drawn by a function that returns its
Figure, so tests can read exactly the labels a chart shows (`figure_texts`). Colours come from one
colour-blind-safe palette (Okabe–Ito) with a fixed colour per platform across every chart.
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
from ..platforms import PLATFORMS, not_reported
from .content import ReportContent, SourceCoverage, account_label, bucket_phrase, platform_name

# Okabe–Ito: distinguishable with the common colour-vision deficiencies and in greyscale by lightness.
PLATFORM_COLOURS: dict[str, str] = {p.name: p.colour for p in PLATFORMS}
FALLBACK_COLOUR = "#999999"
NEUTRAL_COLOUR = "#4D4D4D"
CONTRIBUTORS_COLOUR = "#D55E00"
COUNTED_COLOUR = "#000000"
STORM_SHADE = "#F0E442"
DPI = 150
FIGURE_SIZE = (8.0, 4.2)  # inches: 1200 x 630 px at 150 dpi, 18 cm wide on an A4 page
EMPTY_MESSAGE = "No posts in this window"
STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.axisbelow": True,
}
KIND_LABELS = (("originals", "originals"), ("reposts", "reposts"), ("quotes", "quotes"), ("replies", "replies"))

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
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=12, color=NEUTRAL_COLOUR)


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


def _volume_buckets(content: ReportContent) -> tuple[VolumeBucket, ...]:
    """The window's buckets with the hour before and after it where collected (build-up and tail)."""
    return (*content.before, *content.volume.buckets, *content.after)


# --- the charts ---------------------------------------------------------------------------------


@_styled
def volume_figure(content: ReportContent) -> Figure:
    """Posts per bucket over time, platforms stacked, the announced storm window shaded."""
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
    lo, hi = _span(content)
    if content.before:
        lo = content.before[0].start
    if content.after:
        hi = content.after[-1].start + width
    _shade_storm(ax, content, lo, hi)
    ax.set_xlim(lo.astimezone(content.timezone), hi.astimezone(content.timezone))
    _time_axis(ax, content.timezone)
    _count_axis(ax)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(f"posts per {phrase}")
    ax.set_title(f"Posts per {phrase}, by platform")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right")
    if not content.has_posts:
        _show_empty(ax)
    return figure


@_styled
def cumulative_figure(content: ReportContent) -> Figure:
    """Cumulative posts (top panel) and cumulative distinct contributors (bottom panel)."""
    figure = _new_figure((8.0, 5.0))
    posts_ax, people_ax = figure.subplots(2, 1, sharex=True)
    buckets = content.volume.buckets
    lo, hi = _span(content)
    size = timedelta(seconds=content.bucket_seconds)
    # Each cumulative value is reached at the end of its bucket; the line starts from zero at the first bucket.
    times = [lo.astimezone(content.timezone)] + [t + size for t in _bucket_starts(content)]
    posts = [0] + [b.cumulative_posts for b in buckets]
    people = [0] + [b.cumulative_contributors for b in buckets]
    posts_ax.plot(times, posts, color=COUNTED_COLOUR, linewidth=1.8)
    people_ax.plot(times, people, color=CONTRIBUTORS_COLOUR, linewidth=1.8)
    for ax, label in ((posts_ax, "posts (cumulative)"), (people_ax, "contributors (cumulative)")):
        _shade_storm(ax, content, lo, hi)
        _count_axis(ax)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(label)
        ax.set_xlim(lo.astimezone(content.timezone), hi.astimezone(content.timezone))
    _time_axis(people_ax, content.timezone)
    posts_ax.set_xlabel("")
    posts_ax.set_title("Cumulative posts and distinct contributors")
    if posts_ax.get_legend_handles_labels()[0]:
        posts_ax.legend(loc="lower right")  # the running totals rise to the upper right
    if not content.has_posts:
        _show_empty(posts_ax)
    return figure


def _platform_legend(ax: Axes, platforms: Sequence[str]) -> None:
    if len(set(platforms)) > 1:
        ax.legend(handles=[Patch(color=platform_colour(p), label=platform_name(p)) for p in dict.fromkeys(platforms)],
                  loc="lower right")


def _ranked_bars(ax: Axes, labels: Sequence[str], values: Sequence[int], colours: Sequence[str], xlabel: str) -> None:
    """Horizontal bars, the largest on top, each with its value."""
    positions = list(range(len(labels)))
    bars = ax.barh(positions, values, color=list(colours), height=0.7)
    ax.set_yticks(positions, [_plain(_short(label)) for label in labels])
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.margins(x=0.12)
    if not any(values):
        ax.set_xlim(0, 1)  # all zero: a plain 0–1 axis rather than matplotlib's symmetric ±0 ticks
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
def post_kinds_figure(content: ReportContent) -> Figure:
    """Originals, reposts, quotes and replies, one bar per platform in its colour."""
    figure = _new_figure()
    ax = figure.add_subplot()
    ax.set_title("Posts by kind and platform")
    per_platform = content.summary.totals.by_platform
    if not per_platform:
        _blank(ax, EMPTY_MESSAGE)
        return figure
    platforms = list(per_platform)
    width = 0.8 / len(platforms)
    for index, platform in enumerate(platforms):
        totals = per_platform[platform]
        missing = not_reported(platform)
        values = [getattr(totals, field) for field, _ in KIND_LABELS]
        offsets = [k - 0.4 + width * (index + 0.5) for k in range(len(KIND_LABELS))]
        bars = ax.bar(offsets, values, width=width * 0.95, color=platform_colour(platform),
                      label=platform_name(platform))
        # A kind the platform has no posts of (Bluesky reposts are records, not posts): "—", never a 0.
        ax.bar_label(bars, labels=["—" if field in missing else f"{v:,}"
                                   for (field, _), v in zip(KIND_LABELS, values, strict=True)], padding=2, fontsize=8)
    ax.set_xticks(range(len(KIND_LABELS)), [label for _, label in KIND_LABELS])
    ax.grid(axis="x", visible=False)
    ax.margins(y=0.12)
    _count_axis(ax)
    ax.set_ylabel("posts")
    ax.set_xlabel("kind of post")
    ax.legend(loc="upper right")
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
def target_mentions_figure(content: ReportContent) -> Figure:
    """How many posts addressed each account the campaign targets."""
    figure = _new_figure()
    ax = figure.add_subplot()
    ax.set_title("Posts mentioning the campaign's targets")
    if not content.target_mentions:
        _blank(ax, "The campaign lists no target accounts")
        return figure
    _ranked_bars(ax, [f"@{target}" for target, _ in content.target_mentions],
                 [n for _, n in content.target_mentions], [NEUTRAL_COLOUR] * len(content.target_mentions),
                 "campaign posts mentioning the account")
    if not content.has_posts:
        _show_empty(ax)
    return figure


@_styled
def coverage_figure(content: ReportContent) -> Figure | None:
    """Posts collected against the platform's own counts per bucket; None when no counts were fetched."""
    sources = [c for c in content.coverage if c.has_counts]
    if not sources:
        return None
    figure = _new_figure((8.0, 3.2 + 1.8 * len(sources)))
    axes = figure.subplots(len(sources), 1, sharex=True, squeeze=False)[:, 0]
    phrase = bucket_phrase(content.bucket_seconds)
    lo, hi = _span(content)
    for ax, coverage in zip(axes, sources, strict=True):
        _coverage_axes(ax, content, coverage, lo, hi)
        ax.set_ylabel(f"posts per {phrase}")
    for ax in axes[:-1]:
        ax.set_xlabel("")
    axes[0].set_title(f"Coverage: posts collected vs the platform's count, per {phrase}")
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
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right")


# --- storm intelligence (report/intel.py) -------------------------------------------------------

TRENDS_SHOWN = 8  # lines in the trending chart (the best-ranked hits)
COUNTER_COLOUR = "#D55E00"


@_styled
def trends_figure(content: ReportContent) -> Figure | None:
    """Each trending hit's rank in the lists fetched for its place over time (rank 1 at the top); None without any."""
    hits = content.intel.trending if content.intel is not None else ()
    if not hits:
        return None
    shown = sorted(hits, key=lambda h: (h.platform != "x", h.best_rank, h.location, h.tag))[:TRENDS_SHOWN]
    figure = _new_figure((8.0, 4.2 + 0.25 * ((len(shown) + 1) // 2)))
    ax = figure.add_subplot()
    tz = content.timezone
    worst = 1
    for hit in shown:
        times = [moment.astimezone(tz) for moment, _ in hit.series]
        ranks = [float(rank) if rank is not None else float("nan") for _, rank in hit.series]
        worst = max([worst, *(rank for _, rank in hit.series if rank is not None)])
        label = f"{hit.tag} · {hit.location} ({platform_name(hit.platform)})"
        ax.plot(times, ranks, marker="o", markersize=3, linewidth=1.5, label=_plain(_short(label, 48)))
    # Inside the storm window only (trends are fetched and counter posts counted there): no shading, it would
    # fill the whole plot and mean nothing.
    lo, hi = _span(content)
    ax.set_xlim(lo.astimezone(tz), hi.astimezone(tz))
    _time_axis(ax, tz)
    ax.set_ylim(worst + 0.5, 0.5)  # rank 1 on top
    step = max(1, -(-worst // 5))
    ax.set_yticks([1, *range(step if step > 1 else 2, worst + 1, step)])
    ax.set_ylabel("rank in the trending list")
    ax.set_title("The campaign's hashtags in the trending lists")
    # Below the plot: the lines fill every corner of it.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    return figure


@_styled
def share_of_voice_figure(content: ReportContent) -> Figure | None:
    """Campaign posts against counter-hashtag posts per bucket (stacked); None without counter-hashtags."""
    counter = content.intel.counter if content.intel is not None else None
    if counter is None or not counter.minutes:
        return None
    figure = _new_figure()
    ax = figure.add_subplot()
    tz = content.timezone
    size = content.bucket_seconds
    buckets: dict[datetime, list[int]] = {}
    for minute, ours, theirs in counter.minutes:
        start = datetime.fromtimestamp(int(minute.timestamp()) // size * size, tz)
        cell = buckets.setdefault(start, [0, 0])
        cell[0] += ours
        cell[1] += theirs
    starts = sorted(buckets)
    campaign_posts = [buckets[s][0] for s in starts]
    counter_posts = [buckets[s][1] for s in starts]
    width = timedelta(seconds=size)
    ax.bar(starts, campaign_posts, width=width, align="edge", color=NEUTRAL_COLOUR, label="supporters' posts",
           linewidth=0)
    ax.bar(starts, counter_posts, width=width, bottom=campaign_posts, align="edge", color=COUNTER_COLOUR,
           label="counter-hashtags", linewidth=0)
    # Inside the storm window only (trends are fetched and counter posts counted there): no shading, it would
    # fill the whole plot and mean nothing.
    lo, hi = _span(content)
    ax.set_xlim(lo.astimezone(tz), hi.astimezone(tz))
    _time_axis(ax, tz)
    _count_axis(ax)
    # Headroom above the tallest stack: the legend sits there, and a bar must not run into the frame.
    ax.set_ylim(0, max(1, max(a + b for a, b in zip(campaign_posts, counter_posts, strict=True))) * 1.1)
    ax.set_ylabel(f"posts per {bucket_phrase(size)}")
    share = counter.share_of_voice
    ax.set_title(f"Share of voice: the campaign's {'–' if share is None else f'{share:.0%}'} against counter-hashtags")
    ax.legend(loc="upper right")
    return figure


# --- files --------------------------------------------------------------------------------------

FIGURES: tuple[tuple[str, str, Callable[[ReportContent], Figure | None]], ...] = (
    ("volume.png", "Volume over time", volume_figure),
    ("cumulative.png", "Cumulative posts and contributors", cumulative_figure),
    ("top_accounts.png", "Top accounts by posts", top_accounts_figure),
    ("post_kinds.png", "Kinds of post per platform", post_kinds_figure),
    ("co_hashtags.png", "Co-hashtags", co_hashtags_figure),
    ("target_mentions.png", "Target mentions", target_mentions_figure),
    ("coverage.png", "Coverage", coverage_figure),
    ("trends.png", "Trending", trends_figure),
    ("share_of_voice.png", "Share of voice", share_of_voice_figure),
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
                      + (" The chart ends when this interim report was written." if content.interim else ""),
        "cumulative.png": f"Running totals per {phrase}: posts (top) and distinct contributors (bottom); "
                          f"times in {zone}.",
        "top_accounts.png": "The accounts with the most campaign posts in the window (originals, reposts, quotes "
                            "and replies), coloured by platform." + _naming_note(content),
        "post_kinds.png": "Originals, reposts, quotes and replies in the window, per platform."
                          + (f" — not reported: {content.not_reported_note}" if content.not_reported_note else ""),
        "co_hashtags.png": "Other hashtags carried by campaign posts, by number of posts.",
        "target_mentions.png": "Campaign posts mentioning each account the campaign addresses.",
        "coverage.png": f"Posts collected (bars) against the platform's own count of matching posts (line) per "
                        f"{phrase}; bars below the line mean posts were missed. Times in {zone}.",
        "trends.png": f"Rank of each campaign hashtag in the trending lists fetched for each place (1 is the top; "
                      f"gaps where it was not in the list); times in {zone}.",
        "share_of_voice.png": f"Supporters' posts (grey) and posts carrying the counter-hashtags (orange) per "
                              f"{phrase}; a post carrying both is a counter-hashtag post. Times in {zone}.",
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
        texts["cumulative.png"] = f"Line charts of cumulative posts and contributors, {window}: both stay at zero."
    else:
        busiest = max(buckets, key=lambda b: b.posts)
        split = ", ".join(f"{platform_name(p)} {t.posts:,}" for p, t in totals.by_platform.items())
        around = [f"{_posts(sum(b.posts for b in part))} in the {label}" for label, part in (
            ("build-up before it", content.before), ("hour after it", content.after)) if part]
        texts["volume.png"] = (
            f"Bar chart of campaign posts per {phrase}, stacked by platform, times in {zone}. The shaded storm "
            f"window, {window}, holds {totals.all.posts:,} posts ({split}); the busiest {phrase} began at "
            f"{at(busiest.start)} with {busiest.posts:,} posts." + (f" {'; '.join(around)}." if around else ""))
        half = next(b for b in buckets if b.cumulative_posts * 2 >= totals.all.posts)
        texts["cumulative.png"] = (
            f"Two line charts over {window}: cumulative posts rise to {totals.all.posts:,} and distinct "
            f"contributors to {totals.all.contributors:,}; half of the posts had come by "
            f"{at(half.start + timedelta(seconds=content.bucket_seconds))}.")
    top = [(account_label(a), a.posts) for a in content.top_by_posts]
    texts["top_accounts.png"] = (f"Horizontal bar chart of the {len(top)} accounts with the most posts: {listed(top)}."
                                 if top else "No accounts posted in this window.")
    kinds = "; ".join(f"{platform_name(p)}: {t.originals:,} originals, "
                      f"{'— (not reported)' if 'reposts' in not_reported(p) else f'{t.reposts:,}'} reposts, "
                      f"{t.quotes:,} quotes, {t.replies:,} replies" for p, t in totals.by_platform.items())
    texts["post_kinds.png"] = (f"Bar chart of posts by kind and platform. {kinds}." if kinds
                               else "No posts in this window.")
    tags = [(f"#{tag}", count) for tag, count in content.co_hashtags]
    texts["co_hashtags.png"] = (f"Horizontal bar chart of other hashtags used with the campaign's: {listed(tags)}."
                                if tags else "No other hashtags in this window.")
    targets = [(f"@{target}", count) for target, count in content.target_mentions]
    texts["target_mentions.png"] = (f"Horizontal bar chart of posts mentioning each target: "
                                    f"{listed(targets, 'posts', 10)}." if targets
                                    else "The campaign lists no target accounts.")
    shares = "; ".join(f"{platform_name(c.source)}: {c.collected:,} collected of {c.counted:,} counted"
                       + (f" ({c.share:.1%})" if c.share is not None else "")
                       + f", {c.short_buckets:,} of {c.counted_buckets:,} buckets short"
                       for c in content.coverage if c.has_counts)
    texts["coverage.png"] = (f"Bars of posts collected per {phrase} against a line of the platform's own count. "
                             f"{shares}.")
    found = content.intel
    hits = [f"{one_line(h.tag)} best #{h.best_rank} in {one_line(h.location)} ({platform_name(h.platform)}), "
            f"first seen {at(h.first_seen)}" for h in (found.trending[:5] if found is not None else ())]
    texts["trends.png"] = (f"Line chart of trending ranks over time ({zone}): {'; '.join(hits)}." if hits
                           else "No campaign hashtag was in a trending list fetched.")
    counter = found.counter if found is not None else None
    if counter is not None:
        share = counter.share_of_voice
        texts["share_of_voice.png"] = (
            f"Stacked bars per {phrase} of supporters' posts ({counter.campaign_posts:,}) against counter-hashtag "
            f"posts ({counter.posts:,}) over {window}: the campaign's share of voice "
            f"{'—' if share is None else f'{share:.0%}'}; {counter.both:,} posts carried both.")
    return texts


def _posts(count: int) -> str:
    return f"{count:,} post" + ("" if count == 1 else "s")


def _naming_note(content: ReportContent) -> str:
    if not content.policy.pseudonymized:
        return ""
    return (f" Accounts with fewer than {content.policy.threshold:,} followers appear as pseudonyms "
            "(participant-xxxx).")


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
