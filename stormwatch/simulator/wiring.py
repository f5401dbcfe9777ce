"""Wiring the simulated platforms to a stormwatch config: the campaign's storm, split across its sources, on
the config's clock (X, the Mastodon instances and Bluesky's XRPC on one port; Jetstream on its own).

This is the one module of the simulator that imports stormwatch (its config: `CampaignConfig`, `Config`);
everything else in `stormwatch/simulator/` stands in for the outside world and imports nothing of the
program. The demo and `stormwatch simulate` use it.

Each simulated platform is a row of `MOUNTS`: its share of the storm, how to serve it, and what a collector
can find on it (its ground truth). Adding a platform to the simulator = a mount module and a row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from stormwatch.config import CampaignConfig, Config
from stormwatch.simulator.bluesky import BlueskyXrpc, mount_bluesky
from stormwatch.simulator.host import Faults, SimulatedHost
from stormwatch.simulator.jetstream import JetstreamServer
from stormwatch.simulator.mastodon import MastodonInstances, instance_urls, mount_mastodon
from stormwatch.simulator.spec import StormSpec
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.truth import Truth
from stormwatch.simulator.x import XApi, mount_x

DEFAULT_INSTANCES = ("mastodon.social", "kolektiva.social")
# A platform the simulator has no mount for still gets this share of the storm (and no server).
UNMOUNTED_SHARE = 0.1
# Days of everyday hashtag use before a rehearsal's storm: what X's counts show `stormwatch plan` (7 days back).
BACKGROUND_DAYS = 8
TRUTH_FIGURES = ("posts", "originals", "reposts", "quotes", "replies", "contributors", "potential_reach",
                 "potential_impressions", "impressions", "engagement")


@dataclass
class Simulation:
    """The simulated platforms serving one campaign's storm."""

    storm: Storm
    platform: SimulatedHost
    x: XApi | None = None
    mastodon: MastodonInstances | None = None
    instance_names: tuple[str, ...] = ()
    bluesky: BlueskyXrpc | None = None
    jetstream: JetstreamServer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The X API base URL (the host's root)."""
        return self.platform.url

    def instance_urls(self) -> list[str]:
        """Base URLs of the simulated Mastodon instances (for `[mastodon] instances`)."""
        return instance_urls(self.platform, self.instance_names)

    def start(self) -> Simulation:
        """Start serving."""
        self.platform.start()
        if self.jetstream is not None:
            self.jetstream.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.jetstream is not None:
            self.jetstream.stop()
        self.platform.stop()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class MountOptions:
    """What `build_simulation` was asked for beyond the config."""

    host: str
    token: str | None
    instances: tuple[str, ...] | None


@dataclass(frozen=True)
class SimulatorMount:
    """What the wiring needs to know about one simulated platform."""

    share: float  # of the storm's posts and people, when a campaign runs on several platforms
    attach: Callable[[Simulation, Config, MountOptions], None]  # serve it (on the host, or beside it)
    truth: Callable[[Simulation, Config, CampaignConfig], Truth]  # what a collector can find there
    always: bool = False  # served whatever the campaign collects from (X's API is the host's root)


def _attach_x(simulation: Simulation, config: Config, options: MountOptions) -> None:
    simulation.x = mount_x(simulation.platform, token=options.token)


def _x_truth(simulation: Simulation, config: Config, campaign: CampaignConfig) -> Truth:
    return simulation.storm.truth(campaign.start, campaign.end, platform="x", include_reposts=config.x.include_reposts)


def _attach_mastodon(simulation: Simulation, config: Config, options: MountOptions) -> None:
    names = options.instances or tuple(instance_name(e) for e in config.mastodon.instances) or DEFAULT_INSTANCES
    simulation.instance_names = names
    simulation.mastodon = mount_mastodon(simulation.platform, names)


def _mastodon_truth(simulation: Simulation, config: Config, campaign: CampaignConfig) -> Truth:
    # What the configured instances' tag timelines carry (each status once): all a collector can see.
    assert simulation.mastodon is not None
    return simulation.mastodon.truth(campaign.start, campaign.end, campaign.hashtags)


def _attach_bluesky(simulation: Simulation, config: Config, options: MountOptions) -> None:
    login = config.bluesky.credentials()
    simulation.bluesky = mount_bluesky(simulation.platform, accounts=dict([login]) if login else None)
    # A rehearsal config names Jetstream's local port (`init --simulated`: the host's port + 1); else any free one.
    feed = urlsplit(config.bluesky.jetstream_url)
    port = feed.port if feed.hostname in ("127.0.0.1", "localhost") and feed.port else 0
    simulation.jetstream = JetstreamServer(simulation.storm, config.clock, host=options.host, port=port,
                                           network=simulation.bluesky.network)


def _bluesky_truth(simulation: Simulation, config: Config, campaign: CampaignConfig) -> Truth:
    assert simulation.bluesky is not None
    return simulation.bluesky.network.truth(campaign.start, campaign.end)


# How a storm splits across platforms when a campaign runs on several (X still carries most storms).
MOUNTS: dict[str, SimulatorMount] = {
    "x": SimulatorMount(0.6, _attach_x, _x_truth, always=True),
    "mastodon": SimulatorMount(0.25, _attach_mastodon, _mastodon_truth),
    "bluesky": SimulatorMount(0.15, _attach_bluesky, _bluesky_truth),
}
PLATFORM_SHARES = {name: mount.share for name, mount in MOUNTS.items()}


def platforms_for(campaign: CampaignConfig) -> tuple[tuple[str, float], ...]:
    """The storm's share per platform for the campaign's sources."""
    return tuple((name, PLATFORM_SHARES.get(name, UNMOUNTED_SHARE)) for name in campaign.sources)


def instance_name(entry: str) -> str:
    """The instance a `[mastodon] instances` entry names (a host, or a simulator URL ending in the name)."""
    if "://" not in entry:
        return entry.lower()
    parts = urlsplit(entry.rstrip("/"))
    segments = [s for s in parts.path.split("/") if s]
    return (segments[-1] if segments else parts.hostname or entry).lower()


def storm_spec(config: Config, campaign: CampaignConfig, *, seed: int | None = None,
               posts: int | None = None) -> StormSpec:
    """The storm a campaign's rehearsal simulates: its hashtags, accounts, targets, window and platforms."""
    return StormSpec(hashtags=campaign.hashtags, accounts=campaign.accounts, targets=campaign.targets,
                     start=campaign.start, end=campaign.end, seed=config.simulation.seed if seed is None else seed,
                     posts=config.simulation.posts if posts is None else posts, platforms=platforms_for(campaign),
                     background_days=BACKGROUND_DAYS)


def build_simulation(config: Config, campaign: CampaignConfig, *, host: str = "127.0.0.1", port: int | None = None,
                     seed: int | None = None, posts: int | None = None, faults: dict[str, Any] | None = None,
                     storm: Storm | None = None, token: str | None = None,
                     instances: tuple[str, ...] | None = None) -> Simulation:
    """The simulated platforms for a campaign's storm on the config's storm clock (not yet started)."""
    storm = storm or Storm.build(storm_spec(config, campaign, seed=seed, posts=posts))
    chosen = {name: value for name, value in (faults or {}).items() if value}
    platform = SimulatedHost(storm, config.clock, host=host, port=config.simulation.port if port is None else port,
                             faults=Faults(**chosen))
    simulation = Simulation(storm=storm, platform=platform)
    options = MountOptions(host=host, token=token or config.simulation.token or None, instances=instances)
    for name, mount in MOUNTS.items():
        if mount.always or name in campaign.sources:
            mount.attach(simulation, config, options)
    return simulation


def storm_truth(config: Config, campaign: CampaignConfig, *, seed: int | None = None,
                posts: int | None = None) -> dict[str, Any]:
    """The simulated storm's ground truth for the campaign window, overall and per platform."""
    simulation = build_simulation(config, campaign, seed=seed, posts=posts, port=0)
    truths: dict[str, Truth] = {}
    for platform in campaign.sources:
        mount = MOUNTS.get(platform)
        if mount is not None:
            truths[platform] = mount.truth(simulation, config, campaign)
        else:
            truths[platform] = simulation.storm.truth(campaign.start, campaign.end, platform=platform)
    by_platform = {name: _public(truth.to_json()) for name, truth in truths.items()}
    combined = {key: sum(t[key] for t in by_platform.values()) for key in TRUTH_FIGURES}
    return {"since": campaign.start.isoformat(), "until": campaign.end.isoformat(), **combined,
            "by_platform": by_platform}


def _public(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("post_ids", "per_minute")}
