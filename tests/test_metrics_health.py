"""Collector health from the run log: last runs, successes, back-off, cursors, errors, requests, spend, history."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from stormwatch import metrics
from stormwatch.config import CampaignConfig
from stormwatch.models import Batch, Billing, Cursor
from stormwatch.store import Store

from .conftest import T0, x_post

CAMPAIGN = CampaignConfig(name="c", hashtags=("StandWithIssa",), accounts=(), targets=(), sources=("x", "mastodon"),
                          start=T0, end=T0 + timedelta(hours=3), timezone=ZoneInfo("Asia/Hebron"),
                          interval=timedelta(minutes=5), storm_interval=timedelta(minutes=1), daily_budget_usd=5.0)


def run(store: Store, minute: int, status: str, **finish: object) -> int:
    started = T0 + timedelta(minutes=minute)
    run_id = store.start_run("c", "x", started)
    store.finish_run(run_id, status, started + timedelta(seconds=20), **finish)  # type: ignore[arg-type]
    return run_id


def test_a_source_s_health_from_its_runs_cursors_and_spend(memory_store: Store) -> None:
    store = memory_store
    first = store.start_run("c", "x", T0)
    store.save_page(Batch(posts=(x_post("1"), x_post("2"))), campaign="c",
                    cursor=Cursor("c", "x", "#StandWithIssa", pending={"next_token": "t"}), run_id=first,
                    collected_at=T0, billing=Billing("2021-02-07", post_usd=0.5, user_usd=1.0))
    store.finish_run(first, "partial", T0 + timedelta(seconds=30))
    run(store, 1, "failed", error="503 Service Unavailable")
    run(store, 2, "failed", error="503 Service Unavailable")
    run(store, 3, "rate_limited", error="429 Too Many Requests", rate_limit_reset=T0 + timedelta(minutes=15))

    health = metrics.campaign_health(store, CAMPAIGN, T0 + timedelta(minutes=4))
    assert (health.name, health.posts, health.daily_budget_usd, health.spent_today_usd) == ("c", 2, 5.0, 1.0)
    x, mastodon = health.sources
    assert x.last_run is not None and x.last_run.status == "rate_limited"
    assert x.last_success_at == T0 + timedelta(seconds=30)
    assert x.backoff_until == T0 + timedelta(minutes=15)
    assert (x.runs_today, x.requests_today, x.spent_today_usd) == (4, 1, 1.0)
    assert x.recent_errors == ("2021-02-07T16:03:00.000Z: 429 Too Many Requests",  # newest first
                               "2021-02-07T16:02:00.000Z: 503 Service Unavailable",
                               "2021-02-07T16:01:00.000Z: 503 Service Unavailable")
    assert [(c.query, c.pending) for c in x.cursors] == [("#StandWithIssa", True)]
    assert mastodon.last_run is None and mastodon.cursors == () and mastodon.runs_today == 0

    status = metrics.collection_status(store, None, (CAMPAIGN,), now=T0)  # type: ignore[arg-type]
    assert status.to_json()["campaigns"][0]["sources"][0]["backoff_until"] == "2021-02-07T16:15:00.000Z"
    # JSON says times as the store writes them (ISO-8601 UTC with milliseconds), in the dataclasses' field order
    as_json = status.to_json()
    assert (as_json["now"], as_json["campaigns"][0]["window_start"]) == ("2021-02-07T16:00:00.000Z",) * 2
    source_json = as_json["campaigns"][0]["sources"][0]
    assert list(source_json) == ["source", "last_run", "last_success_at", "backoff_until", "cursors", "runs_today",
                                 "requests_today", "spent_today_usd", "recent_errors", "last_success_started_at",
                                 "failed_runs", "failing_since"]
    assert (source_json["last_run"]["started_at"], source_json["last_run"]["rate_limit_reset"]) == (
        "2021-02-07T16:03:00.000Z", "2021-02-07T16:15:00.000Z")
    assert source_json["cursors"][0]["since"] is None
    assert status.database == ":memory:"


def test_run_history_counts_runs_per_source_and_status(memory_store: Store) -> None:
    run(memory_store, 0, "ok")
    run(memory_store, 5, "ok")
    run(memory_store, 10, "failed", error="boom")
    history = metrics.run_history(memory_store, "c")
    assert [(h.source, h.runs, h.by_status) for h in history] == [("x", 3, {"failed": 1, "ok": 2})]
    assert (history[0].first_started_at, history[0].last_finished_at) == (
        T0, T0 + timedelta(minutes=10, seconds=20))
    assert metrics.run_history(memory_store, "other") == []


def test_failed_runs_in_a_row_say_since_when(memory_store: Store) -> None:
    run(memory_store, 0, "ok")
    run(memory_store, 1, "failed", error="x: 503 Service Unavailable")
    run(memory_store, 2, "failed", error="x: 503 Service Unavailable")
    run(memory_store, 3, "failed", error="x: cannot reach api.x.com")
    x = metrics.campaign_health(memory_store, CAMPAIGN, T0 + timedelta(minutes=4)).sources[0]
    assert (x.failed_runs, x.failing_since) == (3, T0 + timedelta(minutes=1))
    run(memory_store, 4, "partial")
    x = metrics.campaign_health(memory_store, CAMPAIGN, T0 + timedelta(minutes=5)).sources[0]
    assert (x.failed_runs, x.failing_since) == (0, None)


def test_a_run_s_recorded_problems_in_a_few_words() -> None:
    deleted = "x: Not Found Error: Could not find tweet with referenced_tweets.id: [{}]."
    assert metrics.run_reason(None) is None
    assert metrics.run_reason(deleted.format(1)) == "1 deleted original"
    assert metrics.run_reason("; ".join(deleted.format(i) for i in range(3))) == "3 deleted originals"
    skipped = ("mastodon: kolektiva.social: rate limited (429) on GET /api/v1/timelines/tag/x; "
               "kolektiva.social is skipped until the next run")
    assert metrics.run_reason(skipped) == "rate-limited, kolektiva.social skipped"
    assert metrics.run_reason("daily budget $25.00 reached ($25.01 spent on 2021-02-07 UTC): post reads paused "
                              "until 00:00 UTC, counts continue") == "budget reached"
    assert metrics.run_reason("x: the page had something nobody has seen before in a very long message") == (
        "x: the page had something nobody has se…")


def test_a_slow_source_holds_the_complete_minutes_back_a_long_failing_one_need_not(memory_store: Store) -> None:
    run(memory_store, 0, "ok")  # x: its last success started at T0
    now = T0 + timedelta(minutes=40)
    health = metrics.campaign_health(memory_store, CAMPAIGN, now)
    lag = timedelta(seconds=30)
    # silent since (or slow: a run still going): its minutes are still to come, so they are not complete
    assert metrics.complete_until(health, now) == T0 - lag
    assert metrics.complete_until(health, now, failing_after=timedelta(minutes=10)) == T0 - lag
    run(memory_store, 1, "failed", error="x: 503 Service Unavailable")
    health = metrics.campaign_health(memory_store, CAMPAIGN, now)
    assert metrics.complete_until(health, now) == T0 - lag  # the alerts wait for the data
    # the dashboard says x is failing, and the other sources' figures go on
    assert metrics.complete_until(health, now, failing_after=timedelta(minutes=10)) == now - lag
