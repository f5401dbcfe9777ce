"""Stable per-campaign pseudonyms for reports: the label format, and assigning labels to accounts.

Labels are random (`participant-3f9a`), not derived from the handle, so nobody can recompute them from a list
of suspects; once assigned, an account keeps its label in every report of the campaign.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable

LABEL_PREFIX = "participant-"
LABEL_SHAPE = f"{LABEL_PREFIX}xxxx"  # how reports describe a label to their readers
# Four hex digits while they are plentiful; two more each time a quarter of the labels of that length are taken.
_FIRST_DIGITS = 4


def assign_pseudonyms(conn: sqlite3.Connection, campaign: str, uids: Iterable[str], *,
                      store: bool = True) -> tuple[dict[str, str], int]:
    """The label of each account uid in a campaign, assigning new ones (in the caller's transaction), and how
    many were new. Without `store` the new ones are not written (a read-only database): they hold for one report."""
    wanted = list(dict.fromkeys(uids))
    known = dict(conn.execute("SELECT uid, label FROM pseudonyms WHERE campaign = ?", (campaign,)).fetchall())
    taken = set(known.values())
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


def new_label(taken: set[str]) -> str:
    """A random label not in `taken`."""
    digits = _FIRST_DIGITS
    while len(taken) > 16 ** digits // 4:
        digits += 2
    label = f"{LABEL_PREFIX}{secrets.token_hex(digits // 2)}"
    while label in taken:
        label = f"{LABEL_PREFIX}{secrets.token_hex(digits // 2)}"
    return label
