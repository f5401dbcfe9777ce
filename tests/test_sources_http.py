"""stormwatch.sources.http: rate-limit headers, stopping before a refused request, and network failures in
words, from real answers and real failures (the simulated platform, closed and silent ports on localhost)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import requests

from stormwatch.errors import RateLimited
from stormwatch.models import RateLimit
from stormwatch.sources.http import (
    DROPPED,
    NO_ANSWER,
    RateLimitHeaders,
    network_failure,
    network_reason,
    raise_if_exhausted,
    rate_limit,
    where,
)
from stormwatch.sources.mastodon import RATE_LIMIT_HEADERS as MASTODON_HEADERS
from stormwatch.sources.x import RATE_LIMIT_HEADERS as X_HEADERS

from .conftest import TOKEN
from .port_support import refused_port

SEARCH = "/2/tweets/search/recent"
BLUESKY_HEADERS = RateLimitHeaders("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A localhost port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def search(server_url: str) -> requests.Response:
    return requests.get(f"{server_url}{SEARCH}", params={"query": "#StandWithIssa"},
                        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def test_x_rate_limit_headers_of_a_real_answer(platform: tuple) -> None:
    server, _ = platform
    response = search(server.url)
    limit = rate_limit(response.headers, X_HEADERS)
    assert limit.limit is not None and limit.remaining == limit.limit - 1
    assert limit.reset_at is not None and limit.reset_at.tzinfo is not None
    assert where(response) == f"GET {SEARCH}"  # never the query string: it can carry tokens


def test_reset_times_in_epoch_seconds_or_iso_and_unreadable_headers() -> None:
    epoch = rate_limit({"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": "1612713600"},
                       BLUESKY_HEADERS)
    assert epoch == RateLimit(limit=3000, remaining=0, reset_at=datetime(2021, 2, 7, 16, 0, tzinfo=UTC))
    iso = rate_limit({"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "12",
                      "X-RateLimit-Reset": "2021-02-07T17:05:00.000Z"}, MASTODON_HEADERS)
    assert iso == RateLimit(limit=300, remaining=12, reset_at=datetime(2021, 2, 7, 17, 5, tzinfo=UTC))
    assert rate_limit({"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "soon"}, MASTODON_HEADERS) == \
        RateLimit(None, None, None)
    assert rate_limit(None, X_HEADERS) == RateLimit(None, None, None)


def test_a_used_up_window_stops_before_the_next_request() -> None:
    reset = datetime(2021, 2, 7, 16, 15, tzinfo=UTC)
    raise_if_exhausted(RateLimit(limit=450, remaining=1, reset_at=reset), "x", f"GET {SEARCH}")
    raise_if_exhausted(RateLimit(limit=450, remaining=0, reset_at=None), "x", f"GET {SEARCH}")  # no reset: try
    with pytest.raises(RateLimited) as caught:
        raise_if_exhausted(RateLimit(limit=450, remaining=0, reset_at=reset), "mastodon: chaos.social",
                           "GET /api/v1/timelines/tag/StandWithIssa")
    assert str(caught.value) == "mastodon: chaos.social: rate limit used up on GET /api/v1/timelines/tag/StandWithIssa"
    assert caught.value.reset_at == reset and not caught.value.request_made


def test_a_refused_connection_in_every_library() -> None:
    with refused_port() as port:
        with pytest.raises(requests.exceptions.RequestException) as by_requests:
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        with pytest.raises(httpx.TransportError) as by_httpx:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        with pytest.raises(OSError) as by_socket:
            socket.create_connection(("127.0.0.1", port), timeout=5)
    for failure in (by_requests.value, by_httpx.value, by_socket.value):
        assert network_reason(failure) == "connection refused"
    assert network_failure("http://a.example", by_requests.value) == "cannot reach http://a.example: connection refused"


def test_a_server_that_never_answers(silent_port: int) -> None:
    with pytest.raises(requests.exceptions.RequestException) as by_requests:
        requests.get(f"http://127.0.0.1:{silent_port}/", timeout=0.2)
    with pytest.raises(httpx.TransportError) as by_httpx:
        httpx.get(f"http://127.0.0.1:{silent_port}/", timeout=0.2)
    for failure in (by_requests.value, by_httpx.value):
        assert network_reason(failure) == NO_ANSWER
    assert network_failure("http://a.example", by_requests.value) == "http://a.example did not answer in time"


def test_a_connection_dropped_mid_response(platform: tuple) -> None:
    server, _ = platform
    server.faults.update(drop_every=1, only_paths=(SEARCH,))
    with pytest.raises(requests.exceptions.RequestException) as caught:
        search(server.url).json()
    assert network_reason(caught.value) == DROPPED
    assert network_failure("http://a.test", caught.value) == "the connection to http://a.test dropped mid-response"


def test_no_exception_and_unknown_exceptions() -> None:
    assert network_reason(None) == "network error"
    assert network_reason(ValueError("https://x.example/?token=secret")) == "ValueError"  # never the text
