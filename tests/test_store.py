"""The store on a real SQLite file: idempotent upserts, newest snapshot wins, one transaction per page."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stormwatch.errors import CollectorBusy, StoreError
from stormwatch.models import Account, Batch, Billing, Cursor, Post
from stormwatch.store import Store

T0 = datetime(2021, 2, 7, 16, 0, tzinfo=UTC)


def post(native: str, *, kind: str = "original", likes: int = 0, metrics_at: str = "2021-02-07T16:00:00.000Z",
         tags: tuple[str, ...] = ("standwithissa",), author: str = "x:1") -> Post:
    return Post(uid=f"x:{native}", platform="x", id=native, author_uid=author, created_at="2021-02-07T16:00:00.000Z",
                ts=1612713600, text=f"post {native}", lang="en", kind=kind, ref_uid=None, url=None, like_count=likes,
                repost_count=0, reply_count=0, quote_count=0, bookmark_count=None, impression_count=None,
                metrics_at=metrics_at, tags=tags, mentions=("antonioguterres",))


def account(native: str, followers: int, updated_at: str) -> Account:
    return Account(uid=f"x:{native}", platform="x", id=native, handle=f"user{native}", name=None,
                   followers_count=followers, following_count=1, posts_count=1, verified=False, created_at=None,
                   updated_at=updated_at)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "data" / "test.db") as opened:
        yield opened


def rows(store: Store, sql: str) -> list[tuple]:
    return store.conn.execute(sql).fetchall()


def test_saving_the_same_page_twice_changes_nothing(store: Store) -> None:
    batch = Batch(posts=(post("1"), post("2")), context_posts=(post("3"),), accounts=(account("1", 10, "a"),))
    first = store.save_page(batch, campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert first.posts_new == 2
    before = [rows(store, f"SELECT * FROM {t} ORDER BY 1, 2") for t in
              ("posts", "accounts", "post_tags", "post_mentions", "campaign_posts")]
    second = store.save_page(batch, campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert (second.posts_new, second.posts_updated) == (0, 0)
    after = [rows(store, f"SELECT * FROM {t} ORDER BY 1, 2") for t in
             ("posts", "accounts", "post_tags", "post_mentions", "campaign_posts")]
    assert before == after
    # context posts are stored for lookups but never become campaign members
    assert store.campaign_post_ids("c") == ["1", "2"]
    assert rows(store, "SELECT count(*) FROM posts") == [(3,)]


def test_a_context_post_that_later_matches_becomes_a_member(store: Store) -> None:
    store.save_page(Batch(context_posts=(post("9"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert store.campaign_post_ids("c") == []
    result = store.save_page(Batch(posts=(post("9"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert result.posts_new == 1 and store.campaign_post_ids("c") == ["9"]


def test_newer_counters_and_account_snapshots_win_older_never_do(store: Store) -> None:
    store.save_page(Batch(posts=(post("1", likes=5, metrics_at="2021-02-07T17:00:00.000Z"),),
                          accounts=(account("1", 100, "2021-02-07T17:00:00.000Z"),)),
                    campaign="c", cursor=None, run_id=None, collected_at=T0)
    older = store.save_page(Batch(posts=(post("1", likes=1, metrics_at="2021-02-07T16:30:00.000Z"),),
                                  accounts=(account("1", 50, "2021-02-07T16:30:00.000Z"),)),
                            campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert older.posts_updated == 0
    assert rows(store, "SELECT like_count FROM posts") == [(5,)]
    assert rows(store, "SELECT followers_count FROM accounts") == [(100,)]
    newer = store.save_page(Batch(posts=(post("1", likes=9, metrics_at="2021-02-07T18:00:00.000Z"),),
                                  accounts=(account("1", 120, "2021-02-07T18:00:00.000Z"),)),
                            campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert newer.posts_updated == 1
    assert rows(store, "SELECT like_count FROM posts") == [(9,)]
    assert rows(store, "SELECT followers_count FROM accounts") == [(120,)]


def test_rows_cursor_and_run_counters_commit_together(store: Store) -> None:
    run_id = store.start_run("c", "x", T0)
    cursor = Cursor("c", "x", "#a", position="100")
    store.save_page(Batch(posts=(post("1"),)), campaign="c", cursor=cursor, run_id=run_id, collected_at=T0)
    assert store.get_cursor("c", "x", "#a") == cursor
    # a page that fails half way leaves neither its rows nor its cursor behind
    broken = Batch(posts=(post("2"), replace(post("3"), kind=None)))  # NOT NULL violation on the second post
    with pytest.raises(StoreError):
        store.save_page(broken, campaign="c", cursor=cursor.advanced(position="200"), run_id=run_id,
                        collected_at=T0)
    assert store.campaign_post_ids("c") == ["1"]
    assert store.get_cursor("c", "x", "#a").position == "100"
    record = store.run(run_id)
    assert (record.requests, record.posts_new, record.status) == (1, 1, "running")


def test_reads_are_billed_once_per_utc_day(store: Store) -> None:
    run_id = store.start_run("c", "x", T0)
    batch = Batch(posts=(post("1"), post("2")), context_posts=(post("3"),), accounts=(account("1", 1, "a"),))
    day1 = Billing("2021-02-07", post_usd=0.005, user_usd=0.010)
    first = store.save_page(batch, campaign="c", cursor=None, run_id=run_id, collected_at=T0, billing=day1)
    again = store.save_page(batch, campaign="c", cursor=None, run_id=run_id, collected_at=T0, billing=day1)
    next_day = store.save_page(batch, campaign="c", cursor=None, run_id=run_id, collected_at=T0,
                               billing=replace(day1, day="2021-02-08"))
    assert first.cost_usd == pytest.approx(3 * 0.005 + 0.010)
    assert again.cost_usd == 0
    assert next_day.cost_usd == pytest.approx(first.cost_usd)
    assert store.spent("c", "2021-02-07") == pytest.approx(2 * first.cost_usd)


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
        store.save_page(Batch(posts=(post("1"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with Store.open(path, busy_timeout=0.2) as store:
            with pytest.raises(StoreError) as caught:
                store.save_page(Batch(posts=(post("2"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
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
