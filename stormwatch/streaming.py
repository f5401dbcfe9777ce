"""Live feeds followed beside the scheduled jobs: one follower per streaming source (Bluesky's Jetstream).

A follower serves every campaign that collects from its source over one connection: it keeps the events
that carry any campaign's tags, and stores each campaign's share of a batch with that campaign's cursor
(the feed's position), so a restart resumes where the stored data ends. The scheduler starts the followers
(`start_followers`) next to its jobs; how often the jobs run is not their business.

A feed that names authors only by id (Jetstream: a DID, no handle, no followers) has the profiles of new
authors looked up beside it (`ProfileLookups`), in batches of up to 25 a few seconds after they first post, so
the dashboard and the reports know them by handle within seconds rather than at the next scheduled run.

A follower never stops on its own (`supervise` starts it again). A batch that cannot be stored (another process
holds the write lock past the busy timeout, the disk is full) is held and stored again with capped backoff; a
follower that fails altogether starts again from its stored cursor, which Jetstream replays from. Meanwhile its
state (`store.live`: failing since, last error) tells `status`, the dashboard and the `source_failing` alert that
the feed is down, and the log says so in one line per failure (a full disk once, with what to do).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .archive.writer import RawArchive
from .collector import Collector
from .config import CampaignConfig
from .console import DISK_FULL, log_bug
from .errors import DatabaseDamaged, MalformedPage, SourceError, StoreError, StormwatchError
from .normalize.text import one_line
from .sources import registry
from .sources.capabilities import Enriching, Streaming
from .store import BUSY_TIMEOUT_SECONDS, Store
from .store.live import LiveFeedState, write_live_state
from .times import Clock, from_epoch, iso_utc_seconds

log = logging.getLogger(__name__)

# New authors' profiles are asked for when this many wait, or this many (wall) seconds after the first of them.
PROFILE_BATCH = 25
PROFILE_WAIT_SECONDS = 3.0
# After a failed lookup, the authors wait this long before they are asked for again (the scheduled run also
# fills in what is missing).
PROFILE_RETRY_SECONDS = 30.0
# A batch that could not be stored is tried again after this long, doubling up to the cap (wall seconds).
STORE_BACKOFF = 1.0
STORE_MAX_BACKOFF = 30.0
# A follower that failed altogether starts again from its stored cursor after this long, doubling up to the cap.
RESTART_BACKOFF = 1.0
RESTART_MAX_BACKOFF = 60.0
# A feed that cannot (re)connect this many times in a row, or for this long (wall seconds), is down: its posts
# are not coming in, whatever the database says.
UNREACHABLE_ATTEMPTS = 3
UNREACHABLE_SECONDS = 60.0


class _Stopping(Exception):
    """`stop` was set while a batch waited to be stored: it is left to the stored cursor's replay."""


