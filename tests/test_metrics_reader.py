"""Choosing the figure reader: the tallies for exactly the storm window, the rows otherwise, or one on request."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from stormwatch import metrics
from stormwatch.models import Batch
from stormwatch.store import Store

from .conftest import T0, x_account, x_post

STORM = metrics.Window(T0, T0 + timedelta(hours=1))
LATER = metrics.Window(T0 + timedelta(minutes=10), T0 + timedelta(hours=1))


@pytest.fixture
def store(memory_store: Store) -> Store:
    """Twelve posts by three accounts over the first hour, in a campaign whose storm window is registered."""
    memory_store.register_campaign("c", STORM.since, STORM.until)
    posts = tuple(replace(x_post(str(n), author=f"x:{n % 3}", likes=n, tags=("storm", f"tag{n % 2}")),
                          ts=int(T0.timestamp()) + 300 * n, created_at=f"2021-02-07T16:{5 * n:02d}:00.000Z")
                  for n in range(12))
    accounts = tuple(x_account(str(n), 100 * (n + 1), "2021-02-07T17:00:00.000Z") for n in range(3))
    memory_store.save_page(Batch(posts=posts, accounts=accounts), campaign="c", cursor=None, run_id=None,
                           collected_at=T0)
    memory_store.save_page(Batch(posts=posts[:2]), campaign="unregistered", cursor=None, run_id=None, collected_at=T0)
    return memory_store


def test_auto_reads_the_tallies_for_the_storm_window_and_the_rows_for_any_other(store: Store) -> None:
    assert metrics.figure_reader(store, "c").source == "tallies"
    assert metrics.figure_reader(store, "c", "rows").source == "rows"
    assert metrics.figure_reader(store, "unregistered").source == "rows"
    # Make the tallies say something the rows do not, to see which one answered.
    store.conn.execute("UPDATE tally_totals SET posts = posts + 1000 WHERE campaign = 'c'")
    assert metrics.totals(store, "c", STORM).all.posts == 1012
    assert metrics.totals(store, "c", STORM, reader="rows").all.posts == 12
    assert metrics.totals(store, "c", LATER).all.posts == metrics.totals(store, "c", LATER, reader="rows").all.posts
    assert metrics.totals(store, "c", LATER).all.posts == 10
    assert metrics.totals(store, "unregistered", STORM).all.posts == 2


def test_readers_agree_and_auto_falls_back_where_the_tallies_cannot_answer(store: Store) -> None:
    x_only = replace(STORM, platform="x")
    odd = metrics.Window(T0 + timedelta(seconds=30), T0 + timedelta(hours=1))
    for reader in ("auto", "rows"):
        assert metrics.tag_counts(store, "c", x_only, reader=reader) == [("storm", 12), ("tag0", 6), ("tag1", 6)]
        assert metrics.volume(store, "c", odd, 600, reader=reader).buckets[0].posts == 1  # the one at 16:05
        assert metrics.new_contributors(store, "c", STORM, T0 + timedelta(seconds=330), reader=reader) == 1
    assert [a.uid for a in metrics.top_accounts(store, "c", STORM, by="followers", reader="tallies")] == [
        "x:2", "x:1", "x:0"]
    assert metrics.campaign_size(store, "c", reader="tallies") == metrics.campaign_size(store, "c", reader="rows")


@pytest.mark.parametrize("ask", [
    lambda store: metrics.totals(store, "c", LATER, reader="tallies"),
    lambda store: metrics.tag_counts(store, "c", replace(STORM, platform="x"), reader="tallies"),
    lambda store: metrics.volume(store, "c", STORM, 90, reader="tallies"),
    lambda store: metrics.peak_minute(store, "c", metrics.Window(STORM.since, STORM.until + timedelta(seconds=1)),
                                      reader="tallies"),
    lambda store: metrics.mentioned_account_rows(store, "c", replace(STORM, platform="x"), reader="tallies"),
])
def test_asking_for_the_tallies_where_they_cannot_answer_is_an_error(store: Store, ask) -> None:
    with pytest.raises(ValueError, match="the running tallies of 'c' cannot give"):
        ask(store)


def test_a_campaign_without_tallies_or_an_unknown_reader_is_an_error(store: Store) -> None:
    with pytest.raises(ValueError, match="'unregistered' has no running tallies"):
        metrics.totals(store, "unregistered", STORM, reader="tallies")
    with pytest.raises(ValueError, match="reader 'fast': choose one of auto, tallies, rows"):
        metrics.totals(store, "c", STORM, reader="fast")  # type: ignore[arg-type]
