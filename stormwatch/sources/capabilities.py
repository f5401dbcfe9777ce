"""What a source can do, as small protocols the collector checks with `isinstance`.

A source is any object with a name, a retry policy and `close()` (`Source`); each capability is a protocol
extending it that a source satisfies by having the methods (no base class to inherit). The collector asks
`isinstance(source, Searchable)` and so on, and does only what the source can do:

| capability | meaning | today |
|---|---|---|
| `Searchable` | queries swept from a stored cursor, without gaps | X, Mastodon, Bluesky |
| `ReachLimited` | search reaches back only so far: say so when the storm began earlier | X |
| `Counted` | the platform counts a query's posts per minute or hour, for a price (volume, coverage, the plan) | X |
| `Billed` | reads cost money: the store bills them, the daily budget stops them | X |
| `MultiServer` | queries go to different servers: one failing does not stop the others | Mastodon |
| `Enriching` | profile and counter lookups run after the sweep (what a live feed leaves out) | Bluesky |
| `Streaming` | a live feed followed beside the scheduled jobs (`streaming.py`) | Bluesky |
| `FilteredStreaming` | a stream filtered by the app's rules, connected during storm windows (`streaming.py`) | X |
| `Trending` | the platform's trending list per place, fetched every `trends_interval` in the window | X, Mastodon |
| `TargetWatching` | the campaign's targets' own posts, swept from a cursor like a search | X, Mastodon, Bluesky |
| `Interruptible` | requests in flight are cut short when collecting stops (SIGTERM), not waited for | Mastodon |
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ..config import CampaignConfig, RetryPolicy
from ..models import Billing, Cursor, RawPage


@runtime_checkable
class Source(Protocol):
    """Every source: its platform's name, how its transient failures are retried, and releasing connections."""

    name: str

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries and backoff for this source's transient failures (from its config table)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class Searchable(Source, Protocol):
    """Queries that cover a campaign, each swept from a stored cursor so that nothing is missed or read twice."""

    def queries(self, campaign: CampaignConfig) -> list[str]:
        """The queries (hashtag groups, instance/tag pairs…) that cover a campaign."""
        ...

    def first_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """The cursor of a query never collected before."""
        ...

    def search(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """Pages newer than the cursor, each carrying the cursor that covers it once stored.

        Raises CredentialsError when the search needs a login the config does not give; on a source that is
        also `Streaming`, that only means no backfill (the live feed still brings every post from now on).
        """
        ...


@runtime_checkable
class ReachLimited(Source, Protocol):
    """A search that reaches back only so far (X's recent search: 7 days)."""

    def reach_warning(self, campaign: CampaignConfig, now: datetime) -> str | None:
        """What part of the storm window is already out of reach, or None."""
        ...


@runtime_checkable
class Counted(Source, Protocol):
    """Per-minute counts of a query's posts, as the platform counts them (volume and the coverage check)."""

    @property
    def counts_cost(self) -> float:
        """What one counts request costs (USD)."""
        ...

    def counted_queries(self, campaign: CampaignConfig, *, include_reposts: bool) -> list[str]:
        """The queries to count for a campaign, with or without reposts (the plan compares both)."""
        ...

    def counts(self, campaign: str, query: str, start: datetime, end: datetime, *,
               granularity: str = "minute") -> Iterator[RawPage]:
        """Counts pages of a query between two times, per `minute` (volume, coverage) or `hour` (the plan)."""
        ...


@runtime_checkable
class Billed(Source, Protocol):
    """Reads cost money: each page is billed when stored, and the campaign's daily budget stops reads."""

    def billing(self, day: str) -> Billing:
        """The read prices for pages stored on UTC day `day` (reads are deduplicated within the day)."""
        ...


@runtime_checkable
class RepostSampled(Counted, Billed, Protocol):
    """Counts that no longer count reposts (X since 2026-05-04): the plan estimates them from how often a sample
    of the campaign's own posts was reposted (their `retweet_count`)."""

    def repost_sample(self, campaign: CampaignConfig, start: datetime, end: datetime) -> RawPage:
        """One search page (at most 100) of the campaign's newest posts without reposts made in [start, end),
        each with its public metrics."""
        ...


@runtime_checkable
class MultiServer(Source, Protocol):
    """Queries go to different servers (Mastodon instances): rate limits, outages and refusals are per server."""

    def server_of(self, query: str) -> str:
        """The server a query reads."""
        ...


@runtime_checkable
class Enriching(Source, Protocol):
    """Lookups that fill in what posts arrived without: follower counts of their authors, current counters."""

    def profile_pages(self, account_ids: Iterable[str], campaign: str) -> Iterator[RawPage]:
        """Profile pages (follower counts) of these accounts (platform ids, not uids)."""
        ...

    def lookup_pages(self, post_ids: Iterable[str], campaign: str) -> Iterator[RawPage]:
        """Post pages with current counters for these posts (platform ids, not uids)."""
        ...


@runtime_checkable
class Streaming(Source, Protocol):
    """A live feed of the whole platform, followed beside the scheduled jobs (see `streaming.py`).

    The feed's position is stored as the cursor of query `stream_query`, per campaign. A source that
    streams and also searches uses search only to fill in behind the feed.
    """

    stream_query: str

    def stream_cursor(self, stored: Cursor | None, campaign: CampaignConfig, now: datetime) -> int:
        """Where a campaign's feed resumes: the stored position, else where the campaign wants it to start."""
        ...

    def stream_filter(self, hashtags: Iterable[str]) -> Callable[[Any], bool]:
        """A predicate keeping the feed's events that carry any of `hashtags`."""
        ...

    def stream(self, position: int | None, stop: threading.Event,
               on_events: Callable[[list[dict[str, Any]], int], None], *,
               wanted: Callable[[Any], bool] | None = None,
               on_connection: Callable[[str | None], None] | None = None) -> None:
        """Follow the feed from `position` until `stop` is set, handing batches of wanted events and the
        position that covers them to `on_events`; `on_connection` hears of each connection made (None) and each
        attempt that failed or connection that broke (why)."""
        ...

    def stream_page(self, campaign: str, events: list[dict[str, Any]], position: int) -> RawPage:
        """One batch of a campaign's events as the page that is archived, normalized and stored with its cursor."""
        ...


# Officials answer late: their posts are read from the storm's start until a day after its end.
TARGETS_FOLLOW_UP = timedelta(hours=24)


def trends_query(location: str) -> str:
    """The cursor query that schedules a place's trends fetches (its position: when it was last fetched)."""
    return f"trends {location}"


@runtime_checkable
class Trending(Source, Protocol):
    """The platform's trending list for a place (X: a WOEID; Mastodon: each instance), one request per place."""

    @property
    def trends_cost(self) -> float:
        """What one trends request costs (USD)."""
        ...

    def trend_locations(self, campaign: CampaignConfig) -> list[str]:
        """The places whose trending lists the campaign watches (`44418`, `mastodon.social`)."""
        ...

    def trends(self, campaign: str, location: str) -> RawPage:
        """The trending list of one place now, as one page (its `query` names the place)."""
        ...


@runtime_checkable
class TargetWatching(Source, Protocol):
    """The targets' own posts (the officials a campaign addresses), swept without gaps like a search.

    Their posts are not campaign members: the collector stores them as members of the campaign's `~targets`
    companion, and whether one answered a campaign post comes from its stored reference.
    """

    def target_queries(self, campaign: CampaignConfig) -> list[str]:
        """The queries that cover the campaign's targets on this platform (none when it names none here)."""
        ...

    def first_target_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """Where a target query starts: the storm's start."""
        ...

    def target_posts(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """Pages of the targets' posts newer than the cursor, each with the cursor that covers it once stored."""
        ...


@runtime_checkable
class Interruptible(Source, Protocol):
    """Requests in flight are cut short once collecting stops: a stalled server never holds up shutdown."""

    def stop_with(self, stop: threading.Event) -> None:
        """Cut this source's requests short once `stop` is set."""
        ...


@dataclass(frozen=True)
class StreamDelays:
    """How the stream reconnects (X's guidance; wall seconds), small in tests."""

    stall: float = 30.0  # no byte (keep-alives come every 20 s) for this long: stalled, reconnect
    network_step: float = 0.25  # network errors: linear backoff by this step...
    network_max: float = 16.0  # ...up to this
    http_first: float = 5.0  # HTTP errors: exponential from this...
    http_max: float = 320.0  # ...up to this
    rate_limited_first: float = 60.0  # 429 (TooManyConnections too): exponential from a minute
    watch: float = 0.2  # how often shutdown and pauses are looked at while connected or waiting
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class StreamRule:
    """One rule of the app's stream: its value and tag (and X's id once it exists)."""

    value: str
    tag: str
    id: str | None = None
    member: str | None = None  # the campaign (or companion) whose membership a post matching it joins
    hashtags: tuple[str, ...] | None = None  # ... when it carries one of these (None: the rule is not by tag)


@dataclass(frozen=True)
class RulesReconciled:
    """What reconciling the app's rules did: added, deleted (stale `stormwatch:` rules) and foreign rules kept."""

    added: tuple[StreamRule, ...]
    deleted: tuple[StreamRule, ...]
    foreign: tuple[StreamRule, ...]


class StreamEvents(Protocol):
    """What the stream tells its follower, all from the stream's thread."""

    def paused(self) -> str | None:
        """Why the stream should be disconnected now ("budget", "window", ...), or None to stay connected."""

    def connected(self, at: datetime) -> None:
        """A connection was made."""

    def line(self, body: dict[str, Any], at: datetime) -> None:
        """One post line as received (`data`, `includes`, `matching_rules`)."""

    def disconnected(self, reason: str, at: datetime) -> None:
        """The connection ended: "dropped", "stalled", "stopped", a pause's reason."""

    def trouble(self, why: str, retry_in: float) -> None:
        """A connection attempt (or the rules) failed; the next comes in `retry_in` seconds."""

    def reconciled(self, done: RulesReconciled) -> None:
        """The app's rules were made the wanted ones (what was added, deleted, and other programs' rules kept)."""


@runtime_checkable
class FilteredStreaming(Billed, Protocol):
    """A stream filtered by the app's rules (X's filtered stream: one connection per app serves every campaign),
    followed during the storm windows beside the scheduled search (`streaming.XStreamFollower`)."""

    @property
    def stream_lead(self) -> timedelta | None:
        """How long before a storm window the stream connects; None when the stream is switched off."""
        ...

    def stream_rules(self, campaigns: Sequence[CampaignConfig]) -> list[StreamRule]:
        """The rules covering the campaigns (each naming the membership its posts join)."""
        ...

    def follow_stream(self, rules: list[StreamRule], stop: threading.Event, events: StreamEvents,
                      delays: StreamDelays | None = None) -> None:
        """Reconcile the rules and follow the stream until `stop`, reconnecting as the platform asks."""
        ...
