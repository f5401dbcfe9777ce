"""The fault-injecting HTTP host the simulated platforms are mounted on; it knows no platform itself.

A `SimulatedHost` serves one storm on a local port. Each platform is a `Mount` under a path prefix (X API v2
at the root, Mastodon instances under ``/i/``, Bluesky's XRPC under ``/xrpc/``); the longest matching prefix
answers. The host does the socket work, numbers and logs every request (`requests()`), and owns the fault
knobs (`Faults`, mutable while serving):

* a mount draws the faults that fall on a request (`DueFaults`) when the request reaches the point where its
  platform would count it (X counts neither refused credentials nor unknown paths); a draw counts the
  request toward every "every Nth" knob, unless `Faults.only_paths` leaves its path out;
* the mount renders rate-limit and server-error faults in its own wire format, and marks delivery faults on
  the `Response`: the host then delays it (`slow_every`), cuts its JSON short (`malformed_every`: valid
  HTTP, broken JSON) or sends its headers and part of its body before closing the connection (`drop_every`).

`BackgroundServer` is the serving lifecycle (bind on first use, a daemon thread, stop) that the host and the
Jetstream websocket server share.
"""

from __future__ import annotations

import contextlib
import json
import math
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from stormwatch.simulator.clock import Clock
from stormwatch.simulator.storm import Storm

NOT_MOUNTED_BODY = b"404 page not found\n"


@dataclass
class Faults:
    """Injected faults, every Nth counted request (0 = never); mutable and thread-safe while serving."""

    rate_limit_every: int = 0
    rate_limit_reset_seconds: float = 60.0
    rate_limit_sticky: bool = True
    server_error_every: int = 0
    slow_every: int = 0
    slow_seconds: float = 0.0
    malformed_every: int = 0
    drop_every: int = 0
    only_paths: tuple[str, ...] = ()
    # X's filtered stream (stream_x.py), per connection: close it after N posts sent, or go silent after N posts
    # (no keep-alives, the connection left open); every Nth POST to the rules endpoint is refused in X's shapes.
    stream_drop_every: int = 0
    stream_stall_every: int = 0
    stream_rule_errors_every: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def update(self, **changes: Any) -> None:
        """Change some settings atomically (unknown names raise TypeError)."""
        names = {f.name for f in fields(self) if f.init}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown fault settings: {', '.join(unknown)}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def snapshot(self) -> Faults:
        """A consistent copy of the current settings."""
        with self._lock:
            return Faults(**{f.name: getattr(self, f.name) for f in fields(self) if f.init})

    @classmethod
    def parse(cls, text: str) -> Faults:
        """Faults from ``"rate_limit_every=7,slow_every=3,slow_seconds=0.5,only_paths=/2/tweets/search/recent"``."""
        faults = cls()
        kinds = {f.name: f.type for f in fields(cls) if f.init}
        changes: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, raw = item.partition("=")
            name = name.strip()
            if not sep or name not in kinds:
                raise ValueError(f"bad fault setting {item!r}; known: {', '.join(kinds)}")
            kind = str(kinds[name])
            raw = raw.strip()
            if kind == "int":
                changes[name] = int(raw)
            elif kind == "float":
                changes[name] = float(raw)
            elif kind == "bool":
                changes[name] = raw.lower() in ("1", "true", "yes", "on")
            else:
                changes[name] = (*changes.get(name, ()), *filter(None, raw.split("|")))
        faults.update(**changes)
        return faults


@dataclass(frozen=True)
class DueFaults:
    """Which injected faults fall on this request (the mount renders them in its own wire format)."""

    rate_limit: bool = False
    server_error: bool = False
    malformed: bool = False
    drop: bool = False
    delay: float = 0.0
    reset_seconds: float = 60.0  # how long an injected rate limit lasts (`Faults.rate_limit_reset_seconds`)
    sticky: bool = True  # whether it keeps the window closed until then (`Faults.rate_limit_sticky`)

    def tag(self) -> str | None:
        """A short name of the faults applied, for the request log."""
        names = [n for n in ("rate_limit", "server_error", "malformed", "drop") if getattr(self, n)]
        if self.delay:
            names.append("slow")
        return "+".join(names) or None


