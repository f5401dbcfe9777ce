"""The simulated X: X API v2 as a mount at the host's root, with its rate limits and its error bodies.

Endpoints: ``GET /2/tweets/search/recent``, ``GET /2/tweets/counts/recent``, ``GET /2/tweets?ids=``,
``GET /2/users?ids=``, ``GET /2/users/by?usernames=`` and ``GET /2/trends/by/woeid/{woeid}``
(`trending.py`); `SimulatedPlatform` mounts the filtered stream beside them (`stream_x.py`). Search and counts
serve X's index as it is since 2026-05-04, without reposts, unless `search_reposts=True` (the old index, for
old archives and comparisons). Only posts and users of platform "x" are served,
and a post exists once ``created_at <= clock.now()``. The wire format is in `wire_x.py`, the search
grammar in `query.py`.

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
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stormwatch.simulator.clock import Clock
from stormwatch.simulator.host import (
    DueFaults,
    FaultDraw,
    Faults,
    RateWindow,
    Request,
    Response,
    SimulatedHost,
    join_tags,
    json_response,
)
from stormwatch.simulator.query import QueryEngine
from stormwatch.simulator.spec import Post, User, snowflake
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.stream_x import DEFAULT_KEEPALIVE_SECONDS, mount_stream
from stormwatch.simulator.trending import TagSeconds, x_trends
from stormwatch.simulator.wire_x import (
    PAGE_NOT_FOUND_BODY,
    USER_EXPANSIONS,
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
    render_users,
    search_meta,
)

PLATFORM = "x"
ROOT = "/"  # X's API is served at the host's root; other platforms have their own prefixes
SEARCH_PATH = "/2/tweets/search/recent"
COUNTS_PATH = "/2/tweets/counts/recent"
LOOKUP_PATH = "/2/tweets"
USERS_PATH = "/2/users"
USERS_BY_PATH = "/2/users/by"
ENDPOINTS: dict[str, str] = {SEARCH_PATH: "search", COUNTS_PATH: "counts", LOOKUP_PATH: "lookup",
                             USERS_PATH: "users", USERS_BY_PATH: "users_by"}
TRENDS_PATH = re.compile(r"^/2/trends/by/woeid/([^/]+)$")
DEFAULT_RATE_LIMITS: dict[str, int] = {"search": 450, "counts": 300, "lookup": 900, "users": 300, "users_by": 300,
                                       "trends": 75}
RECENT_WINDOW = timedelta(days=7)
END_TIME_LAG = timedelta(seconds=30)  # X's default end_time: now minus 30 s
MIN_END_LAG = timedelta(seconds=10)  # X refuses end_time/start_time closer than 10 s to now
_ID = re.compile(r"^[0-9]{1,19}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_SEARCH_PARAMS = (
    "end_time", "expansions", "max_results", "media.fields", "next_token", "pagination_token", "place.fields",
    "poll.fields", "query", "since_id", "sort_order", "start_time", "tweet.fields", "until_id", "user.fields",
)
_COUNTS_PARAMS = (
    "end_time", "granularity", "next_token", "pagination_token", "query", "search_count.fields", "since_id",
    "start_time", "until_id",
)
_LOOKUP_PARAMS = ("expansions", "ids", "media.fields", "place.fields", "poll.fields", "tweet.fields", "user.fields")
_USERS_PARAMS = ("expansions", "ids", "tweet.fields", "user.fields")
_USERS_BY_PARAMS = ("expansions", "tweet.fields", "user.fields", "usernames")
_TRENDS_PARAMS = ("max_trends", "trend.fields")
_TREND_FIELDS = ("trend_name", "tweet_count")
_GRANULARITY = {"minute": 60, "hour": 3600, "day": 86400}


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
        raise InvalidRequest.one(name, raw, _pattern_message(name, raw, _ID))
    return int(raw)


def _pattern_message(name: str, raw: str, pattern: re.Pattern[str]) -> str:
    return f"The `{name}` query parameter value [{raw}] does not match {pattern.pattern}"


def _check_params(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    problems = [
        ParameterProblem(name, (value,), f"The query parameter [{name}] is not one of [{','.join(allowed)}]")
        for name, value in params.items()
        if name not in allowed
    ]
    if problems:
        raise InvalidRequest(problems)


def _listed(params: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> list[str]:
    """The values of a comma-separated list parameter (1 to 100, each matching `pattern`), first seen first."""
    raw = params.get(name, "")
    wanted = [value.strip() for value in raw.split(",")] if raw else []
    if not 1 <= len(wanted) <= 100:
        raise InvalidRequest.one(
            name, raw, f"The number of values in the `{name}` query parameter list [{len(wanted)}] is not between 1 "
            "and 100",
        )
    problems = [ParameterProblem(name, (value,), _pattern_message(name, value, pattern))
                for value in wanted if not pattern.match(value)]
    if problems:
        raise InvalidRequest(problems)
    return list(dict.fromkeys(wanted))


def _ceil_seconds(moment: datetime) -> int:
    return math.ceil(moment.timestamp())


@dataclass
class Reads:
    """What X delivered on one UTC day, as it bills: post and user ids (once a day each), counts and trends
    requests."""

    posts: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    counts: int = 0
    trends: int = 0

    def add(self, endpoint: str, body: dict[str, Any]) -> None:
        """Count one delivered response of `endpoint`."""
        if endpoint in ("counts", "trends"):
            setattr(self, endpoint, getattr(self, endpoint) + 1)
            return
        data = body.get("data") or []
        items = [data] if isinstance(data, dict) else data
        (self.posts if endpoint in ("search", "lookup") else self.users).update(str(i["id"]) for i in items)
        includes = body.get("includes") or {}
        self.posts.update(str(t["id"]) for t in includes.get("tweets", ()))
        self.users.update(str(u["id"]) for u in includes.get("users", ()))

    def cost(self, post_usd: float, user_usd: float, counts_usd: float, trends_usd: float) -> dict[str, float]:
        """USD by kind (posts, users, counts, trends) at these prices."""
        return {"posts": len(self.posts) * post_usd, "users": len(self.users) * user_usd,
                "counts": self.counts * counts_usd, "trends": self.trends * trends_usd}


class XApi:
    """X API v2 over a storm (a `Mount`; see the module doc for the behaviour)."""

    def __init__(self, storm: Storm, *, token: str | None = None, rate_limits: Mapping[str, int] | None = None,
                 rate_window_seconds: float = 900.0, search_reposts: bool = False) -> None:
        self.storm = storm
        self.token = token
        self.search_reposts = search_reposts
        self.engine = QueryEngine(storm, PLATFORM, include_reposts=search_reposts)
        limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self._windows = {name: RateWindow(limits[name], rate_window_seconds) for name in DEFAULT_RATE_LIMITS}
        self._lock = threading.Lock()
        self._served: Counter[str] = Counter()
        self._reads: dict[str, Reads] = {}
        self._tags: TagSeconds | None = None

    def reads(self) -> dict[str, Reads]:
        """What X would bill, per UTC day of storm time: the post and user ids its intact 200 responses delivered
        (`data` and `includes`), and its counts and trends requests."""
        with self._lock:
            return {day: Reads(set(r.posts), set(r.users), r.counts, r.trends) for day, r in self._reads.items()}

    def served_post_ids(self) -> Counter[str]:
        """How often each post id was delivered in `data` of an intact 200 search response."""
        with self._lock:
            return Counter(self._served)

    def reset_observations(self) -> None:
        """Forget the served ids (rate-limit windows keep going)."""
        with self._lock:
            self._served.clear()

    def handle(self, request: Request, draw_faults: FaultDraw) -> Response:
        """Answer one request to the X API."""
        endpoint = ENDPOINTS.get(request.path) if request.method == "GET" else None
        if request.method == "GET" and endpoint is None and TRENDS_PATH.match(request.path):
            endpoint = "trends"
        outcome = self._respond(request, endpoint, draw_faults)
        if endpoint is not None:
            with self._lock:
                outcome.headers.update(self._windows[endpoint].headers(request.now.timestamp()))
        outcome.headers["x-transaction-id"] = f"{request.number:016x}"
        return outcome

    def _respond(self, request: Request, endpoint: str | None, draw_faults: FaultDraw) -> Response:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip() or (
            self.token is not None and credential.strip() != self.token
        ):
            return json_response(401, problem_body(401, "Unauthorized"))
        if endpoint is None:
            return json_response(404, PAGE_NOT_FOUND_BODY)

        due = draw_faults()
        now, params = request.now, request.params
        now_ts = now.timestamp()
        window = self._windows[endpoint]
        with self._lock:
            if window.exhausted(now_ts):
                return json_response(429, problem_body(429, "Too Many Requests"))
        slow_tag = "slow" if due.delay else None
        if due.rate_limit:
            return self._injected_rate_limit(window, due, now_ts, slow_tag)
        if due.server_error:
            outcome = json_response(503, problem_body(503, "Service Unavailable"))
            outcome.fault, outcome.delay = join_tags("server_error", slow_tag), due.delay
            return outcome

        with self._lock:
            window.consume(now_ts)
        served: list[Post] = []
        try:
            if endpoint == "search":
                body = self._search(params, now, served)
            elif endpoint == "counts":
                body = self._counts(params, now)
            elif endpoint == "lookup":
                body = self._lookup(params, now)
            elif endpoint == "trends":
                body = self._trends(request.path, params, now)
            elif endpoint == "users":
                body = self._users(params, "ids", _USERS_PARAMS, _ID, self.storm.user_by_id)
            else:
                body = self._users(params, "usernames", _USERS_BY_PARAMS, _USERNAME, self.storm.user_by_handle)
            outcome = json_response(200, body)
        except InvalidRequest as invalid:
            outcome = json_response(400, invalid.body())
        outcome.delay = due.delay
        outcome.fault = slow_tag
        if outcome.status == 200 and due.drop:
            outcome.drop, outcome.fault = True, join_tags("drop", slow_tag)
        elif outcome.status == 200 and due.malformed:
            outcome.malformed, outcome.fault = True, join_tags("malformed", slow_tag)
        if outcome.status == 200 and not (outcome.drop or outcome.malformed):
            with self._lock:
                self._served.update(post.native_id for post in served)
                self._reads.setdefault(f"{now.astimezone(UTC):%Y-%m-%d}", Reads()).add(endpoint, body)
        return outcome

    def _injected_rate_limit(self, window: RateWindow, due: DueFaults, now_ts: float, slow_tag: str | None
                             ) -> Response:
        outcome = json_response(429, problem_body(429, "Too Many Requests"))
        reset_at = now_ts + due.reset_seconds
        with self._lock:
            if due.sticky:
                window.block_until(reset_at)
                outcome.headers.update(window.headers(now_ts))
            else:
                outcome.headers.update(window.headers(now_ts))
                outcome.headers["x-rate-limit-remaining"] = "0"
                outcome.headers["x-rate-limit-reset"] = str(math.ceil(reset_at))
        outcome.fault, outcome.delay = join_tags("rate_limit", slow_tag), due.delay
        return outcome

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
        return render_page(self.storm, posts, selection, meta=search_meta(posts, next_token),
                           counters=lambda post: self.storm.counters_at(post, now))

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

    def _trends(self, path: str, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
        """The trending list of a WOEID now (`trending.py`): `trend_name` and, where X has it, `tweet_count`."""
        _check_params(params, _TRENDS_PARAMS)
        match = TRENDS_PATH.match(path)
        raw = match.group(1) if match else ""
        if not raw.isdigit():
            raise InvalidRequest.one("woeid", raw, f"The `woeid` path parameter value [{raw}] is not a number")
        raw_max = params.get("max_trends", "20")
        if not raw_max.isdigit() or not 1 <= int(raw_max) <= 50:
            raise InvalidRequest.one("max_trends", raw_max,
                                     f"The `max_trends` query parameter value [{raw_max}] is not between 1 and 50")
        fields = params.get("trend.fields", "trend_name,tweet_count").split(",")
        unknown = [field for field in fields if field not in _TREND_FIELDS]
        if unknown:
            raise InvalidRequest.one("trend.fields", unknown[0], f"The `trend.fields` query parameter value "
                                     f"[{unknown[0]}] is not one of [{','.join(_TREND_FIELDS)}]")
        with self._lock:
            if self._tags is None:
                self._tags = TagSeconds((p for p in self.storm.posts if p.platform == PLATFORM and p.campaign
                                         and not p.deleted), self.storm.spec.hashtags)
            tags = self._tags
        entries = x_trends(self.storm.spec, tags, int(raw), now)[:int(raw_max)]
        return {"data": [{"trend_name": entry.name, **({"tweet_count": entry.volume} if entry.volume is not None
                                                        and "tweet_count" in fields else {})} for entry in entries]}

    def _lookup(self, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
        _check_params(params, _LOOKUP_PARAMS)
        wanted = _listed(params, "ids", _ID)
        selection = Selection.from_params(params)
        now_s = math.floor(now.timestamp())
        found: list[Post] = []
        errors: list[dict[str, Any]] = []
        for value in wanted:
            post = self.storm.post_by_id(value)
            if post is None or post.deleted or post.platform != PLATFORM or post.created_s > now_s:
                errors.append(not_found_entry(value, "ids"))
            else:
                found.append(post)
        return render_page(self.storm, found, selection, extra_errors=errors,
                           counters=lambda post: self.storm.counters_at(post, now))

    def _users(self, params: Mapping[str, str], name: str, allowed: tuple[str, ...], pattern: re.Pattern[str],
               find: Callable[[str], User | None]) -> dict[str, Any]:
        """A users lookup by `name` (ids or usernames); accounts on other platforms do not exist here."""
        _check_params(params, allowed)
        wanted = _listed(params, name, pattern)
        selection = Selection.from_params(params, expansions=USER_EXPANSIONS)
        found: list[User] = []
        errors: list[dict[str, Any]] = []
        for value in wanted:
            user = find(value)
            if user is None or user.platform != PLATFORM:
                errors.append(not_found_entry(value, name, resource_type="user"))
            else:
                found.append(user)
        return render_users(found, selection, errors)


class SimulatedPlatform(SimulatedHost):
    """A storm's host with the X API mounted at its root (Mastodon and Bluesky mount beside it)."""

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
        search_reposts: bool = False,
        keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS,
    ) -> None:
        super().__init__(storm, clock, host=host, port=port, faults=faults)
        self.x = mount_x(self, token=token, rate_limits=rate_limits, rate_window_seconds=rate_window_seconds,
                         search_reposts=search_reposts)
        self.stream = mount_stream(self, token=token, keepalive_seconds=keepalive_seconds)

    @property
    def engine(self) -> QueryEngine:
        """The X search engine over the storm."""
        return self.x.engine

    def served_post_ids(self) -> Counter[str]:
        """How often each post id was delivered in `data` of an intact 200 search response."""
        return self.x.served_post_ids()

    def reset_observations(self) -> None:
        """Forget the request log, served and streamed ids (rate-limit windows and fault counters keep going)."""
        super().reset_observations()
        self.x.reset_observations()
        self.stream.reset_observations()


def mount_x(host: SimulatedHost, *, token: str | None = None, rate_limits: Mapping[str, int] | None = None,
            rate_window_seconds: float = 900.0, search_reposts: bool = False) -> XApi:
    """Serve X API v2 over the host's storm at its root; returns the mount (for what it served).

    Search and counts leave reposts out, as X's index does since 2026-05-04, unless `search_reposts`.
    """
    api = XApi(host.storm, token=token, rate_limits=rate_limits, rate_window_seconds=rate_window_seconds,
               search_reposts=search_reposts)
    host.mount(ROOT, api)
    return api