class FeedHealth:
    """A live feed's state, recorded beside the database for `status`, the dashboard and the alerts, and told
    in the log: one line per failure, a full disk once per episode (`console.DISK_FULL`), and the recovery."""

    def __init__(self, source: str, database: Path, clock: Clock) -> None:
        self.source = source
        self.database = database
        self.clock = clock
        self.failing_since: datetime | None = None
        self.failures = 0  # in a row
        self.unreachable: str | None = None  # why the feed cannot connect, while that is why it is down
        self._state_unwritable = False

    @property
    def failing(self) -> bool:
        """Whether the feed is down now."""
        return self.failing_since is not None

    def started(self) -> None:
        """The follower runs (made now, while the disk most likely has room, the state file is ready for later)."""
        self._record(None, 0)

    def failed(self, error: BaseException, held: int, retry_in: float, *, what: str) -> None:
        """One failure: recorded as the feed's state and logged in one line (a full disk said once)."""
        text = self._failure(error, held)
        held_text = f", {held:,} events held" if held else ""
        log.warning("%s live feed: %s (%s failure in a row%s); %s in %.0fs", self.source, text,
                    _ordinal(self.failures), held_text, what, retry_in)

    def stopped(self, error: BaseException, held: int) -> None:
        """The feed stops for good (a damaged database): recorded as down and said in one line, with why."""
        text = self._failure(error, held)
        held_text = f"; {held:,} events received were not stored" if held else ""
        log.error("%s live feed stops: the database is damaged and nothing more is written into it (%s)%s; "
                  "see `stormwatch status` and recover the database, then start stormwatch again", self.source,
                  text, held_text)

    def cannot_connect(self, reason: str, attempts: int, since: datetime) -> None:
        """The feed has not connected for `attempts` tries since `since` (storm clock): it is down, said once
        (the source logs each attempt)."""
        text = f"cannot reach Jetstream: {one_line(reason)}"
        if self.unreachable is None:
            log.warning("%s live feed down: %s (%d attempts in a row); it keeps trying and says when it is back",
                        self.source, text, attempts)
        self.unreachable = text
        if self.failing_since is None:
            self.failing_since = since
        self._record(text, 0)

    def connected(self) -> None:
        """The feed is connected again: down only because it could not connect, it is back."""
        if self.unreachable is None:
            return
        log.warning("%s live feed: connected again (%s before)", self.source, self.unreachable)
        self.unreachable = None
        self.failing_since = None
        self.failures = 0
        self._record(None, 0)

    def stored(self) -> None:
        """A batch was stored: a feed that was failing is back."""
        DISK_FULL.wrote(self.database.absolute().parent)
        if self.failing_since is None:
            return
        log.warning("%s live feed: storing again after %d failures", self.source, self.failures)
        self.failing_since = None
        self.failures = 0
        self.unreachable = None
        self._record(None, 0)

    def _failure(self, error: BaseException, held: int) -> str:
        text = one_line(str(error)) or type(error).__name__
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = self.clock.now()
        DISK_FULL.tell(error, self.database.absolute().parent)
        self._record(text, held)
        return text

    def _record(self, error: str | None, held: int) -> None:
        if self.database.name == ":memory:":
            return
        state = LiveFeedState(self.source, self.clock.now(), self.failing_since, error, held)
        try:
            write_live_state(self.database, state)
        except OSError as exc:
            if not self._state_unwritable:  # said once: the log line above says what failed each time
                log.warning("%s live feed: its state cannot be recorded beside the database (%s)", self.source,
                            one_line(str(exc)))
            self._state_unwritable = True
        else:
            self._state_unwritable = False


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


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
            except (SourceError, MalformedPage, StoreError) as exc:  # StoreError: locked, disk full
                DISK_FULL.tell(exc, self.database.absolute().parent)
                log.warning("%s: profiles of %d new authors not looked up yet: %s", self.source.name, len(ids),
                            one_line(str(exc)))
                with self._lock:  # asked again after a while (the scheduled run may fill them in first)
                    self._asked.difference_update(f"{self.source.name}:{i}" for i in ids)
                stop.wait(PROFILE_RETRY_SECONDS)


