"""The store on a real SQLite file: one transaction per page, the run log across processes, locks, bad files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch.errors import CollectorBusy, StoreError
from stormwatch.models import Batch, CountBucket, Cursor
from stormwatch.store import Store

from .conftest import T0, x_post


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "data" / "test.db") as opened:
        yield opened


def test_rows_cursor_and_run_counters_commit_together(store: Store) -> None:
    run_id = store.start_run("c", "x", T0)
    cursor = Cursor("c", "x", "#a", position="100")
    store.save_page(Batch(posts=(x_post("1"),)), campaign="c", cursor=cursor, run_id=run_id, collected_at=T0)
    assert store.get_cursor("c", "x", "#a") == cursor
    # a page that fails half way leaves neither its rows nor its cursor behind
    broken = Batch(posts=(x_post("2"), replace(x_post("3"), kind=None)))  # NOT NULL violation on the second post
    with pytest.raises(StoreError):
        store.save_page(broken, campaign="c", cursor=cursor.advanced(position="200"), run_id=run_id,
                        collected_at=T0)
    assert store.campaign_post_ids("c") == ["1"]
    assert store.get_cursor("c", "x", "#a").position == "100"
    record = store.run(run_id)
    assert (record.requests, record.posts_new, record.status) == (1, 1, "running")


@pytest.mark.slow  # processes of their own
def test_a_run_left_open_by_a_dead_process_is_closed_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    code = ("from datetime import datetime, UTC; from stormwatch.store import Store; import os\n"
            f"s = Store.open({str(path)!r}); s.start_run('c', 'x', datetime.now(UTC)); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with Store.open(path) as store:
        assert store.last_runs("c")[0].status == "running"
        store.start_run("c", "x", T0)
        stale = store.last_runs("c")[1]
        assert stale.status == "failed" and "interrupted" in stale.error


@pytest.mark.slow  # processes of their own
def test_a_second_live_collector_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    code = ("import sys, time; from datetime import datetime, UTC; from stormwatch.store import Store\n"
            f"s = Store.open({str(path)!r}); s.start_run('c', 'x', datetime.now(UTC)); print('ok', flush=True);"
            " sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with Store.open(path) as store, pytest.raises(CollectorBusy, match=f"process {holder.pid}"):
            store.start_run("c", "x", T0)
    finally:
        holder.communicate("", timeout=30)


def test_a_locked_database_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    with Store.open(path) as store:
        store.save_page(Batch(posts=(x_post("1"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with Store.open(path, busy_timeout=0.2) as store:
            with pytest.raises(StoreError) as caught:
                store.save_page(Batch(posts=(x_post("2"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
            assert str(caught.value) == (f"{path}: database is locked by another process "
                                         "(gave up after 0.2s while trying to store a page)")
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Store.open(path) as store:
        assert store.campaign_post_ids("c") == ["1"]


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.db: .*is this a stormwatch database"):
        Store.open(path)
    assert path.read_text().startswith("these are my notes")


def test_times_are_datetimes_in_and_out_and_iso_text_in_the_file(memory_store: Store) -> None:
    store = memory_store
    to_second = Cursor("c", "x", "#a", since=T0)
    to_millisecond = Cursor("c", "bluesky", "#a", since=T0 + timedelta(milliseconds=250))
    for cursor in (to_second, to_millisecond):
        store.save_cursor(cursor, T0)
        assert store.get_cursor(cursor.campaign, cursor.source, cursor.query) == cursor
    # where collection began keeps the precision its source set it with
    assert [row[0] for row in store.conn.execute("SELECT since FROM cursors ORDER BY source DESC")] == [
        "2021-02-07T16:00:00Z", "2021-02-07T16:00:00.250Z"]
    run_id = store.start_run("c", "x", T0)
    record = store.finish_run(run_id, "rate_limited", T0 + timedelta(seconds=5),
                              rate_limit_reset=T0 + timedelta(minutes=15))
    assert (record.started_at, record.finished_at, record.rate_limit_reset) == (
        T0, T0 + timedelta(seconds=5), T0 + timedelta(minutes=15))
    assert store.conn.execute("SELECT started_at, finished_at, rate_limit_reset FROM runs").fetchone() == (
        "2021-02-07T16:00:00.000Z", "2021-02-07T16:00:05.000Z", "2021-02-07T16:15:00.000Z")
    bucket = CountBucket(start=T0, end=T0 + timedelta(minutes=1), count=3)
    store.save_counts(None, "c", "x", "#a", [bucket], fetched_at=T0)
    assert store.last_counted_bucket("c", "x", "#a") == T0
    assert store.last_counted_bucket("c", "x", "#b") is None


@pytest.mark.slow  # processes of their own
def test_stream_connections_count_what_each_batch_stored_and_a_dead_process_leaves_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "streams.db"
    code = ("from datetime import datetime, UTC; from stormwatch.store import Store; import os\n"
            f"s = Store.open({str(path)!r}); s.open_stream_connection('x', datetime(2021, 2, 7, 16, tzinfo=UTC))\n"
            "os._exit(0)")  # killed while connected: its row stays open
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with Store.open(path) as store:
        (dead,) = store.stream_connections("x", T0 - timedelta(days=1), T0 + timedelta(days=1))
        assert dead.closed_at is None
        opened = store.open_stream_connection("x", T0 + timedelta(minutes=5))
        store.save_page(Batch(posts=(x_post("1"), x_post("2"))), campaign="c", cursor=None, run_id=None,
                        collected_at=T0 + timedelta(minutes=6), stream_connection=opened)
        store.save_page(Batch(posts=(x_post("2"), x_post("3"))), campaign="c", cursor=None, run_id=None,
                        collected_at=T0 + timedelta(minutes=7), stream_connection=opened)
        store.close_stream_connection(opened, T0 + timedelta(minutes=8), "dropped\x1b[2J")
        first, second = store.stream_connections("x", T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert first.reason == "collector stopped" and first.closed_at == first.last_seen_at
    assert second.posts == {"c": 3}  # post 2 came twice: stored once, counted once
    assert (second.opened_at, second.last_seen_at, second.closed_at) == (
        T0 + timedelta(minutes=5), T0 + timedelta(minutes=8), T0 + timedelta(minutes=8))
    assert second.reason == "dropped[2J" and second.ended_at == second.closed_at
