"""The real collector, through real tweepy HTTP calls, against the simulated platform on a localhost port."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch.collector import Collector
from stormwatch.config import load_config
from stormwatch.models import Cursor
from stormwatch.normalize.x import normalize_page
from stormwatch.simulator.storm import Storm
from stormwatch.store import Store

from .conftest import HASHTAGS, T0, TOKEN, collected_ids, storm_spec, write_config
from .simulator_support import SEARCH_REPOSTS


@pytest.fixture(autouse=True)
def bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def run_until_caught_up(collector: Collector, limit: int = 200) -> list:
    """Run until a run ends with every sweep finished (rate limits and faults notwithstanding)."""
    records = []
    with Store.open(collector.config.storage.database) as store:
        for _ in range(limit):
            (record,) = collector.run_once()
            records.append(record)
            if record.status in ("ok", "partial") and all(c.pending is None for c, _ in store.cursors()):
                return records
    raise AssertionError(f"not caught up after {limit} runs: {[r.status for r in records[-5:]]}")


@pytest.mark.slow  # plays a storm
def test_live_storm_with_faults_is_collected_exactly_once(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    config_path = write_config(tmp_path, server.url)
    collector = Collector(load_config(config_path), clock=clock)
    server.faults.update(rate_limit_every=9, rate_limit_reset_seconds=30, server_error_every=7, malformed_every=11,
                         drop_every=13)
    statuses = []
    # the storm goes by in 10-minute steps, one run per step, as the scheduler would do (coarser)
    # (the first run is at the start of the baseline: collection starts there)
    while clock.now() < T0 + timedelta(hours=3, minutes=20):
        statuses += [r.status for r in collector.run_once()]
        clock.advance(600)
    server.faults.update(rate_limit_every=0, server_error_every=0, malformed_every=0, drop_every=0)
    statuses += [r.status for r in run_until_caught_up(collector)]
    collector.close()

    truth = server.storm.truth(T0 - timedelta(hours=1), clock.now() - timedelta(seconds=30))
    ids = collected_ids(config_path)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(truth.post_ids)
    # faults happened, and still no post was ever delivered twice
    assert "rate_limited" in statuses
    served = server.served_post_ids()
    assert max(served.values()) == 1
    assert set(served) >= set(truth.post_ids)


def test_runs_record_requests_spend_and_counts(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    config_path = write_config(tmp_path, server.url)
    config = load_config(config_path)
    clock.set(T0 + timedelta(hours=3, minutes=5))
    collector = Collector(config, clock=clock)
    (record,) = collector.run_once()
    # the storm start is past, so collection starts there
    truth = server.storm.truth(T0, clock.now() - timedelta(seconds=30))
    assert record.status in ("ok", "partial")
    assert record.posts_new == truth.posts
    searches = [r for r in server.requests() if r.path.endswith("/search/recent")]
    search_requests = sum(1 for r in searches if "from:" not in r.params["query"])
    target_requests = len(searches) - search_requests  # the targets' own posts (none in this storm): one request
    counts_requests = sum(1 for r in server.requests() if r.path.endswith("/counts/recent"))
    assert record.requests == search_requests + target_requests + counts_requests and target_requests == 1
    assert search_requests == -(-truth.posts // 100)
    # every post and user read is billed once a day, plus each counts request
    with Store.open(config.storage.database) as store:
        billed_posts = store.conn.execute("SELECT count(*) FROM billed_reads WHERE uid LIKE 'post:%'").fetchone()[0]
        billed_users = store.conn.execute("SELECT count(*) FROM billed_reads WHERE uid LIKE 'user:%'").fetchone()[0]
        assert record.cost_usd == pytest.approx(billed_posts * 0.005 + billed_users * 0.010 + counts_requests * 0.005)
        assert record.posts_read >= truth.posts
        # the platform's per-minute counts were stored and agree with what was collected
        counted = dict(store.conn.execute(
            "SELECT bucket_start, count FROM volume_counts WHERE count > 0").fetchall())
        assert sum(counted.values()) == truth.posts
        by_minute = {k.strftime("%Y-%m-%dT%H:%M:00.000Z"): v for k, v in truth.per_minute.items()}
        first_minute = min(by_minute)
        assert {k: v for k, v in counted.items() if k > first_minute} == {
            k: v for k, v in by_minute.items() if k > first_minute}
    collector.close()


@pytest.mark.slow  # collects the whole storm
def test_partial_errors_in_a_page_are_recorded_not_fatal(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    clock.set(T0 + timedelta(hours=3, minutes=5))
    config_path = write_config(tmp_path, server.url)
    collector = Collector(load_config(config_path), clock=clock)
    # the storm has a few deleted originals whose reposts still match: their pages carry partial errors
    (record,) = collector.run_once()
    assert record.status == "partial"
    assert "Could not find tweet with referenced_tweets.id" in record.error
    collector.close()


@pytest.mark.slow  # collects the storm again and again
def test_an_expired_pagination_token_resumes_below_the_oldest_stored_post(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    clock.set(T0 + timedelta(hours=3, minutes=5))
    config_path = write_config(tmp_path, server.url)
    config = load_config(config_path)
    collector = Collector(config, clock=clock)
    # collect two pages, then stop as if killed, and make the saved token stale
    with Store.open(config.storage.database) as store:
        source = collector.source("x")
        (query,) = source.queries(config.campaigns[0])
        cursor = source.first_cursor(config.campaigns[0], query, clock.now())
        pages = source.search(cursor, clock.now())
        for _ in range(2):
            page = next(pages)
            batch = normalize_page(page.body, "2021-02-07T19:05:00.000Z")
            store.save_page(batch, campaign="standwithissa", cursor=page.cursor, run_id=None, collected_at=clock.now())
        pages.close()
        stale = page.cursor.advanced(pending={**page.cursor.pending, "next_token": "b26v89c19zqg8o3fpzbn1e0ffhxji"})
        store.save_cursor(stale, clock.now())
    records = run_until_caught_up(collector)
    truth = server.storm.truth(T0, clock.now() - timedelta(seconds=30))
    assert set(collected_ids(config_path)) == set(truth.post_ids)
    assert max(server.served_post_ids().values()) == 1
    assert records[-1].status in ("ok", "partial")
    collector.close()


@pytest.mark.slow  # collects the storm again and again
def test_the_daily_budget_stops_post_reads_but_not_counts(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    clock.set(T0 + timedelta(hours=3, minutes=5))
    config_path = write_config(tmp_path, server.url, budget=1.0)
    collector = Collector(load_config(config_path), clock=clock)
    (first,) = collector.run_once()
    assert first.status == "partial"
    assert "daily budget $1.00 reached" in first.error
    assert 1.0 <= first.cost_usd < 1.0 + 3.5  # stops after the page that crossed the budget
    searched = sum(1 for r in server.requests() if r.path.endswith("/search/recent"))
    clock.advance(60)
    (second,) = collector.run_once()
    assert sum(1 for r in server.requests() if r.path.endswith("/search/recent")) == searched
    assert second.posts_read == 0 and second.requests >= 1  # counts still refreshed
    # the next UTC day reads again, up to that day's budget, continuing the interrupted sweep
    clock.set(T0.replace(hour=0) + timedelta(days=1, minutes=1))
    (third,) = collector.run_once()
    assert third.posts_read > 0 and "daily budget" in third.error
    collector.close()
    # with a larger budget the sweep finishes: nothing missed, nothing read twice
    collector = Collector(load_config(write_config(tmp_path, server.url, budget=500.0)), clock=clock)
    run_until_caught_up(collector)
    collector.close()
    truth = server.storm.truth(T0, T0 + timedelta(hours=3, minutes=5) - timedelta(seconds=30))
    assert set(collected_ids(config_path)) >= set(truth.post_ids)
    assert max(server.served_post_ids().values()) == 1


@pytest.mark.slow  # collects, then imports a storm
def test_raw_archive_is_twarc2_lines_that_reprocess_to_the_same_rows(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    clock.set(T0 + timedelta(hours=3, minutes=5))
    config_path = write_config(tmp_path, server.url)
    collector = Collector(load_config(config_path), clock=clock)
    collector.run_once()
    collector.close()
    files = sorted((tmp_path / "data" / "raw" / "standwithissa").glob("*.jsonl.gz"))
    assert [f.name for f in files] == ["x-2021-02-07.jsonl.gz", "x-counts-2021-02-07.jsonl.gz"]
    with gzip.open(files[0], "rt", encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    assert all({"data", "includes", "meta", "__twarc"} <= line.keys() for line in lines[:-1])
    assert all(line["__twarc"]["url"].startswith(server.url + "/2/tweets/search/recent?") for line in lines)
    reprocessed = {p.id for line in lines for p in normalize_page(line, "2021-02-07T19:05:00.000Z").posts}
    assert reprocessed == set(collected_ids(config_path))


@pytest.mark.slow  # collects the storm again and again
def test_the_first_sweep_starts_at_the_storm_start_when_it_is_past(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    clock.set(T0 + timedelta(hours=2))
    config_path = write_config(tmp_path, server.url)
    collector = Collector(load_config(config_path), clock=clock)
    collector.run_once()
    collector.close()
    first = next(r for r in server.requests() if r.path.endswith("/search/recent"))
    assert first.params["start_time"] == "2021-02-07T16:00:00Z"
    assert set(collected_ids(config_path)) == set(
        server.storm.truth(T0, clock.now() - timedelta(seconds=30)).post_ids)


@pytest.mark.slow  # collects the storm again and again
def test_a_stale_cursor_beyond_seven_days_restarts_within_reach(tmp_path: Path, platform: tuple) -> None:
    server, clock = platform
    config_path = write_config(tmp_path, server.url)
    config = load_config(config_path)
    clock.set(T0 + timedelta(days=8))
    with Store.open(config.storage.database) as store:
        (query,) = Collector(config, clock=clock).source("x").queries(config.campaigns[0])
        store.save_cursor(Cursor("standwithissa", "x", query, position="1358000000000000000"), clock.now())
    collector = Collector(config, clock=clock)
    (record,) = collector.run_once()
    collector.close()
    assert record.status in ("ok", "partial")
    assert "recent search reaches back 7 days" in (record.error or "")
    first = next(r for r in server.requests() if r.path.endswith("/search/recent"))
    assert "start_time" in first.params and "since_id" not in first.params


def test_wrong_token_fails_the_run_naming_the_variable(tmp_path: Path, platform: tuple,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    server, clock = platform
    monkeypatch.setenv("X_BEARER_TOKEN", "not-the-right-token")
    config_path = write_config(tmp_path, server.url)
    collector = Collector(load_config(config_path), clock=clock)
    (record,) = collector.run_once()
    collector.close()
    assert record.status == "failed"
    assert "401 Unauthorized" in record.error and "$X_BEARER_TOKEN" in record.error
    assert "not-the-right-token" not in record.error



@pytest.mark.slow  # plays a storm
def test_one_campaign_collects_x_and_mastodon_and_a_refusing_instance_does_not_stop_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stormwatch.simulator.clock import ManualClock
    from stormwatch.simulator.mastodon import InstanceSettings, instance_urls, mount_mastodon
    from stormwatch.simulator.storm import Storm
    from stormwatch.simulator.x import SimulatedPlatform

    from .conftest import storm_spec

    spec = storm_spec(posts=1200, seed=5)
    storm = Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.6), ("mastodon", 0.4))}))
    clock = ManualClock(T0 + timedelta(hours=3, minutes=5))
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        mastodon = mount_mastodon(server, {"mastodon.social": InstanceSettings(),
                                           "chaos.social": InstanceSettings(),
                                           "closed.example": InstanceSettings(public_tags=False)})
        instances = instance_urls(server, ["mastodon.social", "chaos.social", "closed.example"])
        config_path = write_config(tmp_path, server.url, campaign_extra='sources = ["x", "mastodon"]\n',
                                   top_extra=f"[mastodon]\ninstances = {instances!r}\n")
        collector = Collector(load_config(config_path), clock=clock)
        records = {r.source: r for r in collector.run_once()}
        collector.close()
    assert records["x"].status in ("ok", "partial")
    mastodon_run = records["mastodon"]
    assert mastodon_run.status == "partial"
    assert "mastodon: closed.example:" in mastodon_run.error and "access_token_env" in mastodon_run.error
    assert mastodon_run.cost_usd == 0
    config = load_config(config_path)
    with Store.open(config.storage.database) as store:
        collected = set(store.campaign_post_ids("standwithissa", "mastodon"))
        x_posts = set(store.campaign_post_ids("standwithissa", "x"))
    # every campaign status the two open instances hold since the storm start (where collection began),
    # each once however many instances carry it
    expected = {mastodon.uri_of(post) for name in ("mastodon.social", "chaos.social")
                for tag in HASHTAGS for post in mastodon.tag_timeline(name, tag) if post.ms >= T0.timestamp() * 1000}
    assert collected == expected and collected
    assert x_posts == set(storm.truth(T0, clock.now() - timedelta(seconds=30), platform="x").post_ids)


@pytest.mark.slow  # collects the storm again and again
def test_each_source_retries_by_its_own_policy(tmp_path: Path) -> None:
    from stormwatch.simulator.clock import ManualClock
    from stormwatch.simulator.mastodon import InstanceSettings, instance_urls, mount_mastodon
    from stormwatch.simulator.storm import Storm
    from stormwatch.simulator.x import SimulatedPlatform

    from .conftest import storm_spec

    spec = storm_spec(posts=1200, seed=5)
    storm = Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.6), ("mastodon", 0.4))}))
    clock = ManualClock(T0 + timedelta(hours=3, minutes=5))
    timelines = tuple(f"/i/mastodon.social/api/v1/timelines/tag/{tag}" for tag in HASHTAGS)
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        mount_mastodon(server, {"mastodon.social": InstanceSettings()})
        instances = instance_urls(server, ["mastodon.social"])
        # [x] retries 4 times (conftest); [mastodon] not at all
        config_path = write_config(tmp_path, server.url, campaign_extra='sources = ["x", "mastodon"]\n',
                                   top_extra=f"[mastodon]\ninstances = {instances!r}\nretries = 0\n")
        config = load_config(config_path)
        campaign = config.campaigns[0]
        collector = Collector(config, clock=clock)
        with Store.open(config.storage.database) as store:
            server.faults.update(server_error_every=2, only_paths=("/2/tweets/search/recent",))
            x_run = collector.run(store, campaign, "x")
            server.faults.update(server_error_every=1, only_paths=timelines)
            mastodon_run = collector.run(store, campaign, "mastodon")
        collector.close()
    searches = [r for r in server.requests() if r.path == "/2/tweets/search/recent"]
    assert x_run.status in ("ok", "partial") and "server error" not in (x_run.error or "")
    assert sum(r.status == 503 for r in searches) >= 2 and sum(r.status == 200 for r in searches) >= 2
    assert set(collected_ids(config_path, "x")) == set(
        storm.truth(T0, clock.now() - timedelta(seconds=30), platform="x").post_ids)
    # Mastodon's policy says no retries: one 503 and the instance is given up for this run
    assert [r.status for r in server.requests() if r.path in timelines] == [503]
    assert mastodon_run.status == "failed"
    assert "server error 503" in mastodon_run.error and "(gave up after 1 attempts)" in mastodon_run.error


def test_a_missing_bluesky_login_is_a_remark_not_a_partial_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stormwatch.simulator.bluesky import mount_bluesky
    from stormwatch.simulator.clock import ManualClock
    from stormwatch.simulator.x import SimulatedPlatform

    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    monkeypatch.delenv("BLUESKY_APP_PASSWORD", raising=False)
    clock = ManualClock(T0 + timedelta(hours=1))
    with SimulatedPlatform(Storm.build(storm_spec(300, seed=3)), clock, token=TOKEN,
                           search_reposts=SEARCH_REPOSTS) as server:
        mount_bluesky(server)
        config_path = write_config(tmp_path, server.url, campaign_extra='sources = ["bluesky"]\n',
                                   top_extra=f'[bluesky]\nappview_url = "{server.url}"\nservice_url = "{server.url}"\n')
        collector = Collector(load_config(config_path), clock=clock)
        (record,) = collector.run_once()
        collector.close()
    # Search only fills in behind the live feed (a Streaming source): nothing is missing for want of a login.
    assert record.status == "ok"
    assert "bluesky: backfill needs a login" in record.error and "live posts still come from Jetstream" in record.error
    assert not any("searchPosts" in r.path for r in server.requests())
