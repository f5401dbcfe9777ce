"""Shared fixtures: the real-sample folder, an in-memory store, temporary configs, and the simulated platform."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("STORMWATCH_SAMPLES", REPO.parent / "shared" / "samples"))


def sample_path(*parts: str) -> Path:
    """A file in ../shared/samples; the test is skipped when the folder is absent (as on users' machines)."""
    path = SAMPLES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real samples not available at {SAMPLES}")
    return path


def sample_lines(*parts: str) -> Iterator[dict]:
    """The JSON objects of a JSONL sample file."""
    with sample_path(*parts).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def recorded_bodies(*parts: str) -> list[dict]:
    """The response bodies of a decoded tweepy cassette."""
    return [interaction["body"] for interaction in json.loads(sample_path(*parts).read_text(encoding="utf-8"))]


# --- an in-memory store -------------------------------------------------------------------------

from stormwatch.models import Account, Post  # noqa: E402
from stormwatch.store import MEMORY, Store  # noqa: E402


@pytest.fixture
def memory_store() -> Iterator[Store]:
    """A new, migrated store in memory (no file, no WAL): for unit tests of the store and metrics."""
    with Store.open(MEMORY) as store:
        yield store


# --- storms, configs and the simulated platform -------------------------------------------------

from datetime import UTC, datetime, timedelta  # noqa: E402

from stormwatch.simulator.clock import ManualClock  # noqa: E402
from stormwatch.simulator.host import Faults  # noqa: E402
from stormwatch.simulator.spec import StormSpec  # noqa: E402
from stormwatch.simulator.storm import Storm  # noqa: E402
from stormwatch.simulator.x import SimulatedPlatform  # noqa: E402

from .simulator_support import SEARCH_REPOSTS  # noqa: E402

T0 = datetime(2021, 2, 7, 16, 0, tzinfo=UTC)  # the announced start: 18:00 in Hebron
HASHTAGS = ("StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners")
TOKEN = "simulated-bearer-token-for-tests"


def storm_spec(posts: int = 1500, *, seed: int = 7, hours: float = 3.0) -> StormSpec:
    """A small #StandWithIssa storm: an hour of baseline before T0, then `hours` of storm."""
    return StormSpec(hashtags=HASHTAGS, accounts=("Issaamro", "YASHebron"),
                     targets=("antonioguterres", "vonderleyen"), start=T0, end=T0 + timedelta(hours=hours),
                     seed=seed, posts=posts, lead=timedelta(hours=1))


def clock_section(clock: object) -> str:
    """The `[clock]` table that gives a subprocess the same storm clock as `clock` (a stormwatch Clock)."""
    return (f'[clock]\nspeed = {clock.speed}\nanchor = "{clock.anchor.isoformat()}"\n'  # type: ignore[attr-defined]
            f"anchor_wall = {clock.anchor_wall!r}\n")  # type: ignore[attr-defined]


def config_text(api_base: str, *, start: datetime = T0, end: datetime | None = None, budget: float | None = None,
                x_extra: str = "", top_extra: str = "", campaign_extra: str = "") -> str:
    """A config for tests: fast retries, the campaign window, the simulated platform's address."""
    end = end or start + timedelta(hours=3)
    budget_line = f"daily_budget_usd = {budget}\n" if budget is not None else ""
    return f"""{top_extra}
[storage]
database = "data/test.db"
raw_archive = "data/raw"

[x]
bearer_token_env = "X_BEARER_TOKEN"
api_base = "{api_base}"
retries = 4
retry_backoff = "10ms"
max_backoff = "50ms"
timeout = "10s"
{x_extra}

[[campaigns]]
name = "standwithissa"
hashtags = {list(HASHTAGS)!r}
accounts = ["Issaamro", "YASHebron"]
targets = ["antonioguterres", "vonderleyen"]
start = "{start.isoformat()}"
end = "{end.isoformat()}"
timezone = "Asia/Hebron"
interval = "5m"
storm_interval = "1m"
{budget_line}{campaign_extra}
"""


def write_config(directory: Path, api_base: str, **options: object) -> Path:
    """Write a test config into `directory` and return its path."""
    path = directory / "config.toml"
    path.write_text(config_text(api_base, **options), encoding="utf-8")  # type: ignore[arg-type]
    return path


def collected_ids(config_path: Path, platform: str | None = None) -> list[str]:
    """The campaign's collected post ids (uids), from the database a test config names."""
    from stormwatch.config import load_config
    from stormwatch.store import Store

    config = load_config(config_path)
    with Store.open(config.storage.database) as store:
        return store.campaign_post_ids("standwithissa", platform)


@pytest.fixture(scope="session")
def small_storm() -> Storm:
    """The small storm, built once for the session."""
    return Storm.build(storm_spec())


@pytest.fixture
def platform(small_storm: Storm) -> Iterator[tuple[SimulatedPlatform, ManualClock]]:
    """The simulated platform serving the small storm, its clock at the start of the baseline."""
    clock = ManualClock(T0 - timedelta(hours=1))
    with SimulatedPlatform(small_storm, clock, token=TOKEN, faults=Faults(), search_reposts=SEARCH_REPOSTS) as server:
        yield server, clock


@pytest.fixture(scope="session")
def collected(small_storm: Storm, tmp_path_factory: pytest.TempPathFactory):
    """The small storm collected by the real collector (over HTTP) once the storm is over: (config, storm).

    The collector starts after the storm, so collection begins at the announced start (T0).
    Read-only for tests: copy the database before writing to it.
    """
    return _collect_after_the_storm(small_storm, tmp_path_factory, search_reposts=SEARCH_REPOSTS)


@pytest.fixture(scope="session")
def collected_today(small_storm: Storm, tmp_path_factory: pytest.TempPathFactory):
    """As `collected`, from today's X: search (and its counts) without reposts, and no stream after the storm."""
    return _collect_after_the_storm(small_storm, tmp_path_factory, search_reposts=False)


def _collect_after_the_storm(small_storm: Storm, tmp_path_factory: pytest.TempPathFactory, *, search_reposts: bool):
    from stormwatch.collector import Collector
    from stormwatch.config import load_config

    directory = tmp_path_factory.mktemp("collected")
    clock = ManualClock(T0 + timedelta(hours=3, minutes=5))
    with SimulatedPlatform(small_storm, clock, token=TOKEN, search_reposts=search_reposts) as server:
        config = load_config(write_config(directory, server.url, campaign_extra="goal_posts = 3000\n"
                                          "goal_contributors = 400\n"))
        os.environ["X_BEARER_TOKEN"] = TOKEN
        try:
            collector = Collector(config, clock=clock)
            (record,) = collector.run_once()
            collector.close()
        finally:
            os.environ.pop("X_BEARER_TOKEN", None)
    assert record.status in ("ok", "partial"), record.error
    return config, small_storm


def assert_tallies_match_a_rebuild(store: Store, campaign: str) -> None:
    """The store's running tallies of `campaign` equal what a full rebuild computes (the rebuild is rolled back)."""
    from stormwatch.store import tallies

    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        window = tallies.window_of(conn, campaign)
        assert window is not None, f"{campaign} has no registered window"
        incremental = tallies.contents(conn, campaign)
        tallies.rebuild(conn, campaign, window)
        rebuilt = tallies.contents(conn, campaign)
    finally:
        conn.execute("ROLLBACK")
    for table in tallies.TALLY_TABLES:
        assert incremental[table] == rebuilt[table], table


def x_post(native: str, *, kind: str = "original", likes: int = 0, metrics_at: str = "2021-02-07T16:00:00.000Z",
           tags: tuple[str, ...] = ("standwithissa",), author: str = "x:1") -> Post:
    """A small X post at T0 mentioning a target, for store tests."""
    return Post(uid=f"x:{native}", platform="x", id=native, author_uid=author, created_at="2021-02-07T16:00:00.000Z",
                ts=1612713600, text=f"post {native}", lang="en", kind=kind, ref_uid=None, url=None, like_count=likes,
                repost_count=0, reply_count=0, quote_count=0, bookmark_count=None, impression_count=None,
                metrics_at=metrics_at, tags=tags, mentions=("antonioguterres",))


def x_account(native: str, followers: int, updated_at: str) -> Account:
    """An X account snapshot, for store tests."""
    return Account(uid=f"x:{native}", platform="x", id=native, handle=f"user{native}", name=None,
                   followers_count=followers, following_count=1, posts_count=1, verified=False, created_at=None,
                   updated_at=updated_at)


def rows(store: Store, sql: str) -> list[tuple]:
    """The rows a query returns."""
    return store.conn.execute(sql).fetchall()


# --- a headless browser, for the report's page checks (test_report_page.py, test_intel_outputs.py) -----------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium driven by Playwright (skips without either)."""
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH (CI installs Debian's chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


