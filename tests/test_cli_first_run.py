"""What a new organizer meets first, through the real commands (CliRunner) against the simulated platforms: alerts
from `collect --once` (the cron way), X skipped without its token, no config, no database, one collector per
database, `--config` before or after every command, and every time in the campaign's zone, named once."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from stormwatch.cli import main
from stormwatch.config import load_config
from stormwatch.simulator.host import Faults
from stormwatch.simulator.mastodon import InstanceSettings, instance_urls, mount_mastodon
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.store import Store, collector_lock
from stormwatch.times import Clock, local_span, local_stamps, local_time

from .conftest import T0, TOKEN, clock_section, storm_spec, write_config
from .simulator_support import SEARCH_REPOSTS

STORM_OVER = T0 + timedelta(hours=3, minutes=2)


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(storm_spec(posts=1500, seed=5))


@pytest.fixture
def rehearsal(storm: Storm, tmp_path: Path) -> Iterator[Path]:
    """X and a Mastodon instance, simulated on a storm clock that reads just after the storm; a config with
    `[alerts]` sharing that clock."""
    clock = Clock(speed=1.0, anchor=STORM_OVER, anchor_wall=time.time())
    with SimulatedPlatform(storm, clock, token=TOKEN, faults=Faults(), search_reposts=SEARCH_REPOSTS) as server:
        mount_mastodon(server, {"mastodon.social": InstanceSettings()})
        instances = instance_urls(server, ["mastodon.social"])
        yield write_config(tmp_path, server.url, campaign_extra='sources = ["x", "mastodon"]\n',
                           top_extra=f"{clock_section(clock)}\n[alerts]\nurls_env = \"NO_ALERT_URLS_HERE\"\n"
                                     f"[mastodon]\ninstances = {instances!r}\n")


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_collect_once_tells_the_alerts_due_like_the_scheduled_collector(rehearsal: Path, token: None) -> None:
    collected = run("collect", "--once", "--config", str(rehearsal))
    assert collected.exit_code == 0, collected.output
    # The run that first sees the targets named tells it; one run past the end tells the end, with its figures.
    for headline in ("@antonioguterres named for the first time", "@vonderleyen named for the first time",
                     "#StandWithIssa storm has ended (21:00 Asia/Hebron)"):
        assert re.search(rf"^  alert \d\d:\d\d: {re.escape(headline)}$", collected.output, re.M), collected.output
    assert "the report can be written now" in collected.output and "stormwatch report" not in collected.output
    config = load_config(rehearsal)
    with Store.open(config.storage.database) as store:
        kinds = [record.kind for record in store.alerts("standwithissa", limit=50)]
    assert kinds.count("storm_ended") == 1 and kinds.count("new_target") == 2
    again = run("collect", "--once", "--config", str(rehearsal))  # cron again: nothing is told twice
    assert again.exit_code == 0 and "alert" not in again.output
    # `alerts list`: local times, the zone named once; JSON keeps ISO 8601 UTC
    for args in (("alerts", "list", "--config", str(rehearsal)), ("alerts", "--config", str(rehearsal), "list"),
                 ("--config", str(rehearsal), "alerts", "list")):
        listed = run(*args)
        assert listed.exit_code == 0, listed.output
        assert listed.output.startswith("times in Asia/Hebron\n") and listed.output.count("Asia/Hebron") == 2
        assert "storm_ended: #StandWithIssa storm has ended" in listed.output and "UTC" not in listed.output
    as_json = run("alerts", "list", "--json", "--config", str(rehearsal)).output
    assert re.search(r'"sent_at": "2021-02-07T19:0\d:\d\d\.\d{3}Z"', as_json)


def test_collect_without_the_x_token_collects_the_free_platforms_and_says_how_in_one_line(
        rehearsal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["collect", "--once", "--config", str(rehearsal)])
    assert result.exit_code == 1
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert skipped == ['stormwatch: x skipped: the environment variable X_BEARER_TOKEN (x.bearer_token_env) is not '
                       'set; export your X API bearer token under that name; or take "x" out of the campaign\'s '
                       'sources in config.toml (collecting the other platforms)']
    assert re.search(r"^standwithissa/mastodon: ok — [\d,]+ new posts", result.stdout, re.M)
    assert "standwithissa/x" not in result.stdout


def test_a_second_collector_on_the_same_database_is_refused_in_one_line(rehearsal: Path, token: None) -> None:
    database = load_config(rehearsal).storage.database
    with collector_lock(database, "stormwatch dashboard --collect"):
        refused = run("collect", "--once", "--config", str(rehearsal))
    assert refused.exit_code != 0
    assert refused.stderr.strip() == (f"stormwatch: error: {database}: refused: a collector already runs on this "
                                      f"database (`stormwatch dashboard --collect`, process {os.getpid()}); one "
                                      "collector per database")
    assert run("collect", "--once", "--config", str(rehearsal)).exit_code == 0  # let go: collecting goes on


def test_no_config_says_the_full_path_and_how_to_name_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STORMWATCH_CONFIG", raising=False)
    for args in (("status",), ("alerts", "list"), ("alerts", "test")):
        result = run(*args)
        assert result.exit_code != 0
        assert result.stderr == (f"stormwatch: error: {tmp_path / 'config.toml'}: no config file there (name yours "
                                 "with --config PATH or $STORMWATCH_CONFIG; `stormwatch init` writes a new one)\n")


def test_no_database_yet_suggests_collect(rehearsal: Path) -> None:
    result = run("--config", str(rehearsal), "status")
    database = load_config(rehearsal).storage.database
    assert result.exit_code != 0
    assert result.stderr == (f"stormwatch: error: {database}: no database yet (`stormwatch collect` with this config "
                             "collects into it)\n")
    assert "demo" not in result.stderr


def test_help_texts_give_the_formats() -> None:
    for command in ("summary", "report"):
        text = " ".join(run(command, "--help").output.split())
        assert "--since TIME Window start, an ISO 8601 time: 2021-02-07T18:00 in the campaign's time zone" in text
    for args in (("alerts", "--help"), ("alerts", "list", "--help"), ("alerts", "test", "--help"), ("demo", "--help")):
        assert "--config" in run(*args).output, args


def test_times_for_people_carry_the_date_when_they_cross_midnight() -> None:
    zone = ZoneInfo("Asia/Hebron")
    evening, night = datetime(2020, 12, 7, 21, 0, tzinfo=UTC), datetime(2020, 12, 8, 0, 0, tzinfo=UTC)
    assert local_span(evening, night, zone) == "Mon 7 Dec 23:00 → Tue 8 Dec 02:00"
    assert local_span(evening, evening + timedelta(minutes=45), zone, today=evening) == "23:00 → 23:45"
    assert local_time(night, zone, today=evening) == "Tue 8 Dec 02:00" and local_time(night, zone, night) == "02:00"
    said = "x: 429 Too Many Requests; paused until 2020-12-07T21:15:00Z"
    assert local_stamps(said, zone, evening) == "x: 429 Too Many Requests; paused until 23:15"


def test_the_demo_takes_config_before_or_after_and_never_empties_a_folder_not_its_own(tmp_path: Path) -> None:
    mine = tmp_path / "campaign"
    mine.mkdir()
    (mine / "stormwatch.db").write_bytes(b"an organizer's real database")
    for args in (("demo", "--config", str(mine / "config.toml")), ("--config", str(mine / "config.toml"), "demo")):
        result = run(*args, "--headless")
        assert result.exit_code != 0 and result.stderr == (
            f"stormwatch: error: {mine}: not empty and not a demo's folder; the demo writes its config, database and "
            "log into a folder of its own (choose an empty one with --config)\n")
    assert (mine / "stormwatch.db").read_bytes() == b"an organizer's real database"
