"""Which source and which normalizers serve each platform: one registration per platform.

A `PlatformSources` says how to build the platform's source from the config, which normalizer turns each
kind of page its source returns into rows (by the page's endpoint), how its counts pages become buckets, and
which kinds of archive record the importer reads for it. The collector, the streaming follower, the importer
and the demo look platforms up here instead of naming them.

Adding a platform: a `sources/<p>.py`, a `normalize/<p>.py` (with its `RECORD_KINDS`), an entry in
`platforms.py`, a `register(...)` below, and a simulator mount for the tests and the demo.

Source modules are imported only when a source is built: the import reader and the report never load
tweepy, Mastodon.py or atproto.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import Config
from ..errors import MalformedPage, StormwatchError
from ..models import Batch, CountBucket, RawPage, Trend
from ..normalize import bluesky as normalize_bluesky
from ..normalize import mastodon as normalize_mastodon
from ..normalize import x as normalize_x
from ..normalize.common import RecordKind
from ..platforms import BLUESKY, MASTODON, Platform, X
from ..times import Clock, iso_utc
from .capabilities import Source

PageNormalizer = Callable[[Any, str], Batch]
CountsNormalizer = Callable[[Any], list[CountBucket]]
TrendsNormalizer = Callable[[Any, str, datetime], list[Trend]]  # (body, location, seen_at)
SourceFactory = Callable[[Config, Clock], Source]


@dataclass(frozen=True)
class PlatformSources:
    """How stormwatch collects and imports one platform."""

    platform: Platform
    make_source: SourceFactory
    pages: Mapping[str, PageNormalizer]  # a source's page endpoint -> its normalizer (body, retrieved_at)
    record_kinds: tuple[RecordKind, ...]  # what the importer reads for this platform, in the order tried
    counts: CountsNormalizer | None = None  # counts pages -> per-minute buckets (platforms that count)
    trends: TrendsNormalizer | None = None  # trends pages -> ranked entries (platforms with trending lists)

    @property
    def name(self) -> str:
        """The platform's name (`x`)."""
        return self.platform.name

    def normalizer(self, endpoint: str) -> PageNormalizer:
        """The normalizer for pages from `endpoint` of this platform's source."""
        try:
            return self.pages[endpoint]
        except KeyError:
            raise StormwatchError(f"{self.name}: no normalizer for {endpoint!r} pages") from None


_REGISTERED: dict[str, PlatformSources] = {}


def register(entry: PlatformSources) -> PlatformSources:
    """Make a platform known to the collector, the streaming follower, the importer and the demo."""
    _REGISTERED[entry.name] = entry
    return entry


def registered() -> tuple[PlatformSources, ...]:
    """Every registered platform, in registration order."""
    return tuple(_REGISTERED.values())


def platform_sources(name: str) -> PlatformSources:
    """The registration of platform `name` (StormwatchError naming the known ones otherwise)."""
    try:
        return _REGISTERED[name]
    except KeyError:
        raise StormwatchError(f"unknown source {name!r} (known: {', '.join(_REGISTERED)})") from None


def make_source(config: Config, name: str, clock: Clock) -> Source:
    """Build the named source from the config (reads its credentials from the environment)."""
    return platform_sources(name).make_source(config, clock)


def normalize_page(page: RawPage) -> Batch:
    """Rows from a page a source returned, by its platform and endpoint (MalformedPage saying where otherwise)."""
    normalize = platform_sources(page.source).normalizer(page.endpoint)
    return normalize(page.body, iso_utc(page.retrieved_at))


def normalize_counts(page: RawPage) -> list[CountBucket]:
    """Per-minute buckets from a counts page a source returned."""
    counts = platform_sources(page.source).counts
    if counts is None:
        raise MalformedPage(f"{page.source}: the platform has no counts pages")
    return counts(page.body)


def normalize_trends(page: RawPage) -> list[Trend]:
    """Ranked entries from a trends page a source returned (its `query` names the place)."""
    trends = platform_sources(page.source).trends
    if trends is None:
        raise MalformedPage(f"{page.source}: the platform has no trends pages")
    return trends(page.body, page.query, page.retrieved_at)


def record_kinds() -> tuple[RecordKind, ...]:
    """Every kind of archive record, in the order the importer tries them: each platform's own kinds in
    registration order, then the loose ones (known by a few common fields only)."""
    kinds = [kind for entry in _REGISTERED.values() for kind in entry.record_kinds]
    return tuple([k for k in kinds if not k.loose] + [k for k in kinds if k.loose])


def record_kind(name: str) -> RecordKind:
    """The archive record kind called `name` (KeyError otherwise)."""
    for kind in record_kinds():
        if kind.name == name:
            return kind
    raise KeyError(name)


# --------------------------------------------------------------------------------- registrations

def _x_source(config: Config, clock: Clock) -> Source:
    from .x import XSource

    return XSource(config.x, config.x.bearer_token(), clock)


def _mastodon_source(config: Config, clock: Clock) -> Source:
    from .mastodon import MastodonSource

    return MastodonSource(config.mastodon, clock, config.mastodon.access_token())


def _bluesky_source(config: Config, clock: Clock) -> Source:
    from .bluesky import BlueskySource

    return BlueskySource(config.bluesky, clock)


register(PlatformSources(
    platform=X, make_source=_x_source,
    pages={"search": normalize_x.normalize_page, "targets": normalize_x.normalize_page,
           "stream": normalize_x.normalize_page, "lookup": normalize_x.normalize_page},
    counts=normalize_x.normalize_counts, trends=normalize_x.normalize_trends, record_kinds=normalize_x.RECORD_KINDS))
register(PlatformSources(
    platform=MASTODON, make_source=_mastodon_source,
    pages={"timeline": normalize_mastodon.normalize_timeline, "targets": normalize_mastodon.normalize_timeline},
    trends=normalize_mastodon.normalize_trending_tags, record_kinds=normalize_mastodon.RECORD_KINDS))
register(PlatformSources(
    platform=BLUESKY, make_source=_bluesky_source,
    pages={"search": normalize_bluesky.normalize_page, "stream": normalize_bluesky.normalize_jetstream,
           "profiles": normalize_bluesky.normalize_profiles, "lookup": normalize_bluesky.normalize_post_views,
           "targets": normalize_bluesky.normalize_author_feed},
    record_kinds=normalize_bluesky.RECORD_KINDS))
