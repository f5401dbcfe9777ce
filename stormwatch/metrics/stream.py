"""X's filtered stream over a campaign window: the time it was connected, what it stored, its gaps, and an estimate
of the reposts the gaps may have cost.

Since 2026-05-04 X's search serves no reposts: during the storm they come only from the stream, so the time the
stream was not connected is time whose reposts are missing (DESIGN.md). The gaps are derived here from the store's
connection rows (store/streams.py), never stored twice.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..config import CampaignConfig, Config
from ..store import Store
from ..store.files import process_running
from ..store.streams import STOPPED, StreamConnection
from ..times import iso_utc, parse_time
from .windows import Window

SOURCE = "x"
NOT_CONNECTED = "not connected"  # a gap no connection preceded
# One sentence, shown wherever the estimate is (summary, report, `summary --json` definitions).
ESTIMATE_NOTE = ("an estimate, not a count: the reposts X counted on the campaign's own X posts but that were not "
                 "stored, shared over the time the stream was not connected at an even pace, for the part that "
                 "falls in the gaps")


@dataclass(frozen=True)
class StreamGap:
    """A stretch of the window the stream should have covered and did not, with why (how the connection before
    it ended, or "not connected")."""

    start: datetime
    end: datetime
    reason: str

    @property
    def seconds(self) -> float:
        """How long it lasted (so far)."""
        return (self.end - self.start).total_seconds()

    def to_json(self) -> dict[str, Any]:
        """`{"from", "to", "reason"}`, times as ISO-8601 UTC."""
        return {"from": iso_utc(self.start), "to": iso_utc(self.end), "reason": self.reason}


@dataclass(frozen=True)
class StreamCoverage:
    """The X stream over one campaign window, as of `now`."""

    since: datetime  # where the stream's duty starts in this window (the window's start, or the stream's lead)
    until: datetime  # where it ends: the window's end, the campaign's end, or now during the storm
    now: datetime
    connected_seconds: int  # time in [since, until) covered by a connection
    posts: int  # posts stored for the campaign by the connections that overlap [since, until)
    gaps: tuple[StreamGap, ...]
    reposts_missed_estimate: int | None  # None when not computed (the dashboard does not ask for it)
    connected_since: datetime | None = None  # the open connection's start, when a connection is alive now
    foreign_rules: tuple[tuple[str, str], ...] = ()  # (value, tag) of other programs' rules, at the last connection

    @property
    def current_gap(self) -> StreamGap | None:
        """The gap going on now (the last one, when it reaches `now`)."""
        if self.gaps and self.gaps[-1].end >= self.now:
            return self.gaps[-1]
        return None

    @property
    def gap_seconds(self) -> int:
        """Time in [since, until) not covered by a connection."""
        return round(sum(gap.seconds for gap in self.gaps))

    def to_json(self) -> dict[str, Any]:
        """`summary --json`'s `x_stream`."""
        return {"connected_seconds": self.connected_seconds, "posts": self.posts,
                "gaps": [gap.to_json() for gap in self.gaps],
                "reposts_missed_estimate": self.reposts_missed_estimate}


def stream_coverage(store: Store, config: Config, campaign: CampaignConfig, window: Window, now: datetime, *,
                    estimate: bool = True) -> StreamCoverage | None:
    """The X stream's coverage of a campaign window: connected time, posts stored, gaps with their reasons, and
    (with `estimate`) the reposts the gaps may have missed. None when the stream is off, the campaign does not
    collect X, or the window is another platform's."""
    if not config.x.stream or SOURCE not in campaign.sources or window.platform not in (None, SOURCE):
        return None
    # The stream is meant to run from `stream_lead` before the storm to its end; the figures cover that part of
    # the window, up to now.
    duty_start = campaign.start - config.x.stream_lead
    since = max(window.since, duty_start)
    until = max(since, min(window.until, campaign.end, now))
    # From the duty's start: a connection that ended before the window tells why the window's first gap began.
    rows = store.stream_connections(SOURCE, min(since, duty_start), max(until, since))
    spans = [_span(row, now) for row in rows]
    inside = [(start, end, row) for (start, end, _why), row in zip(spans, rows, strict=True)
              if start < until and end > since]
    connected = _Timeline([(start, end) for start, end, _why in spans])
    gaps = _gaps(spans, since, until)
    alive = [start for start, _end, why in spans if not why]  # open, its process running (during the lead too)
    coverage = StreamCoverage(
        since=since, until=until, now=now, connected_seconds=round(connected.covered(since, until)),
        posts=sum(row.posts.get(campaign.name, 0) for _start, _end, row in inside),
        gaps=tuple(gaps), reposts_missed_estimate=None, connected_since=min(alive) if alive else None,
        foreign_rules=rows[-1].foreign_rules if rows else ())
    if estimate:
        coverage = replace(coverage, reposts_missed_estimate=reposts_missed_estimate(
            store, campaign.name, gaps, connected))
    return coverage


