"""Shared by the Bluesky tests (normalizer, source, simulated Jetstream): a storm with a fifth of it on Bluesky,
the simulated XRPC service, the campaign and the organizer's login."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stormwatch.config import BlueskyConfig, CampaignConfig
from stormwatch.simulator.atproto import BlueskyNetwork
from stormwatch.simulator.bluesky import BlueskyXrpc, mount_bluesky
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.host import Faults
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from tests.conftest import HASHTAGS, T0, storm_spec

from .simulator_support import SEARCH_REPOSTS

HANDLE = "organizer.bsky.social"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
HANDLE_ENV = "STORMWATCH_TEST_BSKY_HANDLE"
PASSWORD_ENV = "STORMWATCH_TEST_BSKY_APP_PASSWORD"
STORM_END = T0 + timedelta(hours=3)
SEARCH_PATH = "/xrpc/app.bsky.feed.searchPosts"


def micros(moment: datetime) -> int:
    """Epoch microseconds, as Jetstream cursors count."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.fixture(scope="module")
def storm() -> Storm:
    """A storm on three platforms; a fifth of it on Bluesky (about 600 campaign posts, reposts aside)."""
    return _storm_and_network()[0]


@pytest.fixture(scope="module")
def network(storm: Storm) -> BlueskyNetwork:
    """The storm as Bluesky shows it."""
    return _storm_and_network()[1]


@functools.cache
def _storm_and_network() -> tuple[Storm, BlueskyNetwork]:
    # One storm (and one view of it) for every Bluesky test module, as when they were one file.
    storm = Storm.build(replace(storm_spec(8000), platforms=(("x", 0.5), ("mastodon", 0.3), ("bluesky", 0.2))))
    return storm, BlueskyNetwork(storm)


@pytest.fixture
def campaign() -> CampaignConfig:
    """The #StandWithIssa campaign over the storm's window."""
    return CampaignConfig(name="standwithissa", hashtags=HASHTAGS, accounts=(), targets=(), sources=("bluesky",),
                          start=T0, end=STORM_END, timezone=ZoneInfo("Asia/Hebron"), interval=timedelta(minutes=5),
                          storm_interval=timedelta(minutes=1), daily_budget_usd=None)


@pytest.fixture
def logged_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The organizer's handle and app password in the environment."""
    monkeypatch.setenv(HANDLE_ENV, HANDLE)
    monkeypatch.setenv(PASSWORD_ENV, APP_PASSWORD)


@pytest.fixture
def service(storm: Storm, network: BlueskyNetwork) -> Iterator[tuple[SimulatedPlatform, BlueskyXrpc, ManualClock]]:
    """The simulated platform with Bluesky's XRPC mounted, its clock half an hour into the storm."""
    clock = ManualClock(T0 + timedelta(minutes=30))
    with SimulatedPlatform(storm, clock, faults=Faults(), search_reposts=SEARCH_REPOSTS) as platform:
        xrpc = mount_bluesky(platform, accounts={HANDLE: APP_PASSWORD}, network=network)
        yield platform, xrpc, clock


def bluesky_config(base_url: str = "http://127.0.0.1:9", jetstream_url: str = "ws://127.0.0.1:9/subscribe"
                   ) -> BlueskyConfig:
    """Source settings pointing every Bluesky service at the simulator."""
    return BlueskyConfig(jetstream_url=jetstream_url, appview_url=base_url, service_url=base_url,
                         handle_env=HANDLE_ENV, app_password_env=PASSWORD_ENV, timeout=5.0)


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `condition()` holds (for what another thread finishes), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def truth_uris(storm: Storm, network: BlueskyNetwork, since: datetime, until: datetime) -> set[str]:
    """The at-uris of the campaign's Bluesky posts in [since, until) (reposts are records, not posts)."""
    truth = storm.truth(since, until, platform="bluesky", include_reposts=False)
    return {network.uri_of_id(post_id) for post_id in truth.post_ids}  # type: ignore[misc]
