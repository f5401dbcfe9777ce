"""The dashboard rendered to a fixed-size console: the figures shown are the metrics' figures."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from stormwatch import metrics
from stormwatch.dashboard import render, take_snapshot
from stormwatch.models import Batch, Post
from stormwatch.store import Store

from .conftest import T0

DURING = T0 + timedelta(minutes=40)


def draw(snapshot, width: int = 80, height: int = 24) -> str:
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None,
                      legacy_windows=False)
    console.print(render(snapshot))
    return console.export_text()


@pytest.fixture
def copy(collected, tmp_path: Path):
    """A writable copy of the collected database, and its config."""
    config, storm = collected
    target = tmp_path / "copy.db"
    shutil.copy(config.storage.database, target)
    from dataclasses import replace

    return replace(config, storage=replace(config.storage, database=target)), storm


def test_figures_on_screen_are_the_metrics(collected) -> None:
    config, _ = collected
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, campaign, now=DURING)
        # the storm so far: the whole window (while a storm runs, nothing exists after now)
        window = metrics.campaign_window(campaign)
        expected = metrics.totals(store, campaign.name, window).all
        peak = metrics.peak_minute(store, campaign.name, window)
        top = metrics.top_accounts(store, campaign.name, window, limit=3)
        targets = metrics.target_mentions(store, campaign, window)
    assert snapshot.totals == expected
    text = draw(snapshot)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert f"posts {expected.posts:,}" in text
    assert f"peak/min {peak.posts:,} @18:" in text  # the peak minute in Hebron time (UTC+2)
    assert f"people {expected.contributors:,}" in text
    assert "40m00s into the storm" in text and "ends in 2h20m" in text
    for account in top:
        assert f"@{account.handle}" in text
    for target, count in targets:
        assert f"@{target} {count:,}" in text
    assert "x ok" in text or "x partial" in text
    assert "goal posts" in text and f"{expected.posts:,}/3,000" in text


def test_a_larger_terminal_shows_more(collected) -> None:
    config, _ = collected
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING, list_size=20)
    small, large = draw(snapshot, 80, 24), draw(snapshot, 160, 48)
    assert len(large.splitlines()) > len(small.splitlines())
    assert large.count("RT @") + large.count("\n│ 1") > small.count("RT @") + small.count("\n│ 1")
    assert "engagement" in large.splitlines()[4] or "engagement" in large


def test_before_the_storm_the_clock_counts_down(collected, memory_store: Store) -> None:
    config, _ = collected
    # half an hour before the start nothing is collected yet
    snapshot = take_snapshot(memory_store, config, config.campaigns[0], now=T0 - timedelta(minutes=29, seconds=30))
    text = draw(snapshot)
    assert "storm starts in 29m30s" in text
    assert "posts 0" in text and "no posts in the storm window yet" in text
    assert "x has not collected yet" in text


def test_post_text_is_shown_literally_never_as_markup(copy) -> None:
    config, _ = copy
    hostile = Post(uid="x:1358439000000000001", platform="x", id="1358439000000000001", author_uid="x:424242",
                   created_at="2021-02-07T18:59:59.000Z", ts=int((T0 + timedelta(hours=2, minutes=59,
                                                                                 seconds=59)).timestamp()),
                   text="[bold red]pwned[/] <script>alert(1)</script>\nsecond line", lang="en", kind="original",
                   ref_uid=None, url=None, like_count=0, repost_count=0, reply_count=0, quote_count=0,
                   bookmark_count=None, impression_count=None, metrics_at="2021-02-07T16:40:00.000Z")
    with Store.open(config.storage.database) as store:
        store.save_page(Batch(posts=(hostile,)), campaign="standwithissa", cursor=None, run_id=None,
                        collected_at=T0 + timedelta(minutes=40))
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING)
    text = draw(snapshot, 160, 48)
    assert "[bold red]pwned[/] <script>alert(1)</script> second line" in text


def test_alerts_for_fading_volume_and_a_failing_source(copy) -> None:
    config, _ = copy
    campaign = config.campaigns[0]
    late = T0 + timedelta(hours=2, minutes=50)
    with Store.open(config.storage.database) as store:
        calm = take_snapshot(store, config, campaign, now=T0 + timedelta(minutes=6))
        fading = take_snapshot(store, config, campaign, now=late)
        run_id = store.start_run(campaign.name, "x", late)
        store.finish_run(run_id, "failed", late, error="x: cannot reach http://127.0.0.1:1: connection refused")
        failing = take_snapshot(store, config, campaign, now=late + timedelta(seconds=5))
    assert not any("fading" in a for a in calm.alerts)
    assert any(a.startswith("Volume is fading") for a in fading.alerts)
    assert "Volume is fading" in draw(fading)
    alert = next(a for a in failing.alerts if "failing" in a)
    assert alert == "x is failing: x: cannot reach http://127.0.0.1:1: connection refused"
    assert re.search(r"x failed \d\d:\d\d", draw(failing, 120, 30))


def test_without_a_terminal_it_prints_one_frame_and_exits(collected) -> None:
    config, _ = collected
    result = subprocess.run([sys.executable, "-m", "stormwatch", "dashboard", "--config", str(config.path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "#StandWithIssa" in result.stdout and "storm ended" in result.stdout
    assert "top accounts" in result.stdout


def test_each_platform_is_shown_when_a_storm_runs_on_several(copy) -> None:
    config, _ = copy
    toot = Post(uid="mastodon:https://kolektiva.social/users/rima/statuses/1", platform="mastodon",
                id="https://kolektiva.social/users/rima/statuses/1", author_uid="mastodon:rima@kolektiva.social",
                created_at="2021-02-07T17:00:00.000Z", ts=int((T0 + timedelta(hours=1)).timestamp()),
                text="#StandWithIssa from the fediverse", lang="en", kind="original", ref_uid=None, url=None,
                like_count=3, repost_count=1, reply_count=0, quote_count=None, bookmark_count=None,
                impression_count=None, metrics_at="2021-02-07T17:01:00.000Z", tags=("standwithissa",))
    with Store.open(config.storage.database) as store:
        store.save_page(Batch(posts=(toot,)), campaign="standwithissa", cursor=None, run_id=None,
                        collected_at=T0 + timedelta(hours=1))
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING)
    text = draw(snapshot, 100, 30)
    assert f"by platform X {snapshot.by_platform['x']:,}  Mastodon 1" in text
    assert snapshot.totals.posts == snapshot.by_platform["x"] + 1
