"""The `Store`: opening a database (WAL, migrated), write transactions, cursors, pages, the run log, reads.

Each write method is one transaction; the work inside it is done by the modules beside this one (pages,
tallies, billing, pseudonyms), which take the open connection.

A new database is created readable by its owner only. Commands that only read open a database they may not
write (a shared copy, another user's file) read-only, or as an unchanging snapshot when even that needs files
SQLite cannot create. A damaged file is one line (`database is damaged: …; run sqlite3 DB .recover`) from any
command, never a traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import CollectorBusy, DatabaseDamaged, StoreError
from ..models import Batch, Billing, CountBucket, Cursor, RunRecord, Trend
from ..normalize.text import one_line, strip_controls
from ..times import iso_utc, iso_utc_compact, parse_optional_time, parse_time
from . import alerts as told_alerts
from . import billing as billed_reads
from . import intel, migrations, pages, pseudonyms, streams, tallies
from .alerts import AlertRecord
from .files import private_file, process_running
from .sql import immediate_transaction
from .streams import StreamConnection

# A database in memory (tests): no file, no WAL.
MEMORY = ":memory:"
BUSY_TIMEOUT_SECONDS = 30.0
CHECKPOINT_PAGES = 4000
# How a store is open: written as usual, read-only, or as an unchanging snapshot (SQLite's `immutable`).
READ_WRITE, READ_ONLY, IMMUTABLE = "read-write", "read-only", "immutable"
# SQLite's primary result codes for a damaged file and for a file or folder this process may not write.
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_NOT_WRITABLE = {3, 8, 10, 14}  # SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN


@dataclass(frozen=True)
class PageResult:
    """What storing one page changed."""

    posts_new: int
    posts_updated: int
    posts_read: int
    users_read: int
    cost_usd: float


def no_database(path: Path) -> str:
    """The one line said when a command needs the database and there is none yet."""
    return f"{path.absolute()}: no database yet (`stormwatch collect` with this config collects into it)"


class Store:
    """A stormwatch database: open it, write through its methods, close it."""

    def __init__(self, db: sqlite_utils.Database, path: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS,
                 access: str = READ_WRITE) -> None:
        self.db = db
        self.path = path
        self.conn: sqlite3.Connection = db.conn
        self.busy_timeout = busy_timeout
        self.access = access
        self.labels_not_stored = 0  # pseudonyms made in memory only, because the database is read-only
        # campaign -> uid -> label made in memory (read-only): a live view asks again every second, and an account
        # must keep its label while the store is open, not get a new one on each refresh.
        self._labels_in_memory: dict[str, dict[str, str]] = {}

    @property
    def read_only(self) -> bool:
        """Whether this store cannot be written (opened read-only or immutable)."""
        return self.access != READ_WRITE

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True,
             busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Store:
        """Open the database at `path` (`":memory:"` for one in memory) in WAL mode, created or upgraded as needed.

        Without `create`, a missing file is an error rather than a new database. A writer waits up to
        `busy_timeout` seconds for another writer before giving up.
        """
        in_memory = os.fspath(path) == MEMORY
        path = Path(path)
        if not create and not in_memory and not path.exists():
            raise StoreError(no_database(path))
        if not in_memory and path.exists() and not _may_write(path):
            raise _NotWritable(f"{path}: the database is read-only here (it, or its folder, cannot be written)", None)
        try:
            if not in_memory:
                # Created empty and owner-only first: SQLite gives its -wal and -shm files the same mode.
                private_file(path)
            conn = sqlite3.connect(MEMORY if in_memory else path, timeout=busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the database: {getattr(exc, 'strerror', None) or exc}") from None
        store = cls(sqlite_utils.Database(conn), path, busy_timeout)

        def make_ready() -> None:
            conn.execute("PRAGMA journal_mode = WAL")  # an in-memory database stays in `memory` mode
            conn.execute("PRAGMA synchronous = NORMAL")
            # A page of 100 posts dirties a few hundred database pages (accounts and per-account tallies
            # sit all over the file); checkpointing every 4000 instead of 1000 WAL pages lets one
            # checkpoint's fsync cover several pages of posts.
            conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            conn.execute("PRAGMA foreign_keys = OFF")
            migrations.upgrade(store.db, str(path))

        try:
            with store._guard("open"):
                _while_locked(make_ready, busy_timeout)
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def open_for_reading(cls, path: str | os.PathLike[str], *, busy_timeout: float = BUSY_TIMEOUT_SECONDS,
                         writable: bool = True) -> Store:
        """Open an existing database for a command that only reads (status, summary, report, the dashboard).

        Opened as usual when this process may write it (so an upgrade and new report pseudonyms are stored);
        read-only when it may not (a shared copy, another user's file, a file marked read-only, even for root);
        and as an unchanging snapshot (`immutable`) when even reading needs files SQLite cannot create (the
        WAL's -shm beside a database in a folder this user cannot write). `access` says which. Without
        `writable`, never opened for writing (the live web page: no request may write anything).
        """
        path = Path(path)
        if not path.exists():
            raise StoreError(no_database(path))
        if writable and _may_write(path):
            try:
                return cls.open(path, create=False, busy_timeout=busy_timeout)
            except _NotWritable:
                pass
        last: sqlite3.Error | None = None
        for access, query in ((READ_ONLY, "mode=ro"), (IMMUTABLE, "mode=ro&immutable=1")):
            try:
                conn = sqlite3.connect(f"{path.absolute().as_uri()}?{query}", uri=True, timeout=busy_timeout,
                                       isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                last = exc
                continue
            store = cls(sqlite_utils.Database(conn), path, busy_timeout, access)
            try:
                with store._guard("open"):
                    migrations.require_current(store.db, str(path))
            except _NotWritable as exc:
                conn.close()
                last = exc.cause
                continue
            except BaseException:
                conn.close()
                raise
            return store
        raise StoreError(f"{path}: cannot open the database, even read-only: {last}")

    def access_note(self) -> str | None:
        """One line saying what opening the database read-only limits (None when it is open as usual)."""
        if self.access == READ_ONLY:
            return f"note: {self.path} cannot be written here, so it was opened read-only: nothing was stored"
        if self.access == IMMUTABLE:
            return (f"note: {self.path} and its folder cannot be written here, so it was read as an unchanging "
                    "snapshot: nothing was stored, and what another process writes meanwhile is not seen")
        return None

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        self.close()
        # Reads outside the store's own methods (the metrics) meet a damaged file too: one line, not a traceback.
        if isinstance(error, sqlite3.DatabaseError):
            translated = self._translated(error, "read")
            if translated is not None:
                raise translated from None

    def check_integrity(self) -> None:
        """DatabaseDamaged unless SQLite's quick check finds the file sound (before writing a lot into it)."""
        with self._guard("check the database"):
            problems = [row[0] for row in self.conn.execute("PRAGMA quick_check(1)")]
        if problems != ["ok"]:
            raise self._damaged(" ".join(" ".join(problems).replace("*** in database main ***", "").split())[:300])

    def _damaged(self, message: str) -> DatabaseDamaged:
        return DatabaseDamaged(f"{self.path}: database is damaged: {message}; run `sqlite3 {self.path} .recover` "
                               "to save what can be saved")

    def _translated(self, exc: sqlite3.DatabaseError, action: str) -> StoreError | None:
        """The one-line error for an sqlite3 error, or None for one that is a bug of ours (kept as it is)."""
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        text = str(exc)
        if code in _DAMAGED:
            if not _is_sqlite_file(self.path):  # some other file altogether: nothing to recover
                return StoreError(f"{self.path}: {action} failed: {text} (is this a stormwatch database?)")
            return self._damaged(text)
        if code == 8 or "readonly" in text:
            return _NotWritable(f"{self.path}: cannot {action}: the database is read-only here ({text})", exc)
        if "locked" in text or "busy" in text:
            return StoreError(f"{self.path}: database is locked by another process "
                              f"(gave up after {self.busy_timeout:g}s while trying to {action})")
        if code in _NOT_WRITABLE or "disk is full" in text or "disk I/O" in text:
            return _NotWritable(f"{self.path}: {action} failed: {text}", exc)
        return None

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn sqlite3 errors into one-line StoreErrors naming the database."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            translated = self._translated(exc, action)
            if translated is not None:
                raise translated from None
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"{self.path}: {action} failed: {exc}") from None
            raise StoreError(f"{self.path}: {action} failed: {exc} (is this a stormwatch database?)") from None

    @contextmanager
    def bulk_writes(self, cache_mb: int = 8, checkpoint_pages: int = 4 * CHECKPOINT_PAGES) -> Iterator[None]:
        """Settings for a long series of big transactions (imports): a larger page cache, and WAL checkpoints
        less often, so each checkpoint's fsync covers more work."""
        with self._guard("tune for an import"):
            cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
            checkpoint = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            self.conn.execute(f"PRAGMA cache_size = {-1024 * cache_mb}")
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages}")
        try:
            yield
        finally:
            with self._guard("restore settings"):
                self.conn.execute(f"PRAGMA cache_size = {cache}")
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint}")

    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is stored, or none of it."""
        with self._guard(action), immediate_transaction(self.conn) as conn:
            yield conn

    # --- cursors --------------------------------------------------------------------------------

    def get_cursor(self, campaign: str, source: str, query: str) -> Cursor | None:
        """The stored cursor for one (campaign, source, query), if any."""
        with self._guard("read a cursor"):
            row = self.conn.execute(
                "SELECT position, pending, since FROM cursors WHERE campaign = ? AND source = ? AND query = ?",
                (campaign, source, query)).fetchone()
        if row is None:
            return None
        return Cursor(campaign, source, query, position=row[0], pending=json.loads(row[1]) if row[1] else None,
                      since=parse_optional_time(row[2]))

    def cursors(self, campaign: str | None = None) -> list[tuple[Cursor, datetime]]:
        """Every cursor (with when it last moved), optionally for one campaign."""
        sql = "SELECT campaign, source, query, position, pending, since, updated_at FROM cursors"
        args: tuple[Any, ...] = ()
        if campaign is not None:
            sql += " WHERE campaign = ?"
            args = (campaign,)
        with self._guard("read cursors"):
            rows = self.conn.execute(sql + " ORDER BY campaign, source, query", args).fetchall()
        return [(Cursor(r[0], r[1], r[2], position=r[3], pending=json.loads(r[4]) if r[4] else None,
                        since=parse_optional_time(r[5])), parse_time(r[6])) for r in rows]

    def save_cursor(self, cursor: Cursor, now: datetime) -> None:
        """Store a cursor on its own (when a run only establishes where collection starts)."""
        with self.transaction("save a cursor") as conn:
            self._write_cursor(conn, cursor, iso_utc(now))

    @staticmethod
    def _write_cursor(conn: sqlite3.Connection, cursor: Cursor, now: str) -> None:
        conn.execute(
            "INSERT INTO cursors (campaign, source, query, position, pending, since, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, source, query) DO UPDATE SET "
            "position = excluded.position, pending = excluded.pending, since = excluded.since, "
            "updated_at = excluded.updated_at",
            (cursor.campaign, cursor.source, cursor.query, cursor.position,
             json.dumps(cursor.pending, sort_keys=True) if cursor.pending else None,
             iso_utc_compact(cursor.since) if cursor.since else None, now))

    # --- writing pages --------------------------------------------------------------------------

    def save_page(self, batch: Batch, *, campaign: str | None, cursor: Cursor | None, run_id: int | None,
                  collected_at: datetime, requests: int = 1, billing: Billing | None = None,
                  stream_connection: int | None = None) -> PageResult:
        """Store one page's rows, its cursor, the tallies and the run's counters in one transaction (and, for a
        stream's batch, that its connection was alive and what it stored for the campaign)."""
        now = iso_utc(collected_at)
        with self.transaction("store a page") as conn:
            posts_new, posts_updated = pages.write_batches(conn, [(batch, now)], campaign)
            if stream_connection is not None:
                streams.seen(conn, stream_connection, collected_at, {campaign: posts_new} if campaign else {})
            posts_read = len(batch.posts) + len(batch.context_posts)
            users_read = len(batch.accounts)
            posts_cost, users_cost = billed_reads.bill_page(conn, billing, batch)
            if cursor is not None:
                self._write_cursor(conn, cursor, now)
            if run_id is not None:
                conn.execute(
                    "UPDATE runs SET requests = requests + ?, posts_read = posts_read + ?, "
                    "users_read = users_read + ?, posts_new = posts_new + ?, posts_updated = posts_updated + ?, "
                    f"{billed_reads.READ_COSTS} WHERE id = ?",
                    (requests, posts_read, users_read, posts_new, posts_updated, posts_cost + users_cost, posts_cost,
                     users_cost, run_id))
        return PageResult(posts_new, posts_updated, posts_read, users_read, posts_cost + users_cost)

    def save_stream_batch(self, shares: Sequence[tuple[str | None, Batch, int | None]], *, collected_at: datetime,
                          billing: Billing | None, stream_connection: int | None) -> dict[str | None, PageResult]:
        """Store a stream batch, each (campaign or None for context, rows, run) share, in ONE transaction with its
        tallies, billing (charged to the share's run) and the connection's sign of life."""
        now = iso_utc(collected_at)
        results: dict[str | None, PageResult] = {}
        with self.transaction("store a stream batch") as conn:
            for campaign, batch, run_id in shares:
                posts_new, posts_updated = pages.write_batches(conn, [(batch, now)], campaign)
                if stream_connection is not None:
                    streams.seen(conn, stream_connection, collected_at, {campaign: posts_new} if campaign else {})
                posts_cost, users_cost = billed_reads.bill_page(conn, billing, batch)
                posts_read, users_read = len(batch.posts) + len(batch.context_posts), len(batch.accounts)
                if run_id is not None:
                    conn.execute("UPDATE runs SET posts_read = posts_read + ?, users_read = users_read + ?, "
                                 "posts_new = posts_new + ?, posts_updated = posts_updated + ?, "
                                 f"{billed_reads.READ_COSTS} WHERE id = ?",
                                 (posts_read, users_read, posts_new, posts_updated, posts_cost + users_cost, posts_cost,
                                  users_cost, run_id))
                results[campaign] = PageResult(posts_new, posts_updated, posts_read, users_read,
                                               posts_cost + users_cost)
        return results

    def import_batches(self, batches: Sequence[tuple[Batch, str]], campaign: str) -> tuple[int, int]:
        """Store many (batch, collected_at) pairs in one transaction; returns (new members, posts updated)."""
        with self.transaction("import posts") as conn:
            return pages.write_batches(conn, batches, campaign)

    def register_campaign(self, campaign: str, start: datetime, end: datetime,
                          counter_tags: Collection[str] = ()) -> bool:
        """Record a campaign's storm window and counter-hashtags for its running tallies; a new or changed one
        rebuilds them (the members carrying a counter-hashtag are hijack candidates, never tallied).

        Returns True when the tallies were rebuilt (seconds at a million posts, so callers may say so).
        """
        with self.transaction("register the campaign window") as conn:
            return tallies.register(conn, campaign, int(start.timestamp()), int(end.timestamp()), counter_tags)

    def save_counts(self, run_id: int | None, campaign: str, source: str, query: str,
                    buckets: Sequence[CountBucket], *, fetched_at: datetime, requests: int = 1,
                    cost_usd: float = 0.0) -> None:
        """Store the platform's per-bucket counts (newer fetches replace older) and bill the request."""
        now = iso_utc(fetched_at)
        with self.transaction("store counts") as conn:
            conn.executemany(
                "INSERT INTO volume_counts (campaign, source, query, bucket_start, bucket_end, count, fetched_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, source, query, bucket_start) DO UPDATE SET "
                "bucket_end = excluded.bucket_end, count = excluded.count, fetched_at = excluded.fetched_at",
                [(campaign, source, query, iso_utc(b.start), iso_utc(b.end), b.count, now) for b in buckets])
            if run_id is not None:
                billed_reads.bill_requests(conn, run_id, requests, cost_usd, "counts")

    def last_counted_bucket(self, campaign: str, source: str, query: str) -> datetime | None:
        """The start of the newest stored count bucket for a query."""
        with self._guard("read counts"):
            row = self.conn.execute(
                "SELECT max(bucket_start) FROM volume_counts WHERE campaign = ? AND source = ? AND query = ?",
                (campaign, source, query)).fetchone()
        return parse_optional_time(row[0]) if row else None

    # --- trends -------------------------------------------------------------------------------

    def save_trends(self, run_id: int | None, campaign: str, trends: Sequence[Trend], cursor: Cursor, *,
                    fetched_at: datetime, requests: int = 1, cost_usd: float = 0.0) -> None:
        """Store one trending list fetched for a campaign, the cursor that schedules the next, and the request."""
        with self.transaction("store trends") as conn:
            intel.insert(conn, campaign, trends)
            self._write_cursor(conn, cursor, iso_utc(fetched_at))
            if run_id is not None:
                billed_reads.bill_requests(conn, run_id, requests, cost_usd, "trends")

    def trends(self, campaign: str, since: datetime, until: datetime) -> list[Trend]:
        """Every trending entry fetched for a campaign in [since, until), oldest fetch first."""
        with self._guard("read trends"):
            return intel.select(self.conn, campaign, since, until)

    # --- stream connections ---------------------------------------------------------------------

    def open_stream_connection(self, source: str, at: datetime, foreign_rules: Sequence[tuple[str, str]] = ()) -> int:
        """Record that `source`'s stream connected at `at`, with the (value, tag) of other programs' rules on the
        app (closing connections a dead process left open)."""
        with self.transaction("record a stream connection") as conn:
            return streams.open_connection(conn, source, at, os.getpid(), foreign_rules)

    def close_stream_connection(self, connection_id: int, at: datetime, reason: str) -> None:
        """Record that a stream connection ended at `at`, and why ("dropped", "stalled", "budget", ...)."""
        with self.transaction("record a stream disconnection") as conn:
            streams.close(conn, connection_id, at, one_line(reason))

    def stream_connections(self, source: str, since: datetime, until: datetime) -> list[StreamConnection]:
        """The source's stream connections overlapping [since, until), oldest first."""
        with self._guard("read stream connections"):
            return streams.select(self.conn, source, since, until)

    # --- the run log ----------------------------------------------------------------------------

    def start_run(self, campaign: str, source: str, started_at: datetime) -> int:
        """Open a run record (status `running`).

        Runs left `running` by a process that has died are closed as interrupted; a run still going
        in another live process means that process is collecting this source, and two collectors
        would read (and pay for) the same posts twice, so that is refused.
        """
        with self.transaction("start a run") as conn:
            for run_id, pid in conn.execute(
                    "SELECT id, pid FROM runs WHERE campaign = ? AND source = ? AND status = 'running'",
                    (campaign, source)).fetchall():
                if pid is None or not process_running(pid):
                    conn.execute("UPDATE runs SET status = 'failed', error = ? WHERE id = ?",
                                 ("interrupted: the collecting process ended during this run", run_id))
                elif pid == os.getpid():  # one job per source in a process: an open run of ours was cut short
                    conn.execute("UPDATE runs SET status = 'failed', error = ? WHERE id = ?",
                                 ("interrupted: the run could not be recorded as finished", run_id))
                else:
                    raise CollectorBusy(f"{self.path}: {campaign}/{source} is being collected by process {pid}; "
                                        "stop that collector first")
            new_id = conn.execute(
                "INSERT INTO runs (campaign, source, started_at, status, pid) VALUES (?, ?, ?, 'running', ?)",
                (campaign, source, iso_utc(started_at), os.getpid())).lastrowid
            assert new_id is not None  # an INSERT into a rowid table always has one
            return new_id

    def add_requests(self, run_id: int, requests: int, cost_usd: float = 0.0, kind: str = "counts") -> None:
        """Count requests that stored nothing (failed attempts, the plan's counts) against a run; their cost is of
        `kind` (one of REQUEST_KINDS)."""
        with self.transaction("count requests") as conn:
            billed_reads.bill_requests(conn, run_id, requests, cost_usd, kind)

    def bill_reads(self, run_id: int, batch: Batch, billing: Billing) -> float:
        """Bill a page that is read but not stored (the plan's sample) against a run; what it cost."""
        with self.transaction("bill a page") as conn:
            posts_cost, users_cost = billed_reads.bill_page(conn, billing, batch)
            conn.execute(f"UPDATE runs SET requests = requests + 1, posts_read = posts_read + ?, "
                         f"users_read = users_read + ?, {billed_reads.READ_COSTS} WHERE id = ?",
                         (len(batch.posts) + len(batch.context_posts), len(batch.accounts),
                          posts_cost + users_cost, posts_cost, users_cost, run_id))
        return posts_cost + users_cost

    def finish_run(self, run_id: int, status: str, finished_at: datetime, *, error: str | None = None,
                   rate_limit_reset: datetime | None = None) -> RunRecord:
        """Close a run record with its final status."""
        with self.transaction("finish a run") as conn:
            # Error texts quote instances and servers (hostile ones too): stored without control characters.
            conn.execute("UPDATE runs SET status = ?, finished_at = ?, error = ?, rate_limit_reset = ? WHERE id = ?",
                         (status, iso_utc(finished_at), strip_controls(error) if error else error,
                          iso_utc(rate_limit_reset) if rate_limit_reset else None, run_id))
        record = self.run(run_id)
        assert record is not None
        return record

    def run(self, run_id: int) -> RunRecord | None:
        """One run record."""
        rows = self._runs("WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def last_runs(self, campaign: str | None = None, source: str | None = None, limit: int = 10) -> list[RunRecord]:
        """The newest runs first, optionally for one campaign and source."""
        clauses, args = [], []
        if campaign is not None:
            clauses.append("campaign = ?")
            args.append(campaign)
        if source is not None:
            clauses.append("source = ?")
            args.append(source)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._runs(f"{where} ORDER BY id DESC LIMIT ?", (*args, limit))

    def _runs(self, tail: str, args: tuple[Any, ...]) -> list[RunRecord]:
        with self._guard("read the run log"):
            rows = self.conn.execute(
                "SELECT id, campaign, source, started_at, finished_at, status, requests, posts_read, users_read, "
                f"posts_new, posts_updated, cost_usd, error, rate_limit_reset FROM runs {tail}", args).fetchall()
        return [_run_record(row) for row in rows]

    def spent(self, campaign: str, day: str) -> float:
        """Estimated spend (USD) of a campaign's runs started on a UTC day (`YYYY-MM-DD`)."""
        # started_at is ISO text, so every run of the day sorts between `day` and `dayU` ('T' < 'U').
        with self._guard("read spend"):
            row = self.conn.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM runs WHERE campaign = ? AND started_at >= ? AND started_at < ?",
                (campaign, day, f"{day}U")).fetchone()
        return float(row[0])

    def run_totals(self, campaign: str, source: str, day: str) -> tuple[int, int, float]:
        """(runs, requests, estimated USD) of one campaign's source on a UTC day."""
        with self._guard("read the run log"):
            row = self.conn.execute(
                "SELECT count(*), coalesce(sum(requests), 0), coalesce(sum(cost_usd), 0) FROM runs "
                "WHERE campaign = ? AND source = ? AND started_at >= ? AND started_at < ?",
                (campaign, source, day, f"{day}U")).fetchone()
        return int(row[0]), int(row[1]), float(row[2])

    def backoff_until(self, campaign: str, source: str) -> datetime | None:
        """When a source's rate-limit back-off ends, if its latest finished run was rate-limited."""
        with self._guard("read the run log"):
            row = self.conn.execute(
                "SELECT status, rate_limit_reset FROM runs WHERE campaign = ? AND source = ? AND status != 'running' "
                "ORDER BY id DESC LIMIT 1", (campaign, source)).fetchone()
        if row is None or row[0] != "rate_limited":
            return None
        return parse_optional_time(row[1])

    def forget_billing_before(self, day: str) -> None:
        """Drop billing dedup entries older than `day` (they no longer affect any charge)."""
        with self.transaction("prune billing records") as conn:
            billed_reads.forget_before(conn, day)

    def assign_pseudonyms(self, campaign: str, uids: Iterable[str]) -> dict[str, str]:
        """The stable report label (`participant-xxxx`) of each account uid in a campaign, assigning new ones.

        Labels are random, not derived from the handle, and stay the same in every report of the campaign.
        """
        if self.read_only:
            # Nothing can be stored: labels not assigned before are made for this one report (and counted, so
            # the report can say its labels will differ next time).
            made = self._labels_in_memory.setdefault(campaign, {})
            wanted = list(dict.fromkeys(uids))
            new = [uid for uid in wanted if uid not in made]
            if new:
                with self._guard("read pseudonyms"):
                    labels, fresh = pseudonyms.assign_pseudonyms(self.conn, campaign, new, store=False,
                                                                 also_taken=set(made.values()))
                made.update(labels)
                self.labels_not_stored += fresh
            return {uid: made[uid] for uid in wanted}
        wanted = list(dict.fromkeys(uids))
        if len(wanted) <= pseudonyms.FEW:
            # A dashboard asks every second for the accounts on screen: no write lock when all have labels.
            with self._guard("read pseudonyms"):
                known = pseudonyms.labels_of(self.conn, campaign, wanted)
            if len(known) == len(wanted):
                return known
        with self.transaction("assign pseudonyms") as conn:
            return pseudonyms.assign_pseudonyms(conn, campaign, wanted)[0]

    # --- alerts ---------------------------------------------------------------------------------

    def record_alert(self, campaign: str, kind: str, key: str, text: str, sent_at: datetime) -> int | None:
        """Record an alert decided for a condition; None when that condition was already told."""
        with self.transaction("record an alert") as conn:
            return told_alerts.insert(conn, campaign, kind, key, text, iso_utc(sent_at))

    def alert_delivered(self, alert_id: int, tried: int, ok: int, error: str | None) -> None:
        """Record how an alert's delivery went: services tried, services reached, what failed."""
        with self.transaction("record an alert's delivery") as conn:
            told_alerts.delivered(conn, alert_id, tried, ok, strip_controls(error) if error else error)

    def alerts(self, campaign: str | None = None, limit: int = 50) -> list[AlertRecord]:
        """Alerts told, newest first (of one campaign, or all)."""
        with self._guard("read alerts"):
            return told_alerts.select(self.conn, campaign, limit)

    def alerts_told(self, campaign: str) -> tuple[set[str], dict[str, datetime]]:
        """The condition keys already told for a campaign, and when each kind was last told."""
        with self._guard("read alerts"):
            return told_alerts.told(self.conn, campaign)

    def spent_since(self, campaign: str, since: datetime) -> float:
        """Estimated spend (USD) of a campaign's runs started at or after `since`."""
        with self._guard("read spend"):
            row = self.conn.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM runs WHERE campaign = ? AND started_at >= ?",
                (campaign, iso_utc(since))).fetchone()
        return float(row[0])

    # --- reading --------------------------------------------------------------------------------

    def count_campaign_posts(self, campaign: str) -> int:
        """How many posts a campaign holds."""
        with self._guard("count posts"):
            return int(self.conn.execute("SELECT count(*) FROM campaign_posts WHERE campaign = ?",
                                         (campaign,)).fetchone()[0])

    def authors_without_followers(self, campaign: str, platform: str, limit: int) -> list[str]:
        """Native ids of a campaign's authors on a platform whose follower count is not known yet."""
        with self._guard("read accounts"):
            rows = self.conn.execute(
                "SELECT DISTINCT c.author_uid FROM campaign_posts c LEFT JOIN accounts a ON a.uid = c.author_uid "
                "WHERE c.campaign = ? AND c.platform = ? AND c.author_uid IS NOT NULL AND a.followers_count IS NULL "
                "LIMIT ?", (campaign, platform, limit)).fetchall()
        return [row[0].split(":", 1)[1] for row in rows]

    def accounts_with_followers(self, uids: Sequence[str]) -> list[str]:
        """Which of these account uids have a follower count stored (their profile is known)."""
        found: list[str] = []
        with self._guard("read accounts"):
            for start in range(0, len(uids), 500):
                chunk = list(uids[start:start + 500])
                marks = ", ".join("?" * len(chunk))
                found += [row[0] for row in self.conn.execute(
                    f"SELECT uid FROM accounts WHERE followers_count IS NOT NULL AND uid IN ({marks})", chunk)]
        return found

    def posts_needing_counters(self, campaign: str, platform: str, read_before: datetime, since_ts: int,
                               limit: int) -> list[str]:
        """Native ids of a campaign's recent posts whose counters are missing or were read before `read_before`
        (newest first: their counters move most)."""
        with self._guard("read posts"):
            rows = self.conn.execute(
                "SELECT p.id FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE c.campaign = ? "
                "AND c.platform = ? AND c.ts >= ? AND c.kind != 'repost' "
                "AND (p.like_count IS NULL OR p.metrics_at < ?) ORDER BY c.ts DESC LIMIT ?",
                (campaign, platform, since_ts, iso_utc(read_before), limit)).fetchall()
        return [row[0] for row in rows]

    def campaign_post_ids(self, campaign: str, platform: str | None = None) -> list[str]:
        """The native ids of a campaign's posts (for checks and exports)."""
        sql = ("SELECT p.id FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE c.campaign = ?"
               + (" AND c.platform = ?" if platform else ""))
        args = (campaign, platform) if platform else (campaign,)
        with self._guard("read posts"):
            return [row[0] for row in self.conn.execute(sql, args)]



