"""What the live page shows, from the dashboard's snapshot (metrics/snapshot.py): plain data for the template and
the JSON feed, figures as `summary --json` names them, charts as SVG geometry with a text alternative each.

Pure: a snapshot in, a dict out. Every text written by strangers (post texts, labels, tags, trend names, error
texts) goes through `one_line` (the one text cleaning module) here; the template escapes it (Jinja2 autoescape).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .. import platforms
from ..intel.lines import intel_lines
from ..metrics.snapshot import Parts, Snapshot, clock_phrases, local_time, source_parts, spend_parts, stream_parts
from ..normalize.text import one_line

CHART_WIDTH, CHART_HEIGHT = 600, 140  # the SVG's own units: it scales to the width it is given
MAX_BARS = 120  # a longer window is summed into wider buckets (5, 10, 15... minutes)
_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, in the SVG's units."""

    x: float
    y: float
    width: float
    height: float
    title: str


def view(snapshot: Snapshot) -> dict[str, Any]:
    """Everything the page shows of one snapshot: texts ready to escape, figures, charts and the red lines."""
    totals = snapshot.totals
    long_clock, _short = clock_phrases(snapshot)
    impressions: int | None = totals.impressions if snapshot.impressions_from else None
    figures = {"posts": totals.posts, "contributors": totals.contributors, "potential_reach": totals.potential_reach,
               "engagement": totals.engagement, "impressions": impressions,
               "peak_posts_per_minute": snapshot.peak.posts,
               "peak_minute": snapshot.peak.minute.isoformat() if snapshot.peak.minute else None,
               "posts_last_minute": snapshot.posts_last_minute,
               "new_contributors_5m": snapshot.new_contributors_5m,
               "by_platform": dict(snapshot.by_platform)}
    return {
        "campaign": one_line(snapshot.campaign),
        "hashtags": [f"#{one_line(tag)}" for tag in snapshot.hashtags],
        "clock": long_clock,
        "local": f"{local_time(snapshot.now, snapshot)} {snapshot.timezone}",
        "updated": snapshot.now.isoformat(),
        "public": snapshot.names != "pseudonymized",
        "names": (f"Names pseudonymized below {snapshot.names_threshold:,} followers"
                  if snapshot.names == "pseudonymized" else "Names are public: every account is named"),
        "alerts": [one_line(alert) for alert in snapshot.alerts],
        "figures": figures,
        "headline": _headline(snapshot, impressions),
        "goals": _goals(snapshot),
        "hour": _chart(snapshot, list(snapshot.per_minute), snapshot.per_minute_end
                       - timedelta(minutes=len(snapshot.per_minute)), "last hour"),
        "window": _chart(snapshot, list(snapshot.per_minute_window), snapshot.start, "whole storm so far"),
        "health": [_line(source_parts(source, snapshot, True)) for source in snapshot.sources]
        + [_line(parts) for parts in (stream_parts(snapshot)[0], spend_parts(snapshot)) if parts],
        "intel": [_line(line.parts) for line in intel_lines(snapshot.intel, lambda m: local_time(m, snapshot))]
        if snapshot.intel is not None else [],
        "last_alert": (f"{local_time(snapshot.last_alert[0], snapshot)} {one_line(snapshot.last_alert[1])}"
                       if snapshot.last_alert else None),
        "accounts": [{"shown": one_line(a.shown), "platform": platforms.label(a.platform), "posts": f"{a.posts:,}",
                      "followers": f"{a.followers:,}", "engagement": f"{a.engagement:,}"}
                     for a in snapshot.top_accounts],
        "co_hashtags": [(f"#{one_line(tag)}", f"{count:,}") for tag, count in snapshot.co_hashtags],
        "targets": [(f"@{one_line(target)}", f"{count:,}") for target, count in snapshot.targets],
        "latest": [{"time": local_time(p.created_at, snapshot), "author": one_line(p.author),
                    "platform": platforms.label(p.platform), "text": one_line(p.text)} for p in snapshot.latest],
        "notes": [one_line(note) for note in snapshot.notes],
        "platforms": [(platforms.label(name), f"{posts:,}") for name, posts in
                      sorted(snapshot.by_platform.items(), key=lambda item: -item[1])],
    }


