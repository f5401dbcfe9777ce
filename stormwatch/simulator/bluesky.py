"""The simulated Bluesky's XRPC endpoints (the ones the collector calls), as a mount under ``/xrpc/``.

`BlueskyXrpc` serves the storm as the AT Protocol shows it (`atproto.BlueskyNetwork`) under ``/xrpc/`` on
the host (see `mount_bluesky`); Jetstream, Bluesky's event feed, is its own server (`jetstream.py`):

* ``POST com.atproto.server.createSession`` / ``refreshSession``: configured handle/app-password pairs get
  JWT sessions; anything else gets 401 ``AuthenticationRequired``.
* ``GET app.bsky.feed.searchPosts``: needs a session's bearer token. Without one it answers like the public
  AppView does since 2025, a 403 HTML page ("Request forbidden by administrative rules"); unknown tokens get
  401 ``InvalidToken``, expired ones 400 ``ExpiredToken``. Results are newest first by ``sortAt`` (here the
  record's ``createdAt``), ``since`` inclusive, ``until`` exclusive, paginated by an offset cursor that stops
  at ``search_depth`` hits, as a real search index does.
* ``GET app.bsky.actor.getProfiles``: public, up to 25 ``actors`` (handles or DIDs); unknown actors are left
  out.
* ``GET app.bsky.feed.getPosts``: public, up to 25 ``uris``; post views with their current counters.
* ``GET app.bsky.feed.getAuthorFeed``: public; an ``actor``'s posts and reposts (a ``reasonRepost``), newest
  first, ``limit`` 1-100 (50), an offset ``cursor``.

Only posts and users of platform "bluesky" exist here; a post exists once it is indexed (``indexedAt``, a
fraction of a second after ``createdAt``) on the storm clock. Bluesky reposts are separate
``app.bsky.feed.repost`` records, not posts: search never returns them (they show in ``repostCount``), and
deleted posts are gone.

Every response carries ``ratelimit-limit/remaining/reset/policy`` (reset in epoch seconds of the storm
clock). Injected faults (drawn from the host) apply after the real rate limit: 429 ``RateLimitExceeded``, 500
``InternalServerError``, then delivery faults on a 200 (slow, malformed JSON, dropped connection).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from stormwatch.simulator.atproto import BlueskyNetwork, did_for, iso_ms, micros
from stormwatch.simulator.host import DueFaults, FaultDraw, RateWindow, Request, Response, SimulatedHost, json_response

PREFIX = "/xrpc/"
MAX_PROFILES = 25
MAX_POSTS = 25
MAX_SEARCH_LIMIT = 100
DEFAULT_SEARCH_LIMIT = 25
DEFAULT_SEARCH_DEPTH = 10_000
# The public AppView's answer to searchPosts without a login (an HTML page from its proxy, not XRPC JSON).
FORBIDDEN_PAGE = (
    b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n"
    b"<hr><center>Request forbidden by administrative rules.</center>\r\n</body>\r\n</html>\r\n"
)
_UNSUPPORTED_SEARCH_FILTERS = ("domain", "url")


class XrpcError(Exception):
    """An XRPC error answer: status plus the `{"error", "message"}` body every atproto service sends."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


@dataclass(frozen=True)
class _Session:
    did: str
    handle: str
    expires_wall: float


