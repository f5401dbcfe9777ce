"""The stream connections table: when a filtered stream (X) was connected, how it ended, and what it delivered.

One row per connection of a source's stream (one connection serves every campaign, as X allows one per app).
The follower opens a row when the stream connects, advances `last_seen_at` and the per-campaign post counts in
the same transaction as each stored batch, and closes the row with the reason it ended. A row left open by a
process that died (`kill -9`, a power cut) is closed at its `last_seen_at` by the next connection, with the
reason "collector stopped": the time until the next connection is a gap like any other.

The gaps themselves (from, to, reason) are not stored twice: they are the time between connections inside a
window, derived when read (`metrics`), so they can never disagree with the connections.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..times import iso_utc, parse_optional_time, parse_time
from .files import process_running

STOPPED = "collector stopped"


@dataclass(frozen=True)
class StreamConnection:
    """One connection of a source's stream."""

    id: int
    source: str
    opened_at: datetime
    last_seen_at: datetime
    closed_at: datetime | None  # None: open now (or its process died and no connection has followed yet)
    reason: str | None  # why it ended: "dropped", "stalled", "budget", "stopped", "collector stopped", an error
    posts: dict[str, int]  # campaign -> posts this connection stored for it
    pid: int | None
    foreign_rules: tuple[tuple[str, str], ...] = ()  # (value, tag) of other programs' rules on the app, left alone

    @property
    def ended_at(self) -> datetime:
        """When it ended, or the last moment it was seen alive."""
        return self.closed_at or self.last_seen_at


def open_connection(conn: sqlite3.Connection, source: str, at: datetime, pid: int,
                    foreign_rules: Sequence[tuple[str, str]] = ()) -> int:
    """Record a new connection (with the other programs' rules on the app seen as it connected); close the
    source's earlier ones left open (by this process or a dead one). Its id."""
    close_abandoned(conn, source, pid)
    cursor = conn.execute(
        "INSERT INTO stream_connections (source, opened_at, last_seen_at, posts, pid, foreign_rules) "
        "VALUES (?, ?, ?, '{}', ?, ?)",
        (source, iso_utc(at), iso_utc(at), pid, json.dumps([list(rule) for rule in foreign_rules])))
    return int(cursor.lastrowid or 0)


def close_abandoned(conn: sqlite3.Connection, source: str, own_pid: int) -> int:
    """Close, at their last sign of life, the source's open connections that no running process holds (one
    process holds one connection per source: an open one of `own_pid` was abandoned too). How many."""
    rows = conn.execute("SELECT id, pid FROM stream_connections WHERE source = ? AND closed_at IS NULL",
                        (source,)).fetchall()
    stale = [row_id for row_id, pid in rows if pid is None or pid == own_pid or not process_running(pid)]
    conn.executemany("UPDATE stream_connections SET closed_at = last_seen_at, reason = ? WHERE id = ?",
                     [(STOPPED, row_id) for row_id in stale])
    return len(stale)


def seen(conn: sqlite3.Connection, connection_id: int, at: datetime, posts: dict[str, int]) -> None:
    """The connection was alive at `at` and stored `posts` more posts per campaign (in the batch's transaction)."""
    row = conn.execute("SELECT posts FROM stream_connections WHERE id = ?", (connection_id,)).fetchone()
    if row is None:
        return
    counts: dict[str, int] = json.loads(row[0] or "{}")
    for campaign, added in posts.items():
        counts[campaign] = counts.get(campaign, 0) + added
    conn.execute("UPDATE stream_connections SET last_seen_at = max(last_seen_at, ?), posts = ? WHERE id = ?",
                 (iso_utc(at), json.dumps(counts, sort_keys=True), connection_id))


def close(conn: sqlite3.Connection, connection_id: int, at: datetime, reason: str) -> None:
    """Record that a connection ended at `at`, and why."""
    conn.execute("UPDATE stream_connections SET closed_at = ?, last_seen_at = max(last_seen_at, ?), reason = ? "
                 "WHERE id = ? AND closed_at IS NULL", (iso_utc(at), iso_utc(at), reason, connection_id))


def select(conn: sqlite3.Connection, source: str, since: datetime, until: datetime) -> list[StreamConnection]:
    """The source's connections that overlap [since, until), oldest first."""
    rows = conn.execute(
        "SELECT id, source, opened_at, last_seen_at, closed_at, reason, posts, pid, foreign_rules "
        "FROM stream_connections "
        "WHERE source = ? AND opened_at < ? AND coalesce(closed_at, last_seen_at) >= ? ORDER BY opened_at, id",
        (source, iso_utc(until), iso_utc(since))).fetchall()
    return [StreamConnection(id=row[0], source=row[1], opened_at=parse_time(row[2]),
                             last_seen_at=parse_time(row[3]), closed_at=parse_optional_time(row[4]),
                             reason=row[5], posts=json.loads(row[6] or "{}"), pid=row[7],
                             foreign_rules=tuple((str(value), str(tag)) for value, tag in json.loads(row[8] or "[]")))
            for row in rows]
