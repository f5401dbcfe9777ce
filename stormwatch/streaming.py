"""Live feeds followed beside the scheduled jobs: one follower per streaming source (Bluesky's Jetstream).

A follower serves every campaign that collects from its source over one connection: it keeps the events
that carry any campaign's tags, and stores each campaign's share of a batch with that campaign's cursor
(the feed's position), so a restart resumes where the stored data ends. The scheduler starts the followers
(`start_followers`) next to its jobs; how often the jobs run is not their business.

A feed that names authors only by id (Jetstream: a DID, no handle, no followers) has the profiles of new
authors looked up beside it (`ProfileLookups`), in batches of up to 25 a few seconds after they first post, so
the dashboard and the reports know them by handle within seconds rather than at the next scheduled run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .archive.writer import RawArchive
from .collector import Collector
from .config import CampaignConfig
from .errors import MalformedPage, SourceError, StormwatchError
from .sources import registry
from .sources.capabilities import Enriching, Streaming
from .store import Store
from .times import Clock, from_epoch, iso_utc_seconds

log = logging.getLogger(__name__)

# New authors' profiles are asked for when this many wait, or this many (wall) seconds after the first of them.
PROFILE_BATCH = 25
PROFILE_WAIT_SECONDS = 3.0
# After a failed lookup, the authors wait this long before they are asked for again (the scheduled run also
# fills in what is missing).
PROFILE_RETRY_SECONDS = 30.0


class ProfileLookups:
    """Looks up the profiles of the new authors a live feed brings, in batches, in a thread beside the feed."""

    def __init__(self, source: Enriching, database: Path, *, archive: RawArchive | None = None,
                 batch: int = PROFILE_BATCH, wait_seconds: float = PROFILE_WAIT_SECONDS) -> None:
        self.source = source
        self.database = database
        self.archive = archive
        self.batch = batch
        self.wait_seconds = wait_seconds
        self._pending: dict[str, str] = {}  # author uid -> the campaign whose post brought it (for the archive)
        self._asked: set[str] = set()  # authors looked up (or known) already in this process
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.looked_up = 0

    def add(self, campaign: str, author_uids: Iterable[str | None]) -> None:
        """Authors seen on the feed: those not asked for yet are looked up soon."""
        with self._lock:
            for uid in author_uids:
                if uid and uid not in self._asked:
                    self._asked.add(uid)
                    self._pending[uid] = campaign
            if len(self._pending) >= self.batch:
                self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Look up waiting authors until `stop` is set."""
        with Store.open(self.database) as store:
            while not stop.is_set():
                self._wake.wait(self.wait_seconds)
                self._wake.clear()
                with self._lock:
                    waiting, self._pending = self._pending, {}
                if waiting:
                    self._look_up(store, waiting, stop)

    def _look_up(self, store: Store, waiting: dict[str, str], stop: threading.Event) -> None:
        known = set(store.accounts_with_followers(list(waiting)))
        by_campaign: dict[str, list[str]] = {}
        for uid, campaign in waiting.items():
            if uid not in known:
                by_campaign.setdefault(campaign, []).append(uid.split(":", 1)[1])
        for campaign, ids in by_campaign.items():
            try:
                for page in self.source.profile_pages(ids, campaign):
                    if self.archive is not None:
                        self.archive.write(campaign, page)
                    batch = registry.normalize_page(page)
                    store.save_page(batch, campaign=None, cursor=None, run_id=None, collected_at=page.retrieved_at)
                    self.looked_up += len(batch.accounts)
            except (SourceError, MalformedPage) as exc:
                log.warning("%s: profiles of %d new authors not looked up yet: %s", self.source.name, len(ids), exc)
                with self._lock:  # asked again after a while (the scheduled run may fill them in first)
                    self._asked.difference_update(f"{self.source.name}:{i}" for i in ids)
                stop.wait(PROFILE_RETRY_SECONDS)


