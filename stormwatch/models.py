"""Plain data that flows between sources, normalizers, the store and metrics (no third-party imports).

Times are aware UTC datetimes, with one exception on purpose: `Post` and `Account` carry their times as the
canonical stored stamp (`2021-02-07T16:00:00.000Z`, plus the post's `ts` in epoch seconds). They are the
rows' SQL form, produced once at the parsing edge by the normalizers, and an import builds them by the
hundred thousand: a datetime each, converted back to text for SQL, would cost seconds per million posts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

POST_KINDS = ("original", "repost", "quote", "reply")


# Post and Account are built by the hundred thousand on imports: plain slotted dataclasses construct five times
# faster than frozen ones. Nothing mutates them after construction; `dataclasses.replace` makes changed copies.
@dataclass(slots=True)
class Post:
    """One post as stored: platform-qualified ids, UTC times, counters where the platform gives them."""

    uid: str
    platform: str
    id: str
    author_uid: str | None
    created_at: str
    ts: int
    text: str
    lang: str | None
    kind: str
    ref_uid: str | None
    url: str | None
    like_count: int | None
    repost_count: int | None
    reply_count: int | None
    quote_count: int | None
    bookmark_count: int | None
    impression_count: int | None
    metrics_at: str
    tags: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()


@dataclass(slots=True)
class Account:
    """One account snapshot; the newest snapshot (by `updated_at`) wins in the store."""

    uid: str
    platform: str
    id: str
    handle: str
    name: str | None
    followers_count: int | None
    following_count: int | None
    posts_count: int | None
    verified: bool | None
    created_at: str | None
    updated_at: str


@dataclass(frozen=True, slots=True)
class Batch:
    """What one raw page normalizes to.

    `posts` matched the campaign query and become campaign members; `context_posts` came only as
    context (the original of a repost, a quoted post) and are stored for lookups, never counted.
    """

    posts: tuple[Post, ...] = ()
    context_posts: tuple[Post, ...] = ()
    accounts: tuple[Account, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CountBucket:
    """The platform's own count of matching posts for one time bucket (for volume and coverage)."""

    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True, slots=True)
class Trend:
    """One entry of a platform's trending list at one place and moment, as the platform ranked it.

    `location` is how people name the place (`London`, or a Mastodon instance); `woeid` is X's id for it.
    `volume` is the platform's own figure (X: posts in the last 24 hours; Mastodon: uses today), if it gives one.
    """

    platform: str
    location: str
    woeid: int | None
    rank: int
    name: str
    volume: int | None
    seen_at: datetime


@dataclass(frozen=True)
class Cursor:
    """Where collection stands for one (campaign, source, query).

    `position` is everything stored so far (the newest X id, a Mastodon min_id, a Jetstream time);
    `pending` holds an unfinished sweep's state so the next run finishes it before starting anew;
    `since` is where collection began when nothing has been stored yet (kept at the precision the source
    set it with). `position` and `pending` are the platform's own terms, stored as they are.
    """

    campaign: str
    source: str
    query: str
    position: str | None = None
    pending: dict[str, Any] | None = None
    since: datetime | None = None

    def advanced(self, **changes: Any) -> Cursor:
        """A copy with the given fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Billing:
    """What a platform charges per resource read, and the UTC day reads are deduplicated within."""

    day: str
    post_usd: float
    user_usd: float


@dataclass(frozen=True)
class RateLimit:
    """A platform's rate-limit headers on one response."""

    limit: int | None
    remaining: int | None
    reset_at: datetime | None


@dataclass(frozen=True)
class RawPage:
    """One API response as the platform sent it, stamped with provenance, and the cursor that covers it.

    `endpoint` is `search`, `counts` or `lookup`; `cursor` is the collection state once this page is
    stored, so the rows and the cursor are written in one transaction.
    """

    source: str
    endpoint: str
    url: str
    retrieved_at: datetime
    body: Any
    cursor: Cursor
    query: str = ""
    rate_limit: RateLimit | None = None
    meta: dict[str, Any] = field(default_factory=dict)


RUN_STATUSES = ("running", "ok", "partial", "rate_limited", "failed")


@dataclass(frozen=True)
class RunRecord:
    """One collection run as the run log keeps it."""

    id: int
    campaign: str
    source: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    requests: int
    posts_read: int
    users_read: int
    posts_new: int
    posts_updated: int
    cost_usd: float
    error: str | None
    rate_limit_reset: datetime | None
