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
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from .archive.writer import RawArchive
from .collector import Collector
from .config import TARGETS_SUFFIX, CampaignConfig
from .console import DISK_FULL, log_bug
from .errors import DatabaseDamaged, MalformedPage, SourceError, StoreError, StormwatchError
from .models import Account, Batch, Cursor, Post, RawPage
from .normalize.text import one_line
from .sources import registry
from .sources.capabilities import Enriching, FilteredStreaming, RulesReconciled, StreamDelays, Streaming
from .store import BUSY_TIMEOUT_SECONDS, Store, utc_day
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
        log.warning("%s live feed: %s (failure in a row: %d%s); %s in %.0fs", self.source, text,
                    self.failures, held_text, what, retry_in)

    def stopped(self, error: BaseException, held: int) -> None:
        """The feed stops for good (a damaged database): recorded as down and said in one line, with why."""
        text = self._failure(error, held)
        held_text = f"; {held:,} events received were not stored" if held else ""
        log.error("%s live feed stops: the database is damaged and nothing more is written into it (%s)%s; "
                  "see `stormwatch status` and recover the database, then start stormwatch again", self.source,
                  text, held_text)

    def cannot_connect(self, reason: str, attempts: int, since: datetime, *, what: str = "cannot reach Jetstream"
                       ) -> None:
        """The feed has not connected for `attempts` tries since `since` (storm clock): it is down, said once
        (the source logs each attempt)."""
        text = f"{what}: {one_line(reason)}" if what else one_line(reason)
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

    def paused(self, note: str | None) -> None:
        """The feed is disconnected on purpose (`note`: why, e.g. the day's budget), or no longer (None)."""
        self._record(note, 0)

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
                store.register_campaign(campaign.name, campaign.start, campaign.end, _hijack_tags(campaign))
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
        _until_stored(step, stop, self)


def followers(collector: Collector, campaigns: Sequence[CampaignConfig]) -> list[StreamFollower | XStreamFollower]:
    """A follower for each of the campaigns' sources that streams (sharing the collector's source objects).

    A source that cannot be built (a missing secret) is left to its scheduled job, which reports why.
    """
    found: list[StreamFollower | XStreamFollower] = []
    # X's filtered stream serves every campaign collecting X over one connection (its rules cover the companions).
    x_users = [c for c in campaigns if "x" in c.sources]
    if x_users:
        try:
            x = collector.source("x")
        except StormwatchError as exc:
            log.debug("x: no filtered stream followed: %s", exc)
        else:
            if isinstance(x, FilteredStreaming) and x.stream_lead is not None:
                found.append(XStreamFollower(x, x_users, collector.config.storage.database, clock=collector.clock,
                                             archive=collector.archive))
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


def supervise(follower: StreamFollower | XStreamFollower, stop: threading.Event) -> None:
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


# --- X's filtered stream ------------------------------------------------------------------------------------

# A batch is stored when this many posts wait, or this long (wall seconds) after the first of them arrived.
BATCH_POSTS = 200
BATCH_SECONDS = 0.5
# While paused for the budget, the day's spend is looked at again this often (wall seconds).
BUDGET_CHECK_SECONDS = 1.0
# Wall seconds the stream stays connected past a window's end: a post of its last moment is delivered a moment later.
STREAM_TAIL_SECONDS = 3.0
STREAM_RUNS = "x-stream"  # the runs that carry the stream's reads and cost (a search's run is "x")
SOURCE_X = "x"
STREAM_URL = "https://api.twitter.com/2/tweets/search/stream"
OTHER_RULES = "x-stream-other-rules"  # the archive folder of lines only foreign rules matched
T = TypeVar("T")


