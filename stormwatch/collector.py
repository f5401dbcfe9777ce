"""One collection run: cursor -> source -> raw archive -> normalize -> store, and the error policy."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .config import CampaignConfig, Config
from .errors import CredentialsError, MalformedPage, RateLimited, SourceError, StormwatchError
from .models import Batch, RawPage, RunRecord
from .normalize import bluesky as normalize_bluesky
from .normalize import mastodon as normalize_mastodon
from .normalize import x as normalize_x
from .raw_archive import RawArchive
from .sources import Source
from .store import Store, utc_day
from .times import Clock, from_epoch, iso_utc, iso_utc_seconds, parse_time

log = logging.getLogger(__name__)

# Count buckets near the present are still filling as the platform indexes late posts: fetch them again.
COUNTS_OVERLAP = timedelta(minutes=10)
# X's counts (like its search) end 30 seconds before now by default.
COUNTS_LAG = timedelta(seconds=30)
MAX_ERROR_TEXT = 2000
# Per run of a free source with a live feed (Bluesky): profiles fetched for new authors, posts whose counters
# are refreshed (newest first, within a day, when missing or older than the refresh interval).
ENRICH_ACCOUNTS = 250
ENRICH_POSTS = 100
COUNTERS_REFRESH = timedelta(minutes=15)
COUNTERS_HORIZON = timedelta(hours=24)

NORMALIZERS: dict[str, Callable[[Any, str], Batch]] = {
    "x": normalize_x.normalize_page,
    "mastodon": normalize_mastodon.normalize_timeline,
    "bluesky": normalize_bluesky.normalize_page,
}


def make_source(config: Config, name: str, clock: Clock) -> Source:
    """Build the named source from the config (reads its credentials from the environment)."""
    if name == "x":
        from .sources.x import XSource

        return XSource(config.x, config.x.bearer_token(), clock)
    if name == "mastodon":
        from .sources.mastodon import MastodonSource

        return MastodonSource(config.mastodon, clock, config.mastodon.access_token())
    if name == "bluesky":
        from .sources.bluesky import BlueskySource

        return BlueskySource(config.bluesky, clock)
    raise StormwatchError(f"unknown source {name!r}")


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

    def source(self, name: str) -> Source:
        """The named source, built on first use."""
        with self._lock:
            if name not in self._sources:
                self._sources[name] = make_source(self.config, name, self.clock)
            return self._sources[name]

    def check_credentials(self) -> None:
        """Build every configured source now, so a missing secret fails before anything runs."""
        for campaign in self.config.campaigns:
            for name in campaign.sources:
                self.source(name)

    def close(self) -> None:
        """Close every source."""
        for source in self._sources.values():
            source.close()

    def run_once(self, campaign_name: str | None = None) -> list[RunRecord]:
        """One run for every (selected) campaign and source."""
        records = []
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
        if store.register_campaign(campaign.name, campaign.start, campaign.end):
            log.info("%s: storm window %s → %s registered; tallies rebuilt", campaign.name,
                     iso_utc_seconds(campaign.start), iso_utc_seconds(campaign.end))
        run_id = store.start_run(campaign.name, source_name, started)
        outcome = _RunLog()
        try:
            self._collect(store, campaign, source, run_id, outcome)
        except StormwatchError as exc:
            outcome.fatal = str(exc)
        except Exception as exc:  # a bug must not leave the run open or kill the scheduler
            log.exception("%s/%s: unexpected error", campaign.name, source_name)
            outcome.fatal = f"unexpected {type(exc).__name__}: {exc}"
        status = ("failed" if outcome.fatal else "rate_limited" if outcome.rate_limited_until
                  else "partial" if outcome.problems else "ok")
        messages = ([outcome.fatal] if outcome.fatal else []) + (
            [outcome.rate_limit_note] if outcome.rate_limit_note else []) + outcome.problems + outcome.remarks
        error = "; ".join(messages)[:MAX_ERROR_TEXT] or None
        record = store.finish_run(run_id, status, self.clock.now(), error=error,
                                  rate_limit_reset=outcome.rate_limited_until)
        level = logging.WARNING if status in ("failed", "rate_limited") else logging.INFO
        log.log(level, "%s/%s: %s — %d new posts, %d requests, $%.3f%s", campaign.name, source_name, status,
                record.posts_new, record.requests, record.cost_usd, f" — {error}" if error else "")
        return record

    def _collect(self, store: Store, campaign: CampaignConfig, source: Source, run_id: int,
                 outcome: _RunLog) -> None:
        now = self.clock.now()
        warning = getattr(source, "reach_warning", lambda c, n: None)(campaign, now)
        if warning:
            outcome.note(warning)
        # Sources that read several servers (Mastodon instances) say which server a query goes to: one
        # server refusing or failing must not stop the others.
        server_of = getattr(source, "instance_of", None)
        paid = hasattr(source, "billing")  # the daily budget stops paid reads only (X); Mastodon is free
        given_up: set[str] = set()
        queries = source.queries(campaign)
        for query in queries:
            if self.stop.is_set():
                outcome.note("stopped by shutdown; the next run resumes from the stored cursor")
                return
            if paid and self._budget_reached(store, campaign, outcome):
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
                if source.name != "bluesky":
                    raise
                # Bluesky search needs a login; without one the live stream collects everything from now on:
                # say so, and go on with profiles and counters.
                outcome.remark(str(exc))
                break
            except SourceError as exc:
                if server is None:
                    raise
                given_up.add(server)
                outcome.note(str(exc))
        if server_of and queries and given_up >= {server_of(q) for q in queries}:
            raise SourceError(f"{source.name}: every instance failed: " + "; ".join(outcome.problems[-3:]))
        if hasattr(source, "profile_pages") and not outcome.rate_limited_until:
            self._enrich(store, campaign, source, run_id, outcome)
        if hasattr(source, "counts") and not outcome.rate_limited_until:
            for query in source.queries(campaign):
                if self.stop.is_set():
                    break
                try:
                    self._retrying(lambda q=query: self._fetch_counts(store, campaign, source, q, run_id),
                                   store, run_id)
                except RateLimited as exc:
                    outcome.note(f"counts not refreshed: {exc}")
                    break
                except SourceError as exc:
                    outcome.note(f"counts not refreshed: {exc}")

    def _sweep(self, store: Store, campaign: CampaignConfig, source: Source, query: str, run_id: int,
               outcome: _RunLog) -> None:
        """Pages for one query until the sweep ends, the budget is spent, or shutdown."""

        def one_pass() -> None:
            now = self.clock.now()
            cursor = store.get_cursor(campaign.name, source.name, query)
            if cursor is None:
                cursor = source.first_cursor(campaign, query, now)
                store.save_cursor(cursor, now)
            for page in source.search(cursor, now):
                self._store_page(store, campaign, source, page, run_id, outcome)
                if self.stop.is_set():
                    if page.cursor.pending:
                        outcome.note("stopped by shutdown; the next run resumes from the stored cursor")
                    return
                if page.cursor.pending and hasattr(source, "billing") and self._budget_reached(store, campaign,
                                                                                                outcome):
                    return

        self._retrying(one_pass, store, run_id)

    def _retrying(self, attempt: Callable[[], None], store: Store, run_id: int) -> None:
        """Run `attempt`; on a transient failure wait (capped exponential backoff) and resume from the
        stored cursor, giving up after `retries` consecutive failures."""
        settings = self.config.x
        failures = 0
        while True:
            progress_before = _progress(store, run_id)
            try:
                attempt()
                return
            except (SourceError, MalformedPage) as exc:
                # The failed request still counts toward the run (and toward the platform's limits).
                if getattr(exc, "request_made", True):
                    store.add_requests(run_id, 1)
                transient = isinstance(exc, MalformedPage) or exc.transient
                if not transient or isinstance(exc, RateLimited):
                    raise
                if _progress(store, run_id) != progress_before:
                    failures = 0  # pages were stored since the last failure: the retry budget starts again
                failures += 1
                if failures > settings.retries:
                    raise SourceError(f"{exc} (gave up after {failures} attempts)") from None
                delay = min(settings.retry_backoff * 2 ** (failures - 1), settings.max_backoff)
                log.warning("%s; retrying in %.1fs (%d/%d)", exc, delay, failures, settings.retries)
                if self.stop.wait(delay):
                    raise SourceError(f"{exc} (stopped by shutdown before retrying)") from None

    def _store_page(self, store: Store, campaign: CampaignConfig, source: Source, page: RawPage, run_id: int,
                    outcome: _RunLog) -> None:
        # Archive first: if normalizing fails, the page is still kept and can be re-processed later.
        if self.archive is not None:
            self.archive.write(campaign.name, page)
        normalize = NORMALIZERS[source.name]
        try:
            batch = normalize(page.body, iso_utc(page.retrieved_at))
        except MalformedPage as exc:
            raise MalformedPage(f"{source.name}: {page.endpoint} page for {campaign.name}: {exc}") from None
        for problem in batch.errors:
            outcome.note(f"{source.name}: {problem}")
        billing = getattr(source, "billing", lambda day: None)(utc_day(page.retrieved_at))
        result = store.save_page(batch, campaign=campaign.name, cursor=page.cursor, run_id=run_id,
                                 collected_at=page.retrieved_at, billing=billing)
        log.debug("%s/%s: %s page stored: %d posts (%d new), %d accounts, $%.3f; sweep %s", campaign.name,
                  source.name, page.endpoint, len(batch.posts), result.posts_new, len(batch.accounts), result.cost_usd,
                  "continues" if page.cursor.pending else f"done at {page.cursor.position}")

    def _fetch_counts(self, store: Store, campaign: CampaignConfig, source: Source, query: str,
                      run_id: int) -> None:
        now = self.clock.now()
        end = now - COUNTS_LAG
        cursor = store.get_cursor(campaign.name, source.name, query)
        since = parse_time(cursor.since) if cursor and cursor.since else campaign.start
        last = store.last_counted_bucket(campaign.name, source.name, query)
        start = max(since, parse_time(last) - COUNTS_OVERLAP) if last else since
        start = max(start, now - timedelta(days=7) + timedelta(minutes=2))
        if end - start < timedelta(minutes=1):
            return
        for page in source.counts(campaign.name, query, start, end):  # type: ignore[attr-defined]
            if self.archive is not None:
                self.archive.write(campaign.name, page)
            try:
                buckets = normalize_x.normalize_counts(page.body)
            except MalformedPage as exc:
                raise MalformedPage(f"{source.name}: counts page for {campaign.name}: {exc}") from None
            store.save_counts(run_id, campaign.name, source.name, query, buckets, fetched_at=page.retrieved_at,
                              cost_usd=getattr(source, "counts_cost", 0.0))

    def _enrich(self, store: Store, campaign: CampaignConfig, source: Any, run_id: int, outcome: _RunLog) -> None:
        """Fill in what a live feed leaves out: follower counts of new authors, counters of recent posts."""
        now = self.clock.now()
        try:
            dids = store.authors_without_followers(campaign.name, source.name, ENRICH_ACCOUNTS)
            for page in source.profile_pages(dids, campaign.name):
                self._store_context(store, campaign, page, run_id, normalize_bluesky.normalize_profiles)
            uris = store.posts_needing_counters(campaign.name, source.name, iso_utc(now - COUNTERS_REFRESH),
                                                int((now - COUNTERS_HORIZON).timestamp()), ENRICH_POSTS)
            for page in source.lookup_pages(uris, campaign.name):
                self._store_context(store, campaign, page, run_id, normalize_bluesky.normalize_post_views)
        except RateLimited as exc:
            outcome.note(f"{exc}; profiles and counters wait for the next run")
        except (SourceError, MalformedPage) as exc:
            outcome.note(f"profiles and counters not refreshed: {exc}")

    def _store_context(self, store: Store, campaign: CampaignConfig, page: RawPage, run_id: int,
                       normalize: Callable[[Any, str], Batch]) -> None:
        """Store a page that adds to what is known (accounts, counters) without making anything a member."""
        if self.archive is not None:
            self.archive.write(campaign.name, page)
        batch = normalize(page.body, iso_utc(page.retrieved_at))
        store.save_page(batch, campaign=None, cursor=None, run_id=run_id, collected_at=page.retrieved_at)

    def stream_bluesky(self, stop: threading.Event) -> None:
        """Follow Bluesky's Jetstream for every campaign with a "bluesky" source until `stop` is set.

        One connection serves all campaigns; each batch of a campaign's posts is stored with that campaign's
        cursor (the feed's time in microseconds), so a restart resumes where the stored data ends.
        """
        campaigns = [c for c in self.config.campaigns if "bluesky" in c.sources]
        if not campaigns:
            return
        from .sources.bluesky import STREAM_QUERY, event_has_tag

        source: Any = self.source("bluesky")
        tags = {c.name: frozenset(t.casefold() for t in c.hashtags) for c in campaigns}
        every_tag = frozenset().union(*tags.values())
        with Store.open(self.config.storage.database) as store:
            now = self.clock.now()
            for campaign in campaigns:
                store.register_campaign(campaign.name, campaign.start, campaign.end)
            start = min(source.stream_cursor(store.get_cursor(c.name, "bluesky", STREAM_QUERY), c, now)
                        for c in campaigns)

            def on_events(events: list[dict], time_us: int) -> None:
                for campaign in campaigns:
                    mine = [e for e in events if event_has_tag(e, tags[campaign.name])]
                    page = source.stream_page(campaign.name, mine, time_us)
                    if self.archive is not None and mine:
                        self.archive.write(campaign.name, page)
                    batch = normalize_bluesky.normalize_jetstream(page.body, iso_utc(page.retrieved_at))
                    for problem in batch.errors:
                        log.warning("%s/bluesky: %s", campaign.name, problem)
                    store.save_page(batch, campaign=campaign.name, cursor=page.cursor, run_id=None,
                                    collected_at=page.retrieved_at, requests=0)

            log.info("bluesky: following Jetstream from %s", iso_utc_seconds(from_epoch(start / 1_000_000)))
            source.stream(start, stop, on_events, wanted=lambda event: event_has_tag(event, every_tag))

    def _budget_reached(self, store: Store, campaign: CampaignConfig, outcome: _RunLog) -> bool:
        if campaign.daily_budget_usd is None:
            return False
        now = self.clock.now()
        spent = store.spent(campaign.name, utc_day(now))
        if spent < campaign.daily_budget_usd:
            return False
        outcome.note(f"daily budget ${campaign.daily_budget_usd:.2f} reached (${spent:.2f} spent on "
                     f"{utc_day(now)} UTC): post reads paused until 00:00 UTC, counts continue")
        return True


def _progress(store: Store, run_id: int) -> tuple[int, int]:
    record = store.run(run_id)
    return (record.posts_read, record.posts_new) if record else (0, 0)

