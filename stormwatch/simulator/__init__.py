"""The simulated platform: a seeded storm generator and a local HTTP server speaking the real X API v2.

Self-contained on purpose (standard library only, nothing from the rest of stormwatch), so that the
collector is tested against real HTTP and a realistic wire format rather than against mocks.

    from stormwatch.simulator import Storm, StormSpec, SimulatedPlatform, SimClock
    storm = Storm.build(StormSpec(hashtags=("StandWithIssa",), start=..., end=...))
    with SimulatedPlatform(storm, SimClock.starting_at(storm.spec.start, speed=60)) as platform:
        print(platform.url)
"""

from stormwatch.simulator.clock import ManualClock, SimClock
from stormwatch.simulator.generator import StormGenerator, iter_storm
from stormwatch.simulator.query import QueryEngine, QueryError, parse_query
from stormwatch.simulator.server import Faults, RequestRecord, SimulatedPlatform
from stormwatch.simulator.spec import Post, StormSpec, User, snowflake, snowflake_ms
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.truth import Truth, TruthBuilder
from stormwatch.simulator.wire_x import Selection, render_page, render_twarc_page

__all__ = [
    "Faults",
    "ManualClock",
    "Post",
    "QueryEngine",
    "QueryError",
    "RequestRecord",
    "Selection",
    "SimClock",
    "SimulatedPlatform",
    "Storm",
    "StormGenerator",
    "StormSpec",
    "Truth",
    "TruthBuilder",
    "User",
    "iter_storm",
    "parse_query",
    "render_page",
    "render_twarc_page",
    "snowflake",
    "snowflake_ms",
]