def _run_record(row: tuple[Any, ...]) -> RunRecord:
    """A run record from a `runs` row (columns in RunRecord's order), its times parsed."""
    (run_id, campaign, source, started_at, finished_at, status, requests, posts_read, users_read, posts_new,
     posts_updated, cost_usd, error, rate_limit_reset) = row
    return RunRecord(id=run_id, campaign=campaign, source=source, started_at=parse_time(started_at),
                     finished_at=parse_optional_time(finished_at), status=status, requests=requests,
                     posts_read=posts_read, users_read=users_read, posts_new=posts_new, posts_updated=posts_updated,
                     cost_usd=cost_usd, error=error, rate_limit_reset=parse_optional_time(rate_limit_reset))


class _NotWritable(StoreError):
    """The database (or its folder) cannot be written by this process; `open_for_reading` opens it read-only."""

    def __init__(self, message: str, cause: sqlite3.Error | None) -> None:
        super().__init__(message)
        self.cause = cause


def _is_sqlite_file(path: Path) -> bool:
    """Whether the file starts as every SQLite database does (a damaged one too, unless the damage is there)."""
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _may_write(path: Path) -> bool:
    """Whether this process may write the database and create its -wal and -shm files.

    A file or folder with no write permission for anyone counts as read-only even for root (who could write it):
    someone marked it so on purpose.
    """
    try:
        file_mode, folder_mode = path.stat().st_mode, path.parent.stat().st_mode
    except OSError:
        return False
    if not file_mode & 0o222 or not folder_mode & 0o222:
        return False
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def utc_day(moment: datetime) -> str:
    """The UTC calendar day of a moment, `YYYY-MM-DD`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _while_locked(step: Callable[[], None], seconds: float) -> None:
    """Run `step`, again while SQLite says the database is locked, for up to `seconds`. Its busy timeout waits
    for most locks, but not all. When two connections make a new file ready at once (switching it to WAL,
    migrating), SQLite may refuse one of them at once rather than risk a deadlock, and that step is safe to run
    again: every part of it checks what is already done."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