class StreamFollower:
    """Follows one streaming source's live feed for the campaigns that collect from it."""

    def __init__(self, source: Streaming, campaigns: Sequence[CampaignConfig], database: Path, *, clock: Clock,
                 archive: RawArchive | None = None) -> None:
        self.source = source
        self.campaigns = campaigns
        self.database = database
        self.clock = clock
        self.archive = archive

    def follow(self, stop: threading.Event) -> None:
        """Store the feed's posts for every campaign until `stop` is set (returns within about a second)."""
        if not self.campaigns:
            return
        source = self.source
        wanted = {c.name: source.stream_filter(c.hashtags) for c in self.campaigns}
        any_campaign = source.stream_filter([tag for c in self.campaigns for tag in c.hashtags])
        lookups = (ProfileLookups(source, self.database, archive=self.archive) if isinstance(source, Enriching)
                   else None)
        with Store.open(self.database) as store:
            now = self.clock.now()
            for campaign in self.campaigns:
                store.register_campaign(campaign.name, campaign.start, campaign.end)
            start = min(source.stream_cursor(store.get_cursor(c.name, source.name, source.stream_query), c, now)
                        for c in self.campaigns)

            def on_events(events: list[dict[str, Any]], position: int) -> None:
                for campaign in self.campaigns:
                    mine = [e for e in events if wanted[campaign.name](e)]
                    page = source.stream_page(campaign.name, mine, position)
                    if self.archive is not None and mine:
                        self.archive.write(campaign.name, page)
                    batch = registry.normalize_page(page)
                    for problem in batch.errors:
                        log.warning("%s/%s: %s", campaign.name, source.name, problem)
                    store.save_page(batch, campaign=campaign.name, cursor=page.cursor, run_id=None,
                                    collected_at=page.retrieved_at, requests=0)
                    if lookups is not None and batch.posts:
                        lookups.add(campaign.name, (post.author_uid for post in batch.posts))

            log.info("%s: following the live feed from %s", source.name,
                     iso_utc_seconds(from_epoch(start / 1_000_000)))
            lookup_thread = None
            if lookups is not None:
                lookup_thread = threading.Thread(target=lookups.run, args=(stop,), daemon=True,
                                                 name=f"stormwatch-{source.name}-profiles")
                lookup_thread.start()
            try:
                source.stream(start, stop, on_events, wanted=any_campaign)
            finally:
                if lookup_thread is not None:
                    lookup_thread.join(timeout=5.0)


def followers(collector: Collector, campaigns: Sequence[CampaignConfig]) -> list[StreamFollower]:
    """A follower for each of the campaigns' sources that streams (sharing the collector's source objects).

    A source that cannot be built (a missing secret) is left to its scheduled job, which reports why.
    """
    found = []
    # A campaign's counter-hashtags are followed like its own tags, into the `~counter` companion's membership.
    campaigns = [*campaigns, *(c for c in (each.counter() for each in campaigns) if c is not None)]
    for name in dict.fromkeys(n for c in campaigns for n in c.sources):
        try:
            source = collector.source(name)
        except StormwatchError as exc:
            log.debug("%s: no live feed followed: %s", name, exc)
            continue
        if isinstance(source, Streaming):
            users = [c for c in campaigns if name in c.sources]
            found.append(StreamFollower(source, users, collector.config.storage.database, clock=collector.clock,
                                        archive=collector.archive))
    return found


def start_followers(collector: Collector, campaigns: Sequence[CampaignConfig],
                    stop: threading.Event) -> list[threading.Thread]:
    """Follow every streaming source of the campaigns in a thread of its own until `stop` is set."""
    threads = []
    for follower in followers(collector, campaigns):
        thread = threading.Thread(target=_follow, args=(follower, stop),
                                  name=f"stormwatch-{follower.source.name}-stream", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _follow(follower: StreamFollower, stop: threading.Event) -> None:
    try:
        follower.follow(stop)
    except StormwatchError as exc:
        log.error("%s stream stopped: %s", follower.source.name, exc)
    except Exception:  # a bug must not pass silently: the scheduled jobs carry on
        log.exception("%s stream stopped", follower.source.name)
