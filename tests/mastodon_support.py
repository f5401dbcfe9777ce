"""Shared by the Mastodon tests (normalizer, simulated instances, source): recorded cassettes, the campaign, a
small storm on three platforms, and simulated instances served over real HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from stormwatch.config import CampaignConfig, MastodonConfig
from stormwatch.models import Cursor, RawPage
from stormwatch.normalize.mastodon import normalize_timeline
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.host import Faults
from stormwatch.simulator.mastodon import InstanceSettings, MastodonInstances, instance_urls, mount_mastodon
from stormwatch.simulator.spec import Post
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.sources.mastodon import MastodonSource
from tests.conftest import HASHTAGS, T0, sample_path, storm_spec

from .simulator_support import SEARCH_REPOSTS

PLATFORMS = (("x", 0.5), ("mastodon", 0.3), ("bluesky", 0.2))
SOCIAL, CHAOS = "mastodon.social", "chaos.social"
TAG = "StandWithIssa"
TOKEN = "mastodon-secret-token-for-tests"
RETRIEVED = "2021-02-07T19:00:00.000Z"


def cassette(name: str) -> list[dict]:
    """The interactions of one of Mastodon.py's recorded test cassettes (read once: tests only read them)."""
    return _cassette(sample_path("mastodon", name))


@functools.cache
def _cassette(path: Path) -> list[dict]:
    # libyaml's loader where PyYAML has it: the pure-Python one takes seconds over a cassette.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)["interactions"]


def tag_responses(name: str) -> list[tuple[str, list[dict], dict[str, list[str]]]]:
    """(request URL, statuses, response headers) of every recorded tag-timeline GET in a cassette."""
    return [(i["request"]["uri"], json.loads(i["response"]["body"]["string"]), i["response"]["headers"])
            for i in cassette(name) if i["request"]["method"] == "GET" and "/timelines/tag/" in i["request"]["uri"]]


def campaign(start: datetime = T0) -> CampaignConfig:
    """The #StandWithIssa campaign, collecting from Mastodon."""
    return CampaignConfig(name="standwithissa", hashtags=HASHTAGS, accounts=("Issaamro",), targets=(),
                          sources=("mastodon",), start=start, end=start + timedelta(hours=3),
                          timezone=ZoneInfo("Asia/Hebron"), interval=timedelta(minutes=5),
                          storm_interval=timedelta(minutes=1), daily_budget_usd=None)


def has_tag(post: Post, tag: str) -> bool:
    """Whether a storm post carries `tag` (Mastodon matches tags case-blind)."""
    return any(t.lower() == tag.lower() for _, _, t in post.hashtags)


def expected_uids(storm: Storm, instances: MastodonInstances, tag: str, since: datetime, now: datetime) -> set[str]:
    """What a full sweep of `tag` must collect: the storm's own truth, keyed by uri as the normalizer keys it.

    Mastodon tag timelines hold no reblogs (they carry no tags of their own), so the truth excludes reposts.
    """
    truth = storm.truth(since, now + timedelta(seconds=1), platform="mastodon", include_reposts=False)
    posts = [storm.post_by_id(native) for native in truth.post_ids]
    return {f"mastodon:{instances.uri_of(p)}" for p in posts if p is not None and has_tag(p, tag)}


def sweep(source: MastodonSource, cursor: Cursor, now: datetime) -> tuple[list[RawPage], Cursor]:
    """Every page of one search and the cursor the last one leaves."""
    pages = list(source.search(cursor, now))
    return pages, pages[-1].cursor if pages else cursor


def collected_uids(pages: list[RawPage]) -> list[str]:
    """The post uids of the pages, normalized as the collector normalizes them (repeats kept)."""
    return [post.uid for page in pages for post in normalize_timeline(page.body, RETRIEVED).posts]


def timeline_requests(platform: SimulatedPlatform) -> list:
    """The tag-timeline requests the platform has served."""
    return [r for r in platform.requests() if "/timelines/tag/" in r.path]


