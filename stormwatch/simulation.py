"""Wiring the simulated platform to a stormwatch config: the campaign's storm on the config's clock."""

from __future__ import annotations

from typing import Any

from .config import CampaignConfig, Config
from .simulator.server import Faults, SimulatedPlatform
from .simulator.storm import Storm, StormSpec


def storm_spec(config: Config, campaign: CampaignConfig, *, seed: int | None = None, posts: int | None = None,
               platforms: tuple[tuple[str, float], ...] = (("x", 1.0),)) -> StormSpec:
    """The storm a campaign's rehearsal simulates: its hashtags, accounts, targets and window."""
    return StormSpec(hashtags=campaign.hashtags, accounts=campaign.accounts, targets=campaign.targets,
                     start=campaign.start, end=campaign.end, seed=config.simulation.seed if seed is None else seed,
                     posts=config.simulation.posts if posts is None else posts, platforms=platforms)


def build_platform(config: Config, campaign: CampaignConfig, *, host: str = "127.0.0.1", port: int | None = None,
                   seed: int | None = None, posts: int | None = None, faults: dict[str, Any] | None = None,
                   storm: Storm | None = None, token: str | None = None) -> SimulatedPlatform:
    """A simulated platform serving the campaign's storm on the config's storm clock (not yet started)."""
    storm = storm or Storm.build(storm_spec(config, campaign, seed=seed, posts=posts))
    chosen = {name: value for name, value in (faults or {}).items() if value}
    return SimulatedPlatform(storm, config.clock, host=host,
                             port=config.simulation.port if port is None else port,
                             token=token or config.simulation.token or None, faults=Faults(**chosen))


def storm_truth(config: Config, campaign: CampaignConfig, *, seed: int | None = None,
                posts: int | None = None) -> dict[str, Any]:
    """The simulated storm's ground truth for the campaign window (posts, authors, reach…)."""
    storm = Storm.build(storm_spec(config, campaign, seed=seed, posts=posts))
    truth = storm.truth(campaign.start, campaign.end, include_reposts=config.x.include_reposts)
    data = truth.to_json()
    data.pop("post_ids", None)
    return data
