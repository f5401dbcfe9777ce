"""Stable per-campaign pseudonyms for reports: the label format, and assigning labels to accounts.

Labels are random (`participant-3f9a`), not derived from the handle, so nobody can recompute them from a list
of suspects; once assigned, an account keeps its label in every report of the campaign.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Collection, Iterable
from typing import Protocol

LABEL_PREFIX = "participant-"
LABEL_SHAPE = f"{LABEL_PREFIX}xxxx"  # how reports describe a label to their readers
# Four hex digits while they are plentiful; two more each time a quarter of the labels of that length are taken.
_FIRST_DIGITS = 4
# Up to this many accounts (a dashboard's screenful) are looked up one by one rather than by reading every label.
FEW = 200
_CHUNK = 500


class Labels(Protocol):
    """The labels a campaign has taken: how many, and whether one is among them."""

    def __len__(self) -> int: ...

    def __contains__(self, label: object) -> bool: ...

    def add(self, label: str) -> None: ...


class _TakenInDatabase:
    """A campaign's taken labels asked of the database one at a time (a few new labels among very many)."""

    def __init__(self, conn: sqlite3.Connection, campaign: str) -> None:
        self.conn = conn
        self.campaign = campaign
        self.count = conn.execute("SELECT count(*) FROM pseudonyms WHERE campaign = ?", (campaign,)).fetchone()[0]
        self.added: set[str] = set()

    def __len__(self) -> int:
        return int(self.count) + len(self.added)

    def __contains__(self, label: object) -> bool:
        return label in self.added or self.conn.execute(
            "SELECT 1 FROM pseudonyms WHERE campaign = ? AND label = ?", (self.campaign, label)).fetchone() is not None

    def add(self, label: str) -> None:
        self.added.add(label)


def labels_of(conn: sqlite3.Connection, campaign: str, uids: Iterable[str]) -> dict[str, str]:
    """The labels already assigned to these account uids (read only; the unlabelled are left out)."""
    wanted = list(dict.fromkeys(uids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        found.update(conn.execute(f"SELECT uid, label FROM pseudonyms WHERE campaign = ? AND uid IN "
                                  f"({', '.join('?' * len(chunk))})", [campaign, *chunk]).fetchall())
    return found


def assign_pseudonyms(conn: sqlite3.Connection, campaign: str, uids: Iterable[str], *,
                      store: bool = True, also_taken: Collection[str] = ()) -> tuple[dict[str, str], int]:
    """The label of each account uid in a campaign, assigning new ones (in the caller's transaction), and how
    many were new. Without `store` the new ones are not written (a read-only database): they hold for one report;
    `also_taken` are labels given out in memory before, which a new label must not repeat."""
    wanted = list(dict.fromkeys(uids))
    taken: Labels
    if len(wanted) <= FEW:  # a screenful: never read a million-post campaign's every label for it
        known = labels_of(conn, campaign, wanted)
        taken = _TakenInDatabase(conn, campaign) if len(known) < len(wanted) else set()
    else:
        known = dict(conn.execute("SELECT uid, label FROM pseudonyms WHERE campaign = ?", (campaign,)).fetchall())
        taken = set(known.values())
    for label in also_taken:
        taken.add(label)
    fresh = []
    for uid in wanted:
        if uid in known:
            continue
        label = new_label(taken)
        fresh.append((campaign, uid, label))
        known[uid] = label
        taken.add(label)
    if store:
        conn.executemany("INSERT INTO pseudonyms (campaign, uid, label) VALUES (?, ?, ?)", fresh)
    return {uid: known[uid] for uid in wanted}, len(fresh)


def new_label(taken: Labels) -> str:
    """A random label not in `taken`."""
    digits = _FIRST_DIGITS
    while len(taken) > 16 ** digits // 4:
        digits += 2
    label = f"{LABEL_PREFIX}{secrets.token_hex(digits // 2)}"
    while label in taken:
        label = f"{LABEL_PREFIX}{secrets.token_hex(digits // 2)}"
    return label
