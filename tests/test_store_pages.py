"""Writing pages: idempotent upserts, context posts kept apart from members, the newest snapshot wins."""

from __future__ import annotations

import pytest

from stormwatch.models import Batch
from stormwatch.store import Store

from .conftest import T0, rows, x_account, x_post


@pytest.fixture
def store(memory_store: Store) -> Store:
    """These tests need no file: a store in memory."""
    return memory_store


def test_saving_the_same_page_twice_changes_nothing(store: Store) -> None:
    batch = Batch(posts=(x_post("1"), x_post("2")), context_posts=(x_post("3"),), accounts=(x_account("1", 10, "a"),))
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
    store.save_page(Batch(context_posts=(x_post("9"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert store.campaign_post_ids("c") == []
    result = store.save_page(Batch(posts=(x_post("9"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert result.posts_new == 1 and store.campaign_post_ids("c") == ["9"]


def test_newer_counters_and_account_snapshots_win_older_never_do(store: Store) -> None:
    store.save_page(Batch(posts=(x_post("1", likes=5, metrics_at="2021-02-07T17:00:00.000Z"),),
                          accounts=(x_account("1", 100, "2021-02-07T17:00:00.000Z"),)),
                    campaign="c", cursor=None, run_id=None, collected_at=T0)
    older = store.save_page(Batch(posts=(x_post("1", likes=1, metrics_at="2021-02-07T16:30:00.000Z"),),
                                  accounts=(x_account("1", 50, "2021-02-07T16:30:00.000Z"),)),
                            campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert older.posts_updated == 0
    assert rows(store, "SELECT like_count FROM posts") == [(5,)]
    assert rows(store, "SELECT followers_count FROM accounts") == [(100,)]
    newer = store.save_page(Batch(posts=(x_post("1", likes=9, metrics_at="2021-02-07T18:00:00.000Z"),),
                                  accounts=(x_account("1", 120, "2021-02-07T18:00:00.000Z"),)),
                            campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert newer.posts_updated == 1
    assert rows(store, "SELECT like_count FROM posts") == [(9,)]
    assert rows(store, "SELECT followers_count FROM accounts") == [(120,)]
