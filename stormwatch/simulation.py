"""Wiring the simulated platform to a stormwatch config: the campaign's storm, split across its sources,
on the config's clock (X and Mastodon instances served from one port)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .config import CampaignConfig, Config
from .simulator.bluesky import BlueskyXrpc, mount_bluesky
from .simulator.jetstream import JetstreamServer
from .simulator.mastodon import MastodonInstances, instance_urls, mount_mastodon
from .simulator.server import Faults, SimulatedPlatform
from .simulator.spec import StormSpec
from .simulator.storm import Storm
from .simulator.truth import Truth, TruthBuilder

# How a storm splits across platforms when a campaign runs on several (X still carries most storms).
PLATFORM_SHARES = {"x": 0.6, "mastodon": 0.25, "bluesky": 0.15}
DEFAULT_INSTANCES = ("mastodon.social", "kolektiva.social")


@dataclass
class Simulation:
    """The simulated platforms serving one campaign's storm."""

    storm: Storm
    platform: SimulatedPlatform
    mastodon: MastodonInstances | None = None
    instance_names: tuple[str, ...] = ()
    bluesky: BlueskyXrpc | None = None
    jetstream: JetstreamServer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The X API base URL."""
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


def platforms_for(campaign: CampaignConfig) -> tuple[tuple[str, float], ...]:
    """The storm's share per platform for the campaign's sources."""
    return tuple((name, PLATFORM_SHARES.get(name, 0.1)) for name in campaign.sources)


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
                     posts=config.simulation.posts if posts is None else posts, platforms=platforms_for(campaign))


def build_simulation(config: Config, campaign: CampaignConfig, *, host: str = "127.0.0.1", port: int | None = None,
                     seed: int | None = None, posts: int | None = None, faults: dict[str, Any] | None = None,
                     storm: Storm | None = None, token: str | None = None,
                     instances: tuple[str, ...] | None = None) -> Simulation:
    """The simulated platforms for a campaign's storm on the config's storm clock (not yet started)."""
    storm = storm or Storm.build(storm_spec(config, campaign, seed=seed, posts=posts))
    chosen = {name: value for name, value in (faults or {}).items() if value}
    platform = SimulatedPlatform(storm, config.clock, host=host,
                                 port=config.simulation.port if port is None else port,
                                 token=token or config.simulation.token or None, faults=Faults(**chosen))
    simulation = Simulation(storm=storm, platform=platform)
    if "mastodon" in campaign.sources:
        names = instances or tuple(instance_name(e) for e in config.mastodon.instances) or DEFAULT_INSTANCES
        simulation.instance_names = names
        simulation.mastodon = mount_mastodon(platform, names)
    if "bluesky" in campaign.sources:
        login = config.bluesky.credentials()
        simulation.bluesky = mount_bluesky(platform, accounts=dict([login]) if login else None)
        simulation.jetstream = JetstreamServer(storm, config.clock, host=host, network=simulation.bluesky.network)
    return simulation


def storm_truth(config: Config, campaign: CampaignConfig, *, seed: int | None = None,
                posts: int | None = None) -> dict[str, Any]:
    """The simulated storm's ground truth for the campaign window, overall and per platform.

    Mastodon's truth is what the configured instances' tag timelines carry (each status once), since
    that is all a collector reading them can see.
    """
    simulation = build_simulation(config, campaign, seed=seed, posts=posts, port=0)
    storm = simulation.storm
    truths: dict[str, Truth] = {}
    for platform in campaign.sources:
        if platform == "mastodon" and simulation.mastodon is not None:
            truths[platform] = _mastodon_truth(simulation, campaign)
        elif platform == "bluesky":
            # Bluesky reposts are records of their own, not posts; Bluesky reports no impressions.
            truths[platform] = replace(storm.truth(campaign.start, campaign.end, platform="bluesky",
                                                   include_reposts=False), impressions=0)
        else:
            truths[platform] = storm.truth(campaign.start, campaign.end, platform=platform,
                                           include_reposts=config.x.include_reposts if platform == "x" else True)
    by_platform = {name: _public(truth.to_json()) for name, truth in truths.items()}
    combined = {key: sum(t[key] for t in by_platform.values()) for key in (
        "posts", "originals", "reposts", "quotes", "replies", "contributors", "potential_reach",
        "potential_impressions", "impressions", "engagement")}
    return {"since": campaign.start.isoformat(), "until": campaign.end.isoformat(), **combined,
            "by_platform": by_platform}


def _mastodon_truth(simulation: Simulation, campaign: CampaignConfig) -> Truth:
    assert simulation.mastodon is not None
    builder = TruthBuilder(campaign.start, campaign.end, platform="mastodon", include_reposts=True)
    seen: set[int] = set()
    for name in simulation.instance_names:
        for tag in campaign.hashtags:
            for post in simulation.mastodon.tag_timeline(name, tag, until=campaign.end):
                if post.id not in seen:
                    seen.add(post.id)
                    builder.add(post, simulation.storm.users[post.author])
    return replace(builder.result(), impressions=0)  # Mastodon reports no impressions


def _public(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("post_ids", "per_minute")}
