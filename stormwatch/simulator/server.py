"""The simulated X platform: a local HTTP server speaking X API v2, with rate limits and injected faults.

Endpoints: ``GET /2/tweets/search/recent``, ``GET /2/tweets/counts/recent``, ``GET /2/tweets?ids=``.
Only posts of platform "x" are served, and a post exists once ``created_at <= clock.now()``.

Request handling order (what a client sees when several things apply):

1. missing/wrong bearer token -> 401; unknown path -> 404 (neither counts for faults or rate limits);
2. the request is counted for faults (all requests, or only those to `Faults.only_paths`);
3. the endpoint's rate-limit window is exhausted -> 429 (a real limit, not a fault);
4. injected faults, first match wins: `rate_limit_every` -> 429 (and, if `rate_limit_sticky`, the endpoint
   stays limited until the advertised reset, like a real exhausted window), `server_error_every` -> 503;
5. the request uses one unit of the endpoint's quota and is answered (200, or 400 for invalid params);
6. delivery faults on a 200: `drop_every` (headers and part of the body, then the connection is closed),
   else `malformed_every` (a 200 whose JSON is cut short); `slow_every` delays any response by
   `slow_seconds` of wall time.

Rate-limit headers (``x-rate-limit-limit/remaining/reset``) are on every response of a known endpoint;
the reset is epoch seconds of the *storm* clock.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from stormwatch.simulator.query import QueryEngine
from stormwatch.simulator.spec import Post, snowflake
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.wire_x import (
    PAGE_NOT_FOUND_BODY,
    InvalidRequest,
    ParameterProblem,
    Selection,
    decode_next_token,
    encode_next_token,
    iso_minutes,
    not_found_entry,
    problem_body,
    render_counts,
    render_page,
    search_meta,
)

SEARCH_PATH = "/2/tweets/search/recent"
COUNTS_PATH = "/2/tweets/counts/recent"
LOOKUP_PATH = "/2/tweets"
ENDPOINTS: dict[str, str] = {SEARCH_PATH: "search", COUNTS_PATH: "counts", LOOKUP_PATH: "lookup"}
DEFAULT_RATE_LIMITS: dict[str, int] = {"search": 450, "counts": 300, "lookup": 900}
RECENT_WINDOW = timedelta(days=7)
END_TIME_LAG = timedelta(seconds=30)  # X's default end_time: now minus 30 s
MIN_END_LAG = timedelta(seconds=10)  # X refuses end_time/start_time closer than 10 s to now
_ID = re.compile(r"^[0-9]{1,19}$")
_SEARCH_PARAMS = (
    "end_time", "expansions", "max_results", "media.fields", "next_token", "pagination_token", "place.fields",
    "poll.fields", "query", "since_id", "sort_order", "start_time", "tweet.fields", "until_id", "user.fields",
)
_COUNTS_PARAMS = (
    "end_time", "granularity", "next_token", "pagination_token", "query", "search_count.fields", "since_id",
    "start_time", "until_id",
)
_LOOKUP_PARAMS = ("expansions", "ids", "media.fields", "place.fields", "poll.fields", "tweet.fields", "user.fields")
_GRANULARITY = {"minute": 60, "hour": 3600, "day": 86400}


class Clock(Protocol):
    """Anything with a `now()` returning an aware datetime (SimClock, ManualClock)."""

    def now(self) -> datetime:
        """The current storm time."""
        ...


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
    """What the platform answers to one request, with any delivery fault to apply on the wire."""

    status: int
    body: bytes
    headers: dict[str, str]
    fault: str | None = None
    delay: float = 0.0
    malformed: bool = False
    drop: bool = False


_Outcome = Response


@dataclass(frozen=True)
class Request:
    """One request as a mounted platform sees it."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    now: datetime
    query: str = ""  # the raw query string: repeated parameters (XRPC arrays like `actors`) need every value


@dataclass(frozen=True)
class DueFaults:
    """Which injected faults fall on this request (the mount renders them in its own wire format)."""

    rate_limit: bool = False
    server_error: bool = False
    malformed: bool = False
    drop: bool = False
    delay: float = 0.0

    def tag(self) -> str | None:
        """A short name of the faults applied, for the request log."""
        names = [n for n in ("rate_limit", "server_error", "malformed", "drop") if getattr(self, n)]
        if self.delay:
            names.append("slow")
        return "+".join(names) or None


