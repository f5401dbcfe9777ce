"""Mastodon instances on the simulated platform: hashtag timelines served the way Mastodon serves them.

Mounted under `/i/` of the host (`SimulatedHost`), so several instances share one port and a client's base URL
is `http://127.0.0.1:<port>/i/<instance>`:

    GET /i/<instance>/api/v1/timelines/tag/<tag>   limit (20, at most 40), max_id, since_id, min_id
    GET /i/<instance>/api/v1/accounts/lookup       acct (`user` or `user@domain`)
    GET /i/<instance>/api/v1/accounts/<id>/statuses  as tag timelines (reblogs too, as Mastodon shows them)
    GET /i/<instance>/api/v1/trends/tags           limit (10, at most 20), offset (`trending.py`)
    GET /i/<instance>/api/v1/instance              GET /i/<instance>/api/v2/instance

The storm's Mastodon users are spread over the instances deterministically. Each instance holds its own
users' statuses and a deterministic share of the others' (federation), under instance-local ids
(`milliseconds << 16 | sequence`, time-ordered) but with the same `uri` (`https://<home>/users/<user>/
statuses/<id at home>`) everywhere. Statuses are served once `created <= clock.now()`, newest first, as
Mastodon status entities. Like Mastodon, a tag timeline holds the statuses carrying the tag: reblogs carry
no tags of their own and never appear there (`status_json` renders them for other uses).

Paging follows Mastodon's `Paginable`: with `min_id` the page is the `limit` statuses right after it, else
the newest `limit` below `max_id` and above `since_id`; a non-empty page has a `Link` header
(`rel="next"` with max_id = its oldest id, `rel="prev"` with min_id = its newest). Every API response
carries `X-RateLimit-Limit/Remaining/Reset` (an ISO time; windows aligned to the period, 300 requests per
5 minutes of storm time by default); past the limit, 429 `{"error": "Too many requests"}`. An instance
with `public_tags=False` answers 422 `{"error": "This method requires an authenticated user"}` unless a
bearer token signs in (Mastodon's `require_user!` when public preview is off).

Faults are drawn from the host (`DueFaults`) for every request: a rate-limit fault exhausts the instance's
window (429 until its reset), a server error is a 503, and a dropped connection or cut-short JSON falls on
200s only.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

from stormwatch.simulator.clock import Clock
from stormwatch.simulator.host import FaultDraw, Request, Response, SimulatedHost, join_tags, json_bytes
from stormwatch.simulator.spec import QUOTE, REPLY, REPOST, Post, User, unescape_text
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.trending import TagSeconds, instance_trends
from stormwatch.simulator.truth import Truth, TruthBuilder

PREFIX = "/i/"
PLATFORM = "mastodon"
DEFAULT_LIMIT = 20
MAX_LIMIT = 40
VERSION = "4.5.2"
TOO_MANY_REQUESTS = "Too many requests"
NEEDS_USER = "This method requires an authenticated user"
NOT_FOUND = "Record not found"
# What Mastodon answers when a request loses a race (Mastodon::RaceConditionError): a 503 a client retries.
TEMPORARY_PROBLEM = "There was a temporary problem serving your request, please try again"
_TAG_PATH = re.compile(r"^/api/v1/timelines/tag/([^/]+)$")
_ACCOUNT_STATUSES = re.compile(r"^/api/v1/accounts/(\d+)/statuses$")
_LEADING_INTEGER = re.compile(r"^\s*[-+]?\d+")
_DISPLAY_URL_LENGTH = 30  # Mastodon shows this much of a link, the rest hidden behind an ellipsis


@dataclass(frozen=True)
class InstanceSettings:
    """How one simulated instance behaves."""

    public_tags: bool = True  # False: tag timelines only for signed-in users (public preview off)
    token: str | None = None  # the bearer token that signs in; None: any bearer token does
    rate_limit: int = 300  # requests per window, as Mastodon's default unauthenticated API throttle
    rate_period_seconds: int = 300
    federation: float = 0.5  # share of the other instances' statuses that reached this one


def _mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 finalizer; no `hash()`, so every process agrees)."""
    z = 0x9E3779B97F4A7C15
    for value in values:
        z = (z ^ (value & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        z = (z ^ (z >> 30)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z


def _iso_ms(ms: int) -> str:
    """Mastodon's timestamp form: `2021-02-07T16:00:00.123Z`."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _escape(text: str) -> str:
    """HTML-escape text the way Rails does (`ERB::Util.html_escape`)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#39;"))


def _to_i(text: str) -> int:
    """Ruby's `String#to_i`: the leading integer, 0 when there is none."""
    match = _LEADING_INTEGER.match(text)
    return int(match.group(0)) if match else 0


class _Window:
    """One instance's rate-limit window in storm time, aligned to the period as Rack::Attack aligns it."""

    def __init__(self, limit: int, period: int) -> None:
        self.limit = limit
        self.period = period
        self.window = -1
        self.used = 0

    def hit(self, now_ts: float) -> tuple[bool, dict[str, str]]:
        """Count one request; (throttled, the X-RateLimit-* headers)."""
        window = int(now_ts) // self.period
        if window != self.window:
            self.window, self.used = window, 0
        self.used += 1
        # Rack::Attack's reset: now + (period - now % period), keeping now's fraction of a second.
        reset = now_ts + (self.period - int(now_ts) % self.period)
        stamp = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
                   "X-RateLimit-Reset": stamp}
        return self.used > self.limit, headers

    def exhaust(self) -> None:
        """Use up the current window (an injected 429 behaves like a real one until the reset)."""
        self.used = max(self.used, self.limit)


@dataclass
class _TagIndex:
    """The statuses of one tag on one instance, by local id (ascending), with their creation seconds."""

    ids: array[int]
    seconds: array[int]
    positions: list[int]


@dataclass
class _Instance:
    """One simulated instance: its settings, its local ids for every Mastodon status, its rate window."""

    name: str
    number: int
    settings: InstanceSettings
    ids: array[int]  # local id of the k-th Mastodon status of the storm (ascending with time)
    window: _Window
    tags: dict[str, _TagIndex] = field(default_factory=dict)
    authors: dict[int, _TagIndex] = field(default_factory=dict)  # statuses per author, as tag timelines are
    trending: TagSeconds | None = None


class MastodonInstances:
    """Mastodon instances over a storm's "mastodon" posts, mounted on the host under `/i/`."""

    def __init__(self, storm: Storm, clock: Clock,
                 instances: Mapping[str, InstanceSettings] | Sequence[str]) -> None:
        if isinstance(instances, Mapping):
            settings = {name.lower(): value for name, value in instances.items()}
        else:
            settings = {name.lower(): InstanceSettings() for name in instances}
        if not settings:
            raise ValueError("at least one instance is needed")
        self.storm = storm
        self.clock = clock
        self.seed = storm.spec.seed
        self.names: tuple[str, ...] = tuple(settings)
        self._lock = threading.Lock()
        self._served: Counter[tuple[str, str]] = Counter()
        # The k-th Mastodon status of the storm (reposts and deleted ones too: they can be referenced).
        self._positions = [i for i, post in enumerate(storm.posts) if post.platform == PLATFORM]
        self._k_of_position = {position: k for k, position in enumerate(self._positions)}
        # A target's account (storm intelligence, intel.py) lives on the first instance, where organizers find it.
        self._homes = [self.names[0] if user.role == "target" else self.names[_mix(self.seed, 77, user.index)
                                                                                % len(self.names)]
                       for user in storm.users]
        self._instances = {name: self._build(name, number, settings[name]) for number, name in enumerate(self.names)}

    def _build(self, name: str, number: int, settings: InstanceSettings) -> _Instance:
        ids = array("q")
        previous = 0
        posts = self.storm.posts
        for position in self._positions:
            # Mastodon ids are the creation time in milliseconds above 16 bits of sequence; each instance
            # draws its own sequence, so the same status has a different id on every instance.
            candidate = (posts[position].ms << 16) | (_mix(self.seed, 1 + number, position) & 0xFFFF)
            previous = max(candidate, previous + 1)
            ids.append(previous)
        return _Instance(name, number, settings, ids, _Window(settings.rate_limit, settings.rate_period_seconds))

    # ------------------------------------------------------------------------------ ground truth

    def home_of(self, user: User) -> str:
        """The instance a user's account lives on."""
        return self._homes[user.index]

    def local_id(self, instance: str, post: Post) -> str:
        """The id `instance` gives a Mastodon status."""
        return str(self._instances[instance.lower()].ids[self._k(post)])

    def uri_of(self, post: Post) -> str:
        """A status's ActivityPub uri, the same on every instance."""
        author = self.storm.users[post.author]
        home = self.home_of(author)
        return f"https://{home}/users/{author.username}/statuses/{self.local_id(home, post)}"

    def url_of(self, post: Post) -> str:
        """A status's web address on its home instance."""
        author = self.storm.users[post.author]
        home = self.home_of(author)
        return f"https://{home}/@{author.username}/{self.local_id(home, post)}"

    def holds(self, instance: str, post: Post) -> bool:
        """Whether a Mastodon status reached `instance` (its author's home, or by federation)."""
        settings = self._instances[instance.lower()].settings
        if self.home_of(self.storm.users[post.author]) == instance.lower():
            return True
        position = self._positions[self._k(post)]
        return _mix(self.seed, 991, self._instances[instance.lower()].number, position) % 1_000_000 < (
            settings.federation * 1_000_000)

    def tag_timeline(self, instance: str, tag: str, until: datetime | None = None) -> list[Post]:
        """Every status of `instance`'s timeline for `tag` created by `until` (default: now), oldest first."""
        index = self._tag_index(self._instances[instance.lower()], tag)
        moment = until or self.clock.now()
        stop = bisect.bisect_right(index.seconds, math.floor(moment.timestamp()))
        return [self.storm.posts[position] for position in index.positions[:stop]]

    def truth(self, since: datetime, until: datetime, tags: Iterable[str]) -> Truth:
        """What a collector reading every instance's timeline of each tag finds in [since, until).

        Each status counts once however many instances carry it; Mastodon reports no impressions.
        """
        tags = tuple(tags)
        builder = TruthBuilder(since, until, platform=PLATFORM, include_reposts=True, tags=tags)
        seen: set[int] = set()
        for name in self.names:
            for tag in tags:
                for post in self.tag_timeline(name, tag, until=until):
                    if post.id not in seen:
                        seen.add(post.id)
                        builder.add(post, self.storm.users[post.author])
        return replace(builder.result(), impressions=0)

    def served(self) -> Counter[tuple[str, str]]:
        """How often each (instance, uri) was delivered in an intact 200 tag-timeline response."""
        with self._lock:
            return Counter(self._served)

    def reset_observations(self) -> None:
        """Forget what was served (rate-limit windows keep going)."""
        with self._lock:
            self._served.clear()

    def _k(self, post: Post) -> int:
        position = self.storm.position_of(post.id)
        k = self._k_of_position.get(position) if position is not None else None
        if k is None:
            raise ValueError(f"post {post.id} is not a Mastodon status of this storm")
        return k

    def _tag_index(self, instance: _Instance, tag: str) -> _TagIndex:
        wanted = tag.lower()
        with self._lock:
            cached = instance.tags.get(wanted)
        if cached is not None:
            return cached
        ids, seconds, positions = array("q"), array("q"), []
        posts = self.storm.posts
        for k, position in enumerate(self._positions):
            post = posts[position]
            if post.kind == REPOST or post.deleted or not any(t.lower() == wanted for _, _, t in post.hashtags):
                continue
            if not self.holds(instance.name, post):
                continue
            ids.append(instance.ids[k])
            seconds.append(post.ms // 1000)
            positions.append(position)
        index = _TagIndex(ids, seconds, positions)
        with self._lock:
            instance.tags[wanted] = index
        return index

    # ---------------------------------------------------------------------------------- entities

    def account_json(self, instance: str, user: User) -> dict[str, Any]:
        """A user's Mastodon account entity as `instance` serves it."""
        viewer = self._instances[instance.lower()]
        home = self.home_of(user)
        created = datetime.fromtimestamp(user.created_ms / 1000, UTC)
        return {
            "id": str(self._account_id(viewer, user)),
            "username": user.username,
            "acct": user.username if home == viewer.name else f"{user.username}@{home}",
            "display_name": user.name,
            "locked": user.protected,
            "bot": False,
            "discoverable": True,
            "indexable": True,
            "group": False,
            # Mastodon reports when an account was created to the day.
            "created_at": created.strftime("%Y-%m-%dT00:00:00.000Z"),
            "note": f"<p>{_escape(user.description)}</p>" if user.description else "",
            "url": f"https://{home}/@{user.username}",
            "uri": f"https://{home}/users/{user.username}",
            "avatar": f"https://{viewer.name}/avatars/original/missing.png",
            "avatar_static": f"https://{viewer.name}/avatars/original/missing.png",
            "header": f"https://{viewer.name}/headers/original/missing.png",
            "header_static": f"https://{viewer.name}/headers/original/missing.png",
            "followers_count": user.followers,
            "following_count": user.following,
            "statuses_count": user.tweet_count,
            "last_status_at": self.storm.spec.start.strftime("%Y-%m-%d"),
            "hide_collections": None,
            "noindex": False,
            "emojis": [],
            "roles": [],
            "fields": [],
        }

    def status_json(self, instance: str, post: Post, *, signed_in: bool = False) -> dict[str, Any]:
        """A storm post as `instance` serves it: a Mastodon status entity (a reblog wraps its original)."""
        viewer = self._instances[instance.lower()]
        if post.kind == REPOST and post.ref_id is not None:
            original = self.storm.post_by_id(post.ref_id)
            if original is not None:
                return self._reblog_json(viewer, post, original, signed_in)
        return self._status_json(viewer, post, signed_in, shallow=False)

    def _account_id(self, viewer: _Instance, user: User) -> int:
        # Account ids are snowflakes too: creation time above 16 bits that differ per instance.
        return (user.created_ms << 16) | ((user.index + 7919 * viewer.number) & 0xFFFF)

    def _status_json(self, viewer: _Instance, post: Post, signed_in: bool, *, shallow: bool) -> dict[str, Any]:
        author = self.storm.users[post.author]
        local = self.home_of(author) == viewer.name
        in_reply_to_id = in_reply_to_account_id = None
        if post.kind == REPLY and post.ref_id is not None:
            parent = self.storm.post_by_id(post.ref_id)
            if parent is not None:
                in_reply_to_id = str(viewer.ids[self._k(parent)])
                in_reply_to_account_id = str(self._account_id(viewer, self.storm.users[parent.author]))
        status: dict[str, Any] = {
            "id": str(viewer.ids[self._k(post)]),
            "created_at": _iso_ms(post.ms),
            "in_reply_to_id": in_reply_to_id,
            "in_reply_to_account_id": in_reply_to_account_id,
            "sensitive": post.possibly_sensitive,
            "spoiler_text": "",
            "visibility": "public",
            "language": None if post.lang == "und" else post.lang,
            "uri": self.uri_of(post),
            "url": self.url_of(post),
            "replies_count": post.replies,
            "reblogs_count": post.reposts,
            "favourites_count": post.likes,
            "quotes_count": post.quotes,
            "edited_at": None,
        }
        if signed_in:  # what the signed-in viewer did with the status: nothing, here
            status.update(favourited=False, reblogged=False, muted=False, bookmarked=False)
        status["content"] = self._content_html(viewer, post, local)
        if signed_in:
            status["filtered"] = []
        status["reblog"] = None
        if local:  # only the home instance knows which app posted
            status["application"] = {"name": post.source, "website": None}
        status["account"] = self.account_json(viewer.name, author)
        status["media_attachments"] = []
        status["mentions"] = [self._mention_json(viewer, self.storm.users[who]) for _, _, who in post.mentions]
        status["tags"] = [{"name": tag.lower(), "url": f"https://{viewer.name}/tags/{tag.lower()}"}
                          for tag in dict.fromkeys(t for _, _, t in post.hashtags)]
        status["emojis"] = []
        status["quote"] = self._quote_json(viewer, post, signed_in, shallow)
        status["card"] = None
        status["poll"] = None
        status["quote_approval"] = {"automatic": ["public"], "manual": [],
                                    "current_user": "automatic" if signed_in else "unknown"}
        return status

    def _quote_json(self, viewer: _Instance, post: Post, signed_in: bool, shallow: bool) -> dict[str, Any] | None:
        if post.kind != QUOTE or post.ref_id is None:
            return None
        quoted = self.storm.post_by_id(post.ref_id)
        if quoted is None or quoted.deleted:
            return {"state": "deleted", ("quoted_status_id" if shallow else "quoted_status"): None}
        if shallow:  # a quoted status names what it quotes in turn only by id (ShallowQuote)
            return {"state": "accepted", "quoted_status_id": str(viewer.ids[self._k(quoted)])}
        return {"state": "accepted", "quoted_status": self._status_json(viewer, quoted, signed_in, shallow=True)}

    def _reblog_json(self, viewer: _Instance, post: Post, original: Post, signed_in: bool) -> dict[str, Any]:
        author = self.storm.users[post.author]
        home = self.home_of(author)
        activity = f"https://{home}/users/{author.username}/statuses/{self.local_id(home, post)}/activity"
        status: dict[str, Any] = {
            "id": str(viewer.ids[self._k(post)]), "created_at": _iso_ms(post.ms), "in_reply_to_id": None,
            "in_reply_to_account_id": None, "sensitive": False, "spoiler_text": "", "visibility": "public",
            "language": None, "uri": activity, "url": activity, "replies_count": 0, "reblogs_count": 0,
            "favourites_count": 0, "quotes_count": 0, "edited_at": None,
        }
        if signed_in:
            status.update(favourited=False, reblogged=False, muted=False, bookmarked=False)
        status["content"] = ""
        status["reblog"] = self._status_json(viewer, original, signed_in, shallow=False)
        status.update(account=self.account_json(viewer.name, author), media_attachments=[], mentions=[], tags=[],
                      emojis=[], quote=None, card=None, poll=None)
        return status

    def _mention_json(self, viewer: _Instance, user: User) -> dict[str, Any]:
        home = self.home_of(user)
        return {"id": str(self._account_id(viewer, user)), "username": user.username,
                "url": f"https://{home}/@{user.username}",
                "acct": user.username if home == viewer.name else f"{user.username}@{home}"}

    def _content_html(self, viewer: _Instance, post: Post, local: bool) -> str:
        """The status HTML Mastodon would serve: paragraphs, hashtag, mention and link markup, escaped text."""
        text = post.text  # X-escaped; entity offsets index this text
        home = self.home_of(self.storm.users[post.author])
        # Remote HTML passes Mastodon's sanitizer, which marks every link as external.
        external = ' rel="nofollow noopener" target="_blank"'
        entities: list[tuple[int, int, str]] = []
        for start, end, tag in post.hashtags:
            rel = ' rel="tag"' if local else external
            entities.append((start, end, f'<a href="https://{home}/tags/{quote(tag.lower())}" class="mention hashtag"'
                                         f'{rel}>#<span>{_escape(tag)}</span></a>'))
        for start, end, who in post.mentions:
            user = self.storm.users[who]
            profile = f"https://{self.home_of(user)}/@{user.username}"
            entities.append((start, end, f'<span class="h-card" translate="no"><a href="{profile}" '
                                         f'class="u-url mention">@<span>{_escape(user.username)}</span></a></span>'))
        for start, end, _short, expanded in post.urls:
            target = expanded
            if post.kind == QUOTE and post.ref_id is not None:
                quoted = self.storm.post_by_id(post.ref_id)
                if quoted is not None:
                    target = self.url_of(quoted)  # on Mastodon a quote links the quoted status itself
            entities.append((start, end, _link_html(target)))
        entities.sort()
        pieces: list[str] = []
        cursor = 0
        for start, end, markup in entities:
            if start < cursor:
                continue  # overlapping entities do not occur in generated text; never emit one twice
            pieces.append(_escape(unescape_text(text[cursor:start])))
            pieces.append(markup)
            cursor = end
        pieces.append(_escape(unescape_text(text[cursor:])))
        body = "".join(pieces).strip()
        return "".join(f"<p>{paragraph.replace(chr(10), '<br />')}</p>" for paragraph in body.split("\n\n"))

    # ---------------------------------------------------------------------------------- serving

    def handle(self, request: Request, draw_faults: FaultDraw) -> Response:
        """Answer one request under `/i/<instance>/`."""
        faults = draw_faults()  # every request counts, even one to an unknown instance
        name, _, rest = request.path[len(PREFIX):].partition("/")
        instance = self._instances.get(name.lower())
        if instance is None:
            return _json(404, {"error": NOT_FOUND})
        route = "/" + rest
        now_ts = request.now.timestamp()
        slow = "slow" if faults.delay else None
        with self._lock:
            throttled, limits = instance.window.hit(now_ts)
            injected = faults.rate_limit and not throttled
            if injected:
                instance.window.exhaust()
                throttled, limits = True, {**limits, "X-RateLimit-Remaining": "0"}
        if throttled:
            return _json(429, {"error": TOO_MANY_REQUESTS}, limits, delay=faults.delay,
                         fault=join_tags("rate_limit" if injected else None, slow))
        if faults.server_error:
            return _json(503, {"error": TEMPORARY_PROBLEM}, limits, fault=join_tags("server_error", slow),
                         delay=faults.delay)
        signed_in = self._signed_in(instance, request.headers)
        served: list[str] = []
        if request.method != "GET":
            response = _json(404, {"error": NOT_FOUND}, limits)
        elif route.rstrip("/") == "/api/v1/instance":
            response = _json(200, self._instance_v1(instance), limits)
        elif route.rstrip("/") == "/api/v2/instance":
            response = _json(200, self._instance_v2(instance), limits)
        elif (match := _TAG_PATH.match(route)) is not None:
            if not instance.settings.public_tags and not signed_in:
                response = _json(422, {"error": NEEDS_USER}, limits)
            else:
                response = self._tag_timeline(instance, request, match.group(1), signed_in, served, limits)
        elif route.rstrip("/") == "/api/v1/trends/tags":
            response = _json(200, self._trending_tags(instance, request), limits)
        elif route.rstrip("/") == "/api/v1/accounts/lookup":
            user = self._known_account(instance, request.params.get("acct", ""))
            response = (_json(200, self.account_json(instance.name, user), limits) if user is not None
                        else _json(404, {"error": NOT_FOUND}, limits))
        elif (match := _ACCOUNT_STATUSES.match(route)) is not None:
            user = next((u for u in self.storm.users if u.platform == PLATFORM
                         and self._account_id(instance, u) == int(match.group(1))), None)
            response = (self._timeline(instance, request, self._author_index(instance, user), route, signed_in, served,
                                       limits) if user is not None else _json(404, {"error": NOT_FOUND}, limits))
        else:
            response = _json(404, {"error": NOT_FOUND}, limits)
        response.delay, response.fault = faults.delay, slow
        if response.status == 200 and faults.drop:
            response.drop, response.fault = True, join_tags("drop", slow)
        elif response.status == 200 and faults.malformed:
            response.malformed, response.fault = True, join_tags("malformed", slow)
        elif served:
            with self._lock:
                self._served.update((instance.name, uri) for uri in served)
        return response

    def _signed_in(self, instance: _Instance, headers: Mapping[str, str]) -> bool:
        """Whether the request carries a bearer token that signs in (an unknown token is just anonymous)."""
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return False
        token = authorization[len("Bearer "):].strip()
        return bool(token) and (instance.settings.token is None or token == instance.settings.token)

    def _tag_timeline(self, instance: _Instance, request: Request, raw_tag: str, signed_in: bool,
                      served: list[str], limits: dict[str, str]) -> Response:
        index = self._tag_index(instance, unquote(raw_tag))
        return self._timeline(instance, request, index, f"/api/v1/timelines/tag/{raw_tag}", signed_in, served, limits)

    def _timeline(self, instance: _Instance, request: Request, index: _TagIndex, route: str, signed_in: bool,
                  served: list[str], limits: dict[str, str]) -> Response:
        """One page of a timeline (statuses by local id), paged as Mastodon's `Paginable` pages it."""
        params = request.params
        raw_limit = params.get("limit")
        # Mastodon's limit_param: [limit.to_i.abs, 2 * default].min
        limit = DEFAULT_LIMIT if raw_limit is None else min(abs(_to_i(raw_limit)), MAX_LIMIT)
        bounds = {name: _to_i(params[name]) for name in ("max_id", "since_id", "min_id") if params.get(name)}
        ids = index.ids
        # A status exists once its time has come.
        high = bisect.bisect_right(index.seconds, math.floor(request.now.timestamp()))
        if "max_id" in bounds:
            high = min(high, bisect.bisect_left(ids, bounds["max_id"]))
        if "min_id" in bounds:  # paginate_by_min_id: the oldest `limit` above min_id, served newest first
            low = bisect.bisect_right(ids, bounds["min_id"])
            chosen = range(low, max(low, min(high, low + limit)))
        else:  # paginate_by_max_id: the newest `limit` below max_id and above since_id
            low = bisect.bisect_right(ids, bounds["since_id"]) if "since_id" in bounds else 0
            chosen = range(max(low, high - limit), max(low, high))
        posts = [self.storm.posts[index.positions[i]] for i in reversed(chosen)]
        statuses = [self.status_json(instance.name, post, signed_in=signed_in) for post in posts]
        served.extend(status["uri"] for status in statuses)
        headers = dict(limits)
        if statuses:
            base = f"http://{request.headers.get('host', '127.0.0.1')}{PREFIX}{instance.name}{route}"
            kept = [(name, params[name]) for name in ("local", "limit", "only_media") if name in params]
            next_url = f"{base}?{urlencode([*kept, ('max_id', statuses[-1]['id'])])}"
            prev_url = f"{base}?{urlencode([*kept, ('min_id', statuses[0]['id'])])}"
            headers["Link"] = f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'
        return _json(200, statuses, headers)

    # ------------------------------------------------------------------------ storm intelligence

    def _trending_tags(self, instance: _Instance, request: Request) -> list[dict[str, object]]:
        """The instance's trending tags now (`trending.py`): its own timelines' campaign tags may join them."""
        raw_limit = request.params.get("limit")
        limit = 10 if raw_limit is None else max(1, min(abs(_to_i(raw_limit)), 20))
        offset = max(0, _to_i(request.params.get("offset", "0")))
        with self._lock:
            tags = instance.trending
        if tags is None:
            held = {p.id: p for tag in self.storm.spec.hashtags for p in self.tag_timeline(
                instance.name, tag, until=self.storm.spec.end + (self.storm.spec.end - self.storm.spec.start))}
            tags = TagSeconds(sorted(held.values(), key=lambda p: p.id), self.storm.spec.hashtags)
            with self._lock:
                instance.trending = tags
        return instance_trends(self.storm.spec, instance.name, tags, request.now)[offset:offset + limit]

    def _known_account(self, instance: _Instance, acct: str) -> User | None:
        """The Mastodon user `acct` names, if the instance knows it (its home, or a status of it reached it)."""
        username, _, domain = acct.strip().lstrip("@").partition("@")
        for user in self.storm.users:
            if user.platform != PLATFORM or user.username.lower() != username.lower():
                continue
            home = self.home_of(user)
            if (domain or instance.name).lower() == home and (
                    home == instance.name or self._author_index(instance, user).ids):
                return user
        return None

    def _author_index(self, instance: _Instance, user: User) -> _TagIndex:
        """A user's statuses that reached an instance (reblogs included, deleted ones not), by local id."""
        with self._lock:
            cached = instance.authors.get(user.index)
        if cached is not None:
            return cached
        ids, seconds, positions = array("q"), array("q"), []
        for k, position in enumerate(self._positions):
            post = self.storm.posts[position]
            if post.author == user.index and not post.deleted and self.holds(instance.name, post):
                ids.append(instance.ids[k])
                seconds.append(post.ms // 1000)
                positions.append(position)
        index = _TagIndex(ids, seconds, positions)
        with self._lock:
            instance.authors[user.index] = index
        return index

    def _instance_v1(self, instance: _Instance) -> dict[str, Any]:
        return {
            "uri": instance.name, "title": instance.name, "short_description": "", "description": "",
            "email": f"admin@{instance.name}", "version": VERSION,
            "urls": {"streaming_api": f"wss://{instance.name}"},
            "stats": {"user_count": sum(1 for home in self._homes if home == instance.name),
                      "status_count": len(self._positions), "domain_count": len(self.names)},
            "thumbnail": None, "languages": ["en"], "registrations": True, "approval_required": False,
            "invites_enabled": True, "configuration": self._configuration(instance), "contact_account": None,
            "rules": [],
        }

    def _instance_v2(self, instance: _Instance) -> dict[str, Any]:
        feeds = "public" if instance.settings.public_tags else "authenticated"
        configuration = self._configuration(instance)
        configuration["urls"] = {"streaming": f"wss://{instance.name}", "status": None,
                                 "about": f"https://{instance.name}/about"}
        configuration["timelines_access"] = {
            "live_feeds": {"local": feeds, "remote": feeds},
            "hashtag_feeds": {"local": feeds, "remote": feeds},
            "trending_link_feeds": {"local": feeds, "remote": feeds},
        }
        return {
            "domain": instance.name, "title": instance.name, "version": VERSION,
            "source_url": "https://github.com/mastodon/mastodon", "description": "",
            "usage": {"users": {"active_month": sum(1 for home in self._homes if home == instance.name)}},
            "thumbnail": {"url": f"https://{instance.name}/packs/media/images/preview.png"}, "icon": [],
            "languages": ["en"], "configuration": configuration,
            "registrations": {"enabled": True, "approval_required": False, "message": None, "url": None},
            "api_versions": {"mastodon": 6}, "contact": {"email": f"admin@{instance.name}", "account": None},
            "rules": [],
        }

    @staticmethod
    def _configuration(instance: _Instance) -> dict[str, Any]:
        return {
            "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
            "statuses": {"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23},
            "media_attachments": {"supported_mime_types": ["image/jpeg", "image/png"], "image_size_limit": 16777216},
            "polls": {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300,
                      "max_expiration": 2629746},
            "translation": {"enabled": False},
        }


def _link_html(url: str) -> str:
    """A link as Mastodon formats it: the scheme hidden, long addresses cut short behind an ellipsis."""
    scheme, _, rest = url.partition("://")
    prefix = f"{scheme}://" if rest else ""
    shown = rest if rest else url
    if shown.startswith("www."):
        prefix, shown = prefix + "www.", shown[4:]
    visible, hidden = shown[:_DISPLAY_URL_LENGTH], shown[_DISPLAY_URL_LENGTH:]
    return (f'<a href="{_escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
            f'<span class="invisible">{_escape(prefix)}</span>'
            f'<span class="{"ellipsis" if hidden else ""}">{_escape(visible)}</span>'
            f'<span class="invisible">{_escape(hidden)}</span></a>')


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None, *, fault: str | None = None,
          delay: float = 0.0) -> Response:
    return Response(status, json_bytes(body), {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                    fault=fault, delay=delay)


def mount_mastodon(platform: SimulatedHost,
                   instances: Mapping[str, InstanceSettings] | Sequence[str]) -> MastodonInstances:
    """Serve Mastodon instances over the platform's storm under `/i/`; returns them for ground truth."""
    mastodon = MastodonInstances(platform.storm, platform.clock, instances)
    platform.mount(PREFIX, mastodon)
    return mastodon


def instance_urls(platform: SimulatedHost, names: Iterable[str]) -> list[str]:
    """The base URLs a Mastodon client uses for simulated instances (`http://127.0.0.1:<port>/i/<name>`)."""
    return [f"{platform.url}{PREFIX}{name}" for name in names]
