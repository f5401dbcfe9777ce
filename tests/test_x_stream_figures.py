"""X's filtered stream in the figures (issue 16): connected time, posts, gaps with their reasons and the reposts
the gaps may have missed, through `summary`, `status`, the dashboard and the report."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from stormwatch.cli import main
from stormwatch.config import Config, load_config
from stormwatch.metrics import StreamGap, campaign_window, stream_coverage
from stormwatch.models import Batch, Post
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .conftest import T0, config_text, x_post

CAMPAIGN = "standwithissa"
AFTER = T0 + timedelta(hours=4)  # the storm (T0 to T0 + 3 h) is over


def minutes(n: float) -> datetime:
    """T0 plus `n` minutes."""
    return T0 + timedelta(minutes=n)


def post_at(native: str, at: datetime, *, kind: str = "original", reposts: int = 0, ref: str | None = None,
            metrics_at: datetime | None = None) -> Post:
    """An X campaign post made at `at` (counters read at `metrics_at`)."""
    return replace(x_post(native, kind=kind, metrics_at=iso_utc(metrics_at or at)), created_at=iso_utc(at),
                   ts=int(at.timestamp()), repost_count=reposts, ref_uid=ref)


def write_setup(tmp_path: Path, *, frozen_at: datetime = AFTER, x_extra: str = "", campaign_extra: str = "") -> Path:
    """A config in `tmp_path` whose clock stands at `frozen_at`; its path."""
    top = f'[clock]\nfrozen_at = "{iso_utc(frozen_at)}"\n'
    path = tmp_path / "config.toml"
    path.write_text(config_text("http://127.0.0.1:9", top_extra=top, x_extra=x_extra, campaign_extra=campaign_extra))
    return path


def database(config: Config) -> Store:
    """The config's database, opened for writing."""
    config.storage.database.parent.mkdir(parents=True, exist_ok=True)
    return Store.open(config.storage.database)


def save(store: Store, connection: int | None, at: datetime, *posts: Post) -> None:
    """Store posts as the stream's batch of `connection` at `at`."""
    store.save_page(Batch(posts=posts), campaign=CAMPAIGN, cursor=None, run_id=None, collected_at=at,
                    stream_connection=connection)


def two_connections_and_a_kill(store: Store) -> None:
    """A from the lead to 18:20 (dropped); B 18:25 until its collector was killed (last seen 18:40: the next open
    closes it as "collector stopped"); C 19:00 to 20:30 (the budget); nothing until the end at 21:00 (Hebron)."""
    a = store.open_stream_connection("x", minutes(-30))
    save(store, a, minutes(5), post_at("a1", minutes(4)), post_at("a2", minutes(5)))
    store.close_stream_connection(a, minutes(20), "dropped")
    b = store.open_stream_connection("x", minutes(25))
    save(store, b, minutes(40), post_at("b1", minutes(30)), post_at("b2", minutes(35)), post_at("b3", minutes(39)))
    c = store.open_stream_connection("x", minutes(60))  # the collector started again: B was abandoned
    save(store, c, minutes(70), post_at("c1", minutes(69)))
    store.close_stream_connection(c, minutes(150), "budget")


EXPECTED_GAPS = (StreamGap(minutes(20), minutes(25), "dropped"),
                 StreamGap(minutes(40), minutes(60), "collector stopped"),
                 StreamGap(minutes(150), minutes(180), "budget"))