@pytest.fixture(scope="module")
def storm() -> Storm:
    """A small storm on X, Mastodon and Bluesky."""
    return _storm()


@functools.cache
def _storm() -> Storm:
    # One storm for every Mastodon test module, as when they were one file.
    return Storm.build(dataclasses.replace(storm_spec(1200), platforms=PLATFORMS))


@dataclasses.dataclass
class Fediverse:
    """A simulated platform with Mastodon instances mounted, its clock, and a source reading them."""

    platform: SimulatedPlatform
    instances: MastodonInstances
    clock: ManualClock

    def source(self, *names: str, token: str | None = None, page_size: int = 10,
               token_env: str | None = None) -> MastodonSource:
        """A source reading `names` (default: every instance) through the simulator's base URLs."""
        config = MastodonConfig(instances=tuple(instance_urls(self.platform, names or self.instances.names)),
                                access_token_env=token_env, timeout=5.0, page_size=page_size)
        return MastodonSource(config, self.clock, token)


@contextlib.contextmanager
def fediverse(storm: Storm, settings: dict[str, InstanceSettings], now: datetime,
              faults: Faults | None = None) -> Iterator[Fediverse]:
    """Instances with these settings served on a free port, storm time standing at `now`."""
    clock = ManualClock(now)
    with SimulatedPlatform(storm, clock, faults=faults or Faults(), search_reposts=SEARCH_REPOSTS) as platform:
        yield Fediverse(platform, mount_mastodon(platform, settings), clock)


@pytest.fixture
def fedi(storm: Storm) -> Iterator[Fediverse]:
    """Two public instances, the clock an hour into the storm."""
    with fediverse(storm, {SOCIAL: InstanceSettings(), CHAOS: InstanceSettings()}, T0 + timedelta(hours=1)) as world:
        yield world


@dataclasses.dataclass
class Reply:
    """What a hostile instance sends for one GET: a status, headers, and a body given piece by piece (a generator
    can drip it, or stream far more than memory holds); without `length` the body ends when the connection does."""

    body: Iterable[bytes]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    status: int = 200
    length: int | None = None
    raw: bool = False  # the body is the whole answer, status line and headers included (to drip them too)

    @classmethod
    def json(cls, text: str, headers: dict[str, str] | None = None) -> Reply:
        """A whole JSON answer with its Content-Length."""
        body = text.encode()
        return cls([body], headers or {}, length=len(body))


def dripping(first: bytes = b"[", every: float = 0.5, lasting: float = 60.0, drop: bytes = b" ") -> Iterator[bytes]:
    """A body that starts, then comes a `drop` every `every` seconds (never tripping a per-read timeout), and
    ends with the connection after `lasting` seconds."""
    yield first
    ends = time.monotonic() + lasting
    while time.monotonic() < ends:
        time.sleep(every)
        yield drop


@contextlib.contextmanager
def hostile_instance(respond: Callable[[str], Reply]) -> Iterator[str]:
    """A server on a localhost port answering every GET with `respond(path)` (an instance that misbehaves in ways
    the simulator does not: endless pages, dripped or huge answers); yields its base URL."""

    class Answering(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            """The reply for this path, written as it is produced."""
            reply = respond(self.path)
            if reply.raw:
                self.close_connection = True
                self._write(reply.body)
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.length is not None:
                self.send_header("Content-Length", str(reply.length))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self._write(reply.body)

        def _write(self, body: Iterable[bytes]) -> None:
            try:
                for piece in body:
                    self.wfile.write(piece)
                    self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client hung up: stop producing

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def odd_instance(answer: Callable[[str], str]) -> Iterator[str]:
    """A server on a localhost port answering every GET with the JSON text `answer(path)` gives (an instance
    that misbehaves in a way the simulator does not); yields its base URL."""
    with hostile_instance(lambda path: Reply.json(answer(path))) as url:
        yield url
