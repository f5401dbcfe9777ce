"""`stormwatch collect` and `status` against the simulated platform: kill -9 and SIGTERM to a collector in a
process of its own (slow), and in this process (click's runner) bad credentials, an unreachable API, and secrets
that must never be written anywhere."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch.simulator.host import Faults
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.times import Clock

from .cli_support import Ran, invoke
from .conftest import T0, TOKEN, clock_section, storm_spec, write_config
from .port_support import refused_port
from .simulator_support import SEARCH_REPOSTS

STORM_OVER = T0 + timedelta(hours=3, minutes=5)


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(storm_spec(posts=3000, seed=11))


@pytest.fixture
def live(storm: Storm, tmp_path: Path) -> Iterator[tuple[SimulatedPlatform, Path]]:
    """The platform on a real-time storm clock that reads just after the storm, and a config sharing it."""
    clock = Clock(speed=1.0, anchor=STORM_OVER, anchor_wall=time.time())
    with SimulatedPlatform(storm, clock, token=TOKEN, faults=Faults(), search_reposts=SEARCH_REPOSTS) as server:
        yield server, write_config(tmp_path, server.url, top_extra=clock_section(clock))


def env(**extra: str | None) -> dict[str, str | None]:
    """The variables a command is run with, over this process's own: the token, and `extra` (None unsets)."""
    return {"X_BEARER_TOKEN": TOKEN, **extra}


