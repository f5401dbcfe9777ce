"""Metrics against the simulator's ground truth for the same window: exact counts, reach and engagement rules."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from stormwatch import metrics
from stormwatch.models import Batch
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .conftest import T0, x_post

WINDOW_END = T0 + timedelta(hours=3)


@pytest.fixture
def store(collected):
    config, _ = collected
    with Store.open(config.storage.database) as opened:
        yield opened


@pytest.mark.parametrize("since, until", [
    (T0, WINDOW_END),
    (T0 + timedelta(minutes=30), T0 + timedelta(hours=1)),
    (T0 + timedelta(minutes=2, seconds=17), T0 + timedelta(minutes=9, seconds=41)),
])
def test_totals_equal_ground_truth(collected, store, since, until) -> None:
    config, storm = collected
    campaign = config.campaigns[0]
    truth = storm.truth(since, until)
    window = metrics.campaign_window(campaign, since, until)
    result = metrics.totals(store, campaign.name, window)
    figures = result.all
    assert figures.posts == truth.posts
    assert (figures.originals, figures.reposts, figures.quotes, figures.replies) == (
        truth.originals, truth.reposts, truth.quotes, truth.replies)
    assert figures.contributors == truth.contributors
    assert figures.potential_reach == truth.potential_reach
    assert figures.potential_impressions == truth.potential_impressions
    assert figures.impressions == truth.impressions
    assert figures.engagement == truth.engagement
    assert figures.first_post_at == truth.first_post_at
    assert figures.last_post_at == truth.last_post_at
    assert result.by_platform["x"] == figures


def test_context_only_posts_and_copied_repost_counters_are_never_counted(collected, store) -> None:
    config, _ = collected
    campaign = config.campaigns[0]
    stored = store.conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    members = store.count_campaign_posts(campaign.name)
    assert stored > members, "the storm has context posts (noise originals, edits) stored only for lookups"
    window = metrics.campaign_window(campaign, T0, WINDOW_END)
    naive = store.conn.execute(
        "SELECT sum(like_count + repost_count + reply_count + quote_count) FROM posts WHERE ts >= ? AND ts < ?",
        (window.since_ts, window.until_ts)).fetchone()[0]
    assert metrics.totals(store, campaign.name, window).all.engagement < naive


def test_volume_peak_and_new_contributors_per_minute(collected, store) -> None:
    config, storm = collected
    campaign = config.campaigns[0]
    truth = storm.truth(T0, WINDOW_END)
    window = metrics.campaign_window(campaign, T0, WINDOW_END)
    volume = metrics.volume(store, campaign.name, window, bucket_seconds=60)
    assert len(volume.buckets) == 180
    by_minute = dict(truth.per_minute)
    assert {b.start: b.posts for b in volume.buckets if b.posts} == by_minute
    assert volume.buckets[-1].cumulative_posts == truth.posts
    assert volume.buckets[-1].cumulative_contributors == truth.contributors
    assert sum(b.new_contributors for b in volume.buckets) == truth.contributors
    peak = metrics.peak_minute(store, campaign.name, window)
    best = max(truth.per_minute.values())
    assert peak.posts == best
    assert peak.minute == min(m for m, n in truth.per_minute.items() if n == best)
    # a 3-hour window is charted per minute, longer spans in 5-minute and hourly buckets
    assert metrics.bucket_seconds_for(window) == 60
    assert metrics.bucket_seconds_for(metrics.campaign_window(campaign, T0, T0 + timedelta(hours=18))) == 300
    five = metrics.volume(store, campaign.name, window, bucket_seconds=300)
    assert sum(b.posts for b in five.buckets) == truth.posts and len(five.buckets) == 36


def test_top_accounts_posts_tags_and_targets(collected, store) -> None:
    config, storm = collected
    campaign = config.campaigns[0]
    window = metrics.campaign_window(campaign, T0, WINDOW_END)
    truth = storm.truth(T0, WINDOW_END)
    in_window = [storm.post_by_id(i) for i in truth.post_ids]
    by_author: dict[str, int] = {}
    for post in in_window:
        author = storm.user(post.author).id
        by_author[author] = by_author.get(author, 0) + 1
    top = metrics.top_accounts(store, campaign.name, window, by="posts", limit=5)
    assert [a.posts for a in top] == sorted(by_author.values(), reverse=True)[:5]
    assert top[0].posts >= top[-1].posts and all(a.platform == "x" for a in top)
    by_followers = metrics.top_accounts(store, campaign.name, window, by="followers", limit=3)
    assert by_followers[0].followers >= by_followers[1].followers >= by_followers[2].followers
    everyone = metrics.accounts(store, campaign.name, window)
    assert len(everyone) == truth.contributors
    assert sum(a.posts for a in everyone) == truth.posts
    assert sum(a.engagement for a in everyone) == truth.engagement
    best_posts = metrics.top_posts(store, campaign.name, window, limit=3)
    assert all(p.kind != "repost" for p in best_posts)
    assert best_posts[0].engagement >= best_posts[1].engagement >= best_posts[2].engagement
    tags = dict(metrics.co_hashtags(store, campaign, window, limit=50))
    assert tags and not {t.casefold() for t in campaign.hashtags} & set(tags)
    own = dict(metrics.campaign_hashtags(store, campaign, window))
    assert set(own) == set(campaign.hashtags) and sum(own.values()) >= truth.posts
    mentions = dict(metrics.target_mentions(store, campaign, window))
    assert set(mentions) == {"antonioguterres", "vonderleyen"} and all(n > 0 for n in mentions.values())
    latest = metrics.latest_posts(store, campaign.name, window, limit=5)
    assert latest[0].created_at == truth.last_post_at


@pytest.mark.slow  # collects the storm again, as today's X
def test_coverage_compares_collected_with_the_platform_counts(collected_today, tmp_path) -> None:
    # Today's X counts what its search returns (no reposts): collected reposts (from the stream) are left out of
    # the comparison, so a stored repost is never taken for a post the counts missed.
    config, _ = collected_today
    campaign = config.campaigns[0]
    window = metrics.campaign_window(campaign, T0, WINDOW_END)
    copy = tmp_path / "copy.db"  # the fixture's database is shared: a copy takes the repost below
    with sqlite3.connect(config.storage.database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with Store.open(copy) as store:
        buckets = metrics.coverage(store, campaign.name, window, bucket_seconds=300,
                                   queries=metrics.counted_queries(config, campaign, "x"))
        assert len(buckets) == 36
        assert all(b.counted is not None for b in buckets) and sum(b.counted or 0 for b in buckets) > 0
        assert [b.collected for b in buckets] == [b.counted for b in buckets]
        # a repost the stream stored in the window (at T0, in the first bucket) leaves the comparison as it was
        store.save_page(Batch(posts=(x_post("999", kind="repost"),)), campaign=campaign.name, cursor=None,
                        run_id=None, collected_at=T0)
        assert metrics.volume(store, campaign.name, window, 300).buckets[0].posts == buckets[0].collected + 1
        assert metrics.coverage(store, campaign.name, window, bucket_seconds=300,
                                queries=metrics.counted_queries(config, campaign, "x")) == buckets


@pytest.mark.slow  # collects the storm again, as today's X
def test_only_counts_of_the_campaign_s_own_queries_are_its_coverage(collected_today, tmp_path) -> None:
    import shutil
    from dataclasses import replace

    from stormwatch.models import CountBucket

    config, _ = collected_today
    campaign = config.campaigns[0]
    copy = tmp_path / "copy.db"
    shutil.copy(config.storage.database, copy)
    window = metrics.campaign_window(campaign, T0, WINDOW_END)
    own = metrics.counted_queries(config, campaign, "x")
    assert own == ("(#StandWithIssa OR #DropTheCharges OR #FreePoliticalPrisoners)",)
    with Store.open(copy) as store:
        before = metrics.coverage(store, campaign.name, window, 300, queries=own)
        # a twarc2 counts file for another query, imported into the campaign: kept, but not its coverage
        dogs = [CountBucket(T0 + timedelta(minutes=m), T0 + timedelta(minutes=m + 1), 1000) for m in range(180)]
        store.save_counts(None, campaign.name, "x", "dogs", dogs, fetched_at=T0)
        after = metrics.coverage(store, campaign.name, window, 300, queries=own)
        assert store.conn.execute("SELECT count(*) FROM volume_counts WHERE query = 'dogs'").fetchone()[0] == 180
    assert after == before and all(b.counted == b.collected for b in after)
    # split queries (a campaign with many hashtags) each count their own hashtags, and add up
    split = replace(config, x=replace(config.x, max_query_length=50))
    assert len(metrics.counted_queries(split, campaign, "x")) == 2
    assert metrics.counted_queries(config, campaign, "mastodon") == ()


def test_summary_json_has_the_documented_keys(collected, store) -> None:
    config, storm = collected
    campaign = config.campaigns[0]
    data = metrics.summary(store, campaign, metrics.campaign_window(campaign)).to_json()
    for key in ("campaign", "window", "posts", "originals", "reposts", "quotes", "replies", "contributors",
                "potential_reach", "potential_impressions", "impressions", "engagement", "peak_minute",
                "peak_posts_per_minute", "first_post_at", "last_post_at", "by_platform"):
        assert key in data
    assert data["window"] == {"since": "2021-02-07T16:00:00.000Z", "until": "2021-02-07T19:00:00.000Z",
                              "platform": "all"}
    assert data["posts"] == storm.truth(T0, WINDOW_END).posts
    # times leave as ISO-8601 UTC strings with milliseconds, the platform split included
    truth = storm.truth(T0, WINDOW_END)
    assert (data["first_post_at"], data["last_post_at"]) == (iso_utc(truth.first_post_at), iso_utc(truth.last_post_at))
    assert data["by_platform"]["x"]["first_post_at"] == data["first_post_at"]
    assert data["peak_minute"].endswith(":00.000Z")
    json.dumps(data)  # nothing left that JSON cannot write


def test_tallied_figures_equal_figures_counted_from_the_rows(collected, store) -> None:
    config, _ = collected
    campaign = config.campaigns[0]
    window = metrics.campaign_window(campaign)

    def everything(reader: metrics.ReaderChoice) -> dict:
        return {
            "totals": metrics.totals(store, campaign.name, window, reader=reader),
            "x only": metrics.totals(store, campaign.name, metrics.campaign_window(campaign, platform="x"),
                                     reader=reader),
            "volume": [metrics.volume(store, campaign.name, window, size, reader=reader) for size in (60, 300, 3600)],
            "peak": metrics.peak_minute(store, campaign.name, window, reader=reader),
            "tops": [metrics.top_accounts(store, campaign.name, window, by=by, limit=25, reader=reader)
                     for by in ("posts", "engagement", "followers")],
            "accounts": metrics.accounts(store, campaign.name, window, reader=reader),
            "directory": metrics.contributor_directory(store, campaign.name, window, reader=reader),
            "co": metrics.co_hashtags(store, campaign, window, limit=50, reader=reader),
            "own": metrics.campaign_hashtags(store, campaign, window, reader=reader),
            "targets": metrics.target_mentions(store, campaign, window, reader=reader),
            "coverage": metrics.coverage(store, campaign.name, window, reader=reader,
                                         queries=metrics.counted_queries(config, campaign, "x")),
            "new": [metrics.new_contributors(store, campaign.name, window, T0 + timedelta(minutes=m), reader=reader)
                    for m in (0, 5, 60, 179)],
            "minutes": metrics.per_minute(store, campaign.name, T0 - timedelta(hours=1), WINDOW_END, reader=reader),
            "size": metrics.campaign_size(store, campaign.name, reader=reader),
            "split": metrics.split_by_posts(store, campaign.name, window, 3, reader=reader),
            "mentioned": metrics.mentioned_account_rows(store, campaign.name, window, reader=reader),
            "summary": metrics.summary(store, campaign, window, reader=reader),
        }

    tallied = everything("tallies")
    counted = everything("rows")
    automatic = everything("auto")
    for key in tallied:
        assert tallied[key] == counted[key] == automatic[key], key
    assert tallied["totals"].all.posts > 1000 and len(tallied["mentioned"]) > 10


def test_languages_are_the_storms_posts_and_people_per_language(collected, store) -> None:
    """Posts and people per language against the simulator's own: every post of the window in the language the
    platform tagged it with, `und` counted as not stated, and `summary --json` saying the same."""
    from click.testing import CliRunner

    from stormwatch.cli import main

    config, storm = collected
    campaign = config.campaigns[0]
    truth = storm.truth(T0, WINDOW_END)
    posts: dict[str | None, int] = {}
    people: dict[str | None, set[int]] = {}
    for post in storm.posts:
        if str(post.id) in truth.post_ids:
            code = None if post.lang == "und" else post.lang
            posts[code] = posts.get(code, 0) + 1
            people.setdefault(code, set()).add(post.author)
    found = metrics.languages(store, campaign, metrics.campaign_window(campaign, T0, WINDOW_END))
    assert {c.code: (c.posts, c.contributors) for c in found} == {
        code: (count, len(people[code])) for code, count in posts.items()}
    assert len(found) > 3 and found[-1].code is None  # several languages, most posts first, "not stated" last
    assert [c.posts for c in found[:-1]] == sorted((c.posts for c in found[:-1]), reverse=True)
    assert metrics.languages_reached(found) == len(posts) - 1
    result = CliRunner().invoke(main, ["summary", "--json", "--config", str(config.path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["languages"] == [c.to_json() for c in found]


def test_language_tags_fold_to_languages() -> None:
    assert [metrics.language_code(tag) for tag in ("en", "pt-BR", "EN_us", "iw", "in", "zh-Hant-TW")] == [
        "en", "pt", "en", "he", "id", "zh"]
    for nothing in (None, "", "und", "zxx", "qme", "qht", "mul", "1x", "english"):
        assert metrics.language_code(nothing) is None, nothing


def test_a_storms_cost_is_its_runs_over_every_utc_day_of_the_window(tmp_path) -> None:
    """A window from 23:00 to 02:00 UTC spans two billing days: the runs of both count, the days around do not;
    a span without any run recorded is not reported (None), never $0."""
    from datetime import UTC, datetime

    night = datetime(2021, 2, 7, 23, 0, tzinfo=UTC)
    with Store.open(tmp_path / "cost.db") as store:
        assert metrics.window_cost(store, "storm", night, night + timedelta(hours=3)) is None
        for started, cost in ((night - timedelta(days=1), 5.0), (night + timedelta(minutes=10), 1.25),
                              (night + timedelta(hours=2), 0.5), (night + timedelta(days=1, hours=2), 7.0)):
            run = store.start_run("storm", "x", started)
            # (the collector adds each billed page's cost to its run as it stores the page)
            store.conn.execute("UPDATE runs SET cost_usd = ? WHERE id = ?", (cost, run))
            store.finish_run(run, "ok", started + timedelta(minutes=1))
        assert metrics.window_cost(store, "storm", night, night + timedelta(hours=3)) == 1.75
        assert metrics.window_cost(store, "other", night, night + timedelta(hours=3)) is None
