"""The wiring (`simulator/wiring.py`): a campaign's storm served on the platforms of its sources, and its truth."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import requests

from stormwatch.config import Config, load_config
from stormwatch.simulator.atproto import BlueskyNetwork
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.wiring import MOUNTS, PLATFORM_SHARES, build_simulation, storm_spec

from .cli_support import invoke
from .conftest import TOKEN, write_config

THREE = 'sources = ["x", "mastodon", "bluesky"]\n'
INSTANCES = '[mastodon]\ninstances = ["mastodon.social", "http://127.0.0.1:9/i/Kolektiva.social"]\n'


def three_platform_config(directory: Path) -> Path:
    """A campaign collecting from X, two Mastodon instances and Bluesky."""
    return write_config(directory, "http://127.0.0.1:9", top_extra=INSTANCES, campaign_extra=THREE)


def test_every_platform_of_the_campaign_is_served(tmp_path: Path) -> None:
    config = load_config(three_platform_config(tmp_path))
    campaign = config.campaigns[0]
    spec = storm_spec(config, campaign, seed=5, posts=600)
    assert spec.platforms == tuple(PLATFORM_SHARES.items()) == (("x", 0.6), ("mastodon", 0.25), ("bluesky", 0.15))
    simulation = build_simulation(config, campaign, port=0, storm=Storm.build(spec), token=TOKEN)
    assert simulation.instance_names == ("mastodon.social", "kolektiva.social")
    assert simulation.x is not None and simulation.mastodon is not None and simulation.bluesky is not None
    assert simulation.jetstream is not None
    bluesky_user = next(u for u in simulation.storm.users if u.platform == "bluesky")
    with simulation.start():
        x = requests.get(f"{simulation.url}/2/tweets/counts/recent", params={"query": "#StandWithIssa"},
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        instances = [requests.get(f"{url}/api/v1/instance", timeout=10).json()["uri"]
                     for url in simulation.instance_urls()]
        profiles = requests.get(f"{simulation.url}/xrpc/app.bsky.actor.getProfiles", timeout=10,
                                params={"actors": simulation.bluesky.network.handle(bluesky_user)}).json()
        assert simulation.jetstream.url.startswith("ws://127.0.0.1:")
    assert x.status_code == 200 and "x-rate-limit-limit" in x.headers
    assert instances == ["mastodon.social", "kolektiva.social"]
    assert [p["did"] for p in profiles["profiles"]] == [simulation.bluesky.network.did(bluesky_user)]


def test_x_is_served_even_when_the_campaign_does_not_collect_from_it(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", top_extra=INSTANCES,
                                      campaign_extra='sources = ["mastodon"]\n'))
    simulation = build_simulation(config, config.campaigns[0], port=0, posts=300, token=TOKEN)
    assert MOUNTS["x"].always and simulation.x is not None
    assert simulation.mastodon is not None and simulation.bluesky is None and simulation.jetstream is None
    with simulation.start():
        unauthorized = requests.get(f"{simulation.url}/2/tweets/search/recent", timeout=10)
    assert unauthorized.status_code == 401 and unauthorized.json()["title"] == "Unauthorized"


def test_simulate_truth_adds_up_per_platform(tmp_path: Path) -> None:
    path = three_platform_config(tmp_path)
    done = invoke("simulate", "--config", path, "--truth", "--seed", "5", "--posts", "1500")
    assert done.returncode == 0, done.stderr
    truth = json.loads(done.stdout)
    by_platform = truth["by_platform"]
    assert list(by_platform) == ["x", "mastodon", "bluesky"]
    for figure in ("posts", "contributors", "potential_reach", "impressions", "engagement"):
        assert truth[figure] == sum(platform[figure] for platform in by_platform.values())
    # Mastodon and Bluesky report no impressions; Bluesky reposts are records, not posts.
    assert by_platform["mastodon"]["impressions"] == by_platform["bluesky"]["impressions"] == 0
    assert by_platform["bluesky"]["reposts"] == 0 and by_platform["x"]["reposts"] > 0
    config: Config = load_config(path)
    campaign = config.campaigns[0]
    storm = Storm.build(storm_spec(config, campaign, seed=5, posts=1500))
    x_truth = storm.truth(campaign.start, campaign.end, platform="x", include_reposts=config.x.include_reposts)
    assert by_platform["x"]["posts"] == x_truth.posts
    assert by_platform["bluesky"]["posts"] == BlueskyNetwork(storm).truth(campaign.start, campaign.end).posts



def test_only_the_wiring_imports_the_rest_of_stormwatch() -> None:
    package = Path(__file__).resolve().parents[1] / "stormwatch" / "simulator"
    importers = {}
    for module in sorted(package.glob("*.py")):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                imported.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        outside = {name for name in imported if name.startswith("..")
                   or (name.split(".")[0] == "stormwatch" and not name.startswith("stormwatch.simulator"))}
        if outside:
            importers[module.name] = sorted(outside)
    assert importers == {"wiring.py": ["stormwatch.config"]}
