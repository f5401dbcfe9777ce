"""The ground-truth oracle: what a collector should find in a storm, counted as DESIGN.md defines the metrics.

`TruthBuilder` counts post by post (so it also works while a storm streams by); `Storm.truth` feeds it the
posts of a window; the platform mounts feed it what their platform shows (a Mastodon instance's tag timelines).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stormwatch.simulator.spec import KINDS, ORIGINAL, QUOTE, REPLY, REPOST, Post, User, utc


def _minute(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds - seconds % 60, UTC)


@dataclass(frozen=True)
class Truth:
    """Ground truth over campaign-matching, non-deleted posts in a window (DESIGN.md metric definitions)."""

    since: datetime
    until: datetime
    platform: str | None
    include_reposts: bool
    post_ids: frozenset[str]
    posts: int
    originals: int
    reposts: int
    quotes: int
    replies: int
    contributors: int
    potential_reach: int
    potential_impressions: int
    impressions: int
    engagement: int
    first_post_at: datetime | None
    last_post_at: datetime | None
    per_minute: dict[datetime, int]
    by_kind: dict[str, int]
    by_platform: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (times as ISO-8601 UTC with Z, ids sorted)."""

        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "platform": self.platform,
            "include_reposts": self.include_reposts,
            "post_ids": sorted(self.post_ids, key=int),
            "posts": self.posts,
            "originals": self.originals,
            "reposts": self.reposts,
            "quotes": self.quotes,
            "replies": self.replies,
            "contributors": self.contributors,
            "potential_reach": self.potential_reach,
            "potential_impressions": self.potential_impressions,
            "impressions": self.impressions,
            "engagement": self.engagement,
            "first_post_at": iso(self.first_post_at),
            "last_post_at": iso(self.last_post_at),
            "per_minute": {iso(minute): count for minute, count in sorted(self.per_minute.items())},
            "by_kind": dict(self.by_kind),
            "by_platform": dict(self.by_platform),
        }


class TruthBuilder:
    """Accumulates ground truth post by post, so it also works while streaming (`iter_storm`)."""

    def __init__(
        self,
        since: datetime,
        until: datetime,
        *,
        platform: str | None = "x",
        include_reposts: bool = True,
        tags: tuple[str, ...] | None = None,
    ) -> None:
        self.since = utc(since, "since")
        # With `tags`, the posts carrying any of them count (a counter-hashtag wave); else the campaign's posts.
        self.tags = frozenset(tag.casefold() for tag in tags) if tags is not None else None
        self.until = utc(until, "until")
        self.platform = platform
        self.include_reposts = include_reposts
        # Compare whole seconds: created_at has second resolution, so since <= created_at < until
        # becomes ceil(since) <= created_s < ceil(until).
        self._since_s = math.ceil(self.since.timestamp())
        self._until_s = math.ceil(self.until.timestamp())
        self._ids: list[str] = []
        self._by_kind: Counter[str] = Counter({kind: 0 for kind in KINDS})
        self._by_platform: Counter[str] = Counter()
        self._per_minute: Counter[int] = Counter()
        self._followers: dict[int, int] = {}
        self._potential_impressions = 0
        self._impressions = 0
        self._engagement = 0
        self._first: int | None = None
        self._last: int | None = None

    def matches(self, post: Post) -> bool:
        """Whether `post` belongs in this truth (campaign, not deleted, platform, window, kind)."""
        return (
            (post.campaign if self.tags is None else any(t.casefold() in self.tags for _, _, t in post.hashtags))
            and not post.deleted
            and (self.platform is None or post.platform == self.platform)
            and (self.include_reposts or post.kind != REPOST)
            and self._since_s <= post.ms // 1000 < self._until_s
        )

    def add(self, post: Post, author: User) -> bool:
        """Count `post` (written by `author`) if it matches; return whether it did."""
        if not self.matches(post):
            return False
        self.count(post, author)
        return True

    def count(self, post: Post, author: User) -> None:
        """Count `post` (written by `author`), known to belong here."""
        created = post.ms // 1000
        self._ids.append(post.native_id)
        self._by_kind[post.kind] += 1
        self._by_platform[post.platform] += 1
        self._per_minute[created - created % 60] += 1
        self._followers[author.index] = author.followers
        self._potential_impressions += author.followers
        if post.kind != REPOST:
            # A repost carries its original's counters; adding them would count the original twice.
            self._impressions += post.impressions
            self._engagement += post.likes + post.reposts + post.replies + post.quotes
        self._first = created if self._first is None else min(self._first, created)
        self._last = created if self._last is None else max(self._last, created)

    def result(self) -> Truth:
        """The accumulated truth."""
        return Truth(
            since=self.since,
            until=self.until,
            platform=self.platform,
            include_reposts=self.include_reposts,
            post_ids=frozenset(self._ids),
            posts=len(self._ids),
            originals=self._by_kind[ORIGINAL],
            reposts=self._by_kind[REPOST],
            quotes=self._by_kind[QUOTE],
            replies=self._by_kind[REPLY],
            contributors=len(self._followers),
            potential_reach=sum(self._followers.values()),
            potential_impressions=self._potential_impressions,
            impressions=self._impressions,
            engagement=self._engagement,
            first_post_at=None if self._first is None else datetime.fromtimestamp(self._first, UTC),
            last_post_at=None if self._last is None else datetime.fromtimestamp(self._last, UTC),
            per_minute={_minute(m): n for m, n in sorted(self._per_minute.items())},
            by_kind=dict(self._by_kind),
            by_platform=dict(sorted(self._by_platform.items())),
        )