def _span(row: StreamConnection, now: datetime) -> tuple[datetime, datetime, str]:
    """When a connection covered (opened, ended) and why it ended. An open row covers up to now while its process
    runs; one whose process died covers up to its last sign of life and ended as "collector stopped" (the next
    connection will record just that)."""
    if row.closed_at is not None:
        return row.opened_at, row.closed_at, row.reason or "unknown"
    if row.pid is not None and process_running(row.pid):
        return row.opened_at, max(now, row.last_seen_at), ""
    return row.opened_at, row.last_seen_at, STOPPED


def _gaps(spans: Sequence[tuple[datetime, datetime, str]], since: datetime, until: datetime) -> list[StreamGap]:
    """The parts of [since, until) no connection covers; each gap's reason is how the connection before it ended."""
    gaps: list[StreamGap] = []
    covered_to, reason = since, NOT_CONNECTED
    latest_end: datetime | None = None
    for start, end, why in sorted(spans):
        if start >= until:
            break
        if start > covered_to:
            gaps.append(StreamGap(covered_to, start, reason))
        if latest_end is None or end >= latest_end:
            latest_end, reason = end, why
        covered_to = max(covered_to, end)
    if covered_to < until:
        gaps.append(StreamGap(covered_to, until, reason))
    return gaps


class _Timeline:
    """Merged time spans with running sums: how much of any [a, b) they cover, in O(log n)."""

    def __init__(self, spans: Iterable[tuple[datetime, datetime]]) -> None:
        merged: list[list[float]] = []
        for start, end in sorted((s.timestamp(), e.timestamp()) for s, e in spans if e > s):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [span[0] for span in merged]
        self.ends = [span[1] for span in merged]
        self.before = [0.0]  # covered seconds before each span
        for start, end in merged:
            self.before.append(self.before[-1] + end - start)

    def _upto(self, moment: float) -> float:
        index = bisect.bisect_right(self.starts, moment)
        if index == 0:
            return 0.0
        return self.before[index - 1] + min(moment, self.ends[index - 1]) - self.starts[index - 1]

    def covered(self, since: datetime | float, until: datetime | float) -> float:
        """Seconds of [since, until) the spans cover."""
        a = since.timestamp() if isinstance(since, datetime) else since
        b = until.timestamp() if isinstance(until, datetime) else until
        return max(0.0, self._upto(b) - self._upto(a)) if b > a else 0.0


def reposts_missed_estimate(store: Store, campaign: str, gaps: Sequence[StreamGap], connected: _Timeline) -> int:
    """Reposts the gaps may have missed (an estimate, never a count: see ESTIMATE_NOTE).

    The store keeps only each post's latest counters (`repost_count` as of `metrics_at`). For each of the
    campaign's own X posts (originals, quotes, replies) made before a gap ended, the reposts X counted up to
    `metrics_at` less the campaign's stored reposts of it made by then are reposts not stored. They were made while
    the stream was not connected (a connected stream delivers every repost), somewhere between the post's creation
    and `metrics_at`; they are shared over that unconnected time at an even pace, and the gaps' part is counted."""
    if not gaps:
        return 0
    gap_line = _Timeline([(gap.start, gap.end) for gap in gaps])
    rows = store.conn.execute(
        "SELECT p.created_at, p.metrics_at, p.repost_count, "
        "(SELECT count(*) FROM posts r JOIN campaign_posts rc ON rc.campaign = c.campaign AND rc.post_uid = r.uid "
        " WHERE r.ref_uid = p.uid AND r.kind = 'repost' AND r.created_at <= p.metrics_at) "
        "FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid "
        "WHERE c.campaign = ? AND c.platform = 'x' AND c.kind IN ('original', 'quote', 'reply') AND c.ts < ? "
        "AND p.repost_count > 0 AND p.metrics_at > ?",
        (campaign, int(gaps[-1].end.timestamp()) + 1, iso_utc(gaps[0].start))).fetchall()
    total = 0.0
    for created_at, metrics_at, counted, stored in rows:
        unseen = counted - stored
        if unseen <= 0:
            continue
        made, read = parse_time(created_at).timestamp(), parse_time(metrics_at).timestamp()
        unconnected = (read - made) - connected.covered(made, read)
        in_gaps = gap_line.covered(made, read)
        if unconnected > 0 and in_gaps > 0:
            total += unseen * min(1.0, in_gaps / unconnected)
    return round(total)
