"""Billed reads: each post or account is charged once per billing day, at the prices the source hands over."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stormwatch.models import Batch, Billing
from stormwatch.store import Store

from .conftest import T0, rows, x_account, x_post


@pytest.fixture
def store(memory_store: Store) -> Store:
    """These tests need no file: a store in memory."""
    return memory_store


def test_reads_are_billed_once_per_utc_day(store: Store) -> None:
    run_id = store.start_run("c", "x", T0)
    batch = Batch(posts=(x_post("1"), x_post("2")), context_posts=(x_post("3"),), accounts=(x_account("1", 1, "a"),))
    day1 = Billing("2021-02-07", post_usd=0.005, user_usd=0.010)
    first = store.save_page(batch, campaign="c", cursor=None, run_id=run_id, collected_at=T0, billing=day1)
    again = store.save_page(batch, campaign="c", cursor=None, run_id=run_id, collected_at=T0, billing=day1)
    next_day = store.save_page(batch, campaign="c", cursor=None, run_id=run_id, collected_at=T0,
                               billing=replace(day1, day="2021-02-08"))
    assert first.cost_usd == pytest.approx(3 * 0.005 + 0.010)
    assert again.cost_usd == 0
    assert next_day.cost_usd == pytest.approx(first.cost_usd)
    assert store.spent("c", "2021-02-07") == pytest.approx(2 * first.cost_usd)


def test_posts_and_accounts_are_billed_apart_at_the_source_s_prices(store: Store) -> None:
    pricey = Billing("2021-02-07", post_usd=0.25, user_usd=1.0)
    accounts_only = store.save_page(Batch(accounts=(x_account("1", 1, "a"), x_account("2", 1, "a"))), campaign="c",
                                    cursor=None, run_id=None, collected_at=T0, billing=pricey)
    assert accounts_only.cost_usd == pytest.approx(2.0)
    # a post whose id is an account's id is another resource: billed, not taken for the account
    same_id = store.save_page(Batch(context_posts=(x_post("1"),)), campaign="c", cursor=None, run_id=None,
                              collected_at=T0, billing=pricey)
    assert same_id.cost_usd == pytest.approx(0.25)
    assert rows(store, "SELECT uid FROM billed_reads ORDER BY uid") == [("post:x:1",), ("user:x:1",), ("user:x:2",)]
    free = store.save_page(Batch(posts=(x_post("5"),)), campaign="c", cursor=None, run_id=None, collected_at=T0)
    assert free.cost_usd == 0 and rows(store, "SELECT count(*) FROM billed_reads") == [(3,)]


def test_forgetting_billing_keeps_the_day_itself(store: Store) -> None:
    batch = Batch(posts=(x_post("1"),))
    for day in ("2021-02-06", "2021-02-07", "2021-02-08"):
        store.save_page(batch, campaign="c", cursor=None, run_id=None, collected_at=T0,
                        billing=Billing(day, post_usd=0.005, user_usd=0.010))
    store.forget_billing_before("2021-02-07")
    assert rows(store, "SELECT day FROM billed_reads ORDER BY day") == [("2021-02-07",), ("2021-02-08",)]
