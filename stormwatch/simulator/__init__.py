"""The simulated platforms: a seeded storm and local HTTP servers speaking the real wire formats.

Self-contained on purpose (standard library only, nothing from the rest of stormwatch but the wiring in
`wiring.py`), so that the collector is tested against real HTTP and realistic wire formats rather than
against mocks. The rooms inside:

* the storm: `spec.py` (what a storm is made of), `population.py` + `generator.py` (seeded generation),
  `truth.py` (the ground-truth oracle), `storm.py` (a materialized storm for the servers);
* the serving: `host.py` (a fault-injecting HTTP host that knows no platform), one mount per platform
  (`x.py` with `wire_x.py` and `query.py`, X's filtered stream `stream_x.py`, `mastodon.py`, `bluesky.py` over
  `atproto.py`), and
  `jetstream.py` (Bluesky's event feed, its own websocket server); `clock.py` says what "now" is;
* `wiring.py`: a stormwatch campaign's storm on the platforms of its sources (for the demo and `simulate`).

    from stormwatch.simulator import Storm, StormSpec, SimulatedPlatform, SimClock
    storm = Storm.build(StormSpec(hashtags=("StandWithIssa",), start=..., end=...))
    with SimulatedPlatform(storm, SimClock.starting_at(storm.spec.start, speed=60)) as platform:
        print(platform.url)
"""

from stormwatch.simulator.clock import Clock, ManualClock, SimClock
from stormwatch.simulator.generator import StormGenerator, iter_storm
from stormwatch.simulator.host import Faults, RequestRecord, SimulatedHost
from stormwatch.simulator.query import QueryEngine, QueryError, parse_query
from stormwatch.simulator.spec import Post, StormSpec, User, snowflake, snowflake_ms
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.stream_x import FilteredStream, mount_stream
from stormwatch.simulator.truth import Truth, TruthBuilder
from stormwatch.simulator.wire_x import Selection, render_page, render_twarc_page
from stormwatch.simulator.x import SimulatedPlatform, XApi, mount_x

__all__ = [
    "Clock",
    "Faults",
    "FilteredStream",
    "ManualClock",
    "Post",
    "QueryEngine",
    "QueryError",
    "RequestRecord",
    "Selection",
    "SimClock",
    "SimulatedHost",
    "SimulatedPlatform",
    "Storm",
    "StormGenerator",
    "StormSpec",
    "Truth",
    "TruthBuilder",
    "User",
    "XApi",
    "iter_storm",
    "mount_stream",
    "mount_x",
    "parse_query",
    "render_page",
    "render_twarc_page",
    "snowflake",
    "snowflake_ms",
]
