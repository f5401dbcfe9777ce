"""stormwatch.sources.registry and .capabilities: every platform is registered with a source factory, page
normalizers and archive record kinds; what each real source can do is found with isinstance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch.config import Config, load_config
from stormwatch.errors import StormwatchError
from stormwatch.models import RawPage
from stormwatch.normalize import x as normalize_x
from stormwatch.platforms import PLATFORMS
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.mastodon import InstanceSettings, instance_urls, mount_mastodon
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.sources import Source, registry
from stormwatch.sources.capabilities import (
    Billed,
    Counted,
    Enriching,
    MultiServer,
    ReachLimited,
    Searchable,
    Streaming,
)

from .conftest import T0, TOKEN, storm_spec, write_config
from .simulator_support import SEARCH_REPOSTS

CAPABILITIES = (Searchable, ReachLimited, Counted, Billed, MultiServer, Enriching, Streaming)
# What each platform's source can do (the table in sources/capabilities.py).
EXPECTED = {
    "x": {Searchable, ReachLimited, Counted, Billed, Enriching},  # counters read again (a streamed post has none)
    "mastodon": {Searchable, MultiServer},
    "bluesky": {Searchable, Enriching, Streaming},
}


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(replace(storm_spec(1200, seed=11), platforms=(("x", 0.6), ("mastodon", 0.4))))


@pytest.fixture
def world(storm: Storm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Config, ManualClock]]:
    """A config for all three platforms, X and Mastodon served by the simulated platform."""
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    clock = ManualClock(T0 + timedelta(hours=1))
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        mount_mastodon(server, {"mastodon.social": InstanceSettings()})
        instances = instance_urls(server, ["mastodon.social"])
        bluesky = f'[bluesky]\nappview_url = "{server.url}"\nservice_url = "{server.url}"\n'
        path = write_config(tmp_path, server.url, campaign_extra='sources = ["x", "mastodon", "bluesky"]\n',
                            top_extra=f"[mastodon]\ninstances = {instances!r}\n{bluesky}")
        yield load_config(path), clock


def test_every_platform_is_registered_and_every_registration_is_a_platform() -> None:
    assert [entry.platform for entry in registry.registered()] == list(PLATFORMS)
    for entry in registry.registered():
        assert registry.platform_sources(entry.name) is entry
        assert entry.pages and all(callable(normalize) for normalize in entry.pages.values())
        assert entry.record_kinds and all(kind.platform == entry.name for kind in entry.record_kinds)
        assert all((kind.rows is None) != (kind.counts is None) for kind in entry.record_kinds)
    with pytest.raises(StormwatchError, match="unknown source 'threads'"):
        registry.platform_sources("threads")


def test_record_kinds_are_named_once_and_the_loose_ones_are_tried_last() -> None:
    kinds = registry.record_kinds()
    assert len({kind.name for kind in kinds}) == len(kinds)
    loose = [kind.loose for kind in kinds]
    assert loose == sorted(loose) and any(loose)  # every specific kind before any loose one
    assert registry.record_kind("x-counts").counts is normalize_x.normalize_counts


def test_each_source_is_built_by_its_factory_and_declares_what_it_can_do(world: tuple[Config, ManualClock]) -> None:
    config, clock = world
    for entry in registry.registered():
        source = registry.make_source(config, entry.name, clock)
        try:
            assert isinstance(source, Source) and source.name == entry.name
            assert {c for c in CAPABILITIES if isinstance(source, c)} == EXPECTED[entry.name], entry.name
            table = {"x": config.x, "mastodon": config.mastodon, "bluesky": config.bluesky}[entry.name]
            assert source.retry_policy == table.retry_policy
        finally:
            source.close()


def test_each_search_page_is_normalized_by_its_platforms_normalizer(world: tuple[Config, ManualClock]) -> None:
    config, clock = world
    campaign = config.campaigns[0]
    for name in ("x", "mastodon"):
        source = registry.make_source(config, name, clock)
        assert isinstance(source, Searchable)
        try:
            query = source.queries(campaign)[0]
            page = next(source.search(source.first_cursor(campaign, query, clock.now()), clock.now()))
        finally:
            source.close()
        batch = registry.normalize_page(page)
        assert batch.posts and {post.platform for post in batch.posts} == {name}
    stray = RawPage(source="mastodon", endpoint="counts", url="", retrieved_at=clock.now(), body={},
                    cursor=page.cursor)
    with pytest.raises(StormwatchError, match="mastodon: no normalizer for 'counts' pages"):
        registry.normalize_page(stray)