class XStreamFollower:
    """X's filtered stream for every campaign collecting X, over the app's one connection, in the storm windows
    (from `stream_lead` before a start to the end). A reader thread (`follow_stream`) queues lines and connection
    news; this thread stores them in order, in batches (one transaction each), so a connection row closes only
    after all it delivered is stored."""

    def __init__(self, source: FilteredStreaming, campaigns: Sequence[CampaignConfig], database: Path, *,
                 clock: Clock, archive: RawArchive | None = None, delays: StreamDelays | None = None,
                 batch_posts: int = BATCH_POSTS, batch_seconds: float = BATCH_SECONDS,
                 busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.source = source
        self.campaigns = list(campaigns)
        self.database = database
        self.clock = clock
        self.archive = archive
        self.delays = delays
        self.batch_posts = batch_posts
        self.batch_seconds = batch_seconds
        self.busy_timeout = busy_timeout
        self.health = FeedHealth(source.name, database, clock)
        self.rules = source.stream_rules(self.campaigns)
        self._members = {r.tag: (r.member, frozenset(t.casefold() for t in r.hashtags) if r.hashtags else None)
                         for r in self.rules if r.member}
        self._owners = {c.name: c for c in self.campaigns}
        self.held = 0
        self.state: str | None = None  # "connected", or why not ("budget", an error), for tests and the log
        self.delays_seen: list[float] = []  # wall seconds from a line's arrival to its batch stored (benchmark)
        self.posts_stored = 0
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._budget: str | None = None
        self._budget_checked = 0.0
        self._tail_until = 0.0
        self.foreign_rules: tuple[tuple[str, str], ...] = ()  # (value, tag) of other programs' rules on the app

    def paused(self) -> str | None:
        """Why the stream is to be disconnected now: outside every window, or the day's budget spent."""
        if self._budget is not None:
            return self._budget
        return None if self._active(self.clock.now()) else "window"

    def connected(self, at: datetime) -> None:
        """A connection was made."""
        self._queue.put(("open", at))

    def line(self, body: dict[str, Any], at: datetime) -> None:
        """A post line arrived."""
        self._queue.put(("line", body, at, time.monotonic()))

    def disconnected(self, reason: str, at: datetime) -> None:
        """The connection ended."""
        self._queue.put(("close", reason, at))

    def trouble(self, why: str, retry_in: float) -> None:
        """An attempt failed (TooManyConnections, an HTTP or network error, the rules)."""
        self._queue.put(("trouble", why, retry_in))

    def reconciled(self, done: RulesReconciled) -> None:
        """The app's rules were reconciled: the other programs' rules are recorded with the next connection."""
        self.foreign_rules = tuple((rule.value, rule.tag) for rule in done.foreign)

    def _active(self, now: datetime) -> bool:
        lead = self.source.stream_lead
        if lead is not None and any(c.start - lead <= now < c.end for c in self.campaigns):
            self._tail_until = time.monotonic() + STREAM_TAIL_SECONDS
            return True
        return time.monotonic() < self._tail_until  # a post of a window's last moment reaches the stream after it

    def follow(self, stop: threading.Event) -> None:
        """Follow the stream, storing its lines, until `stop` is set (returns within about a second)."""
        if not self.campaigns or self.source.stream_lead is None:
            return
        reading = threading.Event()
        with Store.open(self.database, busy_timeout=self.busy_timeout) as store:
            for campaign in self.campaigns:
                for each in (campaign, campaign.counter(), replace(campaign, name=campaign.name + TARGETS_SUFFIX)):
                    if each is not None:
                        store.register_campaign(each.name, each.start, each.end, _hijack_tags(each))
            self._check_budget(store, force=True)
            reader = threading.Thread(target=self.source.follow_stream, args=(self.rules, reading, self, self.delays),
                                      name="stormwatch-x-stream-reader", daemon=True)
            reader.start()
            writer = _StreamWriter(self, store)
            try:
                while reader.is_alive() or not self._queue.empty():
                    if stop.is_set():
                        reading.set()
                    writer.step(stop)
                    if self._budget is not None or time.monotonic() - self._budget_checked >= BUDGET_CHECK_SECONDS:
                        self._check_budget(store)
            finally:
                reading.set()
                reader.join(timeout=10.0)
                writer.finish()

    def _check_budget(self, store: Store, *, force: bool = False) -> None:
        """Pause when every active campaign with a budget has spent today's (reconnecting at 00:00 UTC)."""
        if not force and time.monotonic() - self._budget_checked < BUDGET_CHECK_SECONDS:
            return
        self._budget_checked = time.monotonic()
        now = self.clock.now()
        lead = self.source.stream_lead or timedelta(0)
        active = [c for c in self.campaigns if c.start - lead <= now < c.end]
        spent = [c for c in active if c.daily_budget_usd is not None
                 and store.spent(c.owner, utc_day(now)) >= c.daily_budget_usd]
        was, self._budget = self._budget, ("budget" if active and len(spent) == len(active) else None)
        if self._budget and not was:
            log.warning("x stream: daily budget reached (%s): disconnected until 00:00 UTC; search is paused too",
                        ", ".join(f"{c.name} ${c.daily_budget_usd:.2f}" for c in spent))
            self.health.paused("daily budget reached: the stream reconnects at 00:00 UTC")
        elif was and not self._budget:
            log.info("x stream: a new budget day: connecting again")
            self.health.paused(None)


class _StreamWriter:
    """The follower's storing side: batches of lines, the connection rows and the stream's runs."""

    def __init__(self, follower: XStreamFollower, store: Store) -> None:
        self.f = follower
        self.store = store
        self.pending: list[tuple[dict[str, Any], datetime, float]] = []
        self.connection: int | None = None
        self.runs: dict[str, tuple[int, str]] = {}  # owner campaign -> (its stream run, the UTC day it began)

    def step(self, stop: threading.Event) -> None:
        """Take what the stream sent (waiting at most a batch's time) and store a batch when one is due."""
        f = self.f
        wait = f.batch_seconds - (time.monotonic() - self.pending[0][2]) if self.pending else f.batch_seconds
        try:
            item: tuple[Any, ...] | None = f._queue.get(timeout=max(0.0, min(wait, f.batch_seconds)))
        except queue.Empty:
            item = None
        while item is not None and item[0] == "line":  # take every line waiting, up to a batch
            self.pending.append(item[1:])
            if len(self.pending) >= f.batch_posts:
                item = None
                break
            try:
                item = f._queue.get_nowait()
            except queue.Empty:
                item = None
        f.held = len(self.pending)
        if self.pending and (item is not None or len(self.pending) >= f.batch_posts
                             or time.monotonic() - self.pending[0][2] >= f.batch_seconds):
            self.flush(stop)
        if item is None:
            return
        if item[0] == "open":
            self.connection = self.store.open_stream_connection(SOURCE_X, item[1], f.foreign_rules)
            f.state = "connected"
            f.health.connected()
            log.info("x stream: connected (%d rules)", len(f.rules))
        elif item[0] == "close":
            self.close(item[1], item[2])
        elif item[0] == "trouble":
            f.state = item[1]
            log.warning("%s; trying again in %.1fs", item[1], item[2])
            f.health.cannot_connect(item[1], 1, self.f.clock.now(), what="")

    def flush(self, stop: threading.Event) -> None:
        """Archive, normalize and store the waiting lines as one batch (held and tried again while the database
        refuses)."""
        f = self.f
        lines, self.pending = self.pending, []
        now = f.clock.now()
        shares: dict[str | None, list[Post]] = {None: []}
        context: list[Post] = []
        accounts: list[Account] = []
        by_campaign: dict[str, list[RawPage]] = {}
        for body, at, _ in lines:
            page = RawPage(source=SOURCE_X, endpoint="stream", url=STREAM_URL, retrieved_at=at, body=body,
                           cursor=Cursor("", SOURCE_X, "stream"), query="stream")
            try:
                batch = registry.normalize_page(page)
            except MalformedPage as exc:
                log.warning("x stream: a line skipped: %s", one_line(str(exc)))
                batch = Batch()
            members = self._members(body, batch.posts)
            # a line only another program's rules matched (the app's stream carries theirs too) is read and
            # billed all the same: stored without membership, archived apart
            for name in members or {OTHER_RULES: None}:
                by_campaign.setdefault(name, []).append(page)
            for post in batch.posts:
                mine = [m for m, tags in members.items() if tags is None or tags & set(post.tags)]
                for name in mine:
                    shares.setdefault(name, []).append(post)
                if not mine:
                    context.append(post)
            context += batch.context_posts
            accounts += batch.accounts
            for problem in batch.errors:
                log.debug("x stream: %s", problem)  # X says which referenced posts are gone: not ours to fix
        # The raw lines first, as received (twarc2's stream lines, stamped): a batch that cannot be stored is
        # still kept, and can be imported later.
        archive = f.archive
        if archive is not None:
            for campaign, pages in by_campaign.items():
                _until_stored(functools.partial(archive.write_many, campaign, pages), stop, f)
        _until_stored(functools.partial(self._rotate_runs, now), stop, f)
        billing = f.source.billing(utc_day(now))
        others = Batch(context_posts=tuple(context), accounts=tuple(accounts))
        batches: list[tuple[str | None, Batch, int | None]] = [(None, others, self._run(None))]
        batches += [(name, Batch(posts=tuple(posts)), self._run(name)) for name, posts in shares.items() if name]
        results = _until_stored(functools.partial(self.store.save_stream_batch, batches, collected_at=now,
                                                  billing=billing, stream_connection=self.connection), stop, f)
        done = time.monotonic()
        f.delays_seen.extend(done - arrived for _, _, arrived in lines)
        f.posts_stored += sum(r.posts_new for name, r in results.items() if name)
        f.held = 0
        f.health.stored()

    def _members(self, body: dict[str, Any], posts: Sequence[Post]) -> dict[str, frozenset[str] | None]:
        """The memberships a line's matching rules name (with the hashtags a post must carry for each)."""
        found: dict[str, frozenset[str] | None] = {}
        rules = body.get("matching_rules")
        for rule in rules if isinstance(rules, list) else []:
            tag = rule.get("tag") if isinstance(rule, dict) else None
            if isinstance(tag, str) and tag in self.f._members:
                member, tags = self.f._members[tag]
                if member is not None:
                    found[member] = tags
        return found

    def _run(self, member: str | None) -> int | None:
        owner = member.split("~", 1)[0] if member else next(iter(self.runs), None)
        entry = self.runs.get(owner) if owner else None
        return entry[0] if entry else None

    def _rotate_runs(self, now: datetime) -> None:
        """A stream run per owner campaign and UTC day, so the day's spend (and budget) counts the stream."""
        day = utc_day(now)
        for name in self.f._owners:
            run = self.runs.get(name)
            if run is not None and run[1] != day:
                self.store.finish_run(run[0], "ok", now)
                run = None
            if run is None:
                self.runs[name] = (self.store.start_run(name, STREAM_RUNS, now), day)

    def close(self, reason: str, at: datetime) -> None:
        """The connection ended: its row closed with the reason, its runs finished."""
        if self.connection is not None:
            self.store.close_stream_connection(self.connection, at, reason)
            log.log(logging.INFO if reason in ("stopped", "window") else logging.WARNING,
                    "x stream: disconnected (%s)", reason)
        self.connection = None
        self.f.state = reason
        for run_id, _ in self.runs.values():
            self.store.finish_run(run_id, "ok" if reason in ("stopped", "window") else "partial", at,
                                  error=None if reason in ("stopped", "window") else f"stream {reason}")
        self.runs = {}

    def finish(self) -> None:
        """Store what is left and close an open connection (the follower stops)."""
        while True:
            try:
                item = self.f._queue.get_nowait()
            except queue.Empty:
                break
            if item[0] == "line":
                self.pending.append(item[1:])
            elif item[0] == "close":
                if self.pending:
                    self.flush(threading.Event())
                self.close(item[1], item[2])
        if self.pending:
            self.flush(threading.Event())
        if self.connection is not None:
            self.close("stopped", self.f.clock.now())


def _hijack_tags(campaign: CampaignConfig) -> tuple[str, ...]:
    """The counter-hashtags that mark a collection's hijack candidates: its own, none for a companion."""
    return campaign.counter_hashtags if campaign.counter() is not None else ()


def _until_stored(step: Callable[[], T], stop: threading.Event, follower: StreamFollower | XStreamFollower) -> T:
    """Run one storage step, again with capped backoff while the database or the disk refuses it."""
    delay = STORE_BACKOFF
    while True:
        try:
            return step()
        except DatabaseDamaged:
            raise
        except StoreError as exc:
            if stop.is_set():
                raise _Stopping from None
            follower.health.failed(exc, follower.held, delay, what="trying again")
            if stop.wait(delay):
                raise _Stopping from None
            delay = min(delay * 2, STORE_MAX_BACKOFF)