@dataclass(frozen=True)
class RequestRecord:
    """One served request, for tests and the demo's log."""

    number: int
    method: str
    path: str
    params: dict[str, str]
    status: int
    fault: str | None
    storm_time: datetime


@dataclass
class Response:
    """What a mount answers to one request, with any delivery fault to apply on the wire."""

    status: int
    body: bytes
    headers: dict[str, str]
    fault: str | None = None
    delay: float = 0.0
    malformed: bool = False
    drop: bool = False
    # A streamed body (X's filtered stream): called with the open connection once the headers are sent; the body
    # goes out chunked and the connection closes when it returns.
    stream: Callable[[StreamWriter], None] | None = None


class StreamWriter:
    """The open connection of a streamed response: chunks out, and whether the client is still there."""

    def __init__(self, connection: socket.socket, wfile: Any) -> None:
        self._connection = connection
        self._wfile = wfile
        self.aborted = False

    def write(self, data: bytes) -> bool:
        """Send one chunk now; False when the client is gone."""
        if self.aborted or not data:
            return not self.aborted
        try:
            self._wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self._wfile.flush()
        except OSError:
            self.aborted = True
            return False
        return True

    def client_gone(self) -> bool:
        """Whether the client closed its end (or the host closed the connection); never blocks."""
        if self.aborted:
            return True
        try:
            readable, _, _ = select.select([self._connection], [], [], 0)
            # A streaming client sends nothing after its request: readable means end of file or an error.
            gone = bool(readable) and not self._connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            gone = True
        self.aborted = gone
        return gone

    def abort(self) -> None:
        """Close the connection without ending the body (a dropped stream: the client sees a broken chunk)."""
        self.aborted = True
        with contextlib.suppress(OSError):
            self._wfile.flush()
            self._connection.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class Request:
    """One request as a mount sees it."""

    method: str
    path: str
    params: Mapping[str, str]  # the first value of each query parameter
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    now: datetime  # storm time when the request arrived
    query: str = ""  # the raw query string: repeated parameters (XRPC arrays like `actors`) need every value
    number: int = 0  # the host's running request number


# Counts the request toward the fault knobs and says which faults fall on it; a mount calls it at most once.
FaultDraw = Callable[[], DueFaults]


class Mount(Protocol):
    """One platform's API, served by the host under a path prefix."""

    def handle(self, request: Request, draw_faults: FaultDraw) -> Response:
        """Answer one request under the mount's prefix."""
        ...


class RateWindow:
    """One rate-limit policy (requests per window of storm seconds) and the headers that describe it.

    X names them `x-rate-limit-*`; atproto services `ratelimit-*`, with a `policy` header too.
    """

    def __init__(self, limit: int, window_seconds: float, header_prefix: str = "x-rate-limit-",
                 with_policy: bool = False) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.header_prefix = header_prefix
        self.with_policy = with_policy
        self.reset_at = -math.inf
        self.used = 0

    def _roll(self, now: float) -> None:
        if now >= self.reset_at:
            self.reset_at = now + self.window_seconds
            self.used = 0

    def exhausted(self, now: float) -> bool:
        """Whether no request is left in the current window."""
        self._roll(now)
        return self.used >= self.limit

    def consume(self, now: float) -> None:
        """Use one request of the current window."""
        self._roll(now)
        self.used += 1

    def block_until(self, reset_at: float) -> None:
        """Exhaust the window until `reset_at` (an injected 429 behaves like a real one)."""
        self.used = self.limit
        self.reset_at = reset_at

    def headers(self, now: float) -> dict[str, str]:
        """The rate-limit headers for the current window."""
        self._roll(now)
        prefix = self.header_prefix
        headers = {
            f"{prefix}limit": str(self.limit),
            f"{prefix}remaining": str(max(0, self.limit - self.used)),
            f"{prefix}reset": str(math.ceil(self.reset_at)),
        }
        if self.with_policy:
            headers[f"{prefix}policy"] = f"{self.limit};w={round(self.window_seconds)}"
        return headers


