"""The pre-storm cost plan: X's hourly counts of the last 7 days from the simulated platform, checked against its
ground truth; the figures by the plan's stated rules; its own requests billed; `stormwatch plan --json`."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch.config import Config, load_config
from stormwatch.plan import AUTHORS_PER_POST, budget_runs_out, goal_budget_warning, make_plan, plan_text
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.store import Store
from stormwatch.times import Clock

from .cli_support import invoke
from .conftest import T0, TOKEN, clock_section, storm_spec, write_config

NOW = T0 - timedelta(minutes=30)  # half an hour before the storm
JSON_FIELDS = {"campaign", "posts_last_7_days", "posts_per_day", "repost_share", "estimated_posts",
               "estimated_cost_usd", "daily_budget_usd", "budget_covers", "budget_runs_out_at",
               "cost_without_reposts_usd", "trends_cost_usd", "targets_cost_usd", "counter_cost_usd",
               "reposts_per_original", "reposts_estimated_from", "sample_posts"}


@pytest.fixture(scope="module")
def storm_with_history() -> Storm:
    return Storm.build(dataclasses.replace(storm_spec(), background_days=8))


@pytest.fixture
def server(storm_with_history: Storm) -> Iterator[SimulatedPlatform]:
    with SimulatedPlatform(storm_with_history, ManualClock(NOW), token=TOKEN) as platform:  # today's X
        yield platform


def plan_config(directory: Path, api_base: str, *, budget: float | None, extra: str = "", top: str = "") -> Config:
    return load_config(write_config(directory, api_base, budget=budget, top_extra=top,
                                    campaign_extra=f"goal_posts = 3000\ngoal_contributors = 400\n{extra}"))


def test_the_plan_reads_the_week_as_the_truth_has_it(tmp_path: Path, server: SimulatedPlatform,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    config = plan_config(tmp_path, server.url, budget=10.0)
    campaign = config.campaigns[0]
    clock = ManualClock(NOW)
    with Store.open(config.storage.database) as store:
        plan = make_plan(store, config, campaign, clock)  # type: ignore[arg-type]
        (run,) = store.last_runs(campaign.name)
    assert plan.counted_since is not None and plan.counted_until is not None
    truth = server.storm.truth(plan.counted_since, plan.counted_until)
    # X's counts count no reposts (since 2026-05-04): the own posts are counted, the reposts estimated from the
    # retweet_count of a sample of posts a day old or more
    own = truth.posts - truth.reposts
    assert plan.posts_without_reposts_last_7_days == own > 100
    assert plan.reposts_from == "sample" and 50 < plan.sample_posts <= 100
    assert plan.reposts_per_original is not None
    estimated = plan.posts_last_7_days - own  # type: ignore[operator]
    assert estimated == round(own * plan.reposts_per_original)
    assert abs(estimated - truth.reposts) <= 0.25 * truth.reposts, (estimated, truth.reposts)
    assert plan.repost_share == pytest.approx(estimated / (own + estimated))
    assert plan.posts_per_day == pytest.approx((own + estimated) / ((plan.counted_until - plan.counted_since)
                                                                    .total_seconds() / 86400))
    # the plan's own requests (counts of the campaign and the targets' from: query, one search page) are billed and
    # recorded: a counts request at $0.005, the sample's posts and authors as any read
    assert (run.source, run.status, run.requests) == ("plan", "ok", 3)
    assert run.posts_read >= plan.sample_posts and run.users_read > 0
    assert run.cost_usd == pytest.approx(2 * 0.005 + run.posts_read * 0.005 + run.users_read * 0.010)
    assert plan.requests_made == 3 and plan.plan_cost_usd == pytest.approx(run.cost_usd)

    # the rules: the goal is larger than three hours of everyday use, so 3,000 posts and 400 authors are read
    assert (plan.estimated_posts, plan.estimated_authors) == (3000, 400)
    assert plan.counts_requests == 180  # one request a minute (storm_interval) through 3 hours
    # storm intelligence: worldwide trends every 5 minutes (36 requests at $0.01); the targets never post
    assert plan.intel is not None and (plan.intel.trends_requests, plan.intel.target_posts) == (36, 0)
    assert plan.estimated_cost_usd == pytest.approx(3000 * 0.005 + 400 * 0.010 + 180 * 0.005 + 36 * 0.01)
    share = plan.repost_share
    originals_cost = (round(3000 * (1 - share)) * 0.005 + round(400 * (1 - share)) * 0.010 + 180 * 0.005
                      + 36 * 0.01)
    assert plan.cost_without_reposts_usd == pytest.approx(originals_cost)
    # $20.26 over three hours: $10 is spent after 1h28m50s at the goal's pace
    assert not plan.budget_covers
    assert plan.budget_runs_out_at == campaign.start + timedelta(hours=3) * (10 / plan.estimated_cost_usd)
    assert set(plan.to_json()) == JSON_FIELDS
    assert "mastodon" not in plan.free_platforms
    # a second plan the same UTC day reads the same sample: X bills a post once a day
    with Store.open(config.storage.database) as store:
        again = make_plan(store, config, campaign, clock)  # type: ignore[arg-type]
    assert again.plan_cost_usd == pytest.approx(2 * 0.005)


def test_reposts_per_original_from_the_config_reads_no_sample(tmp_path: Path, server: SimulatedPlatform,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    config = load_config(write_config(tmp_path, server.url, budget=10.0, x_extra="reposts_per_original = 4"))
    with Store.open(config.storage.database) as store:
        plan = make_plan(store, config, config.campaigns[0], ManualClock(NOW))  # type: ignore[arg-type]
    own = plan.posts_without_reposts_last_7_days
    assert own and plan.posts_last_7_days == own * 5 and plan.repost_share == pytest.approx(0.8)
    assert (plan.reposts_from, plan.sample_posts, plan.requests_made) == ("config", 0, 2)
    assert plan.to_json()["reposts_estimated_from"] == "config" and plan.to_json()["sample_posts"] is None
    text = plan_text(plan, config.campaigns[0], config)
    assert "reposts: 4.00 per post, from [x] reposts_per_original" in text
    assert "this plan made 2 counts requests: $0.010" in text


def test_without_a_post_old_enough_to_sample_the_plan_says_reposts_are_not_estimated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    with SimulatedPlatform(Storm.build(storm_spec(posts=300)), ManualClock(NOW), token=TOKEN) as platform:
        config = load_config(write_config(tmp_path, platform.url, budget=10.0))
        with Store.open(config.storage.database) as store:
            plan = make_plan(store, config, config.campaigns[0], ManualClock(NOW))  # type: ignore[arg-type]
    assert plan.reposts_from is None and plan.reposts_per_original is None and plan.repost_share is None
    data = plan.to_json()
    assert data["reposts_per_original"] is None and data["reposts_estimated_from"] is None
    assert "reposts not estimated: no post a day old or more to sample" in plan_text(plan, config.campaigns[0])


def test_everyday_use_drives_the_estimate_without_a_goal(tmp_path: Path, server: SimulatedPlatform,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    config = load_config(write_config(tmp_path, server.url, budget=50.0, end=T0 + timedelta(days=2),
                                      x_extra="include_reposts = false"))
    with Store.open(config.storage.database) as store:
        plan = make_plan(store, config, config.campaigns[0], ManualClock(NOW))  # type: ignore[arg-type]
    per_day, share = plan.posts_per_day, plan.repost_share
    assert per_day is not None and share is not None
    every_post = per_day * 2  # a two-day window at the everyday pace
    assert plan.estimated_posts == round(every_post * (1 - share))  # reposts are not read
    assert plan.estimated_authors == round(every_post * AUTHORS_PER_POST * (1 - share))
    assert plan.budget_covers and plan.budget_runs_out_at is None
    assert plan.estimated_cost_usd == pytest.approx(plan.cost_without_reposts_usd)


def test_the_budget_resets_at_midnight_utc(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", budget=10.0, start=T0,
                                      end=T0 + timedelta(hours=24)))
    campaign = config.campaigns[0]  # 16:00 UTC to 16:00 the next day: 8 h, then 16 h on the second UTC day
    assert budget_runs_out(campaign, 12.0) is None  # 50 cents an hour: $4 on day one, $8 on day two
    assert budget_runs_out(campaign, 24.0) == T0 + timedelta(hours=18)  # $1 an hour: $8, then $10 by 10:00
    assert budget_runs_out(campaign, 30.0) == T0 + timedelta(hours=16)  # exactly $10 on day one lasts; 08:00
    assert budget_runs_out(campaign, 48.0) == T0 + timedelta(hours=5)  # $2 an hour: $10 by 21:00 UTC
    assert budget_runs_out(dataclasses.replace(campaign, daily_budget_usd=None), 1e6) is None


def test_a_budget_that_cannot_reach_the_goal_is_warned_of(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", budget=25.0,
                                      campaign_extra="goal_posts = 20000\ngoal_contributors = 3000\n"))
    campaign = config.campaigns[0]
    warning = goal_budget_warning(config, campaign)
    assert warning == ("daily_budget_usd $25.00 cannot reach goal_posts 20,000 on X: 20,000 posts × $0.005 + "
                       "3,000 authors × $0.010 + 180 counts requests × $0.005 = $130.90; post reads would pause at "
                       "18:34 Asia/Hebron. Raise the budget or lower the goal.")
    assert goal_budget_warning(config, dataclasses.replace(campaign, daily_budget_usd=131.0)) is None
    assert goal_budget_warning(config, dataclasses.replace(campaign, goal_posts=None)) is None


def test_free_platforms_cost_nothing(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", top_extra='[mastodon]\ninstances = ["a.b"]\n',
                                      campaign_extra='sources = ["mastodon", "bluesky"]\n'))
    with Store.open(config.storage.database) as store:
        plan = make_plan(store, config, config.campaigns[0], config.clock)
    assert plan.free_platforms == ("mastodon", "bluesky") and plan.estimated_cost_usd == 0.0
    assert plan.requests_made == 0 and plan.budget_covers


def test_the_plan_command_prints_the_json_fields(tmp_path: Path, server: SimulatedPlatform) -> None:
    # the command's own storm clock reads NOW when it starts, like a rehearsal's (the platform's clock stands still)
    clock = Clock(speed=1.0, anchor=NOW, anchor_wall=time.time())
    config_path = write_config(tmp_path, server.url, budget=30.0, top_extra=clock_section(clock),
                               campaign_extra="goal_posts = 3000\n")
    result = invoke("plan", "--config", config_path, "--json", env={"X_BEARER_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == JSON_FIELDS and data["campaign"] == "standwithissa"
    assert data["estimated_posts"] == 3000 and data["budget_covers"] is True and data["budget_runs_out_at"] is None
    assert 0.3 < data["repost_share"] < 0.7 and data["posts_last_7_days"] > 200
    assert data["reposts_estimated_from"] == "sample" and data["reposts_per_original"] > 0
    text = invoke("plan", "--config", config_path, env={"X_BEARER_TOKEN": TOKEN})
    assert "the daily budget $30.00 covers it" in text.stdout, text.stderr
    assert "of which trends $0.36 (36 requests)" in text.stdout
