"""Shared by the storm-intelligence tests: a storm on X, two Mastodon instances and Bluesky with a toolkit, trending,
a responding target and a counter wave, collected once by the real collector over HTTP every five storm minutes,
and the simulator's truth about it."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from stormwatch.collector import Collector
from stormwatch.config import Config, load_config
from stormwatch.simulator.bluesky import mount_bluesky
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.mastodon import instance_urls, mount_mastodon
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.wiring import Simulation
from stormwatch.simulator.x import SimulatedPlatform
from tests.conftest import T0, TOKEN, storm_spec, write_config

from .simulator_support import SEARCH_REPOSTS

INSTANCES = ("mastodon.social", "kolektiva.social")
COUNTER = ("StopTheIncitement", "FactsNotFakes")
PLACES = (1, 23424975, 44418)
HANDLE, PASSWORD = "organizer.bsky.social", "abcd-efgh-ijkl-mnop"
HANDLE_ENV, PASSWORD_ENV = "STORMWATCH_TEST_INTEL_BSKY_HANDLE", "STORMWATCH_TEST_INTEL_BSKY_PASSWORD"
STEP = timedelta(minutes=5)
END = T0 + timedelta(hours=3, minutes=10)  # collection goes on ten minutes past the storm


def intel_spec(posts: int = 2400) -> object:
    """The small #StandWithIssa storm on three platforms with every storm-intelligence feature on."""
    return dataclasses.replace(storm_spec(posts, seed=9), platforms=(("x", 0.6), ("mastodon", 0.25), ("bluesky", 0.15)),
                               toolkit_share=0.35, personal_texts=True, trend_threshold=80, target_responses=True,
                               counter_hashtags=COUNTER, counter_posts=300)


@dataclass(frozen=True)
class Collected:
    """The collected storm: its config (database, campaign), the simulation that served it, and the fetch times."""

    config: Config
    simulation: Simulation
    storm: Storm


@functools.cache
def collected() -> Collected:
    """The storm collected from the hour before its start to ten minutes after its end (read-only for tests)."""
    storm = Storm.build(intel_spec())  # type: ignore[arg-type]
    directory = Path(tempfile.mkdtemp(prefix="stormwatch-intel-"))
    clock = ManualClock(T0 - STEP)
    environment = {"X_BEARER_TOKEN": TOKEN, HANDLE_ENV: HANDLE, PASSWORD_ENV: PASSWORD}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    server = SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS).start()
    atexit.register(server.stop)
    atexit.register(shutil.rmtree, directory, True)
    try:
        mastodon = mount_mastodon(server, INSTANCES)
        bluesky = mount_bluesky(server, accounts={HANDLE: PASSWORD})
        target = next(u for u in storm.users if u.role == "target" and u.platform == "mastodon")
        campaign = (f'sources = ["x", "mastodon", "bluesky"]\ntrend_locations = {list(PLACES)}\n'
                    f'counter_hashtags = {list(COUNTER)!r}\n'
                    f'targets_mastodon = ["{target.username}@{mastodon.home_of(target)}"]\n'
                    f'targets_bluesky = ["{target.username.lower()}.bsky.social"]\n')
        top = (f"[mastodon]\ninstances = {instance_urls(server, INSTANCES)!r}\n"
               f'[bluesky]\nappview_url = "{server.url}"\nservice_url = "{server.url}"\n'
               f'handle_env = "{HANDLE_ENV}"\napp_password_env = "{PASSWORD_ENV}"\n')
        config = load_config(write_config(directory, server.url, top_extra=top, campaign_extra=campaign))
        collector = Collector(config, clock=clock)
        while clock.now() < END:
            for record in collector.run_once():
                assert record.status in ("ok", "partial"), record.error
            clock.advance(STEP.total_seconds())
        collector.close()
        simulation = Simulation(storm=storm, platform=server, x=server.x, mastodon=mastodon,
                                instance_names=INSTANCES, bluesky=bluesky)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Collected(config=config, simulation=simulation, storm=storm)


def copy_of(found: Collected, directory: Path) -> Config:
    """A config over a copy of the collected database (for tests that write: pseudonyms, reports, alerts)."""
    shutil.copytree(found.config.path.parent / "data", directory / "data")
    text = found.config.path.read_text(encoding="utf-8")
    (directory / "config.toml").write_text(text, encoding="utf-8")
    return load_config(directory / "config.toml")