def json_bytes(body: Any) -> bytes:
    """A JSON body as the simulated APIs send it: compact, UTF-8, non-ASCII kept as is."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, body: Any) -> Response:
    """A JSON answer with its content type (X and the atproto services name the header in lower case)."""
    return Response(status, json_bytes(body), {"content-type": "application/json; charset=utf-8"})


def join_tags(*tags: str | None) -> str | None:
    """Fault tags joined for the request log (``"drop+slow"``), or None when there are none."""
    present = [tag for tag in tags if tag]
    return "+".join(present) or None


# ---------------------------------------------------------------------------------------- serving

OwnerT = TypeVar("OwnerT")


class OwnedServer(ThreadingHTTPServer, Generic[OwnerT]):
    """A threading HTTP server whose handlers reach the object that serves (`owner`)."""

    daemon_threads = True
    allow_reuse_address = True
    owner: OwnerT


class BackgroundServer(Generic[OwnerT]):
    """Serving lifecycle: bind on first use (port 0 resolves then), serve on a daemon thread or inline, stop.

    `close_connections` runs once the server accepts no more requests and before its socket closes.
    """

    def __init__(self, owner: OwnerT, host: str, port: int, handler: type[BaseHTTPRequestHandler], *,
                 thread_name: str, close_connections: Callable[[], None]) -> None:
        self.owner = owner
        self.host = host
        self._requested_port = port
        self._handler = handler
        self._thread_name = thread_name
        self._close_connections = close_connections
        self._server: OwnedServer[OwnerT] | None = None
        self._thread: threading.Thread | None = None
        self._serving_inline = False

    def bind(self) -> OwnedServer[OwnerT]:
        """The listening server, bound now if it is not yet."""
        if self._server is None:
            server: OwnedServer[OwnerT] = OwnedServer((self.host, self._requested_port), self._handler)
            server.owner = self.owner
            self._server = server
        return self._server

    @property
    def bound(self) -> bool:
        """Whether a listening socket is open."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (binding now if needed, so port 0 resolves to the real one)."""
        return self.bind().server_address[1]

    def start(self) -> None:
        """Serve on a daemon thread (once)."""
        server = self.bind()
        if self._thread is None:
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=self._thread_name, daemon=True)
            self._thread.start()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted or `stop()` is called from another thread."""
        server = self.bind()
        self._serving_inline = True
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self._serving_inline = False
            self._close()

    def stop(self) -> None:
        """Stop serving, close open connections, then the listening socket."""
        server = self._server
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        elif self._serving_inline:
            server.shutdown()  # serve_forever() returns and closes everything itself
            return
        self._close()

    def _close(self) -> None:
        if self._server is None:
            return
        self._close_connections()
        self._server.server_close()
        self._server = None


class SimulatedHost:
    """One storm's simulated platforms on a local port: mounts by path prefix, faults, a request log."""

    def __init__(self, storm: Storm, clock: Clock, *, host: str = "127.0.0.1", port: int = 0,
                 faults: Faults | None = None) -> None:
        self.storm = storm
        self.clock = clock
        self.host = host
        self.faults = faults if faults is not None else Faults()
        self._lock = threading.Lock()
        self._requests = 0
        self._fault_counter = 0
        self._log: list[RequestRecord] = []
        self._connections: dict[int, socket.socket] = {}
        self._mounts: list[tuple[str, Mount]] = []
        self._server: BackgroundServer[SimulatedHost] = BackgroundServer(
            self, host, port, _Handler, thread_name="stormwatch-sim", close_connections=self._close_connections)

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The bound port (binding now if needed, so port 0 resolves to the real one)."""
        return self._server.port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Serve on a daemon thread; returns self."""
        self._server.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted or `stop()` is called from another thread."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close open connections."""
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def _track(self, connection: socket.socket, active: bool) -> None:
        with self._lock:
            if active:
                self._connections[id(connection)] = connection
            else:
                self._connections.pop(id(connection), None)

    # ---------------------------------------------------------------------------- observation

    def requests(self) -> list[RequestRecord]:
        """Every request handled so far, in order."""
        with self._lock:
            return list(self._log)

    def reset_observations(self) -> None:
        """Forget the request log (rate-limit windows and fault counters keep going)."""
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------------------- handling

    def mount(self, prefix: str, handler: Mount) -> None:
        """Serve a platform's API under `prefix` (``/`` for the root, ``/i/`` for Mastodon instances, ...)."""
        self._mounts = sorted([*((p, m) for p, m in self._mounts if p != prefix), (prefix, handler)],
                              key=lambda item: -len(item[0]))

    def due_faults(self, path: str) -> DueFaults:
        """Count one request toward the fault knobs and say which faults fall on it."""
        faults = self.faults.snapshot()
        if faults.only_paths and path not in faults.only_paths:
            return DueFaults()
        with self._lock:
            self._fault_counter += 1
            n = self._fault_counter

        def due(every: int) -> bool:
            return every > 0 and n % every == 0

        return DueFaults(rate_limit=due(faults.rate_limit_every), server_error=due(faults.server_error_every),
                         malformed=due(faults.malformed_every), drop=due(faults.drop_every),
                         delay=faults.slow_seconds if due(faults.slow_every) else 0.0,
                         reset_seconds=faults.rate_limit_reset_seconds, sticky=faults.rate_limit_sticky)

    def handle(self, method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str],
               body: bytes = b"", query: str = "") -> Response:
        """Answer one request (everything but the socket work, which the HTTP handler does)."""
        now = self.clock.now()
        with self._lock:
            self._requests += 1
            number = self._requests
        mounted = next((m for prefix, m in self._mounts if path.startswith(prefix)), None)
        if mounted is None:
            outcome = Response(404, NOT_MOUNTED_BODY, {"content-type": "text/plain; charset=utf-8"})
        else:
            request = Request(method, path, params, dict(headers), body, now, query, number)
            outcome = mounted.handle(request, lambda: self.due_faults(path))
        with self._lock:
            self._log.append(RequestRecord(number, method, path, dict(params), outcome.status, outcome.fault, now))
        return outcome


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into `SimulatedHost.handle` calls and applies delivery faults."""

    protocol_version = "HTTP/1.1"  # keep-alive, like a real API client session expects
    server_version = "tsa_b"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after a minute
    server: OwnedServer[SimulatedHost]

    def setup(self) -> None:
        """Prepare the connection and register it so stop() can close it."""
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus the client's delayed ACK
        # stall every keep-alive response by ~40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def version_string(self) -> str:
        """The Server header (X answers with its front-end's name)."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log; `SimulatedHost.requests()` has it all."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        # Read any body (a login, say) so the keep-alive stream stays in step.
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        # Duplicate parameters: the first value wins.
        params = {name: values[0] for name, values in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {name.lower(): value for name, value in self.headers.items()}
        outcome = self.server.owner.handle(self.command, split.path, params, headers, body, split.query)
        if outcome.delay > 0:
            time.sleep(outcome.delay)
        body = outcome.body
        if outcome.malformed:
            body = body[: max(1, len(body) // 2)]  # valid HTTP, broken JSON
        self.send_response(outcome.status)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        if outcome.stream is not None:
            self._stream(outcome.stream)
            return
        self.send_header("content-length", str(len(body)))
        if outcome.drop:
            self.end_headers()
            self.wfile.write(body[: max(1, len(body) // 3)])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may have gone already
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream(self, body: Callable[[StreamWriter], None]) -> None:
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True  # a stream is the connection's last response
        writer = StreamWriter(self.connection, self.wfile)
        body(writer)
        if not writer.aborted:
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")

    do_GET = _dispatch
    do_HEAD = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
