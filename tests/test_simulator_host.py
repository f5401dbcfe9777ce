"""The fault-injecting host (`simulator/host.py`): faults as clients see them, mounts, the request log."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
import tweepy

from stormwatch.simulator import Faults, ManualClock, SimulatedPlatform, Storm

from .simulator_support import CAMPAIGN_QUERY, COUNTS, END, SEARCH, SPEC, TOKEN, get, make_client


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(SPEC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(END + timedelta(minutes=10))


def test_faults_as_clients_see_them(storm: Storm, clock: ManualClock) -> None:
    faults = Faults(rate_limit_every=3, rate_limit_reset_seconds=60)
    with SimulatedPlatform(storm, clock, token=TOKEN, faults=faults) as platform:
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
