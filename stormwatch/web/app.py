"""The live page's web application (Starlette): the page, its feed, its server-sent events, its script and style,
all under the secret link, and a guard in front of everything.

The guard (plain ASGI, so that it also stands in front of streamed responses) answers, in this order: too many
requests from one client (429), a path that does not start with the secret (404, the same few bytes whatever was
asked), a method other than GET or HEAD (405). Every response carries a strict Content-Security-Policy (no inline
script or style: the page's script and style are files served here), `X-Frame-Options: DENY`,
`Referrer-Policy: no-referrer` (the secret is in the address) and `Cache-Control: no-store`. Nothing a request
says becomes SQL or a file path: the routes are fixed, the files are read once at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import threading
import time
from collections.abc import AsyncIterator, Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .live import HERE, LiveView

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
REQUESTS_PER_SECOND = 10.0  # per client, on average
BURST = 30  # a page load is a few requests; a phone reopening the page several
MAX_STREAMS = 300  # open event streams in all (each holds a connection)
PING_SECONDS = 5.0  # the page takes 12 s of silence for a lost server
_CLOSING_POLL = 0.25  # how often a waiting event stream looks whether the server is stopping (seconds)


class Guard:
    """Rate limit per client, the secret link (constant-time), GET/HEAD only, and the security headers."""

    def __init__(self, app: ASGIApp, secret: str, *, rate: float = REQUESTS_PER_SECOND, burst: int = BURST) -> None:
        self.app = app
        self.secret = secret.encode("ascii")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # the lifespan: no request
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        client = (scope.get("client") or ("unknown", 0))[0]
        if not self._allow(client):
            await _plain(with_headers, 429, b"Too many requests: try again in a second.\n",
                         [(b"retry-after", b"1")])
            return
        path: str = scope["path"]
        given, _, rest = path.lstrip("/").partition("/")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.secret):
            await _plain(with_headers, 404, b"Not found.\n")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(with_headers, 405, b"Method not allowed: this page only reads.\n",
                         [(b"allow", b"GET, HEAD")])
            return
        inner = dict(scope, path=f"/{rest}", raw_path=f"/{rest}".encode(), root_path="")
        await self.app(inner, receive, with_headers)

    def _allow(self, client: str) -> bool:
        """A token bucket per client: `rate` requests a second on average, `burst` at once."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if len(self._buckets) > 10_000:  # forget idle clients rather than grow without end
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return False
            self._buckets[client] = (tokens - 1.0, now)
            return True


class Wakeups:
    """Wakes every waiting event stream when the live view publishes a new rendering: the refresh thread calls
    `wake_all`, each stream's event is set on its own event loop (so the view goes out at once, to all)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def wake_all(self) -> None:
        """Wake every waiting stream (any thread)."""
        with self._lock:
            waiting = list(self._waiting)
        for loop, event in waiting:
            with contextlib.suppress(RuntimeError):  # its loop has closed: the stream is gone
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def subscribed(self) -> Iterator[asyncio.Event]:
        """An event set at each new view while the block runs (the caller clears it once it has looked)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._waiting.discard(entry)


async def _plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def build_app(live: LiveView, secret: str, closing: threading.Event | None = None) -> ASGIApp:
    """The live page's ASGI application for `live` (already started), behind the guard for `secret`; event streams
    end once `closing` is set (so that the server stops at once)."""
    closing = closing or threading.Event()
    script = (HERE / "static" / "live.js").read_bytes()
    style = (HERE / "static" / "style.css").read_bytes()
    icon = (HERE / "static" / "icon.svg").read_bytes()
    streams = {"open": 0}
    wakeups = Wakeups()
    live.on_new_view(wakeups.wake_all)

    async def page(request: Request) -> Response:
        return Response(live.latest().page, media_type="text/html; charset=utf-8")

    async def feed(request: Request) -> Response:
        return Response(live.latest().feed, media_type="application/json")

    async def live_js(request: Request) -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8")

    async def style_css(request: Request) -> Response:
        return Response(style, media_type="text/css; charset=utf-8")

    async def icon_svg(request: Request) -> Response:
        return Response(icon, media_type="image/svg+xml")

    async def events(request: Request) -> Response:
        if streams["open"] >= MAX_STREAMS:
            return Response("Too many live viewers: the page falls back to polling.\n", status_code=503,
                            media_type="text/plain; charset=utf-8")
        return StreamingResponse(_event_stream(live, streams, closing, wakeups), media_type="text/event-stream",
                                 headers={"x-accel-buffering": "no"})

    routes = [Route("/", page, methods=["GET", "HEAD"]), Route("/feed.json", feed, methods=["GET", "HEAD"]),
              Route("/events", events, methods=["GET"]), Route("/live.js", live_js, methods=["GET", "HEAD"]),
              Route("/style.css", style_css, methods=["GET", "HEAD"]),
              Route("/icon.svg", icon_svg, methods=["GET", "HEAD"])]
    return Guard(Starlette(routes=routes), secret)


async def _event_stream(live: LiveView, streams: dict[str, int], closing: threading.Event,
                        wakeups: Wakeups) -> AsyncIterator[bytes]:
    """The views as server-sent events: the current one at once, then each new one as soon as it is published; a
    ping when nothing changed for PING_SECONDS (so the page knows the server is there)."""
    streams["open"] += 1
    try:
        with wakeups.subscribed() as new_view:
            sent = live.latest()
            yield _event("view", sent.feed)
            quiet_since = time.monotonic()
            while not closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(new_view.wait(), _CLOSING_POLL)
                new_view.clear()
                latest = live.latest()
                if latest.version != sent.version:
                    sent = latest
                    yield _event("view", sent.feed)
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= PING_SECONDS:
                    yield _event("ping", b"{}")
                    quiet_since = time.monotonic()
    finally:
        streams["open"] -= 1


def _event(name: str, data: bytes) -> bytes:
    """One server-sent event (the data is one line of JSON: JSON strings escape their line breaks)."""
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
