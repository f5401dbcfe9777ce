"""Billed reads: what a platform charges for reading, deduplicated per billing day, and what a page cost.

A source that bills hands over a `models.Billing`: its billing day and what reading a post and an account
costs. The store remembers every resource billed that day in `billed_reads`, so a post read twice in one day
is charged once. Posts and accounts are separate id spaces on a platform (on X a post and a user can share
an id), so each key carries its resource kind: `post:x:123`, `user:x:123`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ..models import Batch, Billing

POST = "post"
ACCOUNT = "user"  # the key prefix files have carried since release 1


def bill_page(conn: sqlite3.Connection, billing: Billing | None, batch: Batch) -> tuple[float, float]:
    """Record a page's reads on the billing day (in the caller's transaction); the cost of the new ones, as
    (post reads, account reads); nothing without billing."""
    if billing is None:
        return 0.0, 0.0
    posts = _bill(conn, billing.day, POST, [p.uid for p in batch.posts] + [p.uid for p in batch.context_posts])
    accounts = _bill(conn, billing.day, ACCOUNT, [a.uid for a in batch.accounts])
    return posts * billing.post_usd, accounts * billing.user_usd


def forget_before(conn: sqlite3.Connection, day: str) -> None:
    """Drop the records of days before `day` (they no longer affect any charge)."""
    conn.execute("DELETE FROM billed_reads WHERE day < ?", (day,))


def _bill(conn: sqlite3.Connection, day: str, kind: str, uids: Iterable[str]) -> int:
    """Record reads of one resource kind; how many were not billed yet that day."""
    before = conn.total_changes
    conn.executemany("INSERT OR IGNORE INTO billed_reads (day, uid) VALUES (?, ?)",
                     [(day, f"{kind}:{uid}") for uid in uids])
    return conn.total_changes - before


# A page's read costs: the total and its split into post reads and account reads.
READ_COSTS = ("cost_usd = cost_usd + ?, cost_posts_usd = cost_posts_usd + ?, "
               "cost_users_usd = cost_users_usd + ?")
# Requests billed per request, by kind: the runs column their cost adds to besides the total.
REQUEST_KINDS = {"counts": "cost_counts_usd", "trends": "cost_trends_usd"}


def bill_requests(conn: sqlite3.Connection, run_id: int, requests: int, cost_usd: float, kind: str) -> None:
    """Add requests and their cost (of `kind`, a key of REQUEST_KINDS) to a run."""
    column = REQUEST_KINDS[kind]
    conn.execute(f"UPDATE runs SET requests = requests + ?, cost_usd = cost_usd + ?, {column} = {column} + ? "
                 "WHERE id = ?", (requests, cost_usd, cost_usd, run_id))
