"""The simulated Jetstream: RFC 6455 over a real socket, collection filters, cursors, refusals."""

from __future__ import annotations

import http.client
import json
from datetime import timedelta

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.jetstream import JetstreamServer, accept_key

from . import bluesky_support
from .bluesky_support import eventually, micros
from .conftest import T0

# Fixtures the tests take by name, shared with the other Bluesky test modules.
storm = bluesky_support.storm
network = bluesky_support.network


def test_jetstream_server_speaks_rfc6455_and_filters_collections(storm, network) -> None:
    # The handshake example of RFC 6455 section 1.3.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    clock = ManualClock(T0 + timedelta(minutes=10))
    with JetstreamServer(storm, clock, network=network) as server:
        start = micros(T0)
        with connect(f"{server.url}?wantedCollections=app.bsky.feed.repost&cursor={start}") as ws:
            events = []
            while True:
                try:
                    events.append(json.loads(ws.recv(timeout=0.3)))
                except TimeoutError:
                    break
            assert ws.ping().wait(2)  # the server answers pings
            ws.close()
        eventually(lambda: server.connections()[0].closed)
        kinds = {e["kind"] for e in events}
        assert kinds == {"commit", "identity", "account"}  # identity and account events come whatever is wanted
        assert {e["commit"]["collection"] for e in events if e["kind"] == "commit"} == {"app.bsky.feed.repost"}
        times = [e["time_us"] for e in events]
        assert times == sorted(set(times)) and start <= times[0] and times[-1] < micros(clock.now())
        assert server.connections()[0].closed and server.connections()[0].events_sent == len(events)

        with connect(f"{server.url}?cursor={start}") as ws:
            first = json.loads(ws.recv(timeout=2))
            assert first["time_us"] >= start
            server.stop()
            with pytest.raises(ConnectionClosedOK):
                while True:
                    ws.recv(timeout=2)

    with JetstreamServer(storm, clock, network=network) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/subscribe?cursor=soon")
        assert connection.getresponse().status == 400
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/subscribe")
        assert connection.getresponse().status == 426
