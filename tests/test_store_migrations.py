"""Named, ordered migrations: a new file gets them all, a release-1 file upgrades in place, newer files are refused."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils

from stormwatch.errors import StoreError
from stormwatch.models import Batch, Billing, Cursor, Post
from stormwatch.store import MEMORY, Store
from stormwatch.store.migrations import MIGRATED_VERSION, MIGRATIONS, RELEASE_1_MIGRATIONS, Migrations

from .conftest import assert_tallies_match_a_rebuild

RELEASE_1_DUMP = Path(__file__).parent / "fixtures" / "release1.sql"
CAMPAIGN = "standwithissa"
T1 = datetime(2021, 2, 7, 17, 0, tzinfo=UTC)


def release_1_file(directory: Path) -> Path:
    """The release-1 fixture loaded into a database file, as release 1 left it."""
    path = directory / "release1.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(RELEASE_1_DUMP.read_text(encoding="utf-8"))
    conn.close()
    return path


def every_row(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Each table's rows, sorted."""
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}


def schema_of(conn: sqlite3.Connection) -> set[tuple[str, str, str, str]]:
    """Every table and index with its definition, spelled alike whoever wrote it (quotes and spacing dropped)."""
    def normal(sql: str) -> str:
        return re.sub(r"\s+", " ", sql.replace('"', "")).replace("( ", "(").replace(" )", ")").replace(" ,", ",")

    return {(kind, name, table, normal(sql)) for kind, name, table, sql in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL")}


def applied(store: Store) -> list[tuple[str, str]]:
    return store.conn.execute("SELECT name, applied_at FROM schema_migrations ORDER BY rowid").fetchall()


def test_a_new_database_gets_every_migration_in_order(memory_store: Store) -> None:
    assert [name for name, _ in applied(memory_store)] == list(MIGRATIONS.names)
    assert MIGRATIONS.names[:4] == RELEASE_1_MIGRATIONS
    assert memory_store.conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATED_VERSION


def test_a_release_1_database_upgrades_in_place_and_keeps_every_row(tmp_path: Path) -> None:
    path = release_1_file(tmp_path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        before = every_row(conn)
    conn.close()
    assert sum(len(rows) for rows in before.values()) > 60 and all(before[t] for t in (
        "posts", "accounts", "post_tags", "post_mentions", "campaign_posts", "cursors", "runs", "volume_counts",
        "billed_reads", "pseudonyms", "campaigns", "tally_minutes", "tally_authors", "tally_totals", "tally_tags",
        "tally_mentions"))

    with Store.open(path, create=False) as store:
        after = every_row(store.conn)
        assert [name for name, _ in applied(store)] == list(MIGRATIONS.names)
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATED_VERSION
        assert after.pop("schema_migrations")
        assert after.pop("alerts") == []  # a table of a later migration (m005_alerts): new, so empty
        assert after.pop("trends") == []  # and m006_trends
        assert after.pop("stream_connections") == []  # and m007_stream_connections
        # m008 and m009 add columns with their defaults: no counter-hashtags registered, no member a hijack
        # candidate, no run's cost split by kind (its total stays)
        for table, added in (("campaigns", ("",)), ("campaign_posts", (0,)), ("runs", (0.0,) * 4)):
            assert all(row[-len(added):] == added for row in after[table])
            after[table] = [row[:-len(added)] for row in after[table]]
        assert after == before
        assert_tallies_match_a_rebuild(store, CAMPAIGN)
        # what release 1 stored reads back through today's store
        cursor = store.get_cursor(CAMPAIGN, "x", "#StandWithIssa")
        assert cursor is not None and cursor.position == "1005" and cursor.pending is None
        assert store.backoff_until(CAMPAIGN, "x") == datetime(2021, 2, 7, 16, 55, tzinfo=UTC)
        assert store.spent(CAMPAIGN, "2021-02-07") == pytest.approx(0.085)
        assert store.campaign_post_ids("other") == ["2001"]
        labels = dict(before["pseudonyms"][i][1:] for i in range(3))
        assert store.assign_pseudonyms(CAMPAIGN, ["x:2", "x:3"]) == {"x:2": labels["x:2"], "x:3": labels["x:3"]}


def test_an_upgraded_release_1_database_keeps_working(tmp_path: Path) -> None:
    path = release_1_file(tmp_path)
    with Store.open(path) as store:
        known = store.conn.execute("SELECT * FROM posts WHERE uid = 'x:1002'").fetchone()
        again = Post(uid="x:1002", platform="x", id="1002", author_uid="x:1", created_at=known[4], ts=known[5],
                     text=known[6], lang="en", kind="original", ref_uid=None, url=known[10], like_count=60,
                     repost_count=9, reply_count=2, quote_count=0, bookmark_count=None, impression_count=7000,
                     metrics_at="2021-02-07T18:30:00.000Z", tags=("standwithissa",))
        fresh = Post(uid="x:1006", platform="x", id="1006", author_uid="x:9", created_at="2021-02-07T16:50:00.000Z",
                     ts=int(datetime(2021, 2, 7, 16, 50, tzinfo=UTC).timestamp()), text="new #StandWithIssa",
                     lang="en", kind="original", ref_uid=None, url=None, like_count=1, repost_count=0, reply_count=0,
                     quote_count=0, bookmark_count=None, impression_count=None,
                     metrics_at="2021-02-07T17:00:00.000Z", tags=("standwithissa",))
        result = store.save_page(Batch(posts=(again, fresh)), campaign=CAMPAIGN,
                                 cursor=Cursor(CAMPAIGN, "x", "#StandWithIssa", position="1006"), run_id=None,
                                 collected_at=T1, billing=Billing("2021-02-07", post_usd=0.005, user_usd=0.010))
        assert (result.posts_new, result.posts_updated) == (1, 1)
        assert result.cost_usd == pytest.approx(0.005)  # x:1002 was billed that day by release 1
        assert_tallies_match_a_rebuild(store, CAMPAIGN)


def test_a_new_and_an_upgraded_database_have_the_same_schema(tmp_path: Path) -> None:
    with Store.open(release_1_file(tmp_path)) as upgraded, Store.open(MEMORY) as new:
        assert schema_of(upgraded.conn) == schema_of(new.conn)


def test_opening_again_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    with Store.open(path) as store:
        first = applied(store)
    with Store.open(path) as store:
        assert applied(store) == first


def test_a_database_from_a_newer_stormwatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('stormwatch', 'm999_from_the_future', 'later')")
    conn.close()
    with pytest.raises(StoreError, match=r"newer\.db: made by a newer stormwatch \(migration m999_from_the_future\)"):
        Store.open(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    with pytest.raises(StoreError, match=r"made by a newer stormwatch \(schema 3\); upgrade stormwatch"):
        Store.open(path)


# --- the Migrations set itself ------------------------------------------------------------------


def scratch_database() -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(MEMORY, isolation_level=None))


def migration_set(calls: list[str], *, failing: str | None = None) -> Migrations:
    """Three migrations that note their runs; `failing` creates its table and then fails."""
    steps = Migrations("test")

    def step(name: str) -> None:
        def run(db: sqlite_utils.Database) -> None:
            calls.append(name)
            db.execute(f"CREATE TABLE {name} (x INTEGER)")
            if name == failing:
                raise RuntimeError(f"{name} failed")
        steps(name=name)(run)

    for name in ("a1_first", "a2_second", "a3_third"):
        step(name)
    return steps


def migration_log(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE schema_migrations (migration_set TEXT NOT NULL, name TEXT NOT NULL, "
               "applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))")


def test_migrations_apply_once_each_in_order() -> None:
    db = scratch_database()
    migration_log(db)
    calls: list[str] = []
    steps = migration_set(calls)
    assert steps.apply(db, stop_before="a3_third") == ["a1_first", "a2_second"]
    assert [m.name for m in steps.pending(db)] == ["a3_third"]
    assert steps.apply(db) == ["a3_third"]
    assert steps.apply(db) == []
    assert calls == ["a1_first", "a2_second", "a3_third"]
    assert steps.applied(db) == ["a1_first", "a2_second", "a3_third"]


def test_a_failing_migration_leaves_nothing_behind_and_runs_again_next_time() -> None:
    db = scratch_database()
    migration_log(db)
    calls: list[str] = []
    with pytest.raises(RuntimeError, match="a2_second failed"):
        migration_set(calls, failing="a2_second").apply(db)
    assert migration_set([]).applied(db) == ["a1_first"]
    assert db["a1_first"].exists() and not db["a2_second"].exists()
    assert migration_set(calls).apply(db) == ["a2_second", "a3_third"]
    assert calls == ["a1_first", "a2_second", "a2_second", "a3_third"]


def test_a_migration_name_is_registered_once() -> None:
    steps = migration_set([])
    with pytest.raises(ValueError, match="'a1_first' is registered twice"):
        steps(name="a1_first")(lambda db: None)
