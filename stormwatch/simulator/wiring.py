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
from stormwatch.simulator.intel import carries, copy_truth, target_truth
from stormwatch.simulator.jetstream import JetstreamServer
from stormwatch.simulator.mastodon import MastodonInstances, instance_urls, mount_mastodon
from stormwatch.simulator.spec import StormSpec
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.stream_x import DEFAULT_KEEPALIVE_SECONDS, FilteredStream, mount_stream
from stormwatch.simulator.truth import Truth
from stormwatch.simulator.x import XApi, mount_x

DEFAULT_INSTANCES = ("mastodon.social", "kolektiva.social")
# A platform the simulator has no mount for still gets this share of the storm (and no server).
UNMOUNTED_SHARE = 0.1
# Days of everyday hashtag use before a rehearsal's storm: what X's counts show `stormwatch plan` (7 days back).
BACKGROUND_DAYS = 8
# Storm intelligence in rehearsals and the demo (intel.py, trending.py): a third of the supporters paste the toolkit
# and the others write their own sentence; the tags trend once an hour brings a thirtieth of the storm's posts;
# the first target responds; and a campaign with counter-hashtags meets a wave of them, an eighth of its size.
TOOLKIT_SHARE = 0.35
TREND_SHARE = 1 / 30
COUNTER_SHARE = 1 / 8
TRUTH_FIGURES = ("posts", "originals", "reposts", "quotes", "replies", "contributors", "potential_reach",
                 "potential_impressions", "impressions", "engagement")


@dataclass
class Simulation:
    """The simulated platforms serving one campaign's storm."""

    storm: Storm
    platform: SimulatedHost
    x: XApi | None = None
    stream: FilteredStream | None = None  # X's filtered stream and its rules, beside the X API
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

    def x_stream_truth(self, config: Config, campaign: CampaignConfig) -> dict[str, Any]:
        """What X's filtered stream delivered of the campaign window's X posts so far, and what its gaps missed
        (`FilteredStream.truth`: connected_seconds, posts, missed_posts, missed_reposts, missed_post_ids, gaps)."""
        assert self.stream is not None
        return self.stream.truth(_x_truth(self, config, campaign), app=None)

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
    search_reposts: bool = False  # X's search index before 2026-05-04 (with reposts)
    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS  # the filtered stream's, in wall seconds


@dataclass(frozen=True)
class SimulatorMount:
    """What the wiring needs to know about one simulated platform."""

    share: float  # of the storm's posts and people, when a campaign runs on several platforms
    attach: Callable[[Simulation, Config, MountOptions], None]  # serve it (on the host, or beside it)
    truth: Callable[[Simulation, Config, CampaignConfig], Truth]  # what a collector can find there
    always: bool = False  # served whatever the campaign collects from (X's API is the host's root)


def _attach_x(simulation: Simulation, config: Config, options: MountOptions) -> None:
    simulation.x = mount_x(simulation.platform, token=options.token, search_reposts=options.search_reposts)
    simulation.stream = mount_stream(simulation.platform, token=options.token,
                                     keepalive_seconds=options.keepalive_seconds)


def _x_truth(simulation: Simulation, config: Config, campaign: CampaignConfig) -> Truth:
    # What was published (the stream still delivers reposts; search alone no longer finds them).
    return simulation.storm.truth(campaign.start, campaign.end, platform="x", include_reposts=config.x.include_reposts,
                                  tags=campaign.hashtags)


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
    return simulation.bluesky.network.truth(campaign.start, campaign.end, tags=campaign.hashtags)


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
    """The storm a campaign's rehearsal simulates: its hashtags, accounts, targets, window and platforms, with
    the storm intelligence a real storm has (a toolkit, trending, a target's answer, a counter wave)."""
    size = config.simulation.posts if posts is None else posts
    return StormSpec(hashtags=campaign.hashtags, accounts=campaign.accounts, targets=campaign.targets,
                     start=campaign.start, end=campaign.end, seed=config.simulation.seed if seed is None else seed,
                     posts=size, platforms=platforms_for(campaign), background_days=BACKGROUND_DAYS,
                     toolkit_share=TOOLKIT_SHARE, personal_texts=True,
                     trend_threshold=max(5, round(size * TREND_SHARE)),
                     target_responses=True, counter_hashtags=campaign.counter_hashtags,
                     counter_posts=round(size * COUNTER_SHARE) if campaign.counter_hashtags else 0)


