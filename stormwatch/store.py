"""The SQLite store: schema, migrations, upserts, cursors and the run log. The only writer."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from . import tallies
from .errors import CollectorBusy, StoreError
from .models import Account, Batch, Billing, CountBucket, Cursor, Post, RunRecord
from .times import iso_utc, parse_time

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 30.0
CHECKPOINT_PAGES = 4000

_POST_COLUMNS = ("uid", "platform", "id", "author_uid", "created_at", "ts", "text", "lang", "kind", "ref_uid",
                 "url", "like_count", "repost_count", "reply_count", "quote_count", "bookmark_count",
                 "impression_count", "metrics_at")
_COUNTER_COLUMNS = ("like_count", "repost_count", "reply_count", "quote_count", "bookmark_count",
                    "impression_count", "metrics_at")
_ACCOUNT_COLUMNS = ("uid", "platform", "id", "handle", "name", "followers_count", "following_count",
                    "posts_count", "verified", "created_at", "updated_at")

_INSERT_POST = (f"INSERT INTO posts ({', '.join(_POST_COLUMNS)}, collected_at) "
                f"VALUES ({', '.join('?' * len(_POST_COLUMNS))}, ?)")
# A later snapshot of a post's counters replaces an earlier one, never the reverse (imports of old files).
_UPDATE_POST_COUNTERS = (f"UPDATE posts SET {', '.join(f'{c} = ?' for c in _COUNTER_COLUMNS)} "
                         "WHERE uid = ? AND (metrics_at IS NULL OR metrics_at < ?)")
# Snapshots that do not know a count (Bluesky post views name their author without counts) keep the stored one.
_KEPT_WHEN_UNKNOWN = ("name", "followers_count", "following_count", "posts_count", "verified", "created_at")
_UPSERT_ACCOUNT = (
    f"INSERT INTO accounts ({', '.join(_ACCOUNT_COLUMNS)}) VALUES ({', '.join('?' * len(_ACCOUNT_COLUMNS))}) "
    "ON CONFLICT(uid) DO UPDATE SET "
    + ", ".join(f"{c} = COALESCE(excluded.{c}, accounts.{c})" if c in _KEPT_WHEN_UNKNOWN else f"{c} = excluded.{c}"
                for c in _ACCOUNT_COLUMNS[3:])
    + " WHERE excluded.updated_at >= accounts.updated_at"
)


@dataclass(frozen=True)
class PageResult:
    """What storing one page changed."""

    posts_new: int
    posts_updated: int
    posts_read: int
    users_read: int
    cost_usd: float


class Store:
    """A stormwatch database: open it, write through its methods, close it."""

    def __init__(self, db: sqlite_utils.Database, path: Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.db = db
        self.path = path
        self.conn: sqlite3.Connection = db.conn
        self.busy_timeout = busy_timeout

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True,
             busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Store:
        """Open (and when `create`, create and migrate) the database at `path`, in WAL mode.

        A writer waits up to `busy_timeout` seconds for another writer before giving up.
        """
        path = Path(path)
        if not create and not path.exists():
            raise StoreError(f"{path}: no database yet (run `stormwatch collect` or `stormwatch demo` first)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the database: {exc}") from None
        store = cls(sqlite_utils.Database(conn), path, busy_timeout)
        try:
            with store._guard("open"):
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                # A page of 100 posts dirties a few hundred database pages (accounts and per-account tallies
                # sit all over the file); checkpointing every 4000 instead of 1000 WAL pages lets one
                # checkpoint's fsync cover several pages of posts.
                conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
                conn.execute("PRAGMA foreign_keys = OFF")
                store._migrate()
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn sqlite3 errors into one-line StoreErrors naming the database."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreError(f"{self.path}: database is locked by another process "
                                 f"(gave up after {self.busy_timeout:g}s while trying to {action})") from None
            raise StoreError(f"{self.path}: {action} failed: {text}") from None
        except sqlite3.DatabaseError as exc:
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
        with self._guard(action):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # --- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: made by a newer stormwatch (schema {version}); upgrade stormwatch")
        if version == SCHEMA_VERSION:
            return
        with self.transaction("create the schema"):
            if version < 1:
                self._create_v1()
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _create_v1(self) -> None:
        db = self.db
        db["posts"].create({
            "uid": str, "platform": str, "id": str, "author_uid": str, "created_at": str, "ts": int,
            "text": str, "lang": str, "kind": str, "ref_uid": str, "url": str, "like_count": int,
            "repost_count": int, "reply_count": int, "quote_count": int, "bookmark_count": int,
            "impression_count": int, "metrics_at": str, "collected_at": str,
        }, pk="uid", not_null={"platform", "id", "created_at", "ts", "kind", "collected_at"})
        db["accounts"].create({
            "uid": str, "platform": str, "id": str, "handle": str, "name": str, "followers_count": int,
            "following_count": int, "posts_count": int, "verified": int, "created_at": str, "updated_at": str,
        }, pk="uid", not_null={"platform", "id", "handle", "updated_at"})
        db["accounts"].create_index(["platform", "handle"])
        # Small link tables are clustered on their key: each lookup is one b-tree seek.
        db.execute("CREATE TABLE post_tags (post_uid TEXT NOT NULL, tag TEXT NOT NULL, "
                   "PRIMARY KEY (post_uid, tag)) WITHOUT ROWID")
        db.execute("CREATE TABLE post_mentions (post_uid TEXT NOT NULL, handle TEXT NOT NULL, "
                   "PRIMARY KEY (post_uid, handle)) WITHOUT ROWID")
        # Membership carries copies of the post's immutable ts, platform, kind and author so campaign
        # metrics read one index instead of joining posts for every bucket.
        db.execute("CREATE TABLE campaign_posts (campaign TEXT NOT NULL, post_uid TEXT NOT NULL, "
                   "ts INTEGER NOT NULL, platform TEXT NOT NULL, kind TEXT NOT NULL, author_uid TEXT, "
                   "PRIMARY KEY (campaign, post_uid)) WITHOUT ROWID")
        # Covering: window scans (volume, totals, top accounts over any --since/--until) read this index alone.
        db.execute("CREATE INDEX campaign_posts_time ON campaign_posts (campaign, ts, platform, kind, author_uid)")
        db.execute("CREATE TABLE cursors (campaign TEXT NOT NULL, source TEXT NOT NULL, query TEXT NOT NULL, "
                   "position TEXT, pending TEXT, since TEXT, updated_at TEXT NOT NULL, "
                   "PRIMARY KEY (campaign, source, query))")
        db["runs"].create({
            "id": int, "campaign": str, "source": str, "started_at": str, "finished_at": str, "status": str,
            "requests": int, "posts_read": int, "users_read": int, "posts_new": int, "posts_updated": int,
            "cost_usd": float, "error": str, "rate_limit_reset": str, "pid": int,
        }, pk="id", not_null={"campaign", "source", "started_at", "status"},
            defaults={"requests": 0, "posts_read": 0, "users_read": 0, "posts_new": 0, "posts_updated": 0,
                      "cost_usd": 0.0})
        db["runs"].create_index(["campaign", "source", "started_at"])
        db.execute("CREATE TABLE volume_counts (campaign TEXT NOT NULL, source TEXT NOT NULL, "
                   "query TEXT NOT NULL, bucket_start TEXT NOT NULL, bucket_end TEXT NOT NULL, "
                   "count INTEGER NOT NULL, fetched_at TEXT NOT NULL, "
                   "PRIMARY KEY (campaign, source, query, bucket_start)) WITHOUT ROWID")
        # Stable per-campaign pseudonyms for reports: random labels, so they cannot be recomputed from handles.
        db.execute("CREATE TABLE pseudonyms (campaign TEXT NOT NULL, uid TEXT NOT NULL, label TEXT NOT NULL, "
                   "PRIMARY KEY (campaign, uid), UNIQUE (campaign, label))")
        for statement in tallies.SCHEMA:
            db.execute(statement)
        db["runs"].create_index(["campaign", "started_at"])
        # Resources already billed this UTC day (X charges each post or user once a day).
        db.execute("CREATE TABLE billed_reads (day TEXT NOT NULL, uid TEXT NOT NULL, "
                   "PRIMARY KEY (day, uid)) WITHOUT ROWID")

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
                      since=row[2])

    def cursors(self, campaign: str | None = None) -> list[tuple[Cursor, str]]:
        """Every cursor (with when it last moved), optionally for one campaign."""
        sql = "SELECT campaign, source, query, position, pending, since, updated_at FROM cursors"
        args: tuple[Any, ...] = ()
        if campaign is not None:
            sql += " WHERE campaign = ?"
            args = (campaign,)
        with self._guard("read cursors"):
            rows = self.conn.execute(sql + " ORDER BY campaign, source, query", args).fetchall()
        return [(Cursor(r[0], r[1], r[2], position=r[3], pending=json.loads(r[4]) if r[4] else None,
                        since=r[5]), r[6]) for r in rows]

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
             json.dumps(cursor.pending, sort_keys=True) if cursor.pending else None, cursor.since, now))

    # --- writing pages --------------------------------------------------------------------------

    def save_page(self, batch: Batch, *, campaign: str | None, cursor: Cursor | None, run_id: int | None,
                  collected_at: datetime, requests: int = 1, billing: Billing | None = None) -> PageResult:
        """Store one page's rows, its cursor, the tallies and the run's counters in one transaction."""
        now = iso_utc(collected_at)
        with self.transaction("store a page") as conn:
            posts_new, posts_updated = self._write(conn, [(batch, now)], campaign)
            posts_read = len(batch.posts) + len(batch.context_posts)
            users_read = len(batch.accounts)
            cost = 0.0
            if billing is not None:
                # Post and user ids are separate id spaces on X: the billing key says which one.
                billed_posts = _bill(conn, billing.day, [f"post:{p.uid}" for p in batch.posts] +
                                     [f"post:{p.uid}" for p in batch.context_posts])
                billed_users = _bill(conn, billing.day, [f"user:{a.uid}" for a in batch.accounts])
                cost = billed_posts * billing.post_usd + billed_users * billing.user_usd
            if cursor is not None:
                self._write_cursor(conn, cursor, now)
            if run_id is not None:
                conn.execute(
                    "UPDATE runs SET requests = requests + ?, posts_read = posts_read + ?, "
                    "users_read = users_read + ?, posts_new = posts_new + ?, posts_updated = posts_updated + ?, "
                    "cost_usd = cost_usd + ? WHERE id = ?",
                    (requests, posts_read, users_read, posts_new, posts_updated, cost, run_id))
        return PageResult(posts_new, posts_updated, posts_read, users_read, cost)

    def import_batches(self, batches: Sequence[tuple[Batch, str]], campaign: str) -> tuple[int, int]:
        """Store many (batch, collected_at) pairs in one transaction; returns (new members, posts updated)."""
        with self.transaction("import posts") as conn:
            return self._write(conn, batches, campaign)

    def register_campaign(self, campaign: str, start: datetime, end: datetime) -> bool:
        """Record a campaign's storm window for its running tallies; a new or changed window rebuilds them.

        Returns True when the tallies were rebuilt (seconds at a million posts, so callers may say so).
        """
        with self.transaction("register the campaign window") as conn:
            return tallies.register(conn, campaign, int(start.timestamp()), int(end.timestamp()))

    def _write(self, conn: sqlite3.Connection, batches: Sequence[tuple[Batch, str]],
               campaign: str | None) -> tuple[int, int]:
        """Write posts, accounts, tags, mentions, membership and tallies; returns (new members, posts updated).

        Repeats within the batches are merged first (the newest snapshot of a post or account wins), so
        an archive that carries the same account on every page writes it once.
        """
        posts: dict[str, tuple[Post, str]] = {}
        members: dict[str, None] = {}
        accounts: dict[str, Account] = {}
        for batch, collected_at in batches:
            for post in batch.posts:
                members[post.uid] = None
            for post in batch.posts + batch.context_posts:
                held = posts.get(post.uid)
                if held is None or post.metrics_at > held[0].metrics_at:
                    posts[post.uid] = (post, held[1] if held else collected_at)
            for account in batch.accounts:
                held_account = accounts.get(account.uid)
                accounts[account.uid] = account if held_account is None else _merged(held_account, account)
        if accounts:
            self._write_accounts(conn, list(accounts.values()))
        if not posts:
            return 0, 0
        stored = {row[0]: row[1:] for row in tallies.select_in_chunks(
            conn, "SELECT uid, kind, like_count, repost_count, reply_count, quote_count, impression_count, metrics_at "
                  "FROM posts WHERE uid IN ({})", [], list(posts))}
        fresh = [(post, collected_at) for uid, (post, collected_at) in posts.items() if uid not in stored]
        if fresh:
            conn.executemany(_INSERT_POST, [_post_row(p, collected_at) for p, collected_at in fresh])
        changed, deltas = [], {}
        for uid, old in stored.items():
            post = posts[uid][0]
            counters = (post.like_count, post.repost_count, post.reply_count, post.quote_count, post.impression_count)
            # A later snapshot replaces an earlier one, never the reverse (imports of old files).
            if (old[6] is None or post.metrics_at > old[6]) and counters != old[1:6]:
                changed.append(post)
                deltas[uid] = (tallies.engagement_of(old[0], *counters[:4]) - tallies.engagement_of(old[0], *old[1:5]),
                               (counters[4] or 0) - (old[5] or 0))
        if changed:
            conn.executemany(_UPDATE_POST_COUNTERS, [_counters_row(p) for p in changed])
            tallies.change_counters(conn, deltas)
        new_members = 0
        if campaign is not None and members:
            already = {row[0] for row in tallies.select_in_chunks(
                conn, "SELECT post_uid FROM campaign_posts WHERE campaign = ? AND post_uid IN ({})", [campaign],
                list(members))}
            joining = [posts[uid][0] for uid in members if uid not in already]
            conn.executemany(
                "INSERT INTO campaign_posts (campaign, post_uid, ts, platform, kind, author_uid) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(campaign, p.uid, p.ts, p.platform, p.kind, p.author_uid) for p in joining])
            # Tags and mentions are kept for members only (context posts are never counted); a post seen
            # before as context gets them when it joins, and one already a member elsewhere has them.
            conn.executemany("INSERT OR IGNORE INTO post_tags (post_uid, tag) VALUES (?, ?)",
                             [(p.uid, t) for p in joining for t in p.tags])
            conn.executemany("INSERT OR IGNORE INTO post_mentions (post_uid, handle) VALUES (?, ?)",
                             [(p.uid, m) for p in joining for m in p.mentions])
            new_members = len(joining)
            tallies.add_members(conn, campaign, [_new_member(p, stored.get(p.uid)) for p in joining])
        return new_members, len(changed)

    def _write_accounts(self, conn: sqlite3.Connection, accounts: list[Account]) -> None:
        """Upsert account snapshots (newest wins) and pass follower changes on to the tallies."""
        stored = {row[0]: row[1:] for row in tallies.select_in_chunks(
            conn, "SELECT uid, followers_count, updated_at, handle, name, following_count, posts_count, verified "
                  "FROM accounts WHERE uid IN ({})", [], [a.uid for a in accounts])}
        writes, fills, followers = [], [], {}
        for account in accounts:
            old = stored.get(account.uid)
            if old is None:
                writes.append(account)
                followers[account.uid] = (0, account.followers_count or 0)
                continue
            if account.updated_at < old[1]:
                # An older snapshot still fills in what the newer ones did not know (Bluesky post views
                # name their authors without follower counts; a profile read earlier has them).
                if any(old[i] is None and value is not None for i, value in (
                        (0, account.followers_count), (3, account.name), (4, account.following_count),
                        (5, account.posts_count), (6, account.verified))):
                    fills.append(account)
                    if old[0] is None and account.followers_count is not None:
                        followers[account.uid] = (0, account.followers_count)
                continue
            verified = old[6] if account.verified is None else int(account.verified)
            known = (old[0] if account.followers_count is None else account.followers_count, account.handle,
                     old[3] if account.name is None else account.name,
                     old[4] if account.following_count is None else account.following_count,
                     old[5] if account.posts_count is None else account.posts_count, verified)
            if known != (old[0], *old[2:]):
                writes.append(account)
                followers[account.uid] = (old[0] or 0, known[0] or 0)
        if writes:
            conn.executemany(_UPSERT_ACCOUNT, [_account_row(a) for a in writes])
        if fills:
            conn.executemany(
                "UPDATE accounts SET " + ", ".join(f"{c} = coalesce({c}, ?)" for c in _KEPT_WHEN_UNKNOWN)
                + " WHERE uid = ?", [(*_account_row(a)[4:10], a.uid) for a in fills])
        if writes or fills:
            tallies.change_followers(conn, followers)

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
                [(campaign, source, query, b.start, b.end, b.count, now) for b in buckets])
            if run_id is not None:
                conn.execute("UPDATE runs SET requests = requests + ?, cost_usd = cost_usd + ? WHERE id = ?",
                             (requests, cost_usd, run_id))

    def last_counted_bucket(self, campaign: str, source: str, query: str) -> str | None:
        """The start of the newest stored count bucket for a query."""
        with self._guard("read counts"):
            row = self.conn.execute(
                "SELECT max(bucket_start) FROM volume_counts WHERE campaign = ? AND source = ? AND query = ?",
                (campaign, source, query)).fetchone()
        return row[0] if row else None

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
                if pid is None or not _process_alive(pid):
                    conn.execute("UPDATE runs SET status = 'failed', error = ? WHERE id = ?",
                                 ("interrupted: the collecting process ended during this run", run_id))
                elif pid == os.getpid():  # one job per source in a process: an open run of ours was cut short
                    conn.execute("UPDATE runs SET status = 'failed', error = ? WHERE id = ?",
                                 ("interrupted: the run could not be recorded as finished", run_id))
                else:
                    raise CollectorBusy(f"{self.path}: {campaign}/{source} is being collected by process {pid}; "
                                        "stop that collector first")
            cur = conn.execute(
                "INSERT INTO runs (campaign, source, started_at, status, pid) VALUES (?, ?, ?, 'running', ?)",
                (campaign, source, iso_utc(started_at), os.getpid()))
            return int(cur.lastrowid)

    def add_requests(self, run_id: int, requests: int, cost_usd: float = 0.0) -> None:
        """Count requests that stored nothing (failed attempts) against a run."""
        with self.transaction("count requests") as conn:
            conn.execute("UPDATE runs SET requests = requests + ?, cost_usd = cost_usd + ? WHERE id = ?",
                         (requests, cost_usd, run_id))

    def finish_run(self, run_id: int, status: str, finished_at: datetime, *, error: str | None = None,
                   rate_limit_reset: datetime | None = None) -> RunRecord:
        """Close a run record with its final status."""
        with self.transaction("finish a run") as conn:
            conn.execute("UPDATE runs SET status = ?, finished_at = ?, error = ?, rate_limit_reset = ? WHERE id = ?",
                         (status, iso_utc(finished_at), error,
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
        return [RunRecord(*row) for row in rows]

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
        if row is None or row[0] != "rate_limited" or not row[1]:
            return None
        return parse_time(row[1])

    def forget_billing_before(self, day: str) -> None:
        """Drop billing dedup entries older than `day` (they no longer affect any charge)."""
        with self.transaction("prune billing records") as conn:
            conn.execute("DELETE FROM billed_reads WHERE day < ?", (day,))

    def pseudonyms(self, campaign: str, uids: Iterable[str]) -> dict[str, str]:
        """A stable `participant-xxxx` label per account uid for a campaign, assigning new ones as needed.

        Labels are random (not derived from the handle), so nobody can recompute them from a list of
        suspects; they stay the same in every report of the campaign.
        """
        wanted = list(dict.fromkeys(uids))
        with self.transaction("assign pseudonyms") as conn:
            known = dict(conn.execute("SELECT uid, label FROM pseudonyms WHERE campaign = ?", (campaign,)).fetchall())
            taken = set(known.values())
            for uid in wanted:
                if uid in known:
                    continue
                # Four hex digits while they are plentiful, longer once a quarter of them are taken.
                digits = 4
                while len(taken) > 16 ** digits // 4:
                    digits += 2
                label = f"participant-{secrets.token_hex(digits // 2)}"
                while label in taken:
                    label = f"participant-{secrets.token_hex(digits // 2)}"
                conn.execute("INSERT INTO pseudonyms (campaign, uid, label) VALUES (?, ?, ?)", (campaign, uid, label))
                known[uid] = label
                taken.add(label)
        return {uid: known[uid] for uid in wanted}

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

    def posts_needing_counters(self, campaign: str, platform: str, read_before: str, since_ts: int,
                               limit: int) -> list[str]:
        """Native ids of a campaign's recent posts whose counters are missing or were read before `read_before`
        (newest first: their counters move most)."""
        with self._guard("read posts"):
            rows = self.conn.execute(
                "SELECT p.id FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE c.campaign = ? "
                "AND c.platform = ? AND c.ts >= ? AND c.kind != 'repost' "
                "AND (p.like_count IS NULL OR p.metrics_at < ?) ORDER BY c.ts DESC LIMIT ?",
                (campaign, platform, since_ts, read_before, limit)).fetchall()
        return [row[0] for row in rows]

    def campaign_post_ids(self, campaign: str, platform: str | None = None) -> list[str]:
        """The native ids of a campaign's posts (for checks and exports)."""
        sql = ("SELECT p.id FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE c.campaign = ?"
               + (" AND c.platform = ?" if platform else ""))
        args = (campaign, platform) if platform else (campaign,)
        with self._guard("read posts"):
            return [row[0] for row in self.conn.execute(sql, args)]


