"""Named, ordered schema migrations, in the pattern of sqlite-utils' `Migrations`, and the upgrade of older files.

Each migration is a function registered with `@MIGRATIONS()` under its name; `Migrations.apply` runs the ones a
database has not had, in the order they were registered, each in its own transaction together with the row
that records it in `schema_migrations`: a migration is applied exactly once, or not at all. The statements
themselves live in `schema.py`.

Release 1 kept its schema in `PRAGMA user_version = 1` and had no migrations table; its files hold exactly
what the first four migrations create, so opening one records those four as applied without running them.
Every file is then marked `user_version = 2`, which release 1 refuses ("made by a newer stormwatch") instead
of writing into a schema it does not know; from then on `schema_migrations` alone says what a file holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from ..errors import StoreError
from ..times import iso_utc
from . import schema
from .sql import immediate_transaction

MIGRATIONS_TABLE = "schema_migrations"
RELEASE_1_VERSION = 1
# user_version of every file that has a migrations table: higher than any release-1 file, and never changed again.
MIGRATED_VERSION = 2

MigrationFunction = Callable[[sqlite_utils.Database], None]


@dataclass(frozen=True)
class Migration:
    """One named step of the schema."""

    name: str
    function: MigrationFunction


class Migrations:
    """An ordered set of named migrations, each applied once, in order, in a transaction of its own."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._migrations: list[Migration] = []

    def __call__(self, *, name: str | None = None) -> Callable[[MigrationFunction], MigrationFunction]:
        """Register the decorated function as the next migration (named after the function unless `name`)."""

        def register(function: MigrationFunction) -> MigrationFunction:
            chosen = name or function.__name__
            if chosen in self.names:
                raise ValueError(f"migration {chosen!r} is registered twice in {self.name!r}")
            self._migrations.append(Migration(chosen, function))
            return function

        return register

    @property
    def names(self) -> tuple[str, ...]:
        """Every migration's name, in the order they are applied."""
        return tuple(m.name for m in self._migrations)

    def applied(self, db: sqlite_utils.Database) -> list[str]:
        """Names of the migrations this database has had, in the order they were applied."""
        if not db[MIGRATIONS_TABLE].exists():
            return []
        return [row[0] for row in db.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid", [self.name])]

    def pending(self, db: sqlite_utils.Database) -> list[Migration]:
        """The migrations this database has not had yet, in order."""
        done = set(self.applied(db))
        return [m for m in self._migrations if m.name not in done]

    def apply(self, db: sqlite_utils.Database, *, stop_before: str | None = None) -> list[str]:
        """Apply every pending migration (up to `stop_before`, if given), each in its own transaction.

        Another process may be opening the same file: each migration is checked again once the write lock
        is held, so it runs in one of them only. Returns the names applied here.
        """
        done = []
        for migration in self.pending(db):
            if migration.name == stop_before:
                break
            with immediate_transaction(db.conn):
                if migration.name in self.applied(db):
                    continue
                migration.function(db)
                self.record(db, [migration.name])
            done.append(migration.name)
        return done

    def record(self, db: sqlite_utils.Database, names: Iterable[str]) -> None:
        """Note migrations as applied (inside the caller's transaction)."""
        now = iso_utc(datetime.now(UTC))
        db.conn.executemany(f"INSERT INTO {MIGRATIONS_TABLE} (migration_set, name, applied_at) VALUES (?, ?, ?)",
                            [(self.name, name, now) for name in names])


MIGRATIONS = Migrations("stormwatch")


def _execute_all(db: sqlite_utils.Database, statements: Iterable[str]) -> None:
    for statement in statements:
        db.execute(statement)


@MIGRATIONS()
def m001_collected_rows(db: sqlite_utils.Database) -> None:
    """Posts, accounts, tags, mentions, campaign membership, cursors, the run log and platform counts."""
    _execute_all(db, schema.COLLECTED_ROWS)


@MIGRATIONS()
def m002_running_tallies(db: sqlite_utils.Database) -> None:
    """Registered campaign windows and their running tallies."""
    _execute_all(db, schema.RUNNING_TALLIES)


@MIGRATIONS()
def m003_billed_reads(db: sqlite_utils.Database) -> None:
    """Reads already billed on a billing day."""
    _execute_all(db, schema.BILLED_READS)


@MIGRATIONS()
def m004_pseudonyms(db: sqlite_utils.Database) -> None:
    """Stable per-campaign pseudonyms for reports."""
    _execute_all(db, schema.PSEUDONYMS)


@MIGRATIONS()
def m005_alerts(db: sqlite_utils.Database) -> None:
    """The alerts told to the organizers."""
    _execute_all(db, schema.ALERTS)


@MIGRATIONS()
def m006_trends(db: sqlite_utils.Database) -> None:
    """Trending lists fetched for each campaign."""
    _execute_all(db, schema.TRENDS)


@MIGRATIONS()
def m007_stream_connections(db: sqlite_utils.Database) -> None:
    """The filtered stream's connections (X since 2026-05-04: reposts come only from the stream)."""
    _execute_all(db, schema.STREAM_CONNECTIONS)


@MIGRATIONS()
def m008_hijack_candidates(db: sqlite_utils.Database) -> None:
    """The counter-hashtags a campaign registered, and the mark of its members that carry one (hijack candidates)."""
    _execute_all(db, schema.HIJACK_CANDIDATES)


@MIGRATIONS()
def m009_run_costs(db: sqlite_utils.Database) -> None:
    """A run's spend by kind: post reads, account reads, counts and trends requests."""
    _execute_all(db, schema.RUN_COSTS)


@MIGRATIONS()
def m010_stream_foreign_rules(db: sqlite_utils.Database) -> None:
    """The rules other programs keep on the app's stream, as seen at each connection (`status` lists them)."""
    _execute_all(db, schema.STREAM_FOREIGN_RULES)


# What a release-1 file (user_version 1) already holds.
RELEASE_1_MIGRATIONS = ("m001_collected_rows", "m002_running_tallies", "m003_billed_reads", "m004_pseudonyms")


def upgrade(db: sqlite_utils.Database, where: str) -> list[str]:
    """Bring the database at `where` to the current schema; returns the names of the migrations applied.

    A new file gets the migrations table and then every migration; a release-1 file gets the table with its
    four migrations recorded; a file made by a newer stormwatch is refused.
    """
    _start_migration_log(db, where)
    unknown = [name for name in MIGRATIONS.applied(db) if name not in MIGRATIONS.names]
    if unknown:
        raise StoreError(f"{where}: made by a newer stormwatch (migration {unknown[0]}); upgrade stormwatch")
    return MIGRATIONS.apply(db)


def require_current(db: sqlite_utils.Database, where: str) -> None:
    """For a database opened read-only: StoreError unless it already has this stormwatch's whole schema (an
    upgrade would have to write)."""
    version = _known_version(db, where)
    applied = MIGRATIONS.applied(db) if version == MIGRATED_VERSION else []
    unknown = [name for name in applied if name not in MIGRATIONS.names]
    if unknown:
        raise StoreError(f"{where}: made by a newer stormwatch (migration {unknown[0]}); upgrade stormwatch")
    if version != MIGRATED_VERSION or MIGRATIONS.pending(db):
        raise StoreError(f"{where}: made by an older stormwatch, and read-only here: open it once where it can be "
                         "written, so that it is upgraded")


def _start_migration_log(db: sqlite_utils.Database, where: str) -> None:
    """Create the migrations table (recording what a release-1 file holds) and mark the file as migrated."""
    if _known_version(db, where) == MIGRATED_VERSION:
        return
    with immediate_transaction(db.conn):
        # again, under the write lock: another process may have done it meanwhile
        version = _known_version(db, where)
        if version == MIGRATED_VERSION:
            return
        _execute_all(db, schema.MIGRATION_LOG)
        if version == RELEASE_1_VERSION:
            MIGRATIONS.record(db, RELEASE_1_MIGRATIONS)
        db.execute(f"PRAGMA user_version = {MIGRATED_VERSION}")


def _known_version(db: sqlite_utils.Database, where: str) -> int:
    """The file's user_version, refused when a newer stormwatch set it."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > MIGRATED_VERSION:
        raise StoreError(f"{where}: made by a newer stormwatch (schema {version}); upgrade stormwatch")
    return version
