"""The trends table: every trending list fetched for a campaign, entry by entry, as the platform ranked it.

Written in the fetch's transaction with the cursor that schedules the next fetch and the request's cost on the
run; read back for storm intelligence (`intel/trends.py`), which decides which entries are the campaign's tags.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from ..models import Trend
from ..times import iso_utc, parse_time

_COLUMNS = "platform, location, woeid, rank, name, volume, seen_at"


def insert(conn: sqlite3.Connection, campaign: str, trends: Sequence[Trend]) -> None:
    """Store one fetch's entries (a fetch repeated at the same moment replaces its entries)."""
    conn.executemany(
        "INSERT INTO trends (campaign, platform, location, woeid, seen_at, rank, name, volume) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, platform, location, seen_at, rank) DO UPDATE SET "
        "woeid = excluded.woeid, name = excluded.name, volume = excluded.volume",
        [(campaign, t.platform, t.location, t.woeid, iso_utc(t.seen_at), t.rank, t.name, t.volume) for t in trends])


def select(conn: sqlite3.Connection, campaign: str, since: datetime, until: datetime) -> list[Trend]:
    """Every entry fetched for a campaign in [since, until), oldest fetch first, by rank."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM trends WHERE campaign = ? AND seen_at >= ? AND seen_at < ? "
        "ORDER BY seen_at, platform, location, rank", (campaign, iso_utc(since), iso_utc(until))).fetchall()
    return [Trend(platform=row[0], location=row[1], woeid=row[2], rank=row[3], name=row[4], volume=row[5],
                  seen_at=parse_time(row[6])) for row in rows]
