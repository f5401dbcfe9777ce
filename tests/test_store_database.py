"""The store on a real SQLite file: one transaction per page, the run log across processes, locks, bad files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from stormwatch.errors import CollectorBusy, StoreError
from stormwatch.models import Batch, Cursor
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