def test_two_connections_and_a_kill_give_exactly_the_expected_gaps(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    campaign = config.campaign(CAMPAIGN)
    with database(config) as store:
        two_connections_and_a_kill(store)
        coverage = stream_coverage(store, config, campaign, campaign_window(campaign), AFTER)
    assert coverage is not None
    assert coverage.gaps == EXPECTED_GAPS
    assert coverage.connected_seconds == (20 + 15 + 90) * 60  # the lead before the window is not counted
    assert coverage.connected_seconds + coverage.gap_seconds == 3 * 3600
    assert coverage.posts == 6
    assert coverage.current_gap is None and coverage.connected_since is None
    assert coverage.reposts_missed_estimate == 0  # no original was reposted
    assert coverage.to_json()["gaps"][1] == {"from": "2021-02-07T16:40:00.000Z", "to": "2021-02-07T17:00:00.000Z",
                                             "reason": "collector stopped"}


def test_during_the_storm_an_open_connection_covers_up_to_now_and_a_gap_lasts_until_now(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    campaign = config.campaign(CAMPAIGN)
    window = campaign_window(campaign)
    with database(config) as store:
        assert stream_coverage(store, config, campaign, window, minutes(10)) == stream_coverage(
            store, config, campaign, window, minutes(10))
        never = stream_coverage(store, config, campaign, window, minutes(10))
        a = store.open_stream_connection("x", minutes(-30))
        save(store, a, minutes(5), post_at("a1", minutes(4)))
        live = stream_coverage(store, config, campaign, window, minutes(50))
        store.close_stream_connection(a, minutes(55), "stalled")
        down = stream_coverage(store, config, campaign, window, minutes(70))
    assert never is not None and never.gaps == (StreamGap(T0, minutes(10), "not connected"),)
    assert never.current_gap == never.gaps[0] and never.connected_seconds == 0 and never.posts == 0
    assert live is not None and live.gaps == () and live.connected_seconds == 50 * 60
    assert live.connected_since == minutes(-30) and live.posts == 1
    assert down is not None and down.current_gap == StreamGap(minutes(55), minutes(70), "stalled")
    assert down.connected_seconds == 55 * 60


def test_a_window_narrowed_by_since_and_until_and_before_the_lead(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    campaign = config.campaign(CAMPAIGN)
    with database(config) as store:
        two_connections_and_a_kill(store)
        middle = stream_coverage(store, config, campaign, campaign_window(campaign, minutes(30), minutes(70)), AFTER)
        early = stream_coverage(store, config, campaign, campaign_window(campaign, minutes(-90), minutes(10)), AFTER)
    assert middle is not None and middle.gaps == (StreamGap(minutes(40), minutes(60), "collector stopped"),)
    assert middle.connected_seconds == 20 * 60
    # The stream has no duty before its lead (30 minutes before the start): no gap there.
    assert early is not None and early.since == minutes(-30) and early.gaps == ()
    assert early.connected_seconds == 40 * 60


def test_stream_off_or_no_x_gives_no_figures_at_all(tmp_path: Path) -> None:
    off = load_config(write_setup(tmp_path, x_extra="stream = false"))
    campaign = off.campaign(CAMPAIGN)
    with database(off) as store:
        two_connections_and_a_kill(store)
        assert stream_coverage(store, off, campaign, campaign_window(campaign), AFTER) is None
        on = load_config(write_setup(tmp_path))
        mastodon_only = campaign_window(campaign, platform="mastodon")
        assert stream_coverage(store, on, on.campaign(CAMPAIGN), mastodon_only, AFTER) is None


def test_the_reposts_missed_are_estimated_from_what_x_counted_and_what_was_stored(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    campaign = config.campaign(CAMPAIGN)
    with database(config) as store:
        two_connections_and_a_kill(store)
        # o1: 30 reposts counted at the window's end, 5 of them stored; all its unconnected time is in the gaps.
        save(store, None, minutes(200), post_at("o1", minutes(10), reposts=30, metrics_at=minutes(180)),
             *(post_at(f"r{n}", minutes(30 + n), kind="repost", ref="x:o1") for n in range(5)))
        # a repost stored after o1's counters were read is not among those counted: it does not reduce the estimate
        save(store, None, minutes(200), post_at("late", minutes(185), kind="repost", ref="x:o1"))
        first = stream_coverage(store, config, campaign, campaign_window(campaign), AFTER)
        # o2: 10 not stored, read an hour after the end: of its 115 unconnected minutes 55 are gaps.
        save(store, None, minutes(250), post_at("o2", minutes(10), reposts=10, metrics_at=minutes(240)))
        second = stream_coverage(store, config, campaign, campaign_window(campaign), AFTER)
    assert first is not None and first.reposts_missed_estimate == 25
    assert second is not None and second.reposts_missed_estimate == round(25 + 10 * 55 / 115)


@pytest.mark.slow
def test_a_collector_killed_while_connected_is_a_gap_before_and_after_the_next_connection(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path))
    campaign = config.campaign(CAMPAIGN)
    with database(config):
        pass
    code = ("from datetime import datetime, timedelta, UTC; from stormwatch.store import Store; "
            "from stormwatch.models import Batch; import os, sys\n"
            "from tests.test_x_stream_figures import post_at, save, T0\n"
            f"s = Store.open({str(config.storage.database)!r})\n"
            "c = s.open_stream_connection('x', T0)\n"
            "save(s, c, T0 + timedelta(minutes=30), post_at('k1', T0 + timedelta(minutes=29)))\n"
            "os._exit(9)")  # killed: its row stays open
    killed = subprocess.run([sys.executable, "-c", code], timeout=60, cwd=Path(__file__).parents[1])
    assert killed.returncode == 9
    with database(config) as store:
        before = stream_coverage(store, config, campaign, campaign_window(campaign), minutes(45))
        store.open_stream_connection("x", minutes(50))
        after = stream_coverage(store, config, campaign, campaign_window(campaign), minutes(55))
    assert before is not None and before.gaps == (StreamGap(minutes(30), minutes(45), "collector stopped"),)
    assert before.posts == 1 and before.connected_since is None
    assert after is not None and after.gaps == (StreamGap(minutes(30), minutes(50), "collector stopped"),)
    assert after.connected_since == minutes(50)


# --- summary ---------------------------------------------------------------------------------------------------


def run(*args: str) -> str:
    """A stormwatch command through click's runner: its output (it must succeed)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_summary_json_has_the_stream_and_the_plain_summary_a_line_with_each_gap(tmp_path: Path) -> None:
    path = write_setup(tmp_path)
    config = load_config(path)
    with database(config) as store:
        two_connections_and_a_kill(store)
        save(store, None, minutes(200), post_at("o1", minutes(10), reposts=30, metrics_at=minutes(180)))
    data = json.loads(run("summary", "--json", "--config", str(path)))
    assert data["x_stream"] == {
        "connected_seconds": 7500, "posts": 6, "reposts_missed_estimate": 30,
        "gaps": [{"from": "2021-02-07T16:20:00.000Z", "to": "2021-02-07T16:25:00.000Z", "reason": "dropped"},
                 {"from": "2021-02-07T16:40:00.000Z", "to": "2021-02-07T17:00:00.000Z",
                  "reason": "collector stopped"},
                 {"from": "2021-02-07T18:30:00.000Z", "to": "2021-02-07T19:00:00.000Z", "reason": "budget"}]}
    assert "estimate" in data["definitions"]["x_stream.reposts_missed_estimate"]
    text = run("summary", "--config", str(path))
    assert ("x stream                 2h05m  connected of 3h00m, 6 posts stored; 3 gaps: Sun 7 Feb 18:20–18:25 "
            "(dropped), Sun 7 Feb 18:40–19:00 (collector stopped), Sun 7 Feb 20:30–21:00 (budget)") in text
    assert "  reposts missed             ≈30  in the gaps: an estimate, not a count" in text


def test_with_the_stream_off_the_summary_says_not_reported_never_zero(tmp_path: Path) -> None:
    path = write_setup(tmp_path, x_extra="stream = false")
    with database(load_config(path)) as store:
        save(store, None, minutes(5), post_at("s1", minutes(4)))
    data = json.loads(run("summary", "--json", "--config", str(path)))
    assert data["x_stream"] is None and "x_stream.posts" not in data["definitions"]
    text = run("summary", "--config", str(path))
    stream_line = next(line for line in text.splitlines() if "x stream" in line)
    assert "—" in stream_line and "0" not in stream_line


# --- status ----------------------------------------------------------------------------------------------------


def stream_status(path: Path) -> str:
    """The `x stream:` line of `stormwatch status`."""
    return next(line.strip() for line in run("status", "--config", str(path)).splitlines() if "x stream" in line)


def test_status_says_since_when_the_stream_is_connected_or_the_gap_going_on(tmp_path: Path) -> None:
    path = write_setup(tmp_path, frozen_at=minutes(22))
    with database(load_config(path)) as store:
        a = store.open_stream_connection("x", minutes(-30))
        save(store, a, minutes(5), post_at("a1", minutes(4)), post_at("a2", minutes(5)))
        store.close_stream_connection(a, minutes(20), "dropped")
    assert stream_status(path) == "x stream: disconnected since 18:20 (dropped), 2 posts stored"
    status = json.loads(run("status", "--json", "--config", str(path)))["campaigns"][0]["x_stream"]
    assert status["gaps"] == [{"from": "2021-02-07T16:20:00.000Z", "to": "2021-02-07T16:22:00.000Z",
                               "reason": "dropped"}]
    path = write_setup(tmp_path, frozen_at=minutes(45))
    with database(load_config(path)) as store:
        b = store.open_stream_connection("x", minutes(25))
        save(store, b, minutes(40), post_at("b1", minutes(30)))
    assert stream_status(path) == "x stream: connected since 18:25, 3 posts stored"
    path = write_setup(tmp_path, frozen_at=minutes(-60))
    assert stream_status(path) == "x stream: connects at 17:30 (30 min before the storm)"


def test_status_lists_the_rules_other_programs_keep_on_the_app(tmp_path: Path) -> None:
    path = write_setup(tmp_path, frozen_at=minutes(45))
    hostile = "from:someone\x1b[31m " + "x" * 200
    with database(load_config(path)) as store:
        store.open_stream_connection("x", minutes(25), [("from:someone_else", "another-tool"), (hostile, "")])
    lines = [line.strip() for line in run("status", "--config", str(path)).splitlines() if "x stream" in line]
    assert lines[0] == "x stream: connected since 18:25, 0 posts stored"
    assert lines[1].startswith("x stream: 2 rules of another program on this app, left alone (its posts are not "
                               "stored): 'from:someone_else' (another-tool), 'from:someone[31m xxx")
    assert "\x1b" not in lines[1] and lines[1].endswith("…' (no tag)")


def test_status_after_the_storm_and_with_the_stream_off(tmp_path: Path) -> None:
    path = write_setup(tmp_path)
    with database(load_config(path)) as store:
        two_connections_and_a_kill(store)
    assert stream_status(path) == ("x stream: storm over: connected 2h05m of the window, 3 gaps, 6 posts "
                                   "(`stormwatch summary` lists the gaps)")
    path = write_setup(tmp_path, x_extra="stream = false")
    assert stream_status(path) == "x stream: off — X is read by search only, which returns no reposts"
    assert json.loads(run("status", "--json", "--config", str(path)))["campaigns"][0]["x_stream"] is None
