"""The storm model: what a storm is made of (its spec, users and posts), post kinds, X snowflake ids.

A `StormSpec` says what storm to generate; `generator.py` turns it into `User`s and `Post`s, `truth.py`
counts them the way DESIGN.md defines the metrics, and `storm.py` holds a materialized storm for the mounts.
Everything here is plain data (frozen dataclasses) with no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TWITTER_EPOCH_MS = 1288834974657  # X snowflake epoch (2010-11-04T01:42:54.657Z)

ORIGINAL, REPOST, QUOTE, REPLY = "original", "repost", "quote", "reply"
KINDS: tuple[str, ...] = (ORIGINAL, REPOST, QUOTE, REPLY)


def snowflake(ms: int, worker: int = 0, sequence: int = 0) -> int:
    """An X snowflake id for a post created at epoch milliseconds `ms`."""
    return ((ms - TWITTER_EPOCH_MS) << 22) | ((worker & 0x3FF) << 12) | (sequence & 0xFFF)


def snowflake_ms(snowflake_id: int) -> int:
    """The epoch milliseconds encoded in an X snowflake id."""
    return (snowflake_id >> 22) + TWITTER_EPOCH_MS


def utc(moment: datetime, name: str) -> datetime:
    """`moment` in UTC; naive datetimes are refused because a storm window must be unambiguous."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


def escape_text(text: str) -> str:
    """Escape text the way X serves post text (only &, < and > become entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_text(text: str) -> str:
    """Undo `escape_text`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True, kw_only=True)
class StormSpec:
    """What storm to generate: the campaign's hashtags and accounts, its window, size and seed."""

    hashtags: tuple[str, ...]  # campaign hashtags, without '#'
    accounts: tuple[str, ...] = ()  # the campaign's own handles: early originals, 10k-60k followers
    targets: tuple[str, ...] = ()  # officials addressed: mentioned in ~25% of non-reposts, never post
    start: datetime  # announced storm window (UTC-aware)
    end: datetime
    seed: int = 2021
    posts: int = 4000  # approx. campaign-matching posts from (start - lead) to end
    lead: timedelta = timedelta(hours=1)  # quiet baseline before the start
    population: int | None = None  # distinct people; default posts // 4, at least 50
    platforms: tuple[tuple[str, float], ...] = (("x", 1.0),)  # share of posts (and people) per platform
    background_days: int = 0  # days of everyday hashtag use on X before the lead (background.py)
    background_per_day: int | None = None  # background posts a day; default: a fortieth of `posts`
    # Storm intelligence (all off by default, so a spec without them gives the same storm as before; intel.py):
    toolkit_share: float = 0.0  # share of supporters' own posts that paste the campaign toolkit's text (varied)
    personal_texts: bool = False  # supporters add a sentence of their own to the template texts
    trend_threshold: int | None = None  # posts an hour on a campaign tag that make it trend (at a place's bar 1)
    target_responses: bool = False  # the first target posts, replies to a campaign post, and posts elsewhere
    counter_hashtags: tuple[str, ...] = ()  # the opponents' hashtags: a counter wave carries them
    counter_posts: int = 0  # about how many posts the counter wave has

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start, "start"))
        object.__setattr__(self, "end", utc(self.end, "end"))
        object.__setattr__(self, "hashtags", tuple(tag.lstrip("#") for tag in self.hashtags))
        object.__setattr__(self, "accounts", tuple(handle.lstrip("@") for handle in self.accounts))
        object.__setattr__(self, "targets", tuple(handle.lstrip("@") for handle in self.targets))
        object.__setattr__(self, "counter_hashtags", tuple(tag.lstrip("#") for tag in self.counter_hashtags))
        if not 0.0 <= self.toolkit_share <= 1.0:
            raise ValueError("toolkit_share must be between 0 and 1")
        if self.counter_posts < 0 or (self.counter_posts and not self.counter_hashtags):
            raise ValueError("counter_posts must not be negative, and needs counter_hashtags")
        if self.trend_threshold is not None and self.trend_threshold < 1:
            raise ValueError("trend_threshold must be at least 1")
        if not self.hashtags or not all(self.hashtags):
            raise ValueError("a storm needs at least one campaign hashtag")
        if self.end <= self.start:
            raise ValueError(f"storm end {self.end} must be after start {self.start}")
        if self.lead < timedelta(0):
            raise ValueError("lead must not be negative")
        if self.posts < 1:
            raise ValueError("posts must be at least 1")
        if not 0 <= self.background_days <= 30:
            raise ValueError("background_days must be between 0 and 30")
        if self.background_per_day is not None and self.background_per_day < 0:
            raise ValueError("background_per_day must not be negative")
        if not self.platforms or any(share <= 0 for _, share in self.platforms):
            raise ValueError("platform shares must be positive")
        names = [name for name, _ in self.platforms]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate platform in {names}")

    @property
    def window_start(self) -> datetime:
        """When generation starts: the announced start minus the quiet lead."""
        return self.start - self.lead

    @property
    def people(self) -> int:
        """The number of ordinary people in the population (campaign accounts and targets come on top)."""
        return self.population if self.population is not None else max(50, self.posts // 4)


@dataclass(frozen=True, slots=True)
class User:
    """One account on one platform: a person, a campaign account or an addressed official."""

    index: int
    id: str
    platform: str
    username: str
    name: str
    created_ms: int
    followers: int
    following: int
    tweet_count: int
    listed: int
    verified: bool
    verified_type: str
    description: str
    location: str
    protected: bool
    profile_image_url: str
    lang: str
    role: str  # "person" | "campaign" | "target" | "opponent" (the counter wave, intel.py)

    @property
    def created_at(self) -> datetime:
        """When the account was created (UTC)."""
        return datetime.fromtimestamp(self.created_ms / 1000, UTC)


# Entity tuples keep posts small: (start, end, tag); (start, end, user index); (start, end, url, expanded).
Hashtag = tuple[int, int, str]
Mention = tuple[int, int, int]
Link = tuple[int, int, str, str]


@dataclass(frozen=True, slots=True)
class Post:
    """One post with its fixed engagement snapshot; offsets index the served (HTML-escaped) text."""

    id: int
    ms: int
    platform: str
    author: int
    kind: str
    text: str
    lang: str
    hashtags: tuple[Hashtag, ...]
    mentions: tuple[Mention, ...]
    urls: tuple[Link, ...]
    ref_id: int | None
    conversation_id: int
    in_reply_to: int | None
    campaign: bool
    deleted: bool
    reposts: int
    replies: int
    likes: int
    quotes: int
    bookmarks: int
    impressions: int
    source: str
    possibly_sensitive: bool = False

    @property
    def native_id(self) -> str:
        """The platform's id as text (X ids exceed 2^53, so they travel as strings)."""
        return str(self.id)

    @property
    def created_s(self) -> int:
        """Creation time in whole epoch seconds (X reports created_at to the second)."""
        return self.ms // 1000

    @property
    def created_at(self) -> datetime:
        """Creation time (UTC, whole seconds, as X reports it)."""
        return datetime.fromtimestamp(self.ms // 1000, UTC)
