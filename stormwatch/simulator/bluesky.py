"""The simulated Bluesky: the storm as the AT Protocol shows it, and the XRPC endpoints the collector calls.

`BlueskyNetwork` turns the storm's Bluesky posts and users into DIDs, handles, at-uris, post records with
rich-text facets (UTF-8 *byte* offsets), post views and profile views. `BlueskyXrpc` serves them under
``/xrpc/`` on the `SimulatedPlatform` (see `mount_bluesky`):

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

Only posts and users of platform "bluesky" exist here; a post exists once it is indexed (``indexedAt``, a
fraction of a second after ``createdAt``) on the storm clock. Bluesky reposts are separate
``app.bsky.feed.repost`` records, not posts: search never returns them (they show in ``repostCount``), and
deleted posts are gone.

Every response carries ``ratelimit-limit/remaining/reset/policy`` (reset in epoch seconds of the storm
clock). Injected faults (`DueFaults`) apply after the real rate limit: 429 ``RateLimitExceeded``, 500
``InternalServerError``, then delivery faults on a 200 (slow, malformed JSON, dropped connection).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from stormwatch.simulator.server import DueFaults, Faults, RateWindow, Request, Response, SimulatedPlatform
from stormwatch.simulator.spec import QUOTE, REPLY, REPOST, Post, User, unescape_text
from stormwatch.simulator.storm import Storm

PLATFORM = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
REPOST_COLLECTION = "app.bsky.feed.repost"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
MENTION_FEATURE = "app.bsky.richtext.facet#mention"
PREFIX = "/xrpc/"
MAX_PROFILES = 25
MAX_POSTS = 25
MAX_SEARCH_LIMIT = 100
DEFAULT_SEARCH_LIMIT = 25
DEFAULT_SEARCH_DEPTH = 10_000
HANDLE_DOMAIN = "bsky.social"
# The public AppView's answer to searchPosts without a login (an HTML page from its proxy, not XRPC JSON).
FORBIDDEN_PAGE = (
    b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n"
    b"<hr><center>Request forbidden by administrative rules.</center>\r\n</body>\r\n</html>\r\n"
)
_SORTABLE_BASE32 = "234567abcdefghijklmnopqrstuvwxyz"
# A CIDv1 header: version 1, dag-cbor codec, sha2-256 multihash of 32 bytes.
_CID_PREFIX = bytes([0x01, 0x71, 0x12, 0x20])
_UNSUPPORTED_SEARCH_FILTERS = ("domain", "url")


def tid(micros: int, clock_id: int = 0) -> str:
    """An atproto TID (record key): 53 bits of microseconds and 10 bits of clock id, base32-sortable."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_SORTABLE_BASE32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def cid_for(text: str) -> str:
    """A well-formed CIDv1 (dag-cbor, sha2-256, base32) for some stable content."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "b" + base64.b32encode(_CID_PREFIX + digest).decode("ascii").lower().rstrip("=")


def did_for(text: str) -> str:
    """A well-formed did:plc identifier derived from `text` (24 base32 characters)."""
    digest = hashlib.sha256(("did:" + text).encode("utf-8")).digest()[:15]
    return "did:plc:" + base64.b32encode(digest).decode("ascii").lower()


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as atproto writes datetimes: `2021-02-07T16:00:00.123Z`."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def handle_for(user: User) -> str:
    """The Bluesky handle of a storm user: its username as a bsky.social subdomain (handles have no `_`)."""
    label = user.username.lower().replace("_", "-").strip("-") or f"user{user.index}"
    return f"{label}.{HANDLE_DOMAIN}"


class BlueskyNetwork:
    """The storm as Bluesky shows it: identities, records with facets, post and profile views, a search index."""

    def __init__(self, storm: Storm) -> None:
        self.storm = storm
        self.seed = storm.spec.seed
        # Posts that exist as app.bsky.feed.post records, in time order; reposts are repost records.
        self.posts: tuple[Post, ...] = tuple(
            p for p in storm.posts if p.platform == PLATFORM and not p.deleted and p.kind != REPOST)
        self.reposts: tuple[Post, ...] = tuple(p for p in storm.posts if p.platform == PLATFORM and p.kind == REPOST)
        self.users: tuple[User, ...] = tuple(u for u in storm.users if u.platform == PLATFORM)
        self._dids = [did_for(f"{self.seed}:{user.id}") for user in storm.users]
        self._handles = [handle_for(user) for user in storm.users]
        self._member_by_actor: dict[str, User] = {}
        for user in self.users:
            self._member_by_actor[self._dids[user.index]] = user
            self._member_by_actor[self._handles[user.index]] = user
        self._position_by_uri = {self.uri(post): position for position, post in enumerate(self.posts)}
        self.sort_us = [post.ms * 1000 for post in self.posts]
        self._by_tag: dict[str, list[int]] = {}
        for position, post in enumerate(self.posts):
            for tag in {tag.casefold() for _, _, tag in post.hashtags}:
                self._by_tag.setdefault(tag, []).append(position)
        self._records: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- identities

    def did(self, user: User) -> str:
        """The DID of a storm user."""
        return self._dids[user.index]

    def handle(self, user: User) -> str:
        """The handle of a storm user."""
        return self._handles[user.index]

    def member(self, actor: str) -> User | None:
        """The Bluesky user with this DID or handle (case-insensitive), if any."""
        return self._member_by_actor.get(actor.strip().lstrip("@").lower())

    def author(self, post: Post) -> User:
        """The author of a post."""
        return self.storm.users[post.author]

    def rkey(self, post: Post) -> str:
        """The record key of a post: a TID of its creation time, as the author's app mints it."""
        return tid(self.created_us(post), (post.id >> 12) & 0x3FF)

    def uri(self, post: Post) -> str:
        """The at-uri of a post (or, for a repost, of its app.bsky.feed.repost record)."""
        collection = REPOST_COLLECTION if post.kind == REPOST else POST_COLLECTION
        return f"at://{self.did(self.author(post))}/{collection}/{self.rkey(post)}"

    def cid(self, post: Post) -> str:
        """The CID of a post's record."""
        return cid_for(f"{self.seed}:record:{post.id}")

    def uri_of_id(self, post_id: str | int) -> str | None:
        """The at-uri of the storm post with this native id (the ids `Storm.truth` lists)."""
        post = self.storm.post_by_id(post_id)
        return None if post is None else self.uri(post)

    def post_by_uri(self, uri: str) -> Post | None:
        """The (existing, non-repost) post with this at-uri."""
        position = self._position_by_uri.get(uri)
        return None if position is None else self.posts[position]

    # ---------------------------------------------------------------------------------- timing

    @staticmethod
    def created_us(post: Post) -> int:
        """When the post was created, in epoch microseconds (the storm has milliseconds; the rest is stable)."""
        return post.ms * 1000 + ((post.id >> 12) & 0x3FF) % 1000

    @staticmethod
    def indexed_ms(post: Post) -> int:
        """When the AppView indexed the post: 40 ms to about a second after it was created."""
        return post.ms + 40 + ((post.id >> 12) & 0x3FF)

    # --------------------------------------------------------------------------------- records

    def record(self, post: Post) -> dict[str, Any]:
        """The post's app.bsky.feed.post record (or app.bsky.feed.repost record), as its author wrote it."""
        with self._lock:
            cached = self._records.get(post.id)
        if cached is not None:
            return cached
        if post.kind == REPOST:
            original = self.storm.post_by_id(post.ref_id) if post.ref_id is not None else None
            record: dict[str, Any] = {"$type": REPOST_COLLECTION, "createdAt": iso_ms(post.ms),
                                      "subject": self._strong_ref(original) if original else None}
        else:
            record = self._post_record(post)
        with self._lock:
            self._records[post.id] = record
        return record

    def _post_record(self, post: Post) -> dict[str, Any]:
        text, facets = self._compose(post)
        record: dict[str, Any] = {"$type": POST_COLLECTION, "text": text, "createdAt": iso_ms(post.ms)}
        if post.lang != "und":
            record["langs"] = [post.lang]
        if facets:
            record["facets"] = facets
        if post.kind == REPLY and post.ref_id is not None:
            parent = self.storm.post_by_id(post.ref_id)
            root = self.storm.post_by_id(post.conversation_id) or parent
            if parent is not None and root is not None:
                record["reply"] = {"root": self._strong_ref(root), "parent": self._strong_ref(parent)}
        if post.kind == QUOTE and post.ref_id is not None:
            quoted = self.storm.post_by_id(post.ref_id)
            if quoted is not None:
                record["embed"] = {"$type": "app.bsky.embed.record", "record": self._strong_ref(quoted)}
        return record

    def _strong_ref(self, post: Post) -> dict[str, str]:
        return {"uri": self.uri(post), "cid": self.cid(post)}

    def _compose(self, post: Post) -> tuple[str, list[dict[str, Any]]]:
        """The post's text as a Bluesky app writes it, with tag and mention facets at UTF-8 byte offsets.

        The storm's text is X-shaped (HTML-escaped, code-point offsets, `@user` reply prefixes, t.co links
        to quoted posts); Bluesky text is plain, replies and quotes carry their target in the record, and
        mentions name full handles.
        """
        spans: list[tuple[int, int, str, Any]] = sorted(
            [(s, e, "tag", tag) for s, e, tag in post.hashtags]
            + [(s, e, "mention", who) for s, e, who in post.mentions]
            + [(s, e, "link", url) for s, e, url, _ in post.urls])
        parts: list[str] = []
        facets: list[dict[str, Any]] = []
        size = 0

        def add(piece: str) -> None:
            nonlocal size
            parts.append(piece)
            size += len(piece.encode("utf-8"))

        position = 0
        for index, (start, end, kind, value) in enumerate(spans):
            if index == 0 and kind == "mention" and start == 0 and post.kind == REPLY:
                # X prefixes replies with the parent's author; Bluesky names the parent in `reply` instead.
                position = end + (1 if post.text[end:end + 1] == " " else 0)
                continue
            add(unescape_text(post.text[position:start]))
            if kind == "tag":
                begin = size
                add("#" + value)
                facets.append(_facet(begin, size, {"$type": TAG_FEATURE, "tag": value}))
            elif kind == "mention":
                mentioned = self.storm.users[value]
                begin = size
                add("@" + self.handle(mentioned))
                facets.append(_facet(begin, size, {"$type": MENTION_FEATURE, "did": self.did(mentioned)}))
            # A link only ever points at the quoted post, which the record embeds: it is left out of the text.
            position = end
        add(unescape_text(post.text[position:]))
        # Dropping a trailing link leaves its separating space behind; facets all end before it.
        return "".join(parts).rstrip(), facets

    # ----------------------------------------------------------------------------------- views

    def author_view(self, user: User) -> dict[str, Any]:
        """An app.bsky.actor.defs#profileViewBasic, as post views embed their author."""
        did = self.did(user)
        return {
            "did": did,
            "handle": self.handle(user),
            "displayName": user.name,
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/{cid_for(f'avatar:{user.id}')}@jpeg",
            "associated": {"chat": {"allowIncoming": "following"}},
            "viewer": {"muted": False, "blockedBy": False},
            "labels": [],
            "createdAt": iso_ms(user.created_ms),
        }

    def profile_view(self, user: User) -> dict[str, Any]:
        """An app.bsky.actor.defs#profileViewDetailed with follower, follow and post counts."""
        view = self.author_view(user)
        view.pop("viewer")
        view.update({
            "description": user.description,
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False,
                           "chat": {"allowIncoming": "following"}},
            "indexedAt": iso_ms(user.created_ms + 3_600_000),
            "viewer": {"muted": False, "blockedBy": False},
            "followersCount": user.followers,
            "followsCount": user.following,
            "postsCount": user.tweet_count,
        })
        return view

    def post_view(self, post: Post, now_ms: int) -> dict[str, Any]:
        """An app.bsky.feed.defs#postView of an existing post, with its engagement counters."""
        view: dict[str, Any] = {
            "uri": self.uri(post),
            "cid": self.cid(post),
            "author": self.author_view(self.author(post)),
            "record": self.record(post),
        }
        if post.kind == QUOTE and post.ref_id is not None:
            quoted = self.storm.post_by_id(post.ref_id)
            if quoted is not None:
                view["embed"] = {"$type": "app.bsky.embed.record#view", "record": self._embedded(quoted, now_ms)}
        view.update({
            "replyCount": post.replies,
            "repostCount": post.reposts,
            "likeCount": post.likes,
            "quoteCount": post.quotes,
            "indexedAt": iso_ms(self.indexed_ms(post)),
            "viewer": {"threadMuted": False, "embeddingDisabled": False},
            "labels": [],
        })
        return view

    def _embedded(self, quoted: Post, now_ms: int) -> dict[str, Any]:
        uri = self.uri(quoted)
        if self.post_by_uri(uri) is None or self.indexed_ms(quoted) > now_ms:
            return {"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": True}
        return {
            "$type": "app.bsky.embed.record#viewRecord",
            "uri": uri,
            "cid": self.cid(quoted),
            "author": self.author_view(self.author(quoted)),
            "value": self.record(quoted),
            "labels": [],
            "likeCount": quoted.likes,
            "replyCount": quoted.replies,
            "repostCount": quoted.reposts,
            "quoteCount": quoted.quotes,
            "indexedAt": iso_ms(self.indexed_ms(quoted)),
            "embeds": [],
        }

    # ---------------------------------------------------------------------------------- search

    def search(self, *, words: Iterable[str] = (), tags: Iterable[str] = (), since_us: int | None = None,
               until_us: int | None = None, now_ms: int, author: User | None = None, mention: User | None = None,
               lang: str | None = None) -> list[Post]:
        """Indexed posts matching every word and tag (case-insensitive) in [since, until), newest first."""
        wanted_tags = [tag.casefold().lstrip("#") for tag in tags]
        low = 0 if since_us is None else bisect.bisect_left(self.sort_us, since_us)
        high = len(self.posts) if until_us is None else bisect.bisect_left(self.sort_us, until_us)
        if wanted_tags:
            lists = [self._by_tag.get(tag, []) for tag in wanted_tags]
            shortest = min(lists, key=len)
            others = [set(positions) for positions in lists if positions is not shortest]
            candidates = [p for p in shortest[bisect.bisect_left(shortest, low):bisect.bisect_left(shortest, high)]
                          if all(p in other for other in others)]
        else:
            candidates = list(range(low, high))
        wanted_words = [word.casefold() for word in words]
        mention_did = self.did(mention) if mention is not None else None
        found = []
        for position in reversed(candidates):
            post = self.posts[position]
            if self.indexed_ms(post) > now_ms:
                continue
            if author is not None and post.author != author.index:
                continue
            if lang is not None and post.lang != lang:
                continue
            if wanted_words or mention_did:
                record = self.record(post)
                text = record["text"].casefold()
                if not all(word in text for word in wanted_words):
                    continue
                if mention_did and not any(
                        feature.get("did") == mention_did
                        for facet in record.get("facets", []) for feature in facet["features"]):
                    continue
            found.append(post)
        return found


