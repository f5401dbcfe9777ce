"""What a storm cost (issue 17), against what the simulated X delivered and would bill: a storm across midnight UTC,
collected by the real collector over HTTP, its cost told over both UTC days, by kind and by source."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stormwatch import metrics
from stormwatch.collector import Collector
from stormwatch.config import load_config
from stormwatch.models import Batch, Billing, Cursor
from stormwatch.report.text import summary_text
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.store import Store

from .conftest import TOKEN, storm_spec, write_config
from .simulator_support import SEARCH_REPOSTS

START = datetime(2021, 2, 7, 22, 30, tzinfo=UTC)  # 00:30 in Hebron: the storm crosses midnight UTC
END = START + timedelta(hours=3)
DAYS = ("2021-02-07", "2021-02-08")


@pytest.fixture(autouse=True)
def bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


@pytest.mark.slow  # plays a storm across midnight through the simulator
def test_a_storm_across_midnight_costs_what_x_delivered_on_both_utc_days(tmp_path: Path) -> None:
    storm = Storm.build(dataclasses.replace(storm_spec(600, seed=11), start=START, end=END))
    clock = ManualClock(START)
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        config = load_config(write_config(tmp_path, server.url, start=START, end=END))
        collector = Collector(config, clock=clock)
        while clock.now() < END + timedelta(minutes=10):
            assert all(r.status in ("ok", "partial") for r in collector.run_once())
            clock.advance(600)
        collector.close()
        delivered = server.x.reads()
    campaign = config.campaigns[0]
    prices = (config.x.post_read_usd, config.x.user_read_usd, config.x.counts_request_usd, config.x.trends_request_usd)
    truth = {day: reads.cost(*prices) for day, reads in delivered.items()}
    assert tuple(sorted(truth)) == DAYS
    # X bills a post once a UTC day: one read on both days is billed on both
    assert delivered[DAYS[0]].posts & delivered[DAYS[1]].posts
    with Store.open(config.storage.database) as store:
        figures = metrics.summary(store, campaign, metrics.campaign_window(campaign)).to_json()
        days = {day: metrics.spending(store, campaign.name, day, day) for day in DAYS}
    total = sum(sum(kinds.values()) for kinds in truth.values())
    assert figures["cost_days"] == {"first": DAYS[0], "last": DAYS[1]}
    assert figures["cost_usd"] == pytest.approx(total, abs=0.001) and total > 1
    for kind in ("posts", "users", "counts", "trends"):
        assert figures["cost_by_kind"][kind] == pytest.approx(sum(t[kind] for t in truth.values()), abs=0.001), kind
    assert figures["cost_by_kind"]["plan"] == 0 and "unsplit" not in figures["cost_by_kind"]
    assert set(figures["cost_by_source"]) == {"x"}
    for day, spent in days.items():
        assert spent.total_usd == pytest.approx(sum(truth[day].values()), abs=0.001) and spent.total_usd > 0, day
    text = summary_text(figures, campaign.timezone)
    assert f"${total:,.2f}  estimated, X's billing days {DAYS[0]} to {DAYS[1]}: posts $" in text


def test_runs_stored_before_the_split_are_told_unsplit_and_the_plan_whenever_it_was_made(
        memory_store: Store, tmp_path: Path) -> None:
    # only the campaign's name and window matter here: no platform is asked
    campaign = load_config(write_config(tmp_path, "http://127.0.0.1:9", start=START, end=END)).campaigns[0]
    before = START - timedelta(days=3)
    plan = memory_store.start_run(campaign.name, "plan", before)  # the plan, three days before the storm
    memory_store.add_requests(plan, 2, 0.01)
    run = memory_store.start_run(campaign.name, "x", START + timedelta(hours=2))  # 00:30 UTC on the second day
    memory_store.save_trends(run, campaign.name, [], Cursor(campaign.name, "x", "trends 1"), fetched_at=START,
                             cost_usd=0.01)
    memory_store.save_page(Batch(), campaign=campaign.name, cursor=None, run_id=run, collected_at=START,
                           billing=Billing(DAYS[1], post_usd=0.005, user_usd=0.010))
    old = memory_store.start_run(campaign.name, "x", START)
    memory_store.conn.execute("UPDATE runs SET cost_usd = 0.25 WHERE id = ?", (old,))  # a total, not split
    early = memory_store.start_run(campaign.name, "x", before)  # build-up collection before the storm's days
    memory_store.conn.execute("UPDATE runs SET cost_usd = 0.5 WHERE id = ?", (early,))
    storm = metrics.storm_spending(memory_store, campaign)
    assert storm.by_source == {"plan": {"plan": pytest.approx(0.01)},
                               "x": {"trends": pytest.approx(0.01), "unsplit": pytest.approx(0.25)}}
    assert storm.total_usd == pytest.approx(0.27)
    assert storm.line() == "$0.27 (trends $0.01, plan $0.01, unsplit $0.25; x $0.26, plan $0.01)"
    # a part of the window: its own days, without the plan
    part = metrics.storm_spending(memory_store, campaign, START + timedelta(hours=2), END)
    assert (part.first_day, part.last_day, part.total_usd) == (DAYS[1], DAYS[1], pytest.approx(0.01))
