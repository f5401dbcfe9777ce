"""The alerts table: what the organizers were told, when, through how many services, and what failed.

One row per condition (`condition_key`, unique per campaign): recording a decision is what makes it "told",
so a restarted collector never tells it again. Delivery is filled in afterwards by the sender.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..times import iso_utc, parse_time

_COLUMNS = "id, campaign, kind, condition_key, text, sent_at, services_tried, services_ok, error"


@dataclass(frozen=True)
class AlertRecord:
    """One alert as the table keeps it; `services_tried` is None while it is being delivered."""

    id: int
    campaign: str
    kind: str
    condition_key: str
    text: str
    sent_at: datetime
    services_tried: int | None
    services_ok: int | None
    error: str | None

    @property
    def headline(self) -> str:
        """The alert's first line."""
        return self.text.split("\n", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {name: iso_utc(self.sent_at) if name == "sent_at" else getattr(self, name)
                for name in _COLUMNS.split(", ")}


def insert(conn: sqlite3.Connection, campaign: str, kind: str, key: str, text: str, sent_at: str) -> int | None:
    """Record a decided alert; None when that condition was already told (the row is left as it was)."""
    cursor = conn.execute("INSERT OR IGNORE INTO alerts (campaign, kind, condition_key, text, sent_at) "
                          "VALUES (?, ?, ?, ?, ?)", (campaign, kind, key, text, sent_at))
    return cursor.lastrowid if cursor.rowcount else None


def delivered(conn: sqlite3.Connection, alert_id: int, tried: int, ok: int, error: str | None) -> None:
    """Record how delivery went."""
    conn.execute("UPDATE alerts SET services_tried = ?, services_ok = ?, error = ? WHERE id = ?",
                 (tried, ok, error, alert_id))


def select(conn: sqlite3.Connection, campaign: str | None, limit: int) -> list[AlertRecord]:
    """Alerts newest first, of one campaign or all."""
    where, args = ("WHERE campaign = ?", [campaign]) if campaign is not None else ("", [])
    rows = conn.execute(f"SELECT {_COLUMNS} FROM alerts {where} ORDER BY sent_at DESC, id DESC LIMIT ?",
                        [*args, limit]).fetchall()
    return [AlertRecord(id=row[0], campaign=row[1], kind=row[2], condition_key=row[3], text=row[4],
                        sent_at=parse_time(row[5]), services_tried=row[6], services_ok=row[7], error=row[8])
            for row in rows]


def told(conn: sqlite3.Connection, campaign: str) -> tuple[set[str], dict[str, datetime]]:
    """The condition keys already told for a campaign, and when each kind was last told."""
    keys: set[str] = set()
    latest: dict[str, str] = {}
    for kind, key, sent_at in conn.execute("SELECT kind, condition_key, sent_at FROM alerts WHERE campaign = ?",
                                           (campaign,)):
        keys.add(key)
        if sent_at > latest.get(kind, ""):  # ISO UTC stamps of one format sort as times
            latest[kind] = sent_at
    return keys, {kind: parse_time(stamp) for kind, stamp in latest.items()}
