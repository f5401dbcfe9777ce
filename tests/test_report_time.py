"""The report's time axis: the hour before and after the storm window where it was collected, and a report
written while the storm runs, which says it is interim and draws no future."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from matplotlib import dates as mdates

from stormwatch import metrics
from stormwatch.config import Config
from stormwatch.models import Batch, Post
from stormwatch.privacy.naming import NamingPolicy
from stormwatch.report import write_report
from stormwatch.report.charts import alt_texts, volume_figure
from stormwatch.report.content import gather, name_accounts
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .conftest import T0

AFTER_THE_STORM = datetime(2021, 2, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def copy(collected, tmp_path: Path) -> Iterator[tuple[Config, Store]]:
    """A writable copy of the collected storm (collected after it ended: nothing before the window)."""
    config, _ = collected
    target = tmp_path / "copy.db"
    with sqlite3.connect(config.storage.database) as source, sqlite3.connect(target) as into:
        source.backup(into)
    config = replace(config, storage=replace(config.storage, database=target))
    with Store.open(target) as store:
        yield config, store


def plotted_span(config: Config, store: Store, written_at: datetime) -> tuple[datetime, datetime]:
    campaign = config.campaigns[0]
    window = metrics.campaign_window(campaign)
    namer, contributors = name_accounts(store, campaign, window, NamingPolicy.for_campaign(campaign, "public", 0))
    content = gather(store, campaign, window, namer, contributors, generated_at=written_at, config=config)
    lo, hi = volume_figure(content).axes[0].get_xlim()
    return mdates.num2date(lo).astimezone(UTC), mdates.num2date(hi).astimezone(UTC)


def post_at(moment: datetime, number: int) -> Post:
    return Post(uid=f"x:13584{number:014d}", platform="x", id=f"13584{number:014d}", author_uid="x:77",
                created_at=iso_utc(moment), ts=int(moment.timestamp()), text="#StandWithIssa", lang="en",
                kind="original", ref_uid=None, url=None, like_count=0, repost_count=0, reply_count=0, quote_count=0,
                bookmark_count=None, impression_count=None, metrics_at=iso_utc(moment), tags=("standwithissa",))


@pytest.mark.slow
def test_the_volume_chart_shows_the_hour_around_the_window_where_it_was_collected(copy) -> None:
    config, store = copy
    end = T0 + timedelta(hours=3)
    # collected in one run five minutes after the storm: the window and those five minutes, and no empty hour
    # before it that would read as a quiet build-up
    lo, hi = plotted_span(config, store, AFTER_THE_STORM)
    assert lo == T0 and end < hi <= end + timedelta(minutes=6)
    # a collector that ran from 70 minutes before the start to 20 minutes after the end
    run_id = store.start_run("standwithissa", "x", T0 - timedelta(minutes=70))
    store.finish_run(run_id, "ok", end + timedelta(minutes=20))
    store.save_page(Batch(posts=(post_at(T0 - timedelta(minutes=30), 1), post_at(end + timedelta(minutes=5), 2))),
                    campaign="standwithissa", cursor=None, run_id=None, collected_at=end)
    assert plotted_span(config, store, AFTER_THE_STORM) == (T0 - timedelta(hours=1), end + timedelta(minutes=20))
    campaign = config.campaigns[0]
    window = metrics.campaign_window(campaign)
    namer, contributors = name_accounts(store, campaign, window, NamingPolicy.for_campaign(campaign, "public", 0))
    content = gather(store, campaign, window, namer, contributors, generated_at=AFTER_THE_STORM, config=config)
    assert "1 post in the build-up before it; 1 post in the hour after it" in alt_texts(content)["volume.png"]
    # the window's own figures are the window's: the posts around it are only drawn
    assert content.summary.totals.all.posts == sum(b.posts for b in content.volume.buckets)


@pytest.mark.slow
def test_a_report_written_during_the_storm_says_it_is_interim_and_draws_no_future(copy, tmp_path: Path) -> None:
    config, store = copy
    campaign = config.campaigns[0]
    written = T0 + timedelta(hours=1, minutes=14)  # 19:14 in Hebron; the storm runs until 21:00
    folder = write_report(store, config, campaign, metrics.campaign_window(campaign), out_dir=tmp_path, now=written)
    sentence = "Interim report: written at 19:14, the storm runs until 21:00 (Asia/Hebron)."
    assert sentence in (folder / "report.html").read_text(encoding="utf-8")
    assert sentence in (folder / "report.md").read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["interim"] is True and summary["report"]["generated_at"] == iso_utc(written)
    with (folder / "volume.csv").open(encoding="utf-8-sig", newline="") as handle:
        buckets = list(csv.DictReader(handle))
    assert len(buckets) == 74 and buckets[-1]["bucket_start_local"] == "2021-02-07T19:13:00+02:00"
    assert plotted_span(config, store, written) == (T0, written)
    final = write_report(store, config, campaign, metrics.campaign_window(campaign), out_dir=tmp_path,
                         now=AFTER_THE_STORM)
    assert json.loads((final / "summary.json").read_text(encoding="utf-8"))["interim"] is False
    assert "Interim" not in (final / "report.html").read_text(encoding="utf-8")


def test_a_report_written_before_the_storm_never_says_the_storm_runs_until(copy, tmp_path: Path) -> None:
    config, store = copy
    campaign = config.campaigns[0]
    store.save_page(Batch(posts=(post_at(T0 - timedelta(minutes=30), 1),)), campaign="standwithissa", cursor=None,
                    run_id=None, collected_at=T0 - timedelta(minutes=29))
    build_up = metrics.campaign_window(campaign, T0 - timedelta(hours=1), T0 + timedelta(hours=3))
    folder = write_report(store, config, campaign, build_up, out_dir=tmp_path, now=T0 - timedelta(minutes=10))
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert ("Interim report: written at 17:50, before the storm starts at 18:00 (Asia/Hebron). Every figure is the "
            "build-up so far") in html
    assert "runs until" not in html


@pytest.mark.slow  # writes a whole report
def test_the_brief_opens_the_report_with_the_figures_a_journalist_quotes(copy, tmp_path: Path) -> None:
    """Five to eight plain sentences under the title, before any table, each figure the one summary.json has."""
    config, store = copy
    campaign = config.campaigns[0]
    folder = write_report(store, config, campaign, metrics.campaign_window(campaign), out_dir=tmp_path,
                          now=AFTER_THE_STORM)
    html = (folder / "report.html").read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    brief = html.split('<p class="lead">')[1].split("</p>")[0]
    assert html.index("The storm in brief") < html.index('<p class="lead">') < html.index("<table")
    sentences = [s for s in brief.replace("&#x27;", "'").split(". ") if s]
    assert 5 <= len(sentences) <= 8, sentences
    reached = sum(language["language"] is not None for language in summary["languages"])
    for figure in (f"{summary['contributors']:,} people posted {summary['posts']:,} times",
                   f"potential reach of {summary['potential_reach']:,}", f"drew {summary['engagement']:,} likes",
                   f"brought {summary['peak_posts_per_minute']:,} posts", f"reached {reached} languages",
                   f"{summary['duplicate_share']:.0%} of the posts"):
        assert figure in brief, figure
    # The collector's runs of the storm's UTC day, as an estimate (the simulated X bills its reads).
    with sqlite3.connect(config.storage.database) as conn:
        cost = conn.execute("SELECT sum(cost_usd) FROM runs WHERE started_at >= '2021-02-07' "
                            "AND started_at < '2021-02-07U'").fetchone()[0]
    assert f"cost an estimated ${cost:,.2f}" in brief or (not cost and "cost nothing" in brief)
