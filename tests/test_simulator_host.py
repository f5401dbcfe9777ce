"""The fault-injecting host (`simulator/host.py`): faults as clients see them, mounts, the request log."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
import tweepy

from stormwatch.simulator import Faults, ManualClock, SimulatedHost, SimulatedPlatform, Storm
from stormwatch.simulator.host import DueFaults, FaultDraw, Request, Response, json_response

from .simulator_support import CAMPAIGN_QUERY, COUNTS, END, SEARCH, SEARCH_REPOSTS, SPEC, TOKEN, get, make_client


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(SPEC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(END + timedelta(minutes=10))


def test_faults_as_clients_see_them(storm: Storm, clock: ManualClock) -> None:
    faults = Faults(rate_limit_every=3, rate_limit_reset_seconds=60)
    with SimulatedPlatform(storm, clock, token=TOKEN, faults=faults, search_reposts=SEARCH_REPOSTS) as platform:
        client = make_client(platform)
        client.search_recent_tweets(CAMPAIGN_QUERY)
        client.search_recent_tweets(CAMPAIGN_QUERY)
        with pytest.raises(tweepy.TooManyRequests) as limited:
            client.search_recent_tweets(CAMPAIGN_QUERY)
        assert limited.value.reset_time == int(clock.now().timestamp()) + 60
        with pytest.raises(tweepy.TooManyRequests):  # the window stays closed until the reset
            client.search_recent_tweets(CAMPAIGN_QUERY)
        clock.advance(61)
        client.search_recent_tweets(CAMPAIGN_QUERY)

        faults.update(rate_limit_every=0, server_error_every=2)
        platform.reset_observations()
        statuses = []
        for _ in range(4):
            try:
                statuses.append(client.search_recent_tweets(CAMPAIGN_QUERY).status_code)
            except tweepy.TwitterServerError as error:
                statuses.append(error.response.status_code)
                assert error.response.json() == {
                    "title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank",
                    "status": 503,
                }
        assert sorted(statuses) == [200, 200, 503, 503]
        served = platform.served_post_ids()  # the same newest page twice; failed responses not counted
        assert len(served) == 10 and set(served.values()) == {2}

        faults.update(server_error_every=0, drop_every=2, malformed_every=3)
        platform.reset_observations()
        outcomes = []
        for _ in range(6):
            try:
                response = client.search_recent_tweets(CAMPAIGN_QUERY)
                outcomes.append("ok" if response.json() else "empty")
            except requests.exceptions.JSONDecodeError:
                outcomes.append("malformed")
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
                outcomes.append("dropped")
        # The counter keeps running across setting changes; whatever the phase, the mix is exact.
        assert Counter(outcomes) == Counter({"ok": 2, "dropped": 3, "malformed": 1})
        assert sum(platform.served_post_ids().values()) == 20  # only intact pages count as delivered
        assert Counter(r.fault for r in platform.requests()) == Counter({None: 2, "drop": 3, "malformed": 1})

        faults.update(drop_every=0, malformed_every=0, slow_every=1, slow_seconds=0.3)
        started = time.perf_counter()
        assert client.search_recent_tweets(CAMPAIGN_QUERY).status_code == 200
        assert time.perf_counter() - started >= 0.3

        faults.update(slow_every=0, server_error_every=1, only_paths=(SEARCH,))
        assert get(platform, COUNTS, query=CAMPAIGN_QUERY).status_code == 200
        assert get(platform, SEARCH, query=CAMPAIGN_QUERY).status_code == 503


def test_faults_parse_from_cli_text() -> None:
    faults = Faults.parse("rate_limit_every=7, slow_every=3,slow_seconds=0.5,only_paths=/2/tweets/search/recent")
    assert (faults.rate_limit_every, faults.slow_every, faults.slow_seconds) == (7, 3, 0.5)
    assert faults.only_paths == ("/2/tweets/search/recent",)
    with pytest.raises(ValueError):
        Faults.parse("explode_every=2")


class Echo:
    """A mount that is no platform: it answers with what it saw, and draws faults only if told to."""

    def __init__(self, name: str, *, draws: bool = True) -> None:
        self.name = name
        self.draws = draws

    def handle(self, request: Request, draw_faults: FaultDraw) -> Response:
        """Echo the request; delivery faults drawn from the host are marked for the host to apply."""
        due = draw_faults() if self.draws else DueFaults()
        response = json_response(200, {"mount": self.name, "path": request.path, "number": request.number,
                                        "params": dict(request.params), "query": request.query})
        response.malformed, response.drop, response.fault = due.malformed, due.drop, due.tag()
        return response


def test_the_host_serves_mounts_by_longest_prefix_and_knows_no_platform(storm: Storm, clock: ManualClock) -> None:
    with SimulatedHost(storm, clock, faults=Faults(malformed_every=2)) as host:
        host.mount("/", Echo("root"))
        host.mount("/a/", Echo("a"))
        host.mount("/a/b/", Echo("a-b", draws=False))  # never counted toward the faults
        deep = requests.get(f"{host.url}/a/b/c", params={"x": "1"}, timeout=5)
        first = requests.get(f"{host.url}/a/c", params=[("tag", "one"), ("tag", "two")], timeout=5)
        second = requests.get(f"{host.url}/elsewhere", timeout=5)
        third = requests.get(f"{host.url}/a/b/again", timeout=5)
        records = [(r.number, r.path, r.status, r.fault) for r in host.requests()]
        host.reset_observations()
        assert host.requests() == []
    assert deep.json() == {"mount": "a-b", "path": "/a/b/c", "number": 1, "params": {"x": "1"}, "query": "x=1"}
    assert first.json()["mount"] == "a" and first.json()["params"] == {"tag": "one"}  # the first value wins
    assert first.json()["query"] == "tag=one&tag=two"  # every value stays in the raw query
    with pytest.raises(requests.exceptions.JSONDecodeError):  # the second drawn request is cut short
        second.json()
    assert third.json()["mount"] == "a-b"
    assert records == [(1, "/a/b/c", 200, None), (2, "/a/c", 200, None), (3, "/elsewhere", 200, "malformed"),
                       (4, "/a/b/again", 200, None)]

    with SimulatedHost(storm, clock) as bare:
        nothing = requests.get(f"{bare.url}/2/tweets/search/recent", timeout=5)
    assert nothing.status_code == 404 and nothing.text == "404 page not found\n"


def test_the_host_closes_kept_alive_connections_when_it_stops(storm: Storm, clock: ManualClock) -> None:
    host = SimulatedHost(storm, clock)
    host.mount("/", Echo("root"))
    port = host.port  # port 0 resolves when the host binds
    assert port > 0 and host.url == f"http://127.0.0.1:{port}"
    host.start()
    with requests.Session() as session:
        assert session.get(f"{host.url}/one", timeout=5).json()["number"] == 1
        host.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"http://127.0.0.1:{port}/two", timeout=5)
    host.stop()  # stopping twice is harmless