def _facet(byte_start: int, byte_end: int, feature: dict[str, Any]) -> dict[str, Any]:
    return {"index": {"byteStart": byte_start, "byteEnd": byte_end}, "features": [feature]}


# ---------------------------------------------------------------------------------------------- XRPC


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
                 faults: Faults | None = None, refuse_search: bool = False, search_depth: int = DEFAULT_SEARCH_DEPTH,
                 rate_limit: int = 3000, login_limit: int = 30, rate_window_seconds: float = 300.0,
                 session_seconds: float = 7200.0) -> None:
        self.network = network
        # handle -> app password; handles compare case-insensitively, like the PDS does.
        self.accounts = {handle.lower().lstrip("@"): password for handle, password in (accounts or {}).items()}
        self.faults = faults if faults is not None else Faults()
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

    def handle(self, request: Request, faults: DueFaults) -> Response:
        """Answer one request under /xrpc/ (rate limits, injected faults, then the method)."""
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
                window.block_until(now + self.faults.snapshot().rate_limit_reset_seconds)
            return self._limited(window, now, faults)
        if faults.server_error:
            response = _error(XrpcError(500, "InternalServerError", "Internal Server Error"))
            response.fault, response.delay = faults.tag(), faults.delay
            return self._with_limits(response, window, now)
        with self._lock:
            window.consume(now)
        try:
            response = _json(200, answer(request, _all_params(request)))
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


class _Forbidden(Exception):
    """The request is refused by the AppView's proxy (an HTML 403, not an XRPC error)."""


def mount_bluesky(platform: SimulatedPlatform, *, accounts: Mapping[str, str] | None = None,
                  network: BlueskyNetwork | None = None, **options: Any) -> BlueskyXrpc:
    """Serve the storm's Bluesky side under /xrpc/ on `platform`; `accounts` maps handles to app passwords."""
    xrpc = BlueskyXrpc(network or BlueskyNetwork(platform.storm), accounts=accounts, faults=platform.faults,
                       **options)
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
    raw = getattr(request, "query", "")
    if isinstance(raw, str) and raw:
        return parse_qs(raw, keep_blank_values=True)
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
    return (moment - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


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


def _json(status: int, body: Any) -> Response:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, payload, {"content-type": "application/json; charset=utf-8"})


def _error(refusal: XrpcError) -> Response:
    return _json(refusal.status, {"error": refusal.error, "message": refusal.message})
