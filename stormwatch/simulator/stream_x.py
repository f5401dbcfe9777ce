"""X's filtered stream: ``GET /2/tweets/search/stream`` and its rules at ``/2/tweets/search/stream/rules``.

Mounted beside the X API (`x.py`) on the same host, per app (= per bearer token):

* rules: ``GET`` lists them (``data`` of ``id``/``value``/``tag``, ``meta.sent``, ``meta.result_count``);
  ``POST`` takes ``{"add": [{"value", "tag"}]}`` or ``{"delete": {"ids": [...]}}`` (or ``values``), with
  ``dry_run``. Rules use the search grammar (`query.py`) up to 1,024 characters, at most 1,000 per app
  (pay-per-use). An invalid rule fails the whole request (400, ``invalid-rules``, nothing created); a rule whose
  value the app already has is a ``DuplicateRule`` entry beside the rules that were created (200).
* the stream: a chunked 200 that sends every post published on the storm clock after the connection opened and
  matching any of the app's rules at that moment, reposts included, one JSON line each (``data``, ``includes``
  as search pages render them for the same ``tweet.fields``/``expansions``/``user.fields``, ``matching_rules``
  with ``id`` and ``tag``), and ``\\r\\n`` keep-alives when nothing was sent for `keepalive_seconds` (wall time).
  One connection per app: a second gets 429 with X's ``TooManyConnections`` problem while the first is open.
  ``backfill_minutes`` (0-5) is accepted and delivers nothing: backfill is Enterprise-only.
* faults (`Faults`, read per connection): ``stream_drop_every`` closes a connection after N posts,
  ``stream_stall_every`` goes silent after N posts (no keep-alives, connection open) until the client leaves,
  ``stream_rule_errors_every`` refuses every Nth rules ``POST`` (adds as over the rule cap, deletes with a 503).

Ground truth: every connection is recorded with the range of storm posts it delivered everything of
(`connections()`), so `missed()` says which posts were published while no connection was delivering, and
`delivered_post_ids()` counts what was billed.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stormwatch.simulator.host import (
    FaultDraw,
    Request,
    Response,
    SimulatedHost,
    StreamWriter,
    json_bytes,
    json_response,
)
from stormwatch.simulator.query import QueryEngine, QueryError, parse_query
from stormwatch.simulator.spec import REPOST, snowflake
from stormwatch.simulator.truth import Truth
from stormwatch.simulator.wire_x import (
    PROBLEM_INVALID_REQUEST,
    InvalidRequest,
    ParameterProblem,
    Selection,
    iso_millis,
    problem_body,
    render_page,
)

STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"
MAX_RULES = 1000  # pay-per-use: rules per app
MAX_RULE_LENGTH = 1024
DEFAULT_KEEPALIVE_SECONDS = 20.0  # X: "at least every 20 seconds"
POLL_SECONDS = 0.02  # wall seconds between two looks at the storm clock
PROBLEMS = "https://api.twitter.com/2/problems/"
TOO_MANY_CONNECTIONS_BODY: dict[str, Any] = {
    "title": "ConnectionException",
    "detail": "This stream is currently at the maximum allowed connection limit.",
    "connection_issue": "TooManyConnections",
    "type": PROBLEMS + "streaming-connection",
}
_STREAM_PARAMS = ("backfill_minutes", "end_time", "expansions", "media.fields", "place.fields", "poll.fields",
                  "start_time", "tweet.fields", "user.fields")
_RULES_GET_PARAMS = ("ids", "max_results", "pagination_token")
_RULES_POST_PARAMS = ("dry_run", "delete_all")


@dataclass(frozen=True)
class Rule:
    """One stream rule of an app."""

    id: str
    value: str
    tag: str | None = None

    def to_json(self) -> dict[str, str]:
        """The rule as the rules endpoints list it (no ``tag`` when it has none)."""
        return {"id": self.id, "value": self.value, **({"tag": self.tag} if self.tag is not None else {})}


@dataclass
class Connection:
    """One stream connection, for the ground truth: it delivered every matching post at positions [first, next)."""

    app: str
    number: int
    opened_at: datetime  # storm time
    first: int  # position in storm.posts of the first post it was to deliver
    next: int  # one past the last position it delivered everything up to
    delivered: int = 0
    closed_at: datetime | None = None  # storm time
    # client (the client left, or the host stopped), drop, or stall (silent until the client left)
    reason: str | None = None
    stalled_at: datetime | None = None
    keepalives: int = 0
    writer: StreamWriter | None = field(default=None, repr=False, compare=False)

    @property
    def open(self) -> bool:
        """Whether the connection is still open."""
        return self.closed_at is None


@dataclass(frozen=True)
class Gap:
    """A storm-time span when no connection was delivering, and why: not connected yet, client (it left), drop,
    stall (silent while open) or open (a connection is open but has not delivered since)."""

    start: datetime
    to: datetime
    reason: str


@dataclass
class _App:
    rules: dict[str, Rule] = field(default_factory=dict)  # by id, in creation order
    connection: Connection | None = None


class FilteredStream:
    """X's filtered stream and its rules over a host's storm (a `Mount`; see the module doc)."""

    def __init__(self, host: SimulatedHost, *, token: str | None = None,
                 keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS, poll_seconds: float = POLL_SECONDS) -> None:
        self.host = host
        self.storm = host.storm
        self.token = token
        self.keepalive_seconds = keepalive_seconds
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._apps: dict[str, _App] = {}
        self._connections: list[Connection] = []
        self._delivered: Counter[str] = Counter()
        self._rule_posts = 0
        self._rule_sequence = 0
        self._engine: QueryEngine | None = None

    @property
    def engine(self) -> QueryEngine:
        """The rule matcher: every X post, reposts included (the stream never lost them)."""
        with self._lock:
            if self._engine is None:
                self._engine = QueryEngine(self.storm, "x", cache_size=MAX_RULES + 24, max_length=MAX_RULE_LENGTH)
            return self._engine

    # ---------------------------------------------------------------------------- observation

    def rules(self, app: str) -> list[Rule]:
        """The rules of the app whose bearer token is `app`."""
        with self._lock:
            return list(self._apps[app].rules.values()) if app in self._apps else []

    def connections(self) -> list[Connection]:
        """Every connection so far, oldest first (open ones too; live objects: read, don't change)."""
        with self._lock:
            return list(self._connections)

    def connected(self, app: str | None = None) -> bool:
        """Whether a stream connection is open (for `app`, or any)."""
        with self._lock:
            return any(c.open and (app is None or c.app == app) for c in self._connections)

    def delivered_post_ids(self) -> Counter[str]:
        """How often each post id was sent on a stream connection (what X bills)."""
        with self._lock:
            return Counter(self._delivered)

    def reset_observations(self) -> None:
        """Forget what was delivered (rules and connection records stay)."""
        with self._lock:
            self._delivered.clear()

    def covered(self, post_id: str | int, app: str | None = None) -> bool:
        """Whether a connection (of `app`, or any) was delivering when the post was published."""
        position = self.storm.position_of(post_id)
        if position is None:
            return False
        with self._lock:
            return any(c.first <= position < c.next for c in self._connections if app is None or c.app == app)

    def missed(self, post_ids: Iterable[str], app: str | None = None) -> frozenset[str]:
        """Those of `post_ids` published while no stream connection (of `app`) was delivering: a gap's posts."""
        return frozenset(post_id for post_id in post_ids if not self.covered(post_id, app))

    def gaps(self, since: datetime, until: datetime, app: str | None = None) -> list[Gap]:
        """The storm-time spans in [since, until) when no connection (of `app`) was delivering, to the second."""
        seconds = self.storm.seconds
        spans: list[tuple[int, int, str]] = []
        now_s = math.floor(self.host.clock.now().timestamp()) + 1
        with self._lock:
            for c in self._connections:
                if app is not None and c.app != app:
                    continue
                start = math.floor(c.opened_at.timestamp()) + 1  # posts of the second it opened in came before
                # Delivering until the last post it sent everything up to (or now, while it still delivers).
                end = seconds[c.next - 1] + 1 if c.next > c.first else start
                if c.open and c.stalled_at is None:
                    end = max(end, now_s)
                spans.append((start, end, c.reason or ("stall" if c.stalled_at is not None else "open")))
        gaps: list[Gap] = []
        cursor, reason = math.ceil(since.timestamp()), "not connected"
        stop = min(math.ceil(until.timestamp()), now_s)
        for start, end, after in sorted(spans):
            if start > cursor and cursor < stop:
                gaps.append(Gap(_at(cursor), _at(min(start, stop)), reason))
            if end > cursor:
                cursor, reason = end, after
        if cursor < stop:
            gaps.append(Gap(_at(cursor), _at(stop), reason))
        return gaps

    def truth(self, truth: Truth, app: str | None = None) -> dict[str, Any]:
        """What the stream should have given a collector of `truth`'s posts (a campaign window on X): the posts
        published while a connection delivered, those published in its gaps (reposts among them) and the gaps."""
        missed = self.missed(truth.post_ids, app)
        reposts = sum(1 for post_id in missed if (post := self.storm.post_by_id(post_id)) and post.kind == REPOST)
        gaps = self.gaps(truth.since, truth.until, app)
        window = max(0.0, (min(truth.until, self.host.clock.now()) - truth.since).total_seconds())
        return {"connected_seconds": round(window - sum((g.to - g.start).total_seconds() for g in gaps)),
                "posts": len(truth.post_ids) - len(missed), "missed_posts": len(missed), "missed_reposts": reposts,
                "missed_post_ids": sorted(missed, key=int),
                "gaps": [{"from": g.start.isoformat(), "to": g.to.isoformat(), "reason": g.reason} for g in gaps]}

    # ------------------------------------------------------------------------------- handling

    def handle(self, request: Request, draw_faults: FaultDraw) -> Response:
        """Answer one request to the stream or its rules."""
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        app = credential.strip()
        if scheme.lower() != "bearer" or not app or (self.token is not None and app != self.token):
            return json_response(401, problem_body(401, "Unauthorized"))
        route = (request.method, request.path.rstrip("/"))
        if route not in (("GET", STREAM_PATH), ("GET", RULES_PATH), ("POST", RULES_PATH)):
            return json_response(404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]})
        due = draw_faults()
        if due.rate_limit:
            return json_response(429, problem_body(429, "Too Many Requests"))
        if due.server_error:
            return json_response(503, problem_body(503, "Service Unavailable"))
        try:
            if route == ("GET", STREAM_PATH):
                return self._connect(app, request)
            if request.method == "GET":
                return json_response(200, self._list_rules(app, request.params, request.now))
            return self._change_rules(app, request)
        except InvalidRequest as invalid:
            return json_response(400, invalid.body())

    # ---------------------------------------------------------------------------------- rules

    def _list_rules(self, app: str, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
        _check_params(params, _RULES_GET_PARAMS)
        wanted = {i.strip() for i in params["ids"].split(",") if i.strip()} if params.get("ids") else None
        rules = [rule for rule in self.rules(app) if wanted is None or rule.id in wanted]
        body: dict[str, Any] = {"data": [rule.to_json() for rule in rules]} if rules else {}
        body["meta"] = {"sent": iso_millis(now), "result_count": len(rules)}
        return body

    def _change_rules(self, app: str, request: Request) -> Response:
        params = request.params
        _check_params(params, _RULES_POST_PARAMS)
        dry_run = params.get("dry_run", "false").lower() == "true"
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or len(payload) != 1 or not (
            isinstance(payload.get("add"), list) or isinstance(payload.get("delete"), dict)
        ):
            raise InvalidRequest([ParameterProblem("body", (), "Request body must hold exactly one of add or delete")])
        faults = self.host.faults.snapshot()
        with self._lock:
            self._rule_posts += 1
            refused = faults.stream_rule_errors_every > 0 and self._rule_posts % faults.stream_rule_errors_every == 0
        now = request.now
        if "add" in payload:
            adds = [item for item in payload["add"] if isinstance(item, dict)]
            if len(adds) != len(payload["add"]) or any(not isinstance(a.get("value"), str) for a in adds):
                raise InvalidRequest([ParameterProblem("add", (), "Each rule to add must have a string value")])
            if refused:
                return json_response(400, _rule_cap_body(len(adds), now))
            return self._add(app, adds, dry_run, now)
        if refused:
            return json_response(503, problem_body(503, "Service Unavailable"))
        return json_response(200, self._delete(app, payload["delete"], dry_run, now))

    def _add(self, app: str, adds: list[dict[str, Any]], dry_run: bool, now: datetime) -> Response:
        invalid: list[dict[str, Any]] = []
        for item in adds:
            try:
                parse_query(item["value"], MAX_RULE_LENGTH)
            except QueryError as error:
                invalid.append({"value": item["value"], "details": [error.message], "title": "UnprocessableEntity",
                                "type": PROBLEMS + "invalid-rules"})
        if invalid:
            # One invalid rule refuses the whole request: nothing is created.
            summary = {"created": 0, "not_created": len(adds), "valid": len(adds) - len(invalid),
                       "invalid": len(invalid)}
            return json_response(400, {"errors": invalid, "meta": {"sent": iso_millis(now), "summary": summary}})
        with self._lock:
            state = self._apps.setdefault(app, _App())
            by_value = {rule.value: rule for rule in state.rules.values()}
            created: list[Rule] = []
            duplicates: list[dict[str, Any]] = []
            for item in adds:
                existing = by_value.get(item["value"])
                if existing is not None:
                    duplicates.append({"value": item["value"], "id": existing.id, "title": "DuplicateRule",
                                       "type": PROBLEMS + "duplicate-rules"})
                    continue
                tag = item.get("tag")
                rule = Rule(self._new_rule_id(now), item["value"], tag if isinstance(tag, str) and tag else None)
                by_value[rule.value] = rule
                created.append(rule)
            if len(state.rules) + len(created) > MAX_RULES:
                return json_response(400, _rule_cap_body(len(adds), now))
            if not dry_run:
                state.rules.update((rule.id, rule) for rule in created)
        body: dict[str, Any] = {"data": [rule.to_json() for rule in created]} if created else {}
        body["meta"] = {"sent": iso_millis(now), "summary": {
            "created": len(created), "not_created": len(duplicates), "valid": len(created), "invalid": len(duplicates)}}
        if duplicates:
            body["errors"] = duplicates
        return json_response(200, body)

    def _delete(self, app: str, delete: dict[str, Any], dry_run: bool, now: datetime) -> dict[str, Any]:
        ids = [str(i) for i in delete.get("ids", []) or []]
        values = [str(v) for v in delete.get("values", []) or []]
        with self._lock:
            state = self._apps.setdefault(app, _App())
            found = [i for i in ids if i in state.rules]
            found += [rule.id for rule in state.rules.values() if rule.value in values and rule.id not in found]
            missing = len(ids) + len(values) - len(found)
            if not dry_run:
                for rule_id in found:
                    del state.rules[rule_id]
        body: dict[str, Any] = {"meta": {"sent": iso_millis(now),
                                         "summary": {"deleted": len(found), "not_deleted": missing}}}
        if missing:
            body["errors"] = [{"errors": [{"parameters": {}, "message": "Rule does not exist"}],
                               "title": "Invalid Request", "detail": "One or more parameters to your request was "
                               "invalid.", "type": PROBLEM_INVALID_REQUEST}]
        return body

    def _new_rule_id(self, now: datetime) -> str:
        self._rule_sequence += 1
        return str(snowflake(int(now.timestamp() * 1000), worker=7, sequence=self._rule_sequence))

    # --------------------------------------------------------------------------------- stream

    def _connect(self, app: str, request: Request) -> Response:
        params = request.params
        _check_params(params, _STREAM_PARAMS)
        raw = params.get("backfill_minutes")
        if raw is not None and not (raw.isdigit() and 0 <= int(raw) <= 5):
            raise InvalidRequest.one("backfill_minutes", raw, f"The `backfill_minutes` query parameter value [{raw}] "
                                     "is not between 0 and 5")
        selection = Selection.from_params(params)
        now = request.now
        with self._lock:
            state = self._apps.setdefault(app, _App())
            previous = state.connection
        if previous is not None and previous.open and not self._left(previous):
            return json_response(429, TOO_MANY_CONNECTIONS_BODY)
        with self._lock:
            if state.connection is not previous:  # another connection won the race for the app's one slot
                return json_response(429, TOO_MANY_CONNECTIONS_BODY)
            first = bisect.bisect_right(self.storm.seconds, math.floor(now.timestamp()))
            connection = Connection(app, len(self._connections) + 1, now, first, first)
            state.connection = connection
            self._connections.append(connection)
        outcome = Response(200, b"", {"content-type": "application/json; charset=utf-8"})
        outcome.stream = lambda writer: self._serve(connection, selection, writer)
        return outcome

    def _left(self, connection: Connection) -> bool:
        """Whether an open connection's client has gone (closing it if so). A client that reconnects at once
        after giving up closed its socket first, but its server thread may not have looked yet: wait a moment."""
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline:
            writer = connection.writer
            if not connection.open or (writer is not None and writer.client_gone()):
                self._close(connection, "client")
                return True
            time.sleep(self.poll_seconds / 2)
        return False

    def _close(self, connection: Connection, reason: str) -> None:
        with self._lock:
            if connection.closed_at is None:
                connection.closed_at = self.host.clock.now()
                connection.reason = "stall" if connection.stalled_at is not None and reason == "client" else reason

    def _serve(self, connection: Connection, selection: Selection, writer: StreamWriter) -> None:
        connection.writer = writer
        faults = self.host.faults.snapshot()
        seconds = self.storm.seconds
        clock = self.host.clock
        last_write = time.monotonic()
        reason = "client"
        try:
            while connection.open and not writer.client_gone():
                if connection.stalled_at is None:
                    high = bisect.bisect_right(seconds, math.floor(clock.now().timestamp()))
                    for position, tags in self._matching(connection.app, connection.next, high):
                        line = self._line(position, tags, selection)
                        # Counted as delivered before it is written: a line written as the client leaves may
                        # still reach it, and the truth must never say a post the client got was missed.
                        with self._lock:
                            connection.next = position + 1
                            connection.delivered += 1
                            self._delivered[self.storm.posts[position].native_id] += 1
                        if not writer.write(line):
                            return
                        last_write = time.monotonic()
                        if faults.stream_drop_every and connection.delivered >= faults.stream_drop_every:
                            reason = "drop"
                            self._close(connection, reason)  # before the client can see it and reconnect
                            writer.abort()
                            return
                        if faults.stream_stall_every and connection.delivered >= faults.stream_stall_every:
                            connection.stalled_at = clock.now()
                            break
                    else:
                        with self._lock:
                            connection.next = max(connection.next, high)
                if connection.stalled_at is None and time.monotonic() - last_write >= self.keepalive_seconds:
                    if not writer.write(b"\r\n"):
                        return
                    connection.keepalives += 1
                    last_write = time.monotonic()
                time.sleep(self.poll_seconds)
        finally:
            self._close(connection, reason)

    def _matching(self, app: str, low: int, high: int) -> list[tuple[int, list[dict[str, str]]]]:
        """The positions in [low, high) matching any of the app's rules now, oldest first, with the rules matched."""
        if high <= low:
            return []
        engine = self.engine
        found: dict[int, list[dict[str, str]]] = {}
        for rule in self.rules(app):
            positions = engine.positions(rule.value)
            for i in range(bisect.bisect_left(positions, low), bisect.bisect_left(positions, high)):
                # tweepy reads matching_rules[i]["tag"]: X sends it, empty for a rule without one.
                found.setdefault(positions[i], []).append({"id": rule.id, "tag": rule.tag or ""})
        return sorted(found.items())

    def _line(self, position: int, tags: list[dict[str, str]], selection: Selection) -> bytes:
        now = self.host.clock.now()  # a post is streamed as it is made: its counters are those of that moment
        page = render_page(self.storm, [self.storm.posts[position]], selection,
                           counters=lambda post: self.storm.counters_at(post, now))
        line: dict[str, Any] = {"data": page["data"][0]}
        for key in ("includes", "errors"):
            if key in page:
                line[key] = page[key]
        line["matching_rules"] = tags
        return json_bytes(line) + b"\r\n"


def _at(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def _check_params(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    problems = [ParameterProblem(name, (value,), f"The query parameter [{name}] is not one of [{','.join(allowed)}]")
                for name, value in params.items() if name not in allowed]
    if problems:
        raise InvalidRequest(problems)


def _rule_cap_body(count: int, now: datetime) -> dict[str, Any]:
    """The answer when the app's rules would pass the cap (the shape of X's rule-cap problem; nothing is created)."""
    return {"errors": [{"title": "RulesCapExceeded", "type": PROBLEMS + "rule-cap",
                        "detail": f"Rule creation would exceed the limit of {MAX_RULES} rules for this app."}],
            "meta": {"sent": iso_millis(now), "summary": {"created": 0, "not_created": count, "valid": count,
                                                          "invalid": 0}}}


def mount_stream(host: SimulatedHost, *, token: str | None = None,
                 keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS) -> FilteredStream:
    """Serve X's filtered stream and its rules on the host (beside `mount_x`); returns the mount."""
    stream = FilteredStream(host, token=token, keepalive_seconds=keepalive_seconds)
    host.mount(STREAM_PATH, stream)
    return stream
