"""The figures campaign metrics return, as plain dataclasses (whichever reader counted them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ..times import from_epoch, iso_utc

# How a top-accounts ranking orders accounts (then by uid).
ACCOUNT_ORDER = {"posts": "posts DESC, engagement DESC", "engagement": "engagement DESC, posts DESC",
                 "followers": "followers DESC, posts DESC"}
# Posts per (bucket, platform), and accounts whose first post falls in each bucket: {bucket: {platform: posts}},
# {bucket: accounts}, buckets numbered from the window's bucket origin.
BucketCounts = tuple[dict[int, dict[str, int]], dict[int, int]]
_SUMMED = ("posts", "originals", "reposts", "quotes", "replies", "contributors", "potential_reach",
           "potential_impressions", "impressions", "engagement")


@dataclass(frozen=True)
class Totals:
    """Headline figures for one window (and one platform, or all)."""

    posts: int = 0
    originals: int = 0
    reposts: int = 0
    quotes: int = 0
    replies: int = 0
    contributors: int = 0
    potential_reach: int = 0
    potential_impressions: int = 0
    impressions: int = 0
    engagement: int = 0
    first_post_at: datetime | None = None
    last_post_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, times as ISO-8601 UTC."""
        figures = asdict(self)
        for name in ("first_post_at", "last_post_at"):
            moment = figures[name]
            figures[name] = iso_utc(moment) if moment is not None else None
        return figures


@dataclass(frozen=True)
class CampaignTotals:
    """Totals for the whole campaign and for each platform."""

    all: Totals
    by_platform: dict[str, Totals] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeBucket:
    """Posts in one time bucket, per platform, with new and cumulative contributors."""

    start: datetime
    posts: int
    by_platform: dict[str, int]
    new_contributors: int
    cumulative_posts: int
    cumulative_contributors: int


@dataclass(frozen=True)
class Volume:
    """Posts per bucket over a window; empty buckets included so charts show the gaps."""

    bucket_seconds: int
    buckets: tuple[VolumeBucket, ...]


@dataclass(frozen=True)
class Peak:
    """The busiest minute of a window."""

    minute: datetime | None
    posts: int


@dataclass(slots=True)  # not frozen: a report builds one per contributor, hundreds of thousands
class AccountStat:
    """One account's part in the window."""

    uid: str
    platform: str
    handle: str
    name: str | None
    followers: int
    posts: int
    engagement: int


@dataclass(frozen=True)
class PostStat:
    """One post with its author and engagement."""

    uid: str
    platform: str
    created_at: datetime
    kind: str
    author_uid: str | None
    handle: str
    followers: int
    text: str
    url: str | None
    lang: str | None
    likes: int
    reposts: int
    replies: int
    quotes: int
    impressions: int | None
    engagement: int
    tags: tuple[str, ...] = ()
    # The author of the post this one reposts, quotes or answers (None when that post or its author is not stored).
    ref_handle: str | None = None
    ref_followers: int | None = None


def totals_of(posts: int, originals: int, reposts: int, quotes: int, replies: int, contributors: int, reach: int,
              potential: int, impressions: int, engagement: int, first: int | None, last: int | None) -> Totals:
    """Totals from counted columns, first and last post as epoch seconds."""
    return Totals(posts=posts, originals=originals, reposts=reposts, quotes=quotes, replies=replies,
                  contributors=contributors, potential_reach=reach, potential_impressions=potential,
                  impressions=impressions, engagement=engagement,
                  first_post_at=from_epoch(first) if first is not None else None,
                  last_post_at=from_epoch(last) if last is not None else None)


def combined(parts: Iterable[Totals]) -> Totals:
    """Platform totals added up: accounts are per platform, so contributors and reach simply add."""
    parts = list(parts)
    if not parts:
        return Totals()
    summed = {name: sum(getattr(p, name) for p in parts) for name in _SUMMED}
    firsts = [p.first_post_at for p in parts if p.first_post_at]
    lasts = [p.last_post_at for p in parts if p.last_post_at]
    return Totals(**summed, first_post_at=min(firsts) if firsts else None, last_post_at=max(lasts) if lasts else None)


def account_stat(row: tuple[Any, ...]) -> AccountStat:
    """An AccountStat from (uid, platform, handle, name, followers, posts, engagement); gaps filled from the uid."""
    uid, platform, handle, name, followers, posts, engagement = row
    return AccountStat(uid, platform or uid.split(":", 1)[0], handle or uid.split(":", 1)[-1], name, followers,
                       posts, engagement)
