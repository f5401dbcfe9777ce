"""A localhost port that refuses connections, held for as long as a test needs it.

Servers in the tests bind port 0 themselves and report the port they got (the simulator's hosts, Jetstream).
A test of an unreachable address needs the opposite: a port bound but never listening, so every connection is
refused, and kept bound, so no other process can take it between the test's choosing and its connecting.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refused_port() -> Iterator[int]:
    """A localhost port nothing listens on, for as long as the `with` lasts."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