class StreamFollower:
    """Follows one streaming source's live feed for the campaigns that collect from it."""

    def __init__(self, source: Streaming, campaigns: Sequence[CampaignConfig], database: Path, *, clock: Clock,
                 archive: RawArchive | None = None, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.source = source
        self.campaigns = campaigns
        self.database = database
        self.clock = clock
        self.archive = archive
        self.busy_timeout = busy_timeout  # how long one write waits for another process's lock
        self.health = FeedHealth(source.name, database, clock)
        self.held = 0  # events received and not stored yet (a batch waiting for the database)
        self._attempts = 0  # connection attempts failed in a row
        self._unreachable_since: tuple[datetime, float] | None = None  # the first of them (storm clock, wall)

    def follow(self, stop: threading.Event) -> None:
        """Store the feed's posts for every campaign until `stop` is set (returns within about a second)."""
        if not self.campaigns:
            return
        source = self.source
        wanted = {c.name: source.stream_filter(c.hashtags) for c in self.campaigns}
        any_campaign = source.stream_filter([tag for c in self.campaigns for tag in c.hashtags])
        lookups = (ProfileLookups(source, self.database, archive=self.archive) if isinstance(source, Enriching)
                   else None)
        with Store.open(self.database, busy_timeout=self.busy_timeout) as store:
            now = self.clock.now()
            for campaign in self.campaigns:
                store.register_campaign(campaign.name, campaign.start, campaign.end)
            start = min(source.stream_cursor(store.get_cursor(c.name, source.name, source.stream_query), c, now)
                        for c in self.campaigns)

            def on_events(events: list[dict[str, Any]], position: int) -> None:
                # Each step is held and tried again until it is done (or `stop`): a campaign's page stored
                # once is not stored again, and the events stay in memory meanwhile, their cursor unsaved.
                self.held = len(events)
                archive = self.archive
                for campaign in self.campaigns:
                    mine = [e for e in events if wanted[campaign.name](e)]
                    page = source.stream_page(campaign.name, mine, position)
                    if archive is not None and mine:
                        self._until_done(functools.partial(archive.write, campaign.name, page), stop)
                    batch = registry.normalize_page(page)
                    for problem in batch.errors:
                        log.warning("%s/%s: %s", campaign.name, source.name, problem)
                    self._until_done(functools.partial(store.save_page, batch, campaign=campaign.name,
                                                       cursor=page.cursor, run_id=None,
                                                       collected_at=page.retrieved_at, requests=0), stop)
                    if lookups is not None and batch.posts:
                        lookups.add(campaign.name, (post.author_uid for post in batch.posts))
                self.held = 0
                self.health.stored()

            log.info("%s: following the live feed from %s", source.name,
                     iso_utc_seconds(from_epoch(start / 1_000_000)))
            lookup_thread = None
            if lookups is not None:
                lookup_thread = threading.Thread(target=lookups.run, args=(stop,), daemon=True,
                                                 name=f"stormwatch-{source.name}-profiles")
                lookup_thread.start()
            try:
                source.stream(start, stop, on_events, wanted=any_campaign, on_connection=self._connection)
            finally:
                if lookup_thread is not None:
                    lookup_thread.join(timeout=5.0)

    def _connection(self, trouble: str | None) -> None:
        """The source's news of its connection: a feed that has not connected for a while is down."""
        if trouble is None:
            self._unreachable_since = None
            self._attempts = 0
            self.health.connected()
            return
        if self._unreachable_since is None:
            self._unreachable_since = (self.clock.now(), time.monotonic())
        self._attempts += 1
        since, wall = self._unreachable_since
        if self._attempts >= UNREACHABLE_ATTEMPTS or time.monotonic() - wall >= UNREACHABLE_SECONDS:
            self.health.cannot_connect(trouble, self._attempts, since)

    def _until_done(self, step: Callable[[], object], stop: threading.Event) -> None:
        """Run one storage step, again with capped backoff while the database or the disk refuses it."""
        delay = STORE_BACKOFF
        while True:
            try:
                step()
                return
            except DatabaseDamaged:
                raise  # nothing more is written into a damaged file: the supervisor says so
            except StoreError as exc:
                if stop.is_set():
                    raise _Stopping from None
                self.health.failed(exc, self.held, delay, what="trying again")
                if stop.wait(delay):
                    raise _Stopping from None
                delay = min(delay * 2, STORE_MAX_BACKOFF)


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
        thread = threading.Thread(target=supervise, args=(follower, stop),
                                  name=f"stormwatch-{follower.source.name}-stream", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def supervise(follower: StreamFollower, stop: threading.Event) -> None:
    """Supervise one follower: run it until `stop`, starting it again from its stored cursor whenever it fails."""
    health = follower.health
    name = follower.source.name
    delay = RESTART_BACKOFF
    try:
        health.started()
    except Exception as exc:  # the state is told in the log too; following matters more
        log.warning("%s live feed: %s", name, one_line(str(exc)))
    while not stop.is_set():
        try:
            follower.follow(stop)
        except _Stopping:
            return
        except DatabaseDamaged as exc:
            health.stopped(exc, follower.held)
            return
        except StormwatchError as exc:
            error: BaseException = exc
        except Exception as exc:  # a bug must not pass silently: one line, its traceback once (in the log file)
            log_bug(log, f"{name} live feed", exc)
            error = exc
        else:
            if stop.is_set():
                return
            error = StormwatchError(f"{name}: the live feed ended")
        if not health.failing:
            delay = RESTART_BACKOFF  # it had been storing: a new failure starts the backoff over
        health.failed(error, 0, delay, what="starting again from the stored cursor")
        if stop.wait(delay):
            return
        delay = min(delay * 2, RESTART_MAX_BACKOFF)