class BlueskyXrpc:
    """The XRPC endpoints of the simulated Bluesky (a `Mount` for `/xrpc/`; see the module doc)."""

    def __init__(self, network: BlueskyNetwork, *, accounts: Mapping[str, str] | None = None,
                 refuse_search: bool = False, search_depth: int = DEFAULT_SEARCH_DEPTH,
                 rate_limit: int = 3000, login_limit: int = 30, rate_window_seconds: float = 300.0,
                 session_seconds: float = 7200.0) -> None:
        self.network = network
        # handle -> app password; handles compare case-insensitively, like the PDS does.
        self.accounts = {handle.lower().lstrip("@"): password for handle, password in (accounts or {}).items()}
        self.refuse_search = refuse_search
        self.search_depth = search_depth
        self.session_seconds = session_seconds
        # The AppView's per-client limit, and the much stricter one on logins (30 per 5 minutes per account).
        self._general = RateWindow(rate_limit, rate_window_seconds, "ratelimit-", with_policy=True)
        self._logins = RateWindow(login_limit, rate_window_seconds, "ratelimit-", with_policy=True)
        self._secret = os.urandom(32)
        self._access: dict[str, _Session] = {}
        self._refresh: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self.logins = 0
        self.refused_logins = 0
        self._routes: dict[str, tuple[str, Callable[[Request, Mapping[str, list[str]]], dict[str, Any]]]] = {
            "com.atproto.server.createSession": ("POST", self._create_session),
            "com.atproto.server.refreshSession": ("POST", self._refresh_session),
            "app.bsky.feed.searchPosts": ("GET", self._search_posts),
            "app.bsky.actor.getProfiles": ("GET", self._get_profiles),
            "app.bsky.feed.getPosts": ("GET", self._get_posts),
            "app.bsky.feed.getAuthorFeed": ("GET", self._get_author_feed),
        }

    def tokens(self) -> list[str]:
        """Every live session token (tests check that none leaks into logs, errors or URLs)."""
        with self._lock:
            return [*self._access, *self._refresh]

    def end_sessions(self) -> None:
        """Forget every session (as after a server-side revocation): their tokens become unknown."""
        with self._lock:
            self._access.clear()
            self._refresh.clear()

    def handle(self, request: Request, draw_faults: FaultDraw) -> Response:
        """Answer one request under /xrpc/ (rate limits, injected faults, then the method)."""
        faults = draw_faults()  # every request to the AppView counts, even a refused one
        nsid = request.path[len(PREFIX):]
        route = self._routes.get(nsid)
        if route is None:
            return _error(XrpcError(501, "MethodNotImplemented", "Method Not Implemented"))
        http_method, answer = route
        if request.method != http_method:
            return _error(XrpcError(400, "InvalidRequest",
                                    f"Incorrect HTTP method ({request.method}) expected {http_method}"))
        now = request.now.timestamp()
        window = self._logins if nsid == "com.atproto.server.createSession" else self._general
        with self._lock:
            exhausted = window.exhausted(now)
        if exhausted:
            return self._limited(window, now, None)
        if faults.rate_limit:
            with self._lock:
                window.block_until(now + faults.reset_seconds)
            return self._limited(window, now, faults)
        if faults.server_error:
            response = _error(XrpcError(500, "InternalServerError", "Internal Server Error"))
            response.fault, response.delay = faults.tag(), faults.delay
            return self._with_limits(response, window, now)
        with self._lock:
            window.consume(now)
        try:
            response = json_response(200, answer(request, _all_params(request)))
        except XrpcError as refusal:
            response = _error(refusal)
        except _Forbidden:
            response = Response(403, FORBIDDEN_PAGE, {"content-type": "text/html"})
        applied = ["slow"] if faults.delay else []
        response.delay = faults.delay
        if response.status == 200 and faults.drop:
            response.drop = True
            applied.append("drop")
        elif response.status == 200 and faults.malformed:
            response.malformed = True
            applied.append("malformed")
        response.fault = "+".join(applied) or None
        return self._with_limits(response, window, now)

    def _limited(self, window: RateWindow, now: float, faults: DueFaults | None) -> Response:
        response = _error(XrpcError(429, "RateLimitExceeded", "Rate Limit Exceeded"))
        if faults is not None:
            response.fault, response.delay = faults.tag(), faults.delay
        return self._with_limits(response, window, now)

    def _with_limits(self, response: Response, window: RateWindow, now: float) -> Response:
        with self._lock:
            response.headers.update(window.headers(now))
        return response

    # -------------------------------------------------------------------------------- sessions

    def _token(self, kind: str, did: str, expires: int, issued: int) -> str:
        header = {"typ": "at+jwt" if kind == "access" else "refresh+jwt", "alg": "HS256"}
        payload = {"scope": "com.atproto.appPass" if kind == "access" else "com.atproto.refresh", "sub": did,
                   "aud": "did:web:simulated.pds", "iat": issued, "exp": expires}
        if kind == "refresh":
            payload["jti"] = base64.urlsafe_b64encode(os.urandom(24)).decode("ascii").rstrip("=")
        signing_input = f"{_b64url(header)}.{_b64url(payload)}"
        signature = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode('ascii').rstrip('=')}"

    def _issue(self, did: str, handle: str) -> dict[str, Any]:
        # The SDK refreshes tokens by comparing `exp` with the real clock, so sessions live in wall time.
        issued = int(time.time())
        expires = issued + int(self.session_seconds)
        access = self._token("access", did, expires, issued)
        refresh = self._token("refresh", did, issued + 90 * 86400, issued)
        with self._lock:
            self._access[access] = _Session(did, handle, float(expires))
            self._refresh[refresh] = _Session(did, handle, float(issued + 90 * 86400))
        return {"accessJwt": access, "refreshJwt": refresh, "handle": handle, "did": did,
                "email": f"{handle.split('.')[0]}@example.org", "emailConfirmed": True, "emailAuthFactor": False,
                "active": True}

    def _create_session(self, request: Request, params: Mapping[str, list[str]]) -> dict[str, Any]:
        body = _json_input(request)
        identifier, password = body.get("identifier"), body.get("password")
        for name, value in (("identifier", identifier), ("password", password)):
            if not isinstance(value, str):
                raise XrpcError(400, "InvalidRequest", f'Input must have the property "{name}"')
        assert isinstance(identifier, str) and isinstance(password, str)
        handle = identifier.strip().lstrip("@").lower()
        expected = self.accounts.get(handle)
        if expected is None:
            # A DID works as the identifier too.
            handle = next((h for h in self.accounts if did_for(f"account:{h}") == identifier.strip()), handle)
            expected = self.accounts.get(handle)
        if expected is None or not hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8")):
            with self._lock:
                self.refused_logins += 1
            raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        with self._lock:
            self.logins += 1
        return self._issue(did_for(f"account:{handle}"), handle)

    def _refresh_session(self, request: Request, params: Mapping[str, list[str]]) -> dict[str, Any]:
        token = _bearer(request)
        with self._lock:
            session = self._refresh.pop(token, None) if token else None
        if session is None:
            raise XrpcError(401, "InvalidToken", "Token could not be verified")
        if session.expires_wall < time.time():
            raise XrpcError(400, "ExpiredToken", "Token has expired")
        return self._issue(session.did, session.handle)

    def _viewer(self, request: Request) -> _Session:
        token = _bearer(request)
        if token is None or self.refuse_search:
            raise _Forbidden()
        with self._lock:
            session = self._access.get(token)
        if session is None:
            raise XrpcError(401, "InvalidToken", "Token could not be verified")
        if session.expires_wall < time.time():
            raise XrpcError(400, "ExpiredToken", "Token has expired")
        return session

    # ---------------------------------------------------------------------------------- methods

    def _search_posts(self, request: Request, params: Mapping[str, list[str]]) -> dict[str, Any]:
        self._viewer(request)
        q = _one(params, "q")
        if q is None:
            raise XrpcError(400, "InvalidRequest", 'Error: Params must have the property "q"')
        for name in _UNSUPPORTED_SEARCH_FILTERS:
            if name in params:
                raise XrpcError(400, "InvalidRequest", f"Error: the simulated AppView does not filter by {name}")
        limit = _integer(params, "limit", DEFAULT_SEARCH_LIMIT, 1, MAX_SEARCH_LIMIT)
        offset = _integer(params, "cursor", 0, 0, None)
        sort = _one(params, "sort") or "latest"
        if sort not in ("latest", "top"):
            raise XrpcError(400, "InvalidRequest", f"Error: sort must be one of top, latest (got {sort!r})")
        words, tags = [], list(params.get("tag", []))
        for term in q.split():
            if term.upper() in ("AND", "&&"):
                continue
            if term.startswith(("#", "＃")) and len(term) > 1:
                tags.append(term[1:])
            else:
                words.append(term.strip('"'))
        network = self.network
        actors = {}
        for name in ("author", "mentions"):
            actor = _one(params, name)
            if actor is not None:
                found = network.member(actor)
                if found is None:
                    return {"posts": [], "hitsTotal": 0}
                actors[name] = found
        now_ms = math.floor(request.now.timestamp() * 1000)
        # "top" has no engagement ranking here: the simulator serves recency order for both.
        matches = network.search(words=words, tags=tags, since_us=_time_param(params, "since"),
                                 until_us=_time_param(params, "until"), now_ms=now_ms, author=actors.get("author"),
                                 mention=actors.get("mentions"), lang=_one(params, "lang"))
        page = matches[offset:offset + limit] if offset < self.search_depth else []
        body: dict[str, Any] = {"posts": [network.post_view(post, now_ms) for post in page]}
        following = offset + len(page)
        if page and following < len(matches) and following < self.search_depth:
            body["cursor"] = str(following)
        body["hitsTotal"] = len(matches)
        return body

    def _get_profiles(self, request: Request, params: Mapping[str, list[str]]) -> dict[str, Any]:
        actors = params.get("actors", [])
        if not actors:
            raise XrpcError(400, "InvalidRequest", 'Error: Params must have the property "actors"')
        if len(actors) > MAX_PROFILES:
            raise XrpcError(400, "InvalidRequest", f"Error: actors must not have more than {MAX_PROFILES} elements")
        profiles, seen = [], set()
        for actor in actors:
            user = self.network.member(actor)
            if user is not None and user.index not in seen:
                seen.add(user.index)
                profiles.append(self.network.profile_view(user))
        return {"profiles": profiles}


    def _get_posts(self, request: Request, params: Mapping[str, list[str]]) -> dict[str, Any]:
        uris = params.get("uris", [])
        if not uris:
            raise XrpcError(400, "InvalidRequest", 'Error: Params must have the property "uris"')
        if len(uris) > MAX_POSTS:
            raise XrpcError(400, "InvalidRequest", f"Error: uris must not have more than {MAX_POSTS} elements")
        now_ms = math.floor(request.now.timestamp() * 1000)
        views = []
        for uri in dict.fromkeys(uris):
            post = self.network.post_by_uri(uri)
            # Deleted, not yet indexed or unknown posts are left out, as the AppView does.
            if post is not None and self.network.indexed_ms(post) <= now_ms:
                views.append(self.network.post_view(post, now_ms))
        return {"posts": views}


    def _get_author_feed(self, request: Request, params: Mapping[str, list[str]]) -> dict[str, Any]:
        actor = _one(params, "actor")
        if actor is None:
            raise XrpcError(400, "InvalidRequest", 'Error: Params must have the property "actor"')
        user = self.network.member(actor)
        if user is None:
            raise XrpcError(400, "InvalidRequest", "Profile not found")
        limit = _integer(params, "limit", 50, 1, 100)
        offset = _integer(params, "cursor", 0, 0, None)
        now_ms = math.floor(request.now.timestamp() * 1000)
        network = self.network
        # The author's posts and reposts, newest first, as they were indexed (a repost of a gone post is left out).
        items: list[tuple[int, dict[str, Any]]] = [
            (network.indexed_ms(p), {"post": network.post_view(p, now_ms)}) for p in network.posts
            if p.author == user.index and network.indexed_ms(p) <= now_ms]
        for repost in network.reposts:
            original = self.network.storm.post_by_id(repost.ref_id) if repost.ref_id is not None else None
            if (repost.author == user.index and network.indexed_ms(repost) <= now_ms and original is not None
                    and network.post_by_uri(network.uri(original)) is not None):
                reason = {"$type": "app.bsky.feed.defs#reasonRepost", "by": network.author_view(user),
                          "indexedAt": iso_ms(network.indexed_ms(repost))}
                items.append((network.indexed_ms(repost), {"post": network.post_view(original, now_ms),
                                                           "reason": reason}))
        items.sort(key=lambda item: -item[0])
        page = [view for _, view in items[offset:offset + limit]]
        body: dict[str, Any] = {"feed": page}
        if page and offset + len(page) < len(items):
            body["cursor"] = str(offset + len(page))
        return body


