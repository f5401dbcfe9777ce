"""`stormwatch demo --headless` end to end (slow): the simulated storm, the real scheduled collector, the report;
and, fast, the folder and the config the demo writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch.config import load_config
from stormwatch.demo import (
    DEMO_HOURS,
    DEMO_LEAD,
    DEMO_MARK,
    DEMO_START,
    _config_text,
    demo_folder,
    freeze_clock,
    fresh_demo_folder,
)
from stormwatch.errors import StormwatchError
from stormwatch.sources import registry
from stormwatch.times import Clock


def test_the_demo_starts_clean_and_its_config_names_the_simulation_and_stands_still_once_over(tmp_path: Path) -> None:
    leftover = demo_folder(tmp_path) / "stormwatch.db"  # an earlier demo's: it must not survive
    leftover.parent.mkdir(parents=True)
    leftover.write_text("old demo data")
    with pytest.raises(StormwatchError, match="not a demo's folder"):  # nothing says whose it is: kept
        fresh_demo_folder(tmp_path)
    assert leftover.read_text() == "old demo data"
    (leftover.parent / "config.toml").write_text(f"{DEMO_MARK}: an earlier one\n")
    folder = fresh_demo_folder(tmp_path)
    assert folder == tmp_path / "data" / "demo" and list(folder.iterdir()) == []
    end = DEMO_START + timedelta(hours=DEMO_HOURS)
    clock = Clock(speed=360.0, anchor=DEMO_START - DEMO_LEAD, anchor_wall=1000.0)
    path = folder / "config.toml"
    path.write_text(_config_text(clock=clock, api_base="http://127.0.0.1:8123", seed=7, posts=800,
                                 poll=timedelta(minutes=3), reports=tmp_path / "reports", end=end, port=8123),
                    encoding="utf-8")
    config = load_config(path)
    (campaign,) = config.campaigns
    assert (config.simulation.seed, config.simulation.posts, config.simulation.port) == (7, 800, 8123)
    assert config.mastodon.instances == ("http://127.0.0.1:8123/i/mastodon.social",
                                         "http://127.0.0.1:8123/i/kolektiva.social")
    assert campaign.sources == tuple(p.name for p in registry.registered())  # every platform the demo serves
    assert (campaign.start, campaign.end) == (DEMO_START, end)
    assert (campaign.storm_interval, campaign.interval) == (timedelta(minutes=3), timedelta(minutes=9))
    assert (campaign.goal_posts, campaign.goal_contributors) == (600, 160)  # goals a storm of 800 posts can reach
    assert config.clock.speed == 360.0 and not config.clock.frozen
    freeze_clock(path, end)
    frozen = load_config(path).clock
    assert frozen.frozen and frozen.now() == end


@pytest.mark.slow
def test_headless_demo_collects_the_whole_storm_and_writes_a_report(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("X_BEARER", "STORMWATCH"))}
    command = [sys.executable, "-m", "stormwatch", "demo", "--headless", "--duration", "8", "--posts", "800"]
    leftover = tmp_path / "data" / "demo" / "stormwatch.db"  # a previous demo's database: it must not survive
    leftover.parent.mkdir(parents=True)
    leftover.write_text("old demo data")
    (leftover.parent / "config.toml").write_text("# Written by `stormwatch demo`: an earlier one\n")
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=environment)
    assert result.returncode == 0, result.stderr
    report_line = result.stdout.strip().splitlines()[-1]
    assert report_line.startswith("report: ") and report_line.endswith("report.html")
    report = Path(report_line.removeprefix("report: "))
    assert report.is_file() and report.parent.parent == tmp_path / "reports"
    summary = json.loads((report.parent / "summary.json").read_text())
    config = tmp_path / "data" / "demo" / "config.toml"
    truth = json.loads(subprocess.run([sys.executable, "-m", "stormwatch", "simulate", "--truth", "--config",
                                       str(config)], capture_output=True, text=True, timeout=60,
                                      check=True).stdout)
    # the collector got every post of the storm window, exactly once
    assert summary["posts"] == truth["posts"] > 0
    assert summary["contributors"] == truth["contributors"]
    assert f"posts              {truth['posts']:>11,}" in result.stdout
    assert "report.html" in report.name and (report.parent / "volume.png").stat().st_size > 10_000
    # the demo leaves its config's clock standing at the storm's end: the dashboard shows the storm as it ended
    assert 'frozen_at = "2021-02-07T21:00:00+00:00"' in config.read_text(encoding="utf-8")
    frame = subprocess.run([sys.executable, "-m", "stormwatch", "dashboard", "--config", str(config)],
                           capture_output=True, text=True, timeout=60, env=environment)
    assert frame.returncode == 0, frame.stderr
    assert "storm over: ended 23:00  23:00 Asia/Hebron" in frame.stdout and " ago" not in frame.stdout
    assert f"posts {truth['posts']:,}" in frame.stdout
    refused = subprocess.run([sys.executable, "-m", "stormwatch", "collect", "--once", "--config", str(config)],
                             capture_output=True, text=True, timeout=60, env=environment)
    assert refused.returncode == 1 and "stands still at 2021-02-07 21:00 UTC" in refused.stderr
    # the raw archive the demo wrote (X, Mastodon and Bluesky pages) imports into a fresh database with the
    # same figures: a normalization fix can always be re-applied to what was collected
    fresh = config.parent / "reimport.toml"
    fresh.write_text(config.read_text(encoding="utf-8").replace('database = "stormwatch.db"',
                                                                'database = "reimported.db"'))
    # (the campaign's folder and its companions': a hijacker's profile may have been read for the counter-
    # hashtags first, and the targets' pages are the campaign's archive too)
    raw = sorted((tmp_path / "data" / "demo" / "raw").glob("standwithissa*/*.jsonl.gz"))
    assert {f.parent.name for f in raw} == {"standwithissa", "standwithissa~counter", "standwithissa~targets"}
    assert {f.name.split("-")[0] for f in raw} == {"x", "mastodon", "bluesky"}
    imported = subprocess.run([sys.executable, "-m", "stormwatch", "import", *map(str, raw), "--config", str(fresh)],
                              capture_output=True, text=True, timeout=180, env=environment)
    assert imported.returncode == 0, imported.stderr
    again = json.loads(subprocess.run([sys.executable, "-m", "stormwatch", "summary", "--json", "--config",
                                       str(fresh)], capture_output=True, text=True, timeout=60, check=True).stdout)
    for key in ("posts", "contributors", "potential_reach", "engagement", "by_platform"):
        assert again[key] == summary[key], key