def collector_process(config: Path) -> subprocess.Popen[str]:
    """`stormwatch collect` on the schedule, in a process of its own (to be killed)."""
    return subprocess.Popen([sys.executable, "-m", "stormwatch", "collect", "--config", str(config)],
                            env={**os.environ, "X_BEARER_TOKEN": TOKEN}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stormwatch(*args: str, environment: dict[str, str | None] | None = None) -> Ran:
    return invoke(*args, env=env() if environment is None else environment)


def database(config: Path) -> Path:
    return config.parent / "data" / "test.db"


def member_ids(config: Path) -> list[str]:
    with sqlite3.connect(database(config)) as conn:
        return [row[0] for row in conn.execute(
            "SELECT p.id FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid")]


def pending_sweeps(config: Path) -> int:
    with sqlite3.connect(database(config)) as conn:
        return conn.execute("SELECT count(*) FROM cursors WHERE pending IS NOT NULL").fetchone()[0]


def wait_for_members(config: Path, at_least: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else "collector exited"
        if database(config).exists():
            try:
                if len(member_ids(config)) >= at_least:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} posts stored after {timeout}s")


def truth_ids(server: SimulatedPlatform) -> set[str]:
    return set(server.storm.truth(T0, T0 + timedelta(hours=3)).post_ids)


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_sweep_leaves_no_gap(live: tuple) -> None:
    server, config = live
    server.faults.update(slow_every=1, slow_seconds=0.1)
    process = collector_process(config)
    try:
        wait_for_members(config, 700, process)
        process.kill()  # SIGKILL: no cleanup at all
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    stored_at_kill = len(member_ids(config))
    assert pending_sweeps(config) == 1, "the sweep was cut in the middle"
    server.faults.update(slow_every=0)
    result = stormwatch("collect", "--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert pending_sweeps(config) == 0
    ids = member_ids(config)
    assert len(ids) == len(set(ids)) and set(ids) == truth_ids(server)
    assert len(ids) > stored_at_kill
    # at most the one page in flight at the kill was delivered twice
    served_twice = [i for i, n in server.served_post_ids().items() if n > 1]
    assert len(served_twice) <= 100
    with sqlite3.connect(database(config)) as conn:
        statuses = [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY id")]
        errors = [row[0] for row in conn.execute("SELECT error FROM runs WHERE status = 'failed'")]
    assert "running" not in statuses
    assert any("interrupted" in (e or "") for e in errors)


@pytest.mark.slow
def test_sigterm_finishes_the_page_in_flight_and_exits_0(live: tuple) -> None:
    server, config = live
    server.faults.update(slow_every=1, slow_seconds=0.1)
    process = collector_process(config)
    wait_for_members(config, 300, process)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, process.stderr.read()
    with sqlite3.connect(database(config)) as conn:
        (status, error, requests, posts_new) = conn.execute(
            "SELECT status, error, requests, posts_new FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "partial" and "stopped by shutdown" in error
    assert posts_new == len(member_ids(config)) and requests >= 3
    # the next run finishes the sweep
    server.faults.update(slow_every=0)
    assert stormwatch("collect", "--once", "--config", str(config)).returncode == 0
    assert set(member_ids(config)) == truth_ids(server)


def test_missing_token_is_named_never_printed_and_nothing_is_touched(live: tuple) -> None:
    server, config = live
    result = stormwatch("collect", "--once", "--config", str(config), environment=env(X_BEARER_TOKEN=None))
    assert result.returncode == 2
    assert result.stderr.strip() == ("stormwatch: error: x: the environment variable X_BEARER_TOKEN "
                                     "(x.bearer_token_env) is not set; export your X API bearer token under that name")
    assert not database(config).exists()
    assert server.requests() == []


@pytest.mark.slow  # collects a 3,000-post storm first
def test_unreachable_api_is_one_line_and_keeps_what_was_stored(live: tuple, tmp_path: Path) -> None:
    server, config = live
    assert stormwatch("collect", "--once", "--config", str(config)).returncode == 0
    before = sorted(member_ids(config))
    with refused_port() as closed:
        config.write_text(config.read_text().replace(server.url, f"http://127.0.0.1:{closed}"))
        result = stormwatch("collect", "--once", "--config", str(config))
        assert result.returncode == 1
        assert result.stdout.strip().splitlines()[-1] == (
            f"standwithissa/x: failed — 0 new posts, 5 requests, $0.00 — x: cannot reach http://127.0.0.1:{closed}: "
            "connection refused (gave up after 5 attempts)")
        assert sorted(member_ids(config)) == before
        assert stormwatch("collect", "--once", "--config", str(config)).returncode == 1
    status = stormwatch("status", "--config", str(config)).stdout
    assert re.search(r"\n  x: failing since \d\d:\d\d \(2 runs\) — x: cannot reach", status), status
    assert "up to date" not in status


@pytest.mark.slow  # collects a 3,000-post storm, then reads it
def test_the_token_never_reaches_logs_database_or_archive(live: tuple) -> None:
    _, config = live
    result = stormwatch("collect", "--once", "--verbose", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "DEBUG" in (config.parent / "data" / "stormwatch.log").read_text()
    haystacks = {"stdout": result.stdout.encode(), "stderr": result.stderr.encode()}
    for path in (config.parent / "data").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            haystacks[str(path)] = gzip.decompress(data) if path.suffix == ".gz" else data
    assert any(b"StandWithIssa" in data for data in haystacks.values())
    leaks = [name for name, data in haystacks.items() if TOKEN.encode() in data]
    assert leaks == []


@pytest.mark.slow  # collects a 3,000-post storm, then reads it
def test_status_shows_cursors_runs_and_spend(live: tuple) -> None:
    server, config = live
    assert stormwatch("collect", "--once", "--config", str(config)).returncode == 0
    result = stormwatch("status", "--config", str(config))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "standwithissa: 2" in text or "standwithissa:" in text
    assert "(#StandWithIssa OR #DropTheCharges OR #FreePoliticalPrisoners): newest" in text
    assert "up to date" in text and "last run" in text
    report = json.loads(stormwatch("status", "--json", "--config", str(config)).stdout)
    (campaign,) = report["campaigns"]
    assert campaign["posts"] == len(truth_ids(server))
    (source,) = campaign["sources"]
    assert source["last_run"]["status"] in ("ok", "partial")
    assert source["spent_today_usd"] > 0 and source["requests_today"] >= 30
    assert campaign["spent_today_usd"] == pytest.approx(source["spent_today_usd"])
    # every run so far was today's: the campaign's total is today's spend (issue 17)
    assert campaign["spent_total_usd"] == pytest.approx(campaign["spent_today_usd"])
    assert f"campaign total ${campaign['spent_total_usd']:,.2f} (every run, any day)" in text
    assert f"storm total ${campaign['storm_spent_usd']:,.2f} (X's billing days of the window, and the plan)" in text


def test_status_says_when_the_budget_pauses_reads_and_warns_when_it_cannot_reach_the_goal(live: tuple) -> None:
    _, config = live
    # the campaign is the last table: these keys are its own
    config.write_text(config.read_text() + "daily_budget_usd = 0.05\ngoal_posts = 20000\ngoal_contributors = 3000\n")
    collected = stormwatch("collect", "--once", "--config", str(config))
    assert collected.returncode == 0, collected.stderr
    warning = ("daily_budget_usd $0.05 cannot reach goal_posts 20,000 on X: 20,000 posts × $0.005 + 3,000 authors "
               "× $0.010 + 180 counts requests × $0.005 = $130.90; post reads would pause at 18:00 Asia/Hebron")
    assert warning in collected.stderr
    status = stormwatch("status", "--config", str(config)).stdout
    assert "x: paused by the budget until Mon 8 Feb 02:00 (X's day ends)" in status  # 00:00 UTC in Hebron
    assert status.replace(warning, "").count("Asia/Hebron") == 1 and "UTC" not in status  # one zone, named once
    assert "up to date" not in status and warning in status
    assert re.search(r"standwithissa: [\d,]+ supporters' posts in the storm window, [\d,]+ collected \(all time, "
                     r"hijack candidates left out\)", status)
    assert re.search(r"spent today \$[\d.]+ of \$0\.05 \(X reads; X's day ends at Mon 8 Feb 02:00\) — reached", status)


@pytest.mark.slow  # collects a 3,000-post storm, then reads it
def test_summary_says_what_each_figure_is_and_an_empty_window_says_so(live: tuple) -> None:
    _, config = live
    assert stormwatch("collect", "--once", "--config", str(config)).returncode == 0
    text = stormwatch("summary", "--config", str(config)).stdout
    data = json.loads(stormwatch("summary", "--json", "--config", str(config)).stdout)
    assert f"posts              {data['posts']:>11,}" in text and f"{data['reposts']:,} reposts" in text
    assert re.search(r"peak minute +[\d,]+  posts in the minute from \d\d:\d\d$", text, re.M)
    assert text.count("Asia/Hebron") == 1 and "UTC" not in text  # one zone, named once
    assert "standwithissa: Sun 7 Feb 18:00 → 21:00 (Asia/Hebron), all platforms" in text
    assert data["not_reported"] == [] and "not reported" not in text  # X reports everything
    empty = stormwatch("summary", "--config", str(config), "--since", "2021-02-08T10:00", "--until",
                       "2021-02-08T11:00").stdout
    assert "no posts in this window" in empty and "None" not in empty


def test_status_without_a_database_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    result = stormwatch("status", "--config", str(config))
    assert result.returncode == 1
    assert "no database yet" in result.stderr and not database(config).exists()


def test_config_is_taken_before_or_after_the_command(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    after = stormwatch("status", "--config", str(config), environment=env(STORMWATCH_CONFIG=""))
    before = stormwatch("--config", str(config), "status", environment=env(STORMWATCH_CONFIG=""))
    assert after.returncode == before.returncode == 1
    assert str(database(config)) in after.stderr and after.stderr == before.stderr  # the same file, either way
    written = tmp_path / "elsewhere" / "config.toml"
    assert stormwatch("--config", str(written), "init").returncode == 0 and written.exists()
    # given twice, the command's own wins
    assert stormwatch("--config", str(tmp_path / "nowhere.toml"), "status", "--config", str(config)).stderr == (
        after.stderr)