class _Forbidden(Exception):
    """The request is refused by the AppView's proxy (an HTML 403, not an XRPC error)."""


def mount_bluesky(platform: SimulatedHost, *, accounts: Mapping[str, str] | None = None,
                  network: BlueskyNetwork | None = None, **options: Any) -> BlueskyXrpc:
    """Serve the storm's Bluesky side under /xrpc/ on `platform`; `accounts` maps handles to app passwords."""
    xrpc = BlueskyXrpc(network or BlueskyNetwork(platform.storm), accounts=accounts, **options)
    platform.mount(PREFIX, xrpc)
    return xrpc


def account_did(handle: str) -> str:
    """The DID the simulated PDS gives a configured login account."""
    return did_for(f"account:{handle.lower().lstrip('@')}")


def _all_params(request: Request) -> dict[str, list[str]]:
    """Every value of every query parameter: XRPC arrays (`tag`, `actors`) repeat their name.

    The raw query string (`Request.query`) has them all; a request built without it (called directly, or
    by a server that passes only the first value of each parameter) has one value per name.
    """
    if request.query:
        return parse_qs(request.query, keep_blank_values=True)
    return {name: [value] for name, value in request.params.items()}


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _integer(params: Mapping[str, list[str]], name: str, default: int, low: int, high: int | None) -> int:
    raw = _one(params, name)
    if raw is None:
        return default
    if not raw.strip().lstrip("-").isdigit():
        raise XrpcError(400, "InvalidRequest", f"Error: {name} must be an integer")
    value = int(raw)
    if value < low:
        raise XrpcError(400, "InvalidRequest", f"Error: {name} can not be less than {low}")
    if high is not None and value > high:
        raise XrpcError(400, "InvalidRequest", f"Error: {name} can not be greater than {high}")
    return value


def _time_param(params: Mapping[str, list[str]], name: str) -> int | None:
    """A `since`/`until` value (a datetime, or a date meaning its midnight UTC) in epoch microseconds."""
    raw = _one(params, name)
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise XrpcError(400, "BadQueryString", f"Error: {name} must be a valid datetime or date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return micros(moment)



def _bearer(request: Request) -> str | None:
    scheme, _, credential = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def _json_input(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise XrpcError(400, "InvalidRequest", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise XrpcError(400, "InvalidRequest", "Input must be an object")
    return body


def _b64url(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _error(refusal: XrpcError) -> Response:
    return json_response(refusal.status, {"error": refusal.error, "message": refusal.message})
