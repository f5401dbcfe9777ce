"""Plays the phones of bench_serve, in a process of their own (as phones are: they do not share the server's
interpreter): viewers that ask for the feed all at the same moment, and viewers that hold an event stream.

    python -m bench.serve_viewers URL VIEWERS STREAMS SECONDS EVERY

Each client connects from its own loopback address (127.0.0.N), as phones have their own, so the page's
per-client rate limit applies to each. One thread and asyncio, a minimal HTTP/1.1 reader: the clients' own work
is a few microseconds a response, so what is timed is the server. Prints one JSON line: each feed and page
request's duration (from writing the request to the last byte of the body), for each event received on a
stream the view's version and the wall time it arrived, and the span (wall times) the viewers were asking.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

RELOAD_EVERY = 10  # every tenth turn a viewer reloads the whole page instead of asking for the feed
_LINE_LIMIT = 1 << 24  # an event is one line of JSON (the feed): far longer than asyncio's default 64 KiB


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str) -> int:
    """One GET on a kept-alive connection: the status, once the whole body is read."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return status


async def _poller(url: str, address: str, first: float, until: float, every: float, result: dict[str, Any]) -> None:
    """A viewer asking for the feed at first, first + every, ... (all viewers at the same moments)."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}"
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, local_addr=(address, 0))
    turn = 0
    try:
        while (moment := first + turn * every) < until:
            await asyncio.sleep(max(0.0, moment - time.monotonic()))
            path = parts.path if turn % RELOAD_EVERY == RELOAD_EVERY - 1 else parts.path + "feed.json"
            turn += 1
            started = time.perf_counter()
            try:
                status = await _get(reader, writer, host, path)
            except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
                result["failures"].append(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port, local_addr=(address, 0))
                continue
            if status != 200:
                result["failures"].append(str(status))
                continue
            result["page_ms" if path == parts.path else "feed_ms"].append(1000 * (time.perf_counter() - started))
    finally:
        writer.close()


async def _stream(url: str, address: str, until: float, result: dict[str, Any]) -> None:
    """A viewer holding the event stream: notes when each new view arrives (the first, sent at once, is not new)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, local_addr=(address, 0),
                                                   limit=_LINE_LIMIT)
    writer.write(f"GET {parts.path}events HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n\r\n".encode())
    first = True
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            result["failures"].append(head.split(b"\r\n", 1)[0].decode("latin-1"))
            return
        while time.monotonic() < until:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=max(0.01, until - time.monotonic()))
            except TimeoutError:
                break
            if not line:
                result["failures"].append("stream closed")
                return
            # The body is chunked: the chunk sizes are lines of their own; the event's data line is whole.
            if b"data: {" in line and b'"version"' in line:
                arrived = time.time()
                version = json.loads(line[line.index(b"data: ") + 6:])["version"]
                if not first:
                    result["events"].append((version, arrived))
                first = False
    finally:
        writer.close()


async def _main(url: str, viewers: int, streams: int, seconds: float, every: float) -> dict[str, Any]:
    result: dict[str, Any] = {"feed_ms": [], "page_ms": [], "events": [], "failures": []}
    start = time.monotonic() + 0.5
    until = start + seconds
    result["span"] = [time.time() + 0.5, time.time() + 0.5 + seconds]  # wall times: the writer's pages of the span
    tasks = [_poller(url, f"127.0.0.{2 + n}", start, until, every, result) for n in range(viewers)]
    tasks += [_stream(url, f"127.0.{1 + n // 250}.{2 + n % 250}", until, result) for n in range(streams)]
    await asyncio.gather(*tasks)
    return result


def main() -> None:
    """Run the viewers for the given seconds; print what they measured as one JSON line."""
    url, viewers, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seconds, every = float(sys.argv[4]), float(sys.argv[5])
    print(json.dumps(asyncio.run(_main(url, viewers, streams, seconds, every))))


if __name__ == "__main__":
    main()