def build_simulation(config: Config, campaign: CampaignConfig, *, host: str = "127.0.0.1", port: int | None = None,
                     seed: int | None = None, posts: int | None = None, faults: dict[str, Any] | None = None,
                     storm: Storm | None = None, token: str | None = None,
                     instances: tuple[str, ...] | None = None, search_reposts: bool = False,
                     keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS) -> Simulation:
    """The simulated platforms for a campaign's storm on the config's storm clock (not yet started).

    X's search and counts are today's (no reposts) unless `search_reposts`; its filtered stream is always served.
    """
    storm = storm or Storm.build(storm_spec(config, campaign, seed=seed, posts=posts))
    chosen = {name: value for name, value in (faults or {}).items() if value}
    platform = SimulatedHost(storm, config.clock, host=host, port=config.simulation.port if port is None else port,
                             faults=Faults(**chosen))
    simulation = Simulation(storm=storm, platform=platform)
    options = MountOptions(host=host, token=token or config.simulation.token or None, instances=instances,
                           search_reposts=search_reposts, keepalive_seconds=keepalive_seconds)
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
        # The headline figures count supporters: a campaign post carrying a counter-hashtag is a hijack candidate.
        truths[platform] = simulation.storm.supporters(truths[platform], campaign.counter_hashtags)
    by_platform = {name: _public(truth.to_json()) for name, truth in truths.items()}
    combined = {key: sum(t[key] for t in by_platform.values()) for key in TRUTH_FIGURES}
    return {"since": campaign.start.isoformat(), "until": campaign.end.isoformat(), **combined,
            "by_platform": by_platform, "intel": intel_truth(simulation, config, campaign)}


def intel_truth(simulation: Simulation, config: Config, campaign: CampaignConfig) -> dict[str, Any]:
    """What the storm-intelligence figures of the campaign window should be (intel.py): the copy-paste share and
    the largest group of copies, the targets' posts a collector can read, and the counter-hashtags."""
    storm = simulation.storm
    mounted = [name for name in campaign.sources if name in MOUNTS]
    truths = {name: MOUNTS[name].truth(simulation, config, campaign) for name in mounted}
    ids = frozenset(post_id for truth in truths.values() for post_id in truth.post_ids)
    posts = [post for post in (storm.post_by_id(post_id) for post_id in ids) if post is not None]
    # Hijack candidates (campaign posts carrying a counter-hashtag) are not the supporters' posts.
    hijacks = frozenset(post.native_id for post in posts if carries(post, campaign.counter_hashtags))
    copies = copy_truth([post for post in posts if post.native_id not in hijacks])
    readable = _target_platforms(simulation, campaign)
    targets = [post for post in target_truth(storm.posts, storm.users, campaign.start, campaign.end, ids)
               if (post.platform, post.handle.casefold()) in readable]
    found: dict[str, Any] = {
        "duplicate_share": round(copies.share, 4),
        "top_duplicate": {"posts": copies.largest[0], "accounts": copies.largest[1]},
        "target_posts": [{"account": readable[(p.platform, p.handle.casefold())], "platform": p.platform,
                          "kind": p.kind,
                          "created_at": p.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "in_reply_to_campaign_post": p.in_reply_to_campaign_post} for p in targets],
        "counter": None}
    counter = campaign.counter()
    if counter is not None:
        theirs = frozenset(i for name in mounted for i in MOUNTS[name].truth(simulation, config, counter).post_ids)
        supporters = len(ids - hijacks)
        total = supporters + len(theirs)
        found["counter"] = {"posts": len(theirs), "both": len(hijacks),
                            "share_of_voice": round(supporters / total, 4) if total else None}
    return found


def _target_platforms(simulation: Simulation, campaign: CampaignConfig) -> dict[tuple[str, str], str]:
    """The target accounts a collector of the campaign reads: (platform, storm handle case-folded) -> the account
    as the platform names it (`name`, `name@instance`, `name.bsky.social`)."""
    readable = {("x", handle.casefold()): handle for handle in campaign.targets} if "x" in campaign.sources else {}
    for user in simulation.storm.users:
        if user.role != "target":
            continue
        if user.platform == "mastodon" and simulation.mastodon is not None and "mastodon" in campaign.sources:
            address = f"{user.username}@{simulation.mastodon.home_of(user)}"
            if address.casefold() in {t.casefold() for t in campaign.targets_mastodon}:
                readable[("mastodon", user.username.casefold())] = address
        if user.platform == "bluesky" and simulation.bluesky is not None and "bluesky" in campaign.sources:
            handle = simulation.bluesky.network.handle(user)
            if handle in {t.casefold() for t in campaign.targets_bluesky}:
                readable[("bluesky", user.username.casefold())] = handle
    return readable


def _public(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("post_ids", "per_minute")}