def _headline(snapshot: Snapshot, impressions: int | None) -> list[dict[str, str | None]]:
    """The large figures: label, value as shown, the `summary --json` key it equals (None: the page's own)."""
    peak = snapshot.peak
    at = f" at {local_time(peak.minute, snapshot)}" if peak.minute else ""
    note: str | None
    if impressions is None:
        names = " and ".join(platforms.label(p) for p in snapshot.by_platform) or "any platform here"
        shown_impressions, note = "—", f"not reported by {names}"
    else:
        only = snapshot.not_reporting_impressions
        shown_impressions = f"{impressions:,}"
        note = f"{' + '.join(platforms.label(p) for p in snapshot.impressions_from)} only" if only else None
    cells: list[tuple[str, str, str | None, str | None]] = [
        ("posts", f"{snapshot.totals.posts:,}", "posts", None),
        ("people", f"{snapshot.totals.contributors:,}", "contributors", None),
        ("last full minute", f"{snapshot.posts_last_minute:,}", None, "posts"),
        ("5-min mean", f"{snapshot.posts_per_minute_5m:,.1f}", None, "posts a minute"),
        ("peak minute", f"{peak.posts:,}", "peak_posts_per_minute", f"posts{at}" if at else None),
        ("new in 5 min", f"{snapshot.new_contributors_5m:,}", None, "people"),
        ("potential reach", f"{snapshot.totals.potential_reach:,}", "potential_reach", "followers"),
        ("engagement", f"{snapshot.totals.engagement:,}", "engagement", None),
        ("impressions", shown_impressions, "impressions", note),
    ]
    return [{"label": label, "value": value, "key": key, "note": note} for label, value, key, note in cells]


def _goals(snapshot: Snapshot) -> list[dict[str, Any]]:
    goals = []
    for label, done, goal in (("posts", snapshot.totals.posts, snapshot.goal_posts),
                              ("people", snapshot.totals.contributors, snapshot.goal_contributors)):
        if goal:
            share = done / goal
            goals.append({"label": label, "text": f"{done:,} of {goal:,} ({share:.0%})",
                          "width": round(min(1.0, share) * CHART_WIDTH, 1)})
    return goals


def _chart(snapshot: Snapshot, minutes: list[int], first: Any, what: str) -> dict[str, Any]:
    """Bars of posts per bucket (one minute, or wider so that at most MAX_BARS are drawn), and their text."""
    size = next((b for b in _BUCKETS if len(minutes) <= MAX_BARS * b), _BUCKETS[-1])
    counts = [sum(minutes[i:i + size]) for i in range(0, len(minutes), size)]
    unit = "minute" if size == 1 else f"{size} minutes"
    top = max(counts, default=0)
    step = CHART_WIDTH / max(1, len(counts))
    bars = []
    for index, count in enumerate(counts):
        height = count / top * (CHART_HEIGHT - 2) if top else 0.0
        start = first + timedelta(minutes=index * size)
        bars.append(Bar(round(index * step, 2), round(CHART_HEIGHT - height, 2), round(max(step - 1, 0.5), 2),
                        round(height, 2), f"{local_time(start, snapshot)}: {count:,} posts"))
    if counts:
        busiest = counts.index(top)
        latest = counts[-1]
        end = first + timedelta(minutes=len(minutes))
        text = (f"Posts per {unit}, {what}, {local_time(first, snapshot)} to {local_time(end, snapshot)} "
                f"{snapshot.timezone}: {sum(counts):,} posts; busiest {top:,} at "
                f"{local_time(first + timedelta(minutes=busiest * size), snapshot)}; latest {latest:,}.")
    else:
        text = f"Posts per minute, {what}: no complete minute yet."
    return {"title": f"Posts per {unit}, {what}", "bars": bars, "text": text, "top": f"{top:,}",
            "width": CHART_WIDTH, "height": CHART_HEIGHT}


def _line(parts: Parts) -> list[tuple[str, str]]:
    """(text, class) pairs from (text, rich style) parts: the page colours what the terminal colours."""
    return [(text, _style_class(style)) for text, style in parts]


def _style_class(style: str) -> str:
    if "on red" in style or "bold red" in style:
        return "bad"
    for word, name in (("red", "bad"), ("yellow", "warn"), ("green", "good"), ("dim", "dim"), ("bold", "strong")):
        if word in style:
            return name
    return ""
