"""The span and platform a figure covers, bucket sizes for charts, and the SQL that selects a window's posts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import CampaignConfig
from ..times import iso_utc

BUCKET_CHOICES = ((timedelta(hours=3), 60), (timedelta(hours=36), 300), (timedelta(days=10), 3600))


@dataclass(frozen=True)
class Window:
    """The span and platform a metric covers: since <= created_at < until."""

    since: datetime
    until: datetime
    platform: str | None = None

    @property
    def since_ts(self) -> int:
        """`since` as epoch seconds."""
        return int(self.since.timestamp())

    @property
    def until_ts(self) -> int:
        """`until` as epoch seconds."""
        return int(self.until.timestamp())

    @property
    def minute_aligned(self) -> bool:
        """Whether both ends fall on whole minutes (the running tallies count per minute)."""
        return self.since_ts % 60 == 0 and self.until_ts % 60 == 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description of the window."""
        return {"since": iso_utc(self.since), "until": iso_utc(self.until), "platform": self.platform or "all"}


def campaign_window(campaign: CampaignConfig, since: datetime | None = None, until: datetime | None = None,
                    platform: str | None = None) -> Window:
    """The campaign's storm window, narrowed or widened by explicit `since`/`until`."""
    return Window(since or campaign.start, until or campaign.end, platform)


def bucket_seconds_for(window: Window) -> int:
    """Bucket size for charts: a minute for spans up to 3 h, 5 minutes up to 36 h, else an hour (or a day)."""
    span = window.until - window.since
    for limit, seconds in BUCKET_CHOICES:
        if span <= limit:
            return seconds
    return 86400


def bucket_origin(window: Window, size: int) -> int:
    """Epoch seconds where bucket 0 starts: `since` floored to the bucket size (day buckets start at `since`)."""
    return window.since_ts - window.since_ts % size if size < 86400 else window.since_ts


def window_where(campaign: str, window: Window, alias: str = "c") -> tuple[str, list[Any]]:
    """`WHERE` text and arguments selecting a campaign's member rows (`campaign_posts` as `alias`) in a window."""
    sql = f"{alias}.campaign = ? AND {alias}.ts >= ? AND {alias}.ts < ?"
    args: list[Any] = [campaign, window.since_ts, window.until_ts]
    if window.platform:
        sql += f" AND {alias}.platform = ?"
        args.append(window.platform)
    return sql, args


def supporters_where(campaign: str, window: Window, alias: str = "c") -> tuple[str, list[Any]]:
    """`window_where` for the supporters' posts only: hijack candidates (carrying a counter-hashtag) left out."""
    sql, args = window_where(campaign, window, alias)
    return f"{sql} AND {alias}.hijack = 0", args
