"""The real collector, through real tweepy HTTP calls, against the simulated platform on a localhost port."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch import metrics
from stormwatch.collector import Collector
from stormwatch.config import load_config
from stormwatch.models import Cursor
from stormwatch.normalize.x import normalize_page
from stormwatch.store import Store
from stormwatch.streaming import followers

from .conftest import HASHTAGS, T0, TOKEN, write_config


@pytest.fixture(autouse=True)
def bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def collected_ids(config_path: Path, platform: str | None = None) -> list[str]:
    config = load_config(config_path)
    with Store.open(config.storage.database) as store:
        return store.campaign_post_ids("standwithissa", platform)


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
    search_requests = sum(1 for r in server.requests() if r.path.endswith("/search/recent"))
    counts_requests = sum(1 for r in server.requests() if r.path.endswith("/counts/recent"))
    assert record.requests == search_requests + counts_requests
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



def test_one_campaign_collects_x_and_mastodon_and_a_refusing_instance_does_not_stop_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stormwatch.simulator.clock import ManualClock
    from stormwatch.simulator.mastodon import InstanceSettings, instance_urls, mount_mastodon
    from stormwatch.simulator.server import SimulatedPlatform
    from stormwatch.simulator.storm import Storm

    from .conftest import storm_spec

    spec = storm_spec(posts=1200, seed=5)
    storm = Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.6), ("mastodon", 0.4))}))
    clock = ManualClock(T0 + timedelta(hours=3, minutes=5))
    with SimulatedPlatform(storm, clock, token=TOKEN) as server:
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


def test_bluesky_live_stream_backfill_and_profiles_give_the_ground_truth(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from stormwatch.simulator.bluesky import mount_bluesky
    from stormwatch.simulator.clock import ManualClock
    from stormwatch.simulator.jetstream import JetstreamServer
    from stormwatch.simulator.server import SimulatedPlatform
    from stormwatch.simulator.storm import Storm

    from .conftest import storm_spec

    spec = storm_spec(posts=1500, seed=9)
    storm = Storm.build(type(spec)(**{**spec.__dict__, "platforms": (("x", 0.5), ("bluesky", 0.5))}))
    clock = ManualClock(T0 + timedelta(hours=3, minutes=5))
    monkeypatch.setenv("BLUESKY_HANDLE", "organizer.bsky.social")
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "abcd-efgh-ijkl-mnop")
    with SimulatedPlatform(storm, clock, token=TOKEN) as server:
        xrpc = mount_bluesky(server, accounts={"organizer.bsky.social": "abcd-efgh-ijkl-mnop"})
        jetstream = JetstreamServer(storm, clock, network=xrpc.network).start()
        try:
            bluesky = (f'[bluesky]\njetstream_url = "{jetstream.url}"\nappview_url = "{server.url}"\n'
                       f'service_url = "{server.url}"\n')
            config_path = write_config(tmp_path, server.url, campaign_extra='sources = ["bluesky"]\n',
                                       top_extra=bluesky)
            config = load_config(config_path)
            truth = storm.truth(T0, clock.now(), platform="bluesky", include_reposts=False)
            expected = {xrpc.network.uri_of_id(i) for i in truth.post_ids}
            # the live stream first: it replays the storm from its start, then keeps following
            assert collected_ids(config_path) == []  # the database exists before the follower writes to it
            stop = threading.Event()
            streaming = Collector(config, clock=clock, stop=stop)
            (stream,) = followers(streaming, config.campaigns)
            follower = threading.Thread(target=stream.follow, args=(stop,))
            follower.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and set(collected_ids(config_path)) != expected:
                time.sleep(0.1)
            stop.set()
            follower.join(timeout=10)
            streaming.close()
            assert not follower.is_alive()
            assert set(collected_ids(config_path)) == expected
            # then a scheduled run: search backfill finds nothing new, profiles and counters are filled in
            collector = Collector(config, clock=clock)
            (record,) = collector.run_once()
            collector.close()
        finally:
            jetstream.stop()
    assert record.status in ("ok", "partial"), record.error
    with Store.open(config.storage.database) as store:
        window = metrics.campaign_window(config.campaigns[0], T0, clock.now())
        figures = metrics.totals(store, "standwithissa", window).all
        unknown = store.authors_without_followers("standwithissa", "bluesky", 10)
    assert set(collected_ids(config_path)) == expected
    assert unknown == []
    assert (figures.posts, figures.contributors, figures.potential_reach, figures.engagement) == (
        truth.posts, truth.contributors, truth.potential_reach, truth.engagement)
