"""One collection run: cursor -> source -> raw archive -> normalize -> store, and the error policy.

What a run does depends on what the source can do (`sources.capabilities`, checked with `isinstance`):
search sweeps, the reach warning, the budget and billing, per-server errors, lookups after the sweep, and
counts; and for storm intelligence, the counter-hashtags (swept like the campaign's own, as its `~counter`
companion), the targets' own posts (as its `~targets` companion) and the trending lists when due. Transient
failures are retried with the source's own retry policy. Live feeds are followed by `streaming.py`, not here.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from .archive.writer import RawArchive
from .config import TARGETS_SUFFIX, CampaignConfig, Config, RetryPolicy
from .console import DISK_FULL, log_bug
from .errors import CredentialsError, DatabaseDamaged, MalformedPage, RateLimited, SourceError, StormwatchError
from .models import Billing, Cursor, RawPage, RunRecord
from .normalize.text import one_line
from .sources import registry
from .sources.capabilities import (
    TARGETS_FOLLOW_UP,
    Billed,
    Counted,
    Enriching,
    Interruptible,
    MultiServer,
    ReachLimited,
    Searchable,
    Source,
    Streaming,
    TargetWatching,
    Trending,
    trends_query,
)
from .store import Store, utc_day
from .times import Clock, iso_utc_seconds, parse_time

log = logging.getLogger(__name__)
T = TypeVar("T")

# Count buckets near the present are still filling as the platform indexes late posts: fetch them again.
COUNTS_OVERLAP = timedelta(minutes=10)
# X's counts (like its search) end 30 seconds before now by default.
COUNTS_LAG = timedelta(seconds=30)
MAX_ERROR_TEXT = 2000
# Per run of an enriching source (Bluesky): profiles fetched for new authors, posts whose counters
# are refreshed (newest first, within a day, when missing or older than the refresh interval).
ENRICH_ACCOUNTS = 250
ENRICH_POSTS = 100
COUNTERS_REFRESH = timedelta(minutes=15)
COUNTERS_HORIZON = timedelta(hours=24)


@dataclass
class _RunLog:
    """What happened during a run, for its record."""

    problems: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    fatal: str | None = None
    rate_limited_until: datetime | None = None
    rate_limit_note: str | None = None

    def note(self, message: str) -> None:
        """Something went wrong or was left out: the run is `partial`."""
        if message not in self.problems:
            self.problems.append(message)

    def remark(self, message: str) -> None:
        """Worth saying, but nothing is missing for it (the run can still be `ok`)."""
        if message not in self.remarks:
            self.remarks.append(message)


class Collector:
    """Runs collection for campaigns and sources; reuses each source's connections between runs."""

    def __init__(self, config: Config, *, clock: Clock, stop: threading.Event | None = None,
                 sources: dict[str, Source] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.stop = stop or threading.Event()
        self.archive = RawArchive(config.storage.raw_archive) if config.storage.raw_archive else None
        self._sources: dict[str, Source] = dict(sources or {})
        self._lock = threading.Lock()
        for given in self._sources.values():
            _stop_with(given, self.stop)

    def source(self, name: str) -> Source:
        """The named source, built on first use."""
        with self._lock:
            if name not in self._sources:
                self._sources[name] = _stop_with(registry.make_source(self.config, name, self.clock), self.stop)
            return self._sources[name]

    def check_credentials(self) -> None:
        """Build every configured source now, so a missing secret fails before anything runs."""
        for campaign in self.config.campaigns:
            for name in campaign.sources:
                self.source(name)

    def skip_missing_credentials(self) -> list[str]:
        """Build every configured source now; a platform whose credentials are missing is left out of this
        collector's campaigns (the others collect): one line for each left out. Raise when none is left."""
        skipped: dict[str, CredentialsError] = {}
        for campaign in self.config.campaigns:
            for name in campaign.sources:
                if name not in skipped:
                    try:
                        self.source(name)
                    except CredentialsError as exc:
                        skipped[name] = exc
        if not skipped:
            return []
        campaigns = tuple(dataclasses.replace(c, sources=tuple(s for s in c.sources if s not in skipped))
                          for c in self.config.campaigns)
        if not any(c.sources for c in campaigns):
            raise next(iter(skipped.values()))
        self.config = dataclasses.replace(self.config, campaigns=campaigns)
        return [f"{name} skipped: {str(exc).removeprefix(f'{name}: ')}; or take \"{name}\" out of the campaign's "
                f"sources in {self.config.path.name} (collecting the other platforms)" for name, exc in skipped.items()]

    def close(self) -> None:
        """Close every source."""
        for source in self._sources.values():
            source.close()

    def run_once(self, campaign_name: str | None = None) -> list[RunRecord]:
        """One run for every (selected) campaign and source."""
        records: list[RunRecord] = []
        with Store.open(self.config.storage.database) as store:
            for campaign in self.config.selected(campaign_name):
                for name in campaign.sources:
                    if self.stop.is_set():
                        return records
                    records.append(self.run(store, campaign, name))
        return records

    def run(self, store: Store, campaign: CampaignConfig, source_name: str) -> RunRecord:
        """One collection run of one source for one campaign; always leaves a finished run record."""
        source = self.source(source_name)
        started = self.clock.now()
        if store.register_campaign(campaign.name, campaign.start, campaign.end, campaign.counter_hashtags):
            log.info("%s: storm window %s → %s registered; tallies rebuilt", campaign.name,
                     iso_utc_seconds(campaign.start), iso_utc_seconds(campaign.end))
        run_id = store.start_run(campaign.name, source_name, started)
        outcome = _RunLog()
        try:
            self._collect(store, campaign, source, run_id, outcome)
        except DatabaseDamaged:
            raise  # nothing more is written into a damaged file, not even the run's end
        except StormwatchError as exc:
            DISK_FULL.tell(exc, self.config.storage.database.absolute().parent)
            outcome.fatal = str(exc)
        except Exception as exc:  # a bug must not leave the run open or kill the scheduler
            log_bug(log, f"{campaign.name}/{source_name}", exc)  # one line; its traceback once, in the log file
            outcome.fatal = f"unexpected {type(exc).__name__}: {exc}"
        status = ("failed" if outcome.fatal else "rate_limited" if outcome.rate_limited_until
                  else "partial" if outcome.problems else "ok")
        messages = ([outcome.fatal] if outcome.fatal else []) + (
            [outcome.rate_limit_note] if outcome.rate_limit_note else []) + outcome.problems + outcome.remarks
        error = "; ".join(messages)[:MAX_ERROR_TEXT] or None
        record = store.finish_run(run_id, status, self.clock.now(), error=error,
                                  rate_limit_reset=outcome.rate_limited_until)
        if status != "failed":
            DISK_FULL.wrote(self.config.storage.database.absolute().parent)
        level = logging.WARNING if status in ("failed", "rate_limited") else logging.INFO
        log.log(level, "%s/%s: %s — %d new posts, %d requests, $%.3f%s", campaign.name, source_name, status,
                record.posts_new, record.requests, record.cost_usd, f" — {one_line(error)}" if error else "")
        return record

    def _collect(self, store: Store, campaign: CampaignConfig, source: Source, run_id: int,
                 outcome: _RunLog) -> None:
        if isinstance(source, ReachLimited):
            warning = source.reach_warning(campaign, self.clock.now())
            if warning:
                outcome.note(warning)
        counter = campaign.counter()
        if isinstance(source, Searchable):
            self._search(store, campaign, source, run_id, outcome)
            if counter is not None and not outcome.rate_limited_until:
                # The opponents' tags, collected like the campaign's own into a membership of their own.
                store.register_campaign(counter.name, counter.start, counter.end)
                self._search(store, counter, source, run_id, outcome)
        if outcome.rate_limited_until:
            return
        if isinstance(source, TargetWatching):
            self._watch_targets(store, campaign, source, run_id, outcome)
        if isinstance(source, Trending):
            self._trends(store, campaign, source, run_id, outcome)
        if isinstance(source, Enriching):
            for each in (campaign, counter):
                if each is not None:
                    self._enrich(store, each, source, run_id, outcome)
        if isinstance(source, Counted):
            self._count(store, campaign, source, run_id, outcome)

    def _search(self, store: Store, campaign: CampaignConfig, source: Searchable, run_id: int,
                outcome: _RunLog) -> None:
        """Sweep every query; a server that refuses or fails (multi-server sources) is skipped, not the run."""
        # Sources that read several servers (Mastodon instances) say which server a query goes to: one
        # server refusing or failing must not stop the others.
        server_of = source.server_of if isinstance(source, MultiServer) else None
        given_up: set[str] = set()
        queries = source.queries(campaign)
        for query in queries:
            if self.stop.is_set():
                outcome.note("stopped by shutdown; the next run resumes from the stored cursor")
                return
            # The daily budget stops paid reads only (X); free platforms go on.
            if isinstance(source, Billed) and self._budget_reached(store, campaign, outcome):
                break
            server = server_of(query) if server_of else None
            if server in given_up:
                continue
            try:
                self._sweep(store, campaign, source, query, run_id, outcome)
            except RateLimited as exc:
                if server is None:
                    outcome.rate_limited_until = exc.reset_at
                    outcome.rate_limit_note = f"{exc}; paused until {iso_utc_seconds(exc.reset_at)}"
                    break
                given_up.add(server)
                outcome.note(f"{exc}; {server} is skipped until the next run")
            except CredentialsError as exc:
                if not isinstance(source, Streaming):
                    raise
                # A streaming source's search only fills in behind its live feed: without a login the feed
                # still collects everything from now on. Say so, and go on with the lookups.
                outcome.remark(str(exc))
                break
            except SourceError as exc:
                if server is None:
                    raise
                if self.stop.is_set():  # a request cut short by shutdown: the instance did nothing wrong
                    outcome.note("stopped by shutdown; the next run resumes from the stored cursor")
                    return
                given_up.add(server)
                outcome.note(str(exc))
        if server_of and queries and given_up >= {server_of(q) for q in queries}:
            raise SourceError(f"{source.name}: every instance failed: " + "; ".join(outcome.problems[-3:]))

    def _watch_targets(self, store: Store, campaign: CampaignConfig, source: TargetWatching, run_id: int,
                       outcome: _RunLog) -> None:
        """Sweep the targets' own posts (from the storm's start to a day after its end) into the `~targets`
        companion's membership; a target that cannot be read is noted, the others go on."""
        now = self.clock.now()
        if not campaign.start <= now < campaign.end + TARGETS_FOLLOW_UP:
            return
        targets = dataclasses.replace(campaign, name=campaign.name + TARGETS_SUFFIX)
        self._each(source.target_queries(campaign), functools.partial(self._target_pass, store, targets, source,
                                                                      run_id=run_id, outcome=outcome),
                   store, run_id, source.retry_policy, outcome, "targets' posts not read",
                   paused=lambda: isinstance(source, Billed) and self._budget_reached(store, campaign, outcome))

    def _each(self, items: list[str], attempt: Callable[[str], None], store: Store, run_id: int, policy: RetryPolicy,
              outcome: _RunLog, failed: str, paused: Callable[[], bool] | None = None) -> None:
        """`attempt(item)` for each item, retried by the policy: a rate limit ends the rest, another failure only
        its own item (each noted on the run, after `failed`); shutdown or `paused()` stops before the next."""
        for item in items:
            if self.stop.is_set() or (paused is not None and paused()):
                return
            try:
                self._retrying(functools.partial(attempt, item), store, run_id, policy)
            except RateLimited as exc:
                outcome.note(f"{failed}: {exc}")
                return
            except (SourceError, MalformedPage) as exc:
                outcome.note(f"{failed}: {exc}")

    def _target_pass(self, store: Store, targets: CampaignConfig, source: TargetWatching, query: str, *,
                     run_id: int, outcome: _RunLog) -> None:
        now = self.clock.now()
        cursor = _cursor(store, targets, source.name, query, now, source.first_target_cursor)
        for page in source.target_posts(cursor, now):
            self._store_page(store, targets, source, page, run_id, outcome)
            if self.stop.is_set():
                return

    def _trends(self, store: Store, campaign: CampaignConfig, source: Trending, run_id: int,
                outcome: _RunLog) -> None:
        """Fetch each place's trending list when it is due (every `trends_interval` inside the storm window).

        On X each request is billed and recorded on the run; like counts, trends go on when the budget stops
        post reads (they are what says whether the storm is working).
        """
        now = self.clock.now()
        if not campaign.in_window(now):
            return
        due = []
        for location in source.trend_locations(campaign):
            cursor = store.get_cursor(campaign.name, source.name, trends_query(location))
            if cursor is None or not cursor.position or now - parse_time(cursor.position) >= campaign.trends_interval:
                due.append(location)
        self._each(due, functools.partial(self._fetch_trends, store, campaign, source, run_id=run_id), store, run_id,
                   source.retry_policy, outcome, "trends not read")

    def _fetch_trends(self, store: Store, campaign: CampaignConfig, source: Trending, location: str, *,
                      run_id: int) -> None:
        page = source.trends(campaign.name, location)
        trends = self._archived(campaign, page, registry.normalize_trends, f"trends page of {location}")
        store.save_trends(run_id, campaign.name, trends, page.cursor, fetched_at=page.retrieved_at,
                          cost_usd=source.trends_cost)

    def _count(self, store: Store, campaign: CampaignConfig, source: Counted, run_id: int,
               outcome: _RunLog) -> None:
        """Refresh the platform's own per-minute counts of every query."""
        queries = source.queries(campaign) if isinstance(source, Searchable) else []
        self._each(queries, functools.partial(self._fetch_counts, store, campaign, source, run_id=run_id), store,
                   run_id, source.retry_policy, outcome, "counts not refreshed")

    def _sweep(self, store: Store, campaign: CampaignConfig, source: Searchable, query: str, run_id: int,
               outcome: _RunLog) -> None:
        """Pages for one query until the sweep ends, the budget is spent, or shutdown."""

        def one_pass() -> None:
            now = self.clock.now()
            cursor = _cursor(store, campaign, source.name, query, now, source.first_cursor)
            for page in source.search(cursor, now):
                self._store_page(store, campaign, source, page, run_id, outcome)
                if self.stop.is_set():
                    if page.cursor.pending:
                        outcome.note("stopped by shutdown; the next run resumes from the stored cursor")
                    return
                if page.cursor.pending and isinstance(source, Billed) and self._budget_reached(store, campaign,
                                                                                               outcome):
                    return

        self._retrying(one_pass, store, run_id, source.retry_policy)

    def _retrying(self, attempt: Callable[[], None], store: Store, run_id: int, policy: RetryPolicy) -> None:
        """Run `attempt`; on a transient failure wait (the policy's capped exponential backoff) and resume from
        the stored cursor, giving up after `policy.retries` consecutive failures."""
        failures = 0
        while True:
            progress_before = _progress(store, run_id)
            try:
                attempt()
                return
            except (SourceError, MalformedPage) as exc:
                # The failed request still counts toward the run (and toward the platform's limits).
                if not isinstance(exc, SourceError) or exc.request_made:
                    store.add_requests(run_id, 1)
                transient = isinstance(exc, MalformedPage) or exc.transient
                if not transient or isinstance(exc, RateLimited):
                    raise
                if _progress(store, run_id) != progress_before:
                    failures = 0  # pages were stored since the last failure: the retry budget starts again
                failures += 1
                if failures > policy.retries:
                    raise SourceError(f"{exc} (gave up after {failures} attempts)") from None
                delay = policy.delay(failures)
                log.warning("%s; retrying in %.1fs (%d/%d)", exc, delay, failures, policy.retries)
                if self.stop.wait(delay):
                    raise SourceError(f"{exc} (stopped by shutdown before retrying)") from None

    def _archived(self, campaign: CampaignConfig, page: RawPage, normalize: Callable[[RawPage], T], what: str) -> T:
        return archived(self.archive, campaign.name, page, normalize, what)

    def _store_page(self, store: Store, campaign: CampaignConfig, source: Source, page: RawPage, run_id: int,
                    outcome: _RunLog) -> None:
        batch = self._archived(campaign, page, registry.normalize_page, f"{page.endpoint} page")
        for problem in batch.errors:
            outcome.note(f"{source.name}: {problem}")
        result = store.save_page(batch, campaign=campaign.name, cursor=page.cursor, run_id=run_id,
                                 collected_at=page.retrieved_at, billing=self._billing(source, page))
        log.debug("%s/%s: %s page stored: %d posts (%d new), %d accounts, $%.3f; sweep %s", campaign.name,
                  source.name, page.endpoint, len(batch.posts), result.posts_new, len(batch.accounts), result.cost_usd,
                  "continues" if page.cursor.pending else f"done at {page.cursor.position}")

    def _fetch_counts(self, store: Store, campaign: CampaignConfig, source: Counted, query: str, *,
                      run_id: int) -> None:
        now = self.clock.now()
        end = now - COUNTS_LAG
        cursor = store.get_cursor(campaign.name, source.name, query)
        since = cursor.since if cursor and cursor.since else campaign.start
        last = store.last_counted_bucket(campaign.name, source.name, query)
        start = max(since, last - COUNTS_OVERLAP) if last else since
        start = max(start, now - timedelta(days=7) + timedelta(minutes=2))
        if end - start < timedelta(minutes=1):
            return
        for page in source.counts(campaign.name, query, start, end):
            buckets = self._archived(campaign, page, registry.normalize_counts, "counts page")
            store.save_counts(run_id, campaign.name, source.name, query, buckets, fetched_at=page.retrieved_at,
                              cost_usd=source.counts_cost)

    def _enrich(self, store: Store, campaign: CampaignConfig, source: Enriching, run_id: int,
                outcome: _RunLog) -> None:
        """Fill in what a live feed leaves out: follower counts of new authors, counters of recent posts."""
        now = self.clock.now()
        if isinstance(source, Billed) and campaign.daily_budget_usd is not None \
                and store.spent(campaign.owner, utc_day(now)) >= campaign.daily_budget_usd:
            return  # lookups are reads like any other: they wait for the next budget day
        try:
            accounts = store.authors_without_followers(campaign.name, source.name, ENRICH_ACCOUNTS)
            for page in source.profile_pages(accounts, campaign.name):
                self._store_context(store, campaign, source, page, run_id)
            posts = store.posts_needing_counters(campaign.name, source.name, now - COUNTERS_REFRESH,
                                                 int((now - COUNTERS_HORIZON).timestamp()), ENRICH_POSTS)
            for page in source.lookup_pages(posts, campaign.name):
                self._store_context(store, campaign, source, page, run_id)
        except RateLimited as exc:
            outcome.note(f"{exc}; profiles and counters wait for the next run")
        except (SourceError, MalformedPage) as exc:
            outcome.note(f"profiles and counters not refreshed: {exc}")

    def _store_context(self, store: Store, campaign: CampaignConfig, source: Source, page: RawPage,
                       run_id: int) -> None:
        """Store a page that adds to what is known (accounts, counters) without making anything a member."""
        batch = self._archived(campaign, page, registry.normalize_page, f"{page.endpoint} page")
        store.save_page(batch, campaign=None, cursor=None, run_id=run_id, collected_at=page.retrieved_at,
                        billing=self._billing(source, page))

    @staticmethod
    def _billing(source: Source, page: RawPage) -> Billing | None:
        """What reading the page costs, for a source that bills (reads are billed on the page's UTC day)."""
        return source.billing(utc_day(page.retrieved_at)) if isinstance(source, Billed) else None

    def _budget_reached(self, store: Store, campaign: CampaignConfig, outcome: _RunLog) -> bool:
        if campaign.daily_budget_usd is None:
            return False
        now = self.clock.now()
        spent = store.spent(campaign.owner, utc_day(now))  # a companion spends from its campaign's budget
        if spent < campaign.daily_budget_usd:
            return False
        outcome.note(f"daily budget ${campaign.daily_budget_usd:.2f} reached (${spent:.2f} spent on "
                     f"{utc_day(now)} UTC): post reads paused until 00:00 UTC, counts continue")
        return True


def _stop_with(source: Source, stop: threading.Event) -> Source:
    """`source`, its requests in flight cut short once `stop` is set, where it can do that."""
    if isinstance(source, Interruptible):
        source.stop_with(stop)
    return source


def _cursor(store: Store, campaign: CampaignConfig, source: str, query: str, now: datetime,
            first: Callable[[CampaignConfig, str, datetime], Cursor]) -> Cursor:
    """The stored cursor of a query, or its first one (stored at once: where collection begins is kept)."""
    cursor = store.get_cursor(campaign.name, source, query)
    if cursor is None:
        cursor = first(campaign, query, now)
        store.save_cursor(cursor, now)
    return cursor


def _progress(store: Store, run_id: int) -> tuple[int, int]:
    record = store.run(run_id)
    return (record.posts_read, record.posts_new) if record else (0, 0)


def archived(archive: RawArchive | None, campaign: str, page: RawPage, normalize: Callable[[RawPage], T],
             what: str) -> T:
    """A page archived as received, then normalized (MalformedPage saying which page otherwise): the one step
    every page read takes, the collector's and the plan's."""
    # Archive first: if normalizing fails, the page is still kept and can be re-processed later.
    if archive is not None:
        archive.write(campaign, page)
    try:
        return normalize(page)
    except MalformedPage as exc:
        raise MalformedPage(f"{page.source}: {what} for {campaign}: {exc}") from None