def _post_row(post: Post, collected_at: str) -> tuple[Any, ...]:
    return (post.uid, post.platform, post.id, post.author_uid, post.created_at, post.ts, post.text, post.lang,
            post.kind, post.ref_uid, post.url, post.like_count, post.repost_count, post.reply_count,
            post.quote_count, post.bookmark_count, post.impression_count, post.metrics_at, collected_at)


def _counters_row(post: Post) -> tuple[Any, ...]:
    return (post.like_count, post.repost_count, post.reply_count, post.quote_count, post.bookmark_count,
            post.impression_count, post.metrics_at, post.uid, post.metrics_at)


def _account_row(account: Account) -> tuple[Any, ...]:
    verified = None if account.verified is None else int(account.verified)
    return (account.uid, account.platform, account.id, account.handle, account.name, account.followers_count,
            account.following_count, account.posts_count, verified, account.created_at, account.updated_at)


def _merged(first: Account, second: Account) -> Account:
    """Two snapshots of one account: the newer one's values, with what only the older one knew filled in."""
    newer, older = (second, first) if second.updated_at >= first.updated_at else (first, second)
    gaps = {f: getattr(older, f) for f in _KEPT_WHEN_UNKNOWN if getattr(newer, f) is None}
    return replace(newer, **gaps) if any(v is not None for v in gaps.values()) else newer


