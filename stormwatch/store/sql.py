"""SQL helpers the store's modules share: one immediate write transaction, and `IN (...)` selects in chunks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# Keys per `IN (...)`: well under SQLite's limit on bound parameters.
CHUNK = 500


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock at once: all of it is stored, or none of it.

    The connection must be in autocommit mode (`isolation_level=None`), as the store opens it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def select_in_chunks(conn: sqlite3.Connection, sql: str, before: list[Any],
                     keys: Iterable[str]) -> list[tuple[Any, ...]]:
    """Run `sql` (with one `IN ({})`) over `keys` in chunks that stay under SQLite's parameter limit."""
    keys = list(keys)
    rows: list[tuple[Any, ...]] = []
    for index in range(0, len(keys), CHUNK):
        chunk = keys[index:index + CHUNK]
        rows.extend(conn.execute(sql.format(",".join("?" * len(chunk))), [*before, *chunk]).fetchall())
    return rows


def select_pairs(conn: sqlite3.Connection, sql: str, before: list[Any], keys: list[str]) -> dict[str, Any]:
    """`select_in_chunks` for a two-column select, as {first column: second column}."""
    return {row[0]: row[1] for row in select_in_chunks(conn, sql, before, keys)}
