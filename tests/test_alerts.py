"""Alerts: each kind told once per condition through a real local receiver behind a json:// Apprise URL; a
failing or hanging service never holds up collection; no secret and no pseudonymized account in any message."""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stormwatch import metrics
from stormwatch.alerts import ONCE_EACH, AlertWatcher, service_label
from stormwatch.collector import Collector
from stormwatch.config import Config, load_config
from stormwatch.console import secret_parts
from stormwatch.store import AlertRecord, Store
from stormwatch.store.live import LiveFeedState, write_live_state
from stormwatch.times import iso_utc

from .cli_support import invoke
from .conftest import T0, TOKEN, write_config

ALERTS_TABLE = '[alerts]\nurls_env = "TEST_ALERT_URLS"\nmin_gap = "10m"\ntimeout = "{timeout}"\n'


class Receiver:
    """A local HTTP server standing in for a chat service: records each JSON message, or fails, or hangs."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.messages: list[dict[str, Any]] = []
        self.holding = threading.Event()  # a request is being held (mode "hang")
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.mode == "hang":
                    receiver.holding.set()
                    receiver.release.wait(30)
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.messages.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, secret: str = "") -> str:
        """The Apprise URL of this receiver (optionally with credentials and a token in its path, as many have)."""
        credentials = f"organizer:{secret}@" if secret else ""
        path = f"/hook/{secret}" if secret else "/"
        return f"json://{credentials}127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def alert_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def storm_config(directory: Path, api_base: str, *, budget: float | None = None, timeout: str = "10s") -> Config:
    return load_config(write_config(directory, api_base, budget=budget, top_extra=ALERTS_TABLE.format(timeout=timeout),
                                    campaign_extra="goal_posts = 600\ngoal_contributors = 150\n"))


def keys(receiver: Receiver) -> Counter[str]:
    return Counter(m["title"] for m in receiver.messages)


@pytest.mark.slow  # plays a storm
def test_each_kind_is_told_once_per_condition_as_the_storm_goes(tmp_path: Path, platform: tuple, receiver: Receiver,
                                                                 alert_env: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server, clock = platform
    secret = "s3cret-hook-token-42"
    monkeypatch.setenv("TEST_ALERT_URLS", receiver.url(secret))
    config = storm_config(tmp_path, server.url)
    campaign = config.campaigns[0]
    collector = Collector(config, clock=clock)
    watcher = AlertWatcher(config, config.campaigns, config.clock)
    told: list[str] = []
    steps = [-45, -29, -20, 1, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 75, 90, 120, 150, 179, 190, 200]
    with Store.open(config.storage.database) as store:
        for minutes in steps:
            clock.set(T0 + timedelta(minutes=minutes))
            if minutes == 60:  # the source fails three runs in a row (the error names the token: never told)
                for _ in range(3):
                    run_id = store.start_run(campaign.name, "x", clock.now())
                    store.finish_run(run_id, "failed", clock.now(), error=f"x: 401 Unauthorized: token {TOKEN}")
            else:
                (record,) = collector.run_once()
                assert record.status in ("ok", "partial"), record.error
            for _ in range(2):  # checking twice at the same moment tells nothing twice
                told += [r.condition_key for r in watcher.check(clock.now(), store=store)]
            if minutes == 60:
                assert any(k.startswith("source_failing:x:") for k in told)
        records = store.alerts(campaign.name, limit=100)
        busiest = metrics.peak_minute(store, campaign.name, metrics.campaign_window(campaign)).posts
    collector.close()

    kinds = Counter(key.split(":")[0] for key in told)
    assert len(told) == len(set(told)) == len(receiver.messages)  # once per condition, each one delivered
    assert {"storm_soon", "storm_started", "goal", "fading", "new_target", "source_failing", "source_recovered",
            "storm_ended"} <= set(kinds)
    assert kinds["storm_soon"] == kinds["storm_started"] == kinds["storm_ended"] == 1
    assert {"goal:posts:50", "goal:posts:100", "goal:people:50", "goal:people:100"} >= {
        k for k in told if k.startswith("goal:")} and "goal:posts:100" in told
    assert {"new_target:antonioguterres", "new_target:vonderleyen"} <= set(told)
    assert all(r.services_tried == r.services_ok == 1 and r.error is None for r in records)
    order = [key.split(":")[0] for key in told]
    assert order.index("storm_soon") < order.index("storm_started") < order.index("storm_ended") == len(order) - 1
    assert order.index("source_failing") < order.index("source_recovered")
    # min_gap (storm time): two alerts of one kind are at least ten minutes apart
    by_kind: dict[str, list] = {}
    for alert in sorted(records, key=lambda r: r.sent_at):
        by_kind.setdefault(alert.kind, []).append(alert.sent_at)
    assert any(len(moments) > 1 for moments in by_kind.values())
    for kind, moments in by_kind.items():
        if kind not in ONCE_EACH:  # once per subject: two targets named in one run are both told in that run
            assert all(b - a >= timedelta(minutes=10) for a, b in itertools.pairwise(moments))
    end = next(m for m in receiver.messages if "has ended" in m["title"])
    assert "the report can be written now" in end["message"] and "stormwatch report" not in end["message"]
    assert busiest > 0 and f"peak {busiest:,} posts a minute" in end["message"]  # the whole window's busiest minute
    assert "; cost $" in end["message"]  # the storm read X: what it cost, over the storm's UTC days
    assert all(len(m["message"].splitlines()) <= 3 for m in receiver.messages)

    # nothing that must stay private went out: no secret, no account the report would pseudonymize
    sent = "\n".join(f"{m['title']}\n{m['message']}" for m in receiver.messages)
    for secret_value in (TOKEN, secret, *secret_parts(config.alerts.urls())):
        assert secret_value not in sent
    assert "[redacted]" in sent  # the failing source's error carried the token
    hidden = small_accounts(config)
    assert hidden and not [handle for handle in hidden if f"@{handle}".casefold() in sent.casefold()]
    assert "most active named account @" in end["message"]


def small_accounts(config: Config) -> list[str]:
    """Handles of accounts a pseudonymized report hides (under the threshold, not the campaign's or targets)."""
    campaign = config.campaigns[0]
    public = {h.casefold() for h in (*campaign.accounts, *campaign.targets)}
    with Store.open(config.storage.database) as store:
        rows = store.conn.execute("SELECT handle FROM accounts WHERE coalesce(followers_count, 0) < ?",
                                  (config.report.pseudonymize_below,)).fetchall()
    return [handle for (handle,) in rows if handle.casefold() not in public]


@pytest.mark.slow  # plays a storm
def test_budget_warning_then_reached_once_each(tmp_path: Path, platform: tuple, receiver: Receiver, alert_env: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server, clock = platform
    monkeypatch.setenv("TEST_ALERT_URLS", receiver.url())
    config = storm_config(tmp_path, server.url, budget=4.0)
    collector = Collector(config, clock=clock)
    watcher = AlertWatcher(config, config.campaigns, config.clock)
    told: list[str] = []
    with Store.open(config.storage.database) as store:
        clock.set(T0)
        for _ in range(40):
            clock.advance(60)
            collector.run_once()
            told += [r.condition_key for r in watcher.check(clock.now(), store=store)]
            told += [r.condition_key for r in watcher.check(clock.now(), store=store)]
    collector.close()
    budget = [key for key in told if key.startswith("budget")]
    assert budget == ["budget_warning:2021-02-07", "budget_reached:2021-02-07"]
    reached = next(m for m in receiver.messages if m["title"].startswith("Daily budget reached"))
    assert "paused until Mon 8 Feb 02:00" in reached["message"]  # 00:00 UTC, the next day, in Hebron


@pytest.mark.slow  # waits out real timeouts
def test_a_failing_or_hanging_service_never_holds_up_collection(tmp_path: Path, platform: tuple, alert_env: None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server, clock = platform
    hanging, failing = Receiver("hang"), Receiver("fail")
    try:
        monkeypatch.setenv("TEST_ALERT_URLS", f"{hanging.url()} {failing.url()}")
        config = storm_config(tmp_path, server.url, timeout="20s")
        collector = Collector(config, clock=clock)
        watcher = AlertWatcher(config, config.campaigns, config.clock)
        watcher.start_sender()
        clock.set(T0 + timedelta(minutes=1))
        with Store.open(config.storage.database) as store:
            (first,) = watcher.check(clock.now(), store=store)  # storm_soon is stale now: the start is told
            assert first.kind == "storm_started"
            assert hanging.holding.wait(10)  # the sender is stuck in the hanging service...
            (record,) = collector.run_once()  # ...and collection goes on meanwhile
            assert record.status == "ok" and record.finished_at is not None and record.posts_new > 0
            assert not hanging.release.is_set() and store.alerts(limit=1)[0].services_tried is None
            hanging.release.set()
            watcher.stop()
            (after,) = [r for r in store.alerts() if r.id == first.id]
        collector.close()
        assert (after.services_tried, after.services_ok) == (2, 1)  # the hanging one answered in the end
        assert after.error == "json://127.0.0.1: not delivered (see the log)"
        # the failing service is tried again with the next alert, and reaches it once it works
        failing.mode = "ok"
        clock.set(T0 + timedelta(minutes=20))
        with Store.open(config.storage.database) as store:
            collector = Collector(config, clock=clock)
            collector.run_once()
            collector.close()
            later = AlertWatcher(config, config.campaigns, config.clock).check(clock.now(), store=store)
        assert later and all(r.services_ok == 2 for r in later)
        assert len(failing.messages) == len(later)
    finally:
        hanging.close()
        failing.close()


@pytest.mark.slow  # waits out real timeouts
def test_a_service_that_never_answers_times_out(tmp_path: Path, platform: tuple, alert_env: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server, clock = platform
    hanging = Receiver("hang")
    try:
        monkeypatch.setenv("TEST_ALERT_URLS", hanging.url())
        config = storm_config(tmp_path, server.url, timeout="1s")
        clock.set(T0 + timedelta(minutes=1))
        with Store.open(config.storage.database) as store:
            (record,) = AlertWatcher(config, config.campaigns, config.clock).check(clock.now(), store=store)
        assert (record.services_tried, record.services_ok) == (1, 0) and record.error is not None
        assert record.error.startswith("json://127.0.0.1: ")
    finally:
        hanging.close()


def test_services_are_shown_without_their_secrets() -> None:
    assert service_label("json://organizer:pw@127.0.0.1:8080/hook/token") == "json"
    assert service_label("json://127.0.0.1:8080/") == "json://127.0.0.1"
    assert service_label("tgram://123456789:AAHabcdefghijk/-100123") == "tgram"
    assert service_label("matrix://bot:secret@matrix.org/!room") == "matrix"
    assert service_label("ntfy://ntfy.sh/storm-topic") == "ntfy://ntfy.sh"


def test_alerts_test_says_per_service_whether_it_arrived_and_list_shows_it(tmp_path: Path,
                                                                          receiver: Receiver) -> None:
    failing = Receiver("fail")
    try:
        config_path = write_config(tmp_path, "http://127.0.0.1:9", top_extra=ALERTS_TABLE.format(timeout="5s"))
        urls = f"{receiver.url('tok3n-in-the-path')} {failing.url()}"
        result = invoke("alerts", "test", "--config", str(config_path), env={"TEST_ALERT_URLS": urls})
        assert result.returncode == 1, result.stderr
        assert result.stdout.splitlines() == ["1. json: arrived",
                                              "2. json://127.0.0.1: FAILED — not delivered (see the log)"]
        assert receiver.messages[0]["title"] == "stormwatch test for #StandWithIssa"
        listed = invoke("alerts", "list", "--config", str(config_path), "--json", env={})
        (entry,) = json.loads(listed.stdout)
        assert (entry["kind"], entry["services_tried"], entry["services_ok"]) == ("test", 2, 1)
        text = invoke("alerts", "list", "--config", str(config_path), env={}).stdout
        assert "reached 1 of 2 services" in text and "tok3n" not in text + listed.stdout + result.stderr
        log = (tmp_path / "data" / "stormwatch.log").read_text(encoding="utf-8")
        assert "tok3n-in-the-path" not in log
        unset = invoke("alerts", "test", "--config", str(config_path), env={"TEST_ALERT_URLS": ""})
        assert unset.returncode == 1 and "TEST_ALERT_URLS" in unset.stderr
    finally:
        failing.close()


def test_the_dashboard_and_status_show_the_last_alert(collected, tmp_path: Path) -> None:
    import dataclasses
    import io
    import shutil

    from rich.console import Console

    from stormwatch import metrics
    from stormwatch.dashboard import render, take_snapshot
    from stormwatch.report.text import status_text

    config, _ = collected
    copy = tmp_path / "copy.db"
    shutil.copy(config.storage.database, copy)
    config = dataclasses.replace(config, storage=dataclasses.replace(config.storage, database=copy))
    campaign = config.campaigns[0]
    moment = T0 + timedelta(minutes=1)
    with Store.open(copy) as store:
        # the database holds the whole storm already, so the goals and targets are told at once too
        records = AlertWatcher(config, config.campaigns, config.clock).check(moment, store=store)
        snapshot = take_snapshot(store, config, campaign, now=moment + timedelta(minutes=1))
        status = status_text(metrics.collection_status(store, config, config.campaigns, moment), config)
    assert "storm_started" in [r.kind for r in records]
    assert all(r.services_tried == 0 for r in records)  # no services configured: decided and recorded, not sent
    assert snapshot.last_alert == (moment, records[-1].headline)
    console = Console(width=120, height=40, file=io.StringIO(), record=True, color_system=None)
    console.print(render(snapshot))
    assert f"last alert 18:01 {records[-1].headline}" in console.export_text()
    assert f"last alert 18:01: {records[-1].headline}" in status  # in the campaign's zone


def sources_told(records: list[AlertRecord]) -> list[AlertRecord]:
    return [r for r in records if r.kind.startswith("source_")]


def test_a_live_feed_down_for_two_minutes_is_told_failing_then_recovered(tmp_path: Path, alert_env: None) -> None:
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    (campaign,) = config.campaigns
    watcher = AlertWatcher(config, config.campaigns, config.clock)
    now = T0 + timedelta(minutes=30)
    database = config.storage.database
    with Store.open(database) as store:
        # the follower in this (running) process writes its state beside the database, as when it is locked
        write_live_state(database, LiveFeedState("x", now, failing_since=now - timedelta(seconds=30),
                                                 error="database is locked\x1b[2J", held=40))
        assert not sources_told(watcher.check(now, store=store))  # 30 s: not worth a phone yet
        (health,) = metrics.campaign_health(store, campaign, now).sources
        assert health.last_run is not None and health.last_run.status == "failed" and health.failed_runs == 1
        assert health.failing_since == now - timedelta(seconds=30)
        assert health.live is not None and health.live.error == "database is locked[2J"  # stored clean
        later = now + timedelta(minutes=2)
        write_live_state(database, LiveFeedState("x", later, failing_since=now - timedelta(seconds=30),
                                                 error="database is locked", held=900))
        (failing,) = sources_told(watcher.check(later, store=store))
        assert failing.kind == "source_failing" and failing.condition_key.startswith("source_failing:x:live:")
        assert "live feed down" in failing.text and "900 posts held" in failing.text
        assert not sources_told(watcher.check(later, store=store))  # told once
        write_live_state(database, LiveFeedState("x", later + timedelta(minutes=1)))
        (back,) = sources_told(watcher.check(later + timedelta(minutes=1), store=store))
        (health,) = metrics.campaign_health(store, campaign, later).sources
    assert back.kind == "source_recovered" and "storing again" in back.text
    assert health.failed_runs == 0 and health.live is not None and not health.live.failing


def test_run_errors_from_instances_are_stored_without_control_characters(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run_id = store.start_run("c", "mastodon", T0)
        store.finish_run(run_id, "failed", T0, error="evil.example: 500 \x1b]8;;http://x\x07bad\x1b\\\u202e\x9b2J")
        (error,) = store.conn.execute("SELECT error FROM runs").fetchone()
    assert error == "evil.example: 500 ]8;;http://xbad\\2J"

def test_a_targets_answer_is_quoted_without_naming_the_supporter_it_answers(tmp_path: Path) -> None:
    """The target answers a supporter with her handle (behind a zero-width space, and as a link): the alert quotes
    the answer by the pseudonymized report's rules, even with `[report] names = "public"`."""
    from stormwatch.alerts import conditions, read_figures
    from stormwatch.models import Account, Batch, Post

    path = write_config(tmp_path, "http://127.0.0.1:9", top_extra='[report]\nnames = "public"\n')
    config = load_config(path)
    campaign = config.campaigns[0]
    when = T0 + timedelta(minutes=30)

    def account(native: str, handle: str, followers: int) -> Account:
        return Account(uid=f"x:{native}", platform="x", id=native, handle=handle, name=None,
                       followers_count=followers, following_count=1, posts_count=1, verified=False, created_at=None,
                       updated_at=iso_utc(when))

    def post(native: str, author: str, text: str, *, ref: str | None = None, tags: tuple[str, ...] = ()) -> Post:
        return Post(uid=f"x:{native}", platform="x", id=native, author_uid=f"x:{author}", created_at=iso_utc(when),
                    ts=int(when.timestamp()), text=text, lang="en", kind="reply" if ref else "original",
                    ref_uid=ref, url=f"https://x.com/i/status/{native}", like_count=0, repost_count=0,
                    reply_count=0, quote_count=0, bookmark_count=None, impression_count=None,
                    metrics_at=iso_utc(when), tags=tags, mentions=())

    supporter = post("101", "7", "Drop the charges! @antonioguterres #StandWithIssa", tags=("standwithissa",))
    answer = post("102", "8", "@\u200bQuietSupporter Thank you, we follow the case. fxtwitter.com/QuietSupporter",
                  ref=supporter.uid)
    with Store.open(config.storage.database) as store:
        store.save_page(Batch(posts=(supporter,), accounts=(account("7", "QuietSupporter", 40),)),
                        campaign=campaign.name, cursor=None, run_id=None, collected_at=when)
        store.save_page(Batch(posts=(answer,), accounts=(account("8", "antonioguterres", 2_000_000),)),
                        campaign=campaign.name + "~targets", cursor=None, run_id=None, collected_at=when)
        figures = read_figures(store, config, campaign, when + timedelta(minutes=1))
    [alert] = [a for a in conditions(campaign, figures, set(), campaign.timezone) if a.kind == "target_response"]
    assert alert.headline == "@antonioguterres answered a campaign post on X"
    assert alert.lines[0] == '"@[hidden] Thank you, we follow the case. [link]"'
    assert "quietsupporter" not in alert.text.casefold()