def _new_member(post: Post, stored: tuple[Any, ...] | None) -> tallies.NewMember:
    """A post joining a campaign, with the newest counters known (the stored ones when they are newer)."""
    like, repost, reply, quote, impressions = (post.like_count, post.repost_count, post.reply_count,
                                               post.quote_count, post.impression_count)
    # What the posts table holds after this write: the incoming snapshot only replaced a strictly older one.
    if stored is not None and stored[6] is not None and not post.metrics_at > stored[6]:
        like, repost, reply, quote, impressions = stored[1:6]
    return tallies.NewMember(
        uid=post.uid, platform=post.platform, ts=post.ts, kind=post.kind, author_uid=post.author_uid,
        engagement=tallies.engagement_of(post.kind, like, repost, reply, quote),
        impressions=0 if post.kind == "repost" else impressions or 0, tags=post.tags, mentions=post.mentions)


def _bill(conn: sqlite3.Connection, day: str, uids: list[str]) -> int:
    before = conn.total_changes
    conn.executemany("INSERT OR IGNORE INTO billed_reads (day, uid) VALUES (?, ?)", [(day, u) for u in uids])
    return conn.total_changes - before


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def utc_day(moment: datetime) -> str:
    """The UTC calendar day of a moment, `YYYY-MM-DD`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")