class Mount(Protocol):
    """Another platform served from the same port under a path prefix (Mastodon instances, Bluesky XRPC)."""

    def handle(self, request: Request, faults: DueFaults) -> Response:
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


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _parse_time(name: str, raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidRequest.one(
            name, raw, f"Invalid '{name}':'{raw}'. '{name}' must be a valid RFC3339 date-time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # X reads zone-less timestamps as UTC
    return moment.astimezone(UTC)


def _parse_id(name: str, raw: str) -> int:
    if not _ID.match(raw):
        raise InvalidRequest.one(name, raw, _id_message(name, raw))
    return int(raw)


def _id_message(name: str, raw: str) -> str:
    return f"The `{name}` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$"


def _check_params(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    problems = [
        ParameterProblem(name, (value,), f"The query parameter [{name}] is not one of [{','.join(allowed)}]")
        for name, value in params.items()
        if name not in allowed
    ]
    if problems:
        raise InvalidRequest(problems)


def _ceil_seconds(moment: datetime) -> int:
    return math.ceil(moment.timestamp())


class SimulatedPlatform:
    """The simulated X API v2 over a `Storm`, served on a local port (see the module doc for behaviour)."""

    def __init__(
        self,
        storm: Storm,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        faults: Faults | None = None,
        rate_limits: Mapping[str, int] | None = None,
        rate_window_seconds: float = 900.0,
    ) -> None:
        self.storm = storm
        self.clock = clock
        self.host = host
        self.token = token
        self.faults = faults if faults is not None else Faults()
        self.engine = QueryEngine(storm, "x")
        limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self._windows = {name: RateWindow(limits[name], rate_window_seconds) for name in DEFAULT_RATE_LIMITS}
        self._lock = threading.Lock()
        self._requests = 0
        self._fault_counter = 0
        self._log: list[RequestRecord] = []
        self._served: Counter[str] = Counter()
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: dict[int, socket.socket] = {}
        self._mounts: dict[str, Mount] = {}
        self._serving_inline = False

    # ------------------------------------------------------------------------------ lifecycle

    def _bind(self) -> ThreadingHTTPServer:
        if self._server is None:
            server = _Server((self.host, self._requested_port), _Handler)
            server.platform = self
            self._server = server
        return self._server

    @property
    def port(self) -> int:
        """The bound port (binding now if needed, so port 0 resolves to the real one)."""
        return self._bind().server_address[1]

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatedPlatform:
        """Serve on a daemon thread; returns self."""
        server = self._bind()
        if self._thread is None:
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stormwatch-sim", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted or `stop()` is called from another thread."""
        server = self._bind()
        self._serving_inline = True
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self._serving_inline = False
            self._close()

    def stop(self) -> None:
        """Stop serving and close open connections."""
        server = self._server
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
            self._close()
        elif self._serving_inline:
            server.shutdown()  # serve_forever() returns and closes everything itself
        else:
            self._close()

    def _close(self) -> None:
        if self._server is None:
            return
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._server = None

    def __enter__(self) -> SimulatedPlatform:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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

    def served_post_ids(self) -> Counter[str]:
        """How often each post id was delivered in `data` of an intact 200 search response."""
        with self._lock:
            return Counter(self._served)

    def reset_observations(self) -> None:
        """Forget the request log and served ids (rate-limit windows and fault counters keep going)."""
        with self._lock:
            self._log.clear()
            self._served.clear()

    # ------------------------------------------------------------------------------- handling

    def mount(self, prefix: str, handler: Mount) -> None:
        """Serve another platform's API under `prefix` (e.g. `/i/` for Mastodon instances, `/xrpc/`)."""
        self._mounts[prefix] = handler

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
                         delay=faults.slow_seconds if due(faults.slow_every) else 0.0)

    def handle(self, method: str, path: str, params: Mapping[str, str], authorization: str | None,
               headers: Mapping[str, str] | None = None, body: bytes = b"", query: str = "") -> Response:
        """Answer one request (everything but the socket work, which the HTTP handler does)."""
        now = self.clock.now()
        now_ts = now.timestamp()
        endpoint = ENDPOINTS.get(path) if method == "GET" else None
        with self._lock:
            self._requests += 1
            number = self._requests
        mounted = next((m for prefix, m in self._mounts.items() if path.startswith(prefix)), None)
        if mounted is not None:
            request = Request(method, path, params, dict(headers or {}), body, now, query)
            outcome = mounted.handle(request, self.due_faults(path))
            with self._lock:
                self._log.append(RequestRecord(number, method, path, dict(params), outcome.status, outcome.fault, now))
            return outcome
        outcome = self._respond(method, path, endpoint, params, authorization, now)
        if endpoint is not None:
            with self._lock:
                outcome.headers.update(self._windows[endpoint].headers(now_ts))
        outcome.headers["x-transaction-id"] = f"{number:016x}"
        with self._lock:
            self._log.append(RequestRecord(number, method, path, dict(params), outcome.status, outcome.fault, now))
        return outcome

    def _respond(
        self,
        method: str,
        path: str,
        endpoint: str | None,
        params: Mapping[str, str],
        authorization: str | None,
        now: datetime,
    ) -> _Outcome:
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip() or (
            self.token is not None and credential.strip() != self.token
        ):
            return self._json(401, problem_body(401, "Unauthorized"))
        if endpoint is None:
            return self._json(404, PAGE_NOT_FOUND_BODY)

        faults = self.faults.snapshot()
        now_ts = now.timestamp()
        counted = not faults.only_paths or path in faults.only_paths
        with self._lock:
            if counted:
                self._fault_counter += 1
            n = self._fault_counter if counted else 0
            window = self._windows[endpoint]
            if window.exhausted(now_ts):
                return self._json(429, problem_body(429, "Too Many Requests"))

        def due(every: int) -> bool:
            return counted and every > 0 and n % every == 0

        delay = faults.slow_seconds if due(faults.slow_every) else 0.0
        slow_tag = "slow" if delay else None
        if due(faults.rate_limit_every):
            outcome = self._json(429, problem_body(429, "Too Many Requests"))
            reset_at = now_ts + faults.rate_limit_reset_seconds
            with self._lock:
                if faults.rate_limit_sticky:
                    window.block_until(reset_at)
                    outcome.headers.update(window.headers(now_ts))
                else:
                    outcome.headers.update(window.headers(now_ts))
                    outcome.headers["x-rate-limit-remaining"] = "0"
                    outcome.headers["x-rate-limit-reset"] = str(math.ceil(reset_at))
            outcome.fault, outcome.delay = _join("rate_limit", slow_tag), delay
            return outcome
        if due(faults.server_error_every):
            outcome = self._json(503, problem_body(503, "Service Unavailable"))
            outcome.fault, outcome.delay = _join("server_error", slow_tag), delay
            return outcome

        with self._lock:
            window.consume(now_ts)
        served: list[Post] = []
        try:
            if endpoint == "search":
                body = self._search(params, now, served)
            elif endpoint == "counts":
                body = self._counts(params, now)
            else:
                body = self._lookup(params, now)
            outcome = self._json(200, body)
        except InvalidRequest as invalid:
            outcome = self._json(400, invalid.body())
        outcome.delay = delay
        outcome.fault = slow_tag
        if outcome.status == 200 and due(faults.drop_every):
            outcome.drop, outcome.fault = True, _join("drop", slow_tag)
        elif outcome.status == 200 and due(faults.malformed_every):
            outcome.malformed, outcome.fault = True, _join("malformed", slow_tag)
        if outcome.status == 200 and not (outcome.drop or outcome.malformed):
            with self._lock:
                self._served.update(post.native_id for post in served)
        return outcome

    @staticmethod
    def _json(status: int, body: Any) -> _Outcome:
        return _Outcome(status, _json_bytes(body), {"content-type": "application/json; charset=utf-8"})

    # ------------------------------------------------------------------------------ endpoints

    def _range(
        self,
        params: Mapping[str, str],
        now: datetime,
        *,
        default_start: datetime | None,
    ) -> tuple[int, int, datetime | None, datetime, dict[str, str]]:
        """Validate time/id bounds; return the global position range [low, high) and the effective times."""
        problems: list[ParameterProblem] = []
        oldest_allowed = now - RECENT_WINDOW
        latest_allowed = now - MIN_END_LAG
        start = _parse_time("start_time", params["start_time"]) if "start_time" in params else default_start
        end = _parse_time("end_time", params["end_time"]) if "end_time" in params else now - END_TIME_LAG
        if "start_time" in params and start is not None:
            shown = params["start_time"]
            if start < oldest_allowed:
                problems.append(ParameterProblem("start_time", (shown,), (
                    f"Invalid 'start_time':'{shown}'. 'start_time' must be on or after {iso_minutes(oldest_allowed)}"
                )))
            elif start > latest_allowed:
                problems.append(ParameterProblem("start_time", (shown,), (
                    f"Invalid 'start_time':'{shown}'. 'start_time' must be a minimum of 10 seconds prior to "
                    "the request time."
                )))
        if "end_time" in params:
            shown = params["end_time"]
            if end > latest_allowed:
                problems.append(ParameterProblem("end_time", (shown,), (
                    f"Invalid 'end_time':'{shown}'. 'end_time' must be a minimum of 10 seconds prior to the "
                    "request time."
                )))
            elif end < oldest_allowed:
                problems.append(ParameterProblem("end_time", (shown,), (
                    f"Invalid 'end_time':'{shown}'. 'end_time' must be on or after {iso_minutes(oldest_allowed)}"
                )))
        if start is not None and start >= end and not problems:
            problems.append(ParameterProblem("start_time", (params.get("start_time", ""),), (
                f"Invalid 'start_time':'{params.get('start_time', '')}'. 'start_time' must be before "
                f"'end_time':'{params.get('end_time', iso_minutes(end))}'"
            )))
        ids: dict[str, int] = {}
        oldest_id = snowflake(int(oldest_allowed.timestamp() * 1000))
        for name in ("since_id", "until_id"):
            if name not in params:
                continue
            value = _parse_id(name, params[name])
            if value < oldest_id:
                problems.append(ParameterProblem(name, (params[name],), (
                    f"'{name}' must be a tweet id created after {iso_minutes(oldest_allowed)}. "
                    f"Please use a '{name}' that is larger than {oldest_id}"
                )))
            ids[name] = value
        if problems:
            raise InvalidRequest(problems)

        storm = self.storm
        low, high = 0, len(storm.posts)
        if "since_id" in ids:
            low = max(low, bisect.bisect_right(storm.ids, ids["since_id"]))
        if "until_id" in ids:
            high = min(high, bisect.bisect_left(storm.ids, ids["until_id"]))
        # Recent search only sees the last seven days, whatever the parameters say.
        low = max(low, bisect.bisect_left(storm.seconds, _ceil_seconds(oldest_allowed)))
        if start is not None:
            low = max(low, bisect.bisect_left(storm.seconds, _ceil_seconds(start)))
        high = min(high, bisect.bisect_left(storm.seconds, _ceil_seconds(end)))
        # A post exists once created_at <= now.
        high = min(high, bisect.bisect_right(storm.seconds, math.floor(now.timestamp())))
        context = {name: params[name] for name in ("query", "since_id", "until_id", "start_time", "end_time")
                   if name in params}
        return low, max(low, high), start, end, context

    def _query(self, params: Mapping[str, str]) -> str:
        query = params.get("query")
        if query is None or not query.strip():
            raise InvalidRequest.one("query", query or "", "The `query` query parameter can not be empty")
        return query

    def _search(self, params: Mapping[str, str], now: datetime, served: list[Post]) -> dict[str, Any]:
        _check_params(params, _SEARCH_PARAMS)
        query = self._query(params)
        raw_max = params.get("max_results", "10")
        if not raw_max.isdigit() or not 10 <= int(raw_max) <= 100:
            raise InvalidRequest.one(
                "max_results", raw_max, f"The `max_results` query parameter value [{raw_max}] is not between 10 and 100"
            )
        max_results = int(raw_max)
        sort_order = params.get("sort_order", "recency")
        if sort_order not in ("recency", "relevancy"):
            raise InvalidRequest.one(
                "sort_order", sort_order,
                f"The `sort_order` query parameter value [{sort_order}] is not one of [recency,relevancy]",
            )
        if sort_order == "relevancy":
            raise InvalidRequest.one(
                "sort_order", sort_order, "The simulated platform serves results in recency order only"
            )
        selection = Selection.from_params(params)
        low, high, _, _, context = self._range(params, now, default_start=None)
        canonical = json.dumps(context, sort_keys=True)
        token_name = "next_token" if "next_token" in params else "pagination_token"
        token = params.get(token_name)
        if token is not None:
            boundary = decode_next_token(token, canonical)
            if boundary is None:
                raise InvalidRequest.one(
                    token_name, token, f"The `{token_name}` query parameter value [{token}] is not a valid token."
                )
            high = min(high, bisect.bisect_left(self.storm.ids, boundary))
        matched = self.engine.positions(query)
        first = bisect.bisect_left(matched, low)
        stop = bisect.bisect_left(matched, high) if high > low else first
        page_start = max(first, stop - max_results)
        posts = [self.storm.posts[matched[i]] for i in range(stop - 1, page_start - 1, -1)]
        served.extend(posts)
        next_token = encode_next_token(posts[-1].id, canonical) if page_start > first else None
        return render_page(self.storm, posts, selection, meta=search_meta(posts, next_token))

    def _counts(self, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
        _check_params(params, _COUNTS_PARAMS)
        query = self._query(params)
        granularity = params.get("granularity", "hour")
        if granularity not in _GRANULARITY:
            raise InvalidRequest.one(
                "granularity", granularity,
                f"The `granularity` query parameter value [{granularity}] is not one of [minute,hour,day]",
            )
        step = _GRANULARITY[granularity]
        low, high, start, end, _ = self._range(params, now, default_start=now - RECENT_WINDOW)
        assert start is not None
        matched = self.engine.positions(query)
        seconds = self.storm.seconds
        buckets: list[tuple[datetime, datetime, int]] = []
        cursor = start
        while cursor < end:
            boundary_ts = (math.floor(cursor.timestamp()) // step + 1) * step
            bucket_end = min(end, datetime.fromtimestamp(boundary_ts, UTC))
            bucket_low = max(low, bisect.bisect_left(seconds, _ceil_seconds(cursor)))
            bucket_high = min(high, bisect.bisect_left(seconds, _ceil_seconds(bucket_end)))
            count = 0
            if bucket_high > bucket_low:
                count = bisect.bisect_left(matched, bucket_high) - bisect.bisect_left(matched, bucket_low)
            buckets.append((cursor, bucket_end, count))
            cursor = bucket_end
        return render_counts(buckets)

    def _lookup(self, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
        _check_params(params, _LOOKUP_PARAMS)
        raw = params.get("ids", "")
        wanted = [value.strip() for value in raw.split(",")] if raw else []
        if not 1 <= len(wanted) <= 100:
            raise InvalidRequest.one(
                "ids",
                raw,
                f"The number of values in the `ids` query parameter list [{len(wanted)}] is not between 1 and 100",
            )
        problems = [
            ParameterProblem("ids", (value,), _id_message("ids", value))
            for value in wanted
            if not _ID.match(value)
        ]
        if problems:
            raise InvalidRequest(problems)
        selection = Selection.from_params(params)
        now_s = math.floor(now.timestamp())
        found: list[Post] = []
        errors: list[dict[str, Any]] = []
        seen: list[str] = []
        for value in wanted:
            if value in seen:
                continue
            seen.append(value)
            post = self.storm.post_by_id(value)
            if post is None or post.deleted or post.platform != "x" or post.created_s > now_s:
                errors.append(not_found_entry(value, "ids"))
            else:
                found.append(post)
        return render_page(self.storm, found, selection, extra_errors=errors)


def _join(*tags: str | None) -> str | None:
    present = [tag for tag in tags if tag]
    return "+".join(present) if present else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    platform: SimulatedPlatform


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into `SimulatedPlatform.handle` calls and applies delivery faults."""

    protocol_version = "HTTP/1.1"  # keep-alive, like a real API client session expects
    server_version = "tsa_b"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after a minute
    server: _Server

    def setup(self) -> None:
        """Prepare the connection and register it so stop() can close it."""
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus the client's delayed ACK
        # stall every keep-alive response by ~40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.platform._track(self.connection, True)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self.server.platform._track(self.connection, False)

    def version_string(self) -> str:
        """The Server header (X answers with its front-end's name)."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log; `SimulatedPlatform.requests()` has it all."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        # Read any body (a login, say) so the keep-alive stream stays in step.
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        # Duplicate parameters: the first value wins.
        params = {name: values[0] for name, values in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {name.lower(): value for name, value in self.headers.items()}
        outcome = self.server.platform.handle(self.command, split.path, params, self.headers.get("Authorization"),
                                              headers, body, split.query)
        if outcome.delay > 0:
            time.sleep(outcome.delay)
        body = outcome.body
        if outcome.malformed:
            body = body[: max(1, len(body) // 2)]  # valid HTTP, broken JSON
        self.send_response(outcome.status)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
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

    do_GET = _dispatch
    do_HEAD = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch

