"""Bluesky: Jetstream live, logged-in searchPosts for backfill, public profiles and the targets' public author
feeds (only importer of atproto, websockets).

Reads are free. Live posts come from Jetstream, the public JSON firehose: no login, a cursor in microseconds,
every post of the network (the caller keeps those with the campaign's tags). Search needs a login since the
public AppView stopped serving it to anonymous clients, so backfill logs in with the handle and app password
named in the config. Follower counts come from the public AppView's getProfiles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from atproto_client import Client, models
from atproto_client.exceptions import (
    InvokeTimeoutError,
    LoginRequiredError,
    RateLimitExceededError,
    RequestErrorBase,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import Request
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus, WebSocketException
from websockets.sync.client import connect

from ..config import BlueskyConfig, CampaignConfig, RetryPolicy
from ..errors import CredentialsError, MalformedPage, RateLimited, SourceError
from ..models import Cursor, RateLimit, RawPage
from ..normalize.bluesky import POST_COLLECTION, record_tags, text_tags
from ..normalize.common import clean_tag, utc_stamp
from ..times import Clock, from_epoch, iso_utc, parse_time
from .http import RateLimitHeaders, network_failure, network_reason, raise_if_exhausted, rate_limit
from .http import host as host_of

SOURCE = "bluesky"
STREAM_QUERY = "jetstream"
PROFILES_QUERY = "profiles"
LOOKUP_QUERY = "lookup"
SEARCH_POSTS = "app.bsky.feed.searchPosts"
GET_PROFILES = "app.bsky.actor.getProfiles"
GET_POSTS = "app.bsky.feed.getPosts"
GET_AUTHOR_FEED = "app.bsky.feed.getAuthorFeed"
AUTHOR_FEED_LIMIT = 50
CREATE_SESSION = "com.atproto.server.createSession"
SEARCH_LIMIT = 100
PROFILES_PER_REQUEST = 25
POSTS_PER_REQUEST = 25
# A new query starts at the storm start, or a minute ago if that is later (catching the storm's build-up).
NEWEST_START = timedelta(minutes=1)
# Posts reach the search index a little after they are made: each sweep re-reads this much before the last.
SEARCH_OVERLAP = timedelta(minutes=2)
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=5)
# Jetstream advises resuming a few seconds before the last event seen: its order across a reconnect is rough.
JETSTREAM_REWIND_US = 5_000_000
JETSTREAM_BACKOFF = 0.5
JETSTREAM_MAX_BACKOFF = 30.0
# How long one receive waits before checking `stop` and the batch timer: bounds how late `stop` is noticed.
RECEIVE_POLL = 0.2
CLOSE_TIMEOUT = 0.5
CONNECT_STEP = 1.0
APP_PASSWORD_HINT = "an app password from Settings → App passwords"
RATE_LIMIT_HEADERS = RateLimitHeaders("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")

log = logging.getLogger(__name__)


def event_has_tag(event: Any, tags: frozenset[str]) -> bool:
    """Whether a Jetstream event carries one of `tags` (lower-case, no `#`): tag facets, the record's `tags`
    array, or `#tag` words in its text (some apps make no facets), compared case-insensitively."""
    commit = event.get("commit") if type(event) is dict else None
    record = commit.get("record") if type(commit) is dict else None
    if type(record) is not dict:
        return False
    if any(tag in tags for tag in record_tags(record)):
        return True
    return any(tag in tags for tag in text_tags(record.get("text")))


def tag_filter(hashtags: Iterable[str]) -> Callable[[Any], bool]:
    """A `wanted` predicate for `BlueskySource.stream` keeping events with any of the campaign hashtags."""
    tags = frozenset(t for t in (clean_tag(tag) for tag in hashtags) if t)
    return lambda event: event_has_tag(event, tags)


class _StaleCursor(Exception):
    """The service refused a saved pagination cursor (400)."""


class _SessionLost(Exception):
    """The service no longer accepts the session's token: log in again."""


class _HandOffFailed(Exception):
    """The caller's `on_events` raised: its error goes up as it is, never mistaken for a network failure."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _StreamBatch:
    """Events waiting to be handed over, and the feed position (time_us) they bring the cursor to."""

    def __init__(self, position: int | None, on_events: Callable[[list[dict[str, Any]], int], None],
                 wanted: Callable[[dict[str, Any]], bool] | None, seconds: float, size: int) -> None:
        self.position = position
        self.delivered = position
        self.on_events = on_events
        self.wanted = wanted
        self.seconds = seconds
        self.size = size
        self.events: list[dict[str, Any]] = []
        self.received = 0
        self.unreadable = 0
        # Events replayed after a rewind are recognized by (time_us, did) and passed on only once.
        self._seen: dict[tuple[int, str], None] = {}
        self._since = time.monotonic()

    def add(self, message: str | bytes) -> None:
        """Take one websocket message (one Jetstream event)."""
        self.received += 1
        try:
            event = json.loads(message)
        except ValueError:
            self.unreadable += 1
            return
        time_us = event.get("time_us") if type(event) is dict else None
        if type(time_us) is not int:
            self.unreadable += 1
            return
        key = (time_us, str(event.get("did")))
        if key in self._seen:
            return
        self._seen[key] = None
        if self.position is None or time_us > self.position:
            self.position = time_us
        if self.wanted is None or self.wanted(event):
            self.events.append(event)

    def due(self) -> bool:
        """Whether the batch is full, or old enough and carrying something (events or a newer position)."""
        if len(self.events) >= self.size:
            return True
        moved = bool(self.events) or self.position != self.delivered
        return moved and time.monotonic() - self._since >= self.seconds

    def flush(self) -> None:
        """Hand the events and the position covering them to the caller (who stores both together)."""
        self._since = time.monotonic()
        if self.position is None or (not self.events and self.position == self.delivered):
            return
        events, self.events = self.events, []
        try:
            self.on_events(events, self.position)
        except Exception as exc:
            self.events = events + self.events  # nothing was handed over
            raise _HandOffFailed(exc) from exc
        self.delivered = self.position
        horizon = self.position - 2 * JETSTREAM_REWIND_US
        if len(self._seen) > 1000:
            self._seen = {key: None for key in self._seen if key[0] >= horizon}


class BlueskySource:
    """Jetstream, searchPosts and getProfiles for the configured Bluesky services."""

    name = SOURCE
    stream_query = STREAM_QUERY

    def __init__(self, config: BlueskyConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._appview = Client(base_url=config.appview_url, request=Request(timeout=config.timeout))
        self._session: Client | None = None
        self._session_key: str | None = None
        self._refused_key: str | None = None
        self._refused_message = ""
        self._lock = threading.Lock()

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries and backoff from `[bluesky]` (search and lookups; the live feed reconnects on its own)."""
        return self.config.retry_policy

    def close(self) -> None:
        """Release the HTTP connection pools."""
        self._appview.request.close()
        self._forget_session()

    # ------------------------------------------------------------------------------- Jetstream

    def stream(self, cursor_time_us: int | None, stop: threading.Event,
               on_events: Callable[[list[dict[str, Any]], int], None], *,
               wanted: Callable[[dict[str, Any]], bool] | None = None, batch_seconds: float = 1.0,
               batch_size: int = 500, on_connection: Callable[[str | None], None] | None = None) -> None:
        """Consume Jetstream's posts from `cursor_time_us` (None: live) until `stop` is set.

        `on_events(events, last_time_us)` gets the events `wanted` keeps, at most every `batch_seconds` or
        `batch_size` events, with the newest time_us seen: every event up to it has been handed over, so the
        caller stores the events and the cursor together. Dropped connections and errors reconnect with
        capped backoff, resuming a few seconds before the last event (replays are passed on once), and are
        told to `on_connection` (why; None once connected again). Returns within about a second of `stop`.
        """
        batch = _StreamBatch(cursor_time_us, on_events, wanted, batch_seconds, batch_size)
        failures = 0
        while not stop.is_set():
            start = None if batch.position is None else max(0, batch.position - JETSTREAM_REWIND_US)
            url = self.jetstream_url(start)
            received_before = batch.received
            try:
                self._consume(url, stop, batch, on_connection)
                reason = "the server closed the connection"
            except _HandOffFailed as failed:
                raise failed.error from None
            except ConnectionClosedOK as exc:
                reason = f"the server closed the connection ({_close_code(exc)})"
            except ConnectionClosed as exc:
                reason = f"connection dropped ({exc})"
            except InvalidStatus as exc:
                reason = f"refused the subscription (HTTP {exc.response.status_code})"
            except (WebSocketException, OSError) as exc:
                reason = f"cannot connect to {host_of(url)} ({network_reason(exc)})"
            try:
                batch.flush()  # what arrived before the break is complete: pass it on with its position
            except _HandOffFailed as failed:
                raise failed.error from None
            if stop.is_set():
                break
            failures = 1 if batch.received > received_before else failures + 1
            delay = min(JETSTREAM_BACKOFF * 2 ** (failures - 1), JETSTREAM_MAX_BACKOFF)
            resume = "live" if batch.position is None else f"from {_time_us_text(batch.position)}"
            log.warning("bluesky: Jetstream %s; reconnecting in %.1fs, %s", reason, delay, resume)
            if on_connection is not None:
                on_connection(reason)
            if stop.wait(delay):
                break
        try:
            batch.flush()
        except _HandOffFailed as failed:
            raise failed.error from None
        if batch.unreadable:
            log.warning("bluesky: %d Jetstream messages were not readable events and were passed over",
                        batch.unreadable)

    def _consume(self, url: str, stop: threading.Event, batch: _StreamBatch,
                 on_connection: Callable[[str | None], None] | None = None) -> None:
        sock = self._open_socket(url, stop)
        if sock is None:
            return
        with connect(url, sock=sock, open_timeout=self.config.timeout, close_timeout=CLOSE_TIMEOUT,
                     max_size=2**22) as connection:
            log.info("bluesky: Jetstream connected to %s", host_of(url))
            if on_connection is not None:
                on_connection(None)
            while not stop.is_set():
                try:
                    message = connection.recv(timeout=RECEIVE_POLL)
                except TimeoutError:
                    message = None
                if message is not None:
                    batch.add(message)
                if batch.due():
                    batch.flush()

    def _open_socket(self, url: str, stop: threading.Event) -> socket.socket | None:
        """A TCP connection to the feed, tried in short steps so that `stop` is honoured while it hangs."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        deadline = time.monotonic() + self.config.timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                sock = socket.create_connection((parts.hostname or "", port),
                                                timeout=max(0.05, min(CONNECT_STEP, remaining)))
            except TimeoutError:
                if stop.is_set():
                    return None
                if time.monotonic() >= deadline:
                    raise
            else:
                sock.settimeout(None)  # websockets keeps its own timeouts on a socket it is given
                return sock

    def jetstream_url(self, cursor_time_us: int | None) -> str:
        """The subscribe URL for posts, from `cursor_time_us` (None: live tail)."""
        parts = urlsplit(self.config.jetstream_url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("wantedCollections", "cursor")]
        query.append(("wantedCollections", POST_COLLECTION))
        if cursor_time_us is not None:
            query.append(("cursor", str(cursor_time_us)))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def stream_cursor(self, stored: Cursor | None, campaign: CampaignConfig, now: datetime) -> int:
        """Where a campaign's stream resumes: the stored position, else the storm start (Jetstream replays what
        it still holds, about a day), or now if the storm has not started."""
        if stored is not None and stored.position and stored.position.isdigit():
            return int(stored.position)
        return _micros(min(campaign.start, now))

    def stream_filter(self, hashtags: Iterable[str]) -> Callable[[Any], bool]:
        """A `wanted` predicate for `stream` keeping the events that carry any of `hashtags`."""
        return tag_filter(hashtags)

    def stream_page(self, campaign: str, events: list[dict[str, Any]], time_us: int) -> RawPage:
        """One batch of Jetstream events as the page the collector archives, normalizes and stores with its cursor."""
        return RawPage(source=SOURCE, endpoint="stream", url=self.jetstream_url(None), retrieved_at=self.clock.now(),
                       body={"events": events}, cursor=Cursor(campaign, SOURCE, STREAM_QUERY, position=str(time_us)),
                       query=STREAM_QUERY)

    # -------------------------------------------------------------------------------- profiles

    def profiles(self, dids: list[str], campaign: str = "") -> list[RawPage]:
        """getProfiles pages (follower, follow and post counts) for these accounts, 25 per request."""
        return list(self.profile_pages(dids, campaign))

    def profile_pages(self, dids: Iterable[str], campaign: str = "") -> Iterator[RawPage]:
        """The getProfiles pages one by one, so that pages fetched before an error can be kept."""
        wanted = [d for d in dids if isinstance(d, str) and d.startswith("did:")]
        return self._public_pages(GET_PROFILES, models.AppBskyActorGetProfiles.Params, "actors", wanted,
                                  PROFILES_PER_REQUEST, "profiles", "profiles", PROFILES_QUERY, campaign)

    def lookup_pages(self, uris: Iterable[str], campaign: str = "") -> Iterator[RawPage]:
        """getPosts pages (post views with like, repost, reply and quote counts) for these at-uris, 25 per
        request: the counters of posts that came through Jetstream, which carries none. Public, no login."""
        wanted = [u for u in uris if isinstance(u, str) and u.startswith("at://")]
        return self._public_pages(GET_POSTS, models.AppBskyFeedGetPosts.Params, "uris", wanted, POSTS_PER_REQUEST,
                                  "posts", "lookup", LOOKUP_QUERY, campaign)

    def _public_pages(self, nsid: str, params_type: Any, argument: str, items: list[str], per_request: int,
                      listed: str, endpoint: str, query: str, campaign: str) -> Iterator[RawPage]:
        """Pages of a public AppView lookup that takes up to `per_request` items at a time (repeats dropped)."""
        wanted = list(dict.fromkeys(items))
        for start in range(0, len(wanted), per_request):
            params = params_type(**{argument: wanted[start:start + per_request]})
            body, headers, url = self._call(self._appview, nsid, params)
            if not isinstance(body.get(listed), list):
                raise MalformedPage(f"bluesky: {nsid}: the response has no {listed} list")
            yield RawPage(source=SOURCE, endpoint=endpoint, url=url, retrieved_at=self.clock.now(), body=body,
                          cursor=Cursor(campaign, SOURCE, query), query=query, rate_limit=_rate_limit(headers))

    # --------------------------------------------------------------------------------- targets

    def target_queries(self, campaign: CampaignConfig) -> list[str]:
        """The targets' Bluesky handles (`targets_bluesky`)."""
        return list(campaign.targets_bluesky)

    def first_target_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """A target's posts are read from the storm's start."""
        start = campaign.start
        return Cursor(campaign.name, SOURCE, query, since=start.replace(microsecond=start.microsecond // 1000 * 1000))

    def target_posts(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """A target's posts newer than the cursor from its public author feed (newest first, no login).

        Like a search sweep: the feed is read down to the last sweep's newest post less an overlap (or where
        collection began); its newest post becomes the cursor's position with the sweep's last page, and an
        unfinished sweep is the cursor's `pending`.
        """
        pending = dict(cursor.pending) if cursor.pending else self._new_sweep(cursor, now)
        while True:
            params = models.AppBskyFeedGetAuthorFeed.Params(actor=cursor.query, limit=AUTHOR_FEED_LIMIT,
                                                            filter="posts_with_replies", cursor=pending.get("cursor"))
            try:
                body, headers, url = self._call(self._appview, GET_AUTHOR_FEED, params)
            except _StaleCursor:  # read the feed again from its top: what was stored stays stored once
                pending = {**pending, "cursor": None}
                continue
            feed = body.get("feed")
            if not isinstance(feed, list):
                raise MalformedPage(f"bluesky: {GET_AUTHOR_FEED}: the response has no feed list")
            times = [t for t in (_sort_at(item.get("post")) for item in feed if type(item) is dict) if t]
            newest = max([*times, *([pending["newest"]] if pending.get("newest") else [])], default=None)
            more = bool(isinstance(body.get("cursor"), str) and body["cursor"] and times
                        and min(times) > pending["since"])
            pending = {**pending, "cursor": body.get("cursor"), "newest": newest}
            after = _after_page(cursor, pending if more else None, newest)
            yield RawPage(source=SOURCE, endpoint="targets", url=url, retrieved_at=self.clock.now(), body=body,
                          cursor=after, query=cursor.query, rate_limit=_rate_limit(headers))
            cursor = after
            if not more:
                return
            raise_if_exhausted(_rate_limit(headers), SOURCE, GET_AUTHOR_FEED)

    # ---------------------------------------------------------------------------------- search

    def queries(self, campaign: CampaignConfig) -> list[str]:
        """One search per hashtag (a search's tags all have to match, so they cannot be OR'd)."""
        return [f"#{tag}" for tag in campaign.hashtags]

    def first_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """Where a new query starts: the storm start, or a minute ago if that is later."""
        since = min(campaign.start, now - NEWEST_START)
        # searchPosts takes milliseconds: the cursor keeps where collection began at that precision
        return Cursor(campaign.name, SOURCE, query, since=since.replace(microsecond=since.microsecond // 1000 * 1000))

    def search(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """Sweep one hashtag from the cursor, newest first, yielding each page with the cursor that covers it.

        A sweep reads [since, now): since is the last sweep's newest post less an overlap (late indexing),
        or where collection began. Its newest post time becomes the cursor's position only with its last
        page; until then the unfinished sweep (since, until, the API cursor, its newest and oldest times) is
        the cursor's `pending`, so the next run finishes it first. Needs a login (CredentialsError without).
        """
        pending = dict(cursor.pending) if cursor.pending else self._new_sweep(cursor, now)
        tag = cursor.query.lstrip("#")
        while True:
            params = models.AppBskyFeedSearchPosts.Params(
                q=cursor.query, tag=[tag], sort="latest", since=pending["since"], until=pending["until"],
                limit=SEARCH_LIMIT, cursor=pending.get("cursor"))
            try:
                body, headers, url = self._search(params)
            except _StaleCursor:
                # Continue the sweep below the oldest post stored; that millisecond is read again.
                below = _plus_ms(pending["oldest"], 1) if pending.get("oldest") else pending["until"]
                log.info("bluesky: the search cursor for %r is no longer accepted; resuming below %s",
                         cursor.query, below)
                pending = {**pending, "cursor": None, "until": min(below, pending["until"])}
                continue
            views = body.get("posts")
            if not isinstance(views, list):
                raise MalformedPage(f"bluesky: {SEARCH_POSTS}: the response has no posts list")
            times = [t for t in (_sort_at(view) for view in views) if t]
            newest = max([*times, *([pending["newest"]] if pending.get("newest") else [])], default=None)
            oldest = min([*times, *([pending["oldest"]] if pending.get("oldest") else [])], default=None)
            following = self._following(pending, body, views, times, cursor.query)
            if following is not None:
                pending = {**following, "newest": newest, "oldest": oldest}
            after = _after_page(cursor, pending if following is not None else None, newest)
            yield RawPage(source=SOURCE, endpoint="search", url=url, retrieved_at=self.clock.now(), body=body,
                          cursor=after, query=cursor.query, rate_limit=_rate_limit(headers))
            cursor = after
            if following is None:
                return
            raise_if_exhausted(_rate_limit(headers), SOURCE, SEARCH_POSTS)

    def _new_sweep(self, cursor: Cursor, now: datetime) -> dict[str, Any]:
        began = cursor.since if cursor.since else now - NEWEST_START
        since = max(parse_time(cursor.position) - SEARCH_OVERLAP, began) if cursor.position else began
        return {"since": iso_utc(since), "until": iso_utc(now), "cursor": None, "newest": None, "oldest": None}

    @staticmethod
    def _following(pending: dict[str, Any], body: dict[str, Any], views: list[Any], times: list[str],
                   query: str) -> dict[str, Any] | None:
        """The next request of the sweep, or None when this page was its last."""
        if views and isinstance(body.get("cursor"), str) and body["cursor"]:
            return {**pending, "cursor": body["cursor"]}
        if len(views) < SEARCH_LIMIT or not times or min(times) <= pending["since"]:
            return None
        # A full page without a cursor: the index stopped paging (search depth) before reaching `since`.
        # Continue below the oldest post seen; its own millisecond is read again, so none of it is skipped.
        lowest = min(times)
        below = _plus_ms(lowest, 1)
        if below >= pending["until"]:
            # More than a page of posts in one millisecond: the rest of that millisecond cannot be reached.
            log.warning("bluesky: search for %r cannot page past %s; continuing below it", query, lowest)
            below = lowest
        log.info("bluesky: search for %r stopped paging at %s; continuing below it", query, lowest)
        return {**pending, "cursor": None, "until": below}

    def _search(self, params: models.AppBskyFeedSearchPosts.Params) -> tuple[dict[str, Any], dict[str, str], str]:
        """One searchPosts request on a logged-in session, logging in again once if the session was lost."""
        for attempt in (1, 2):
            client = self._login()
            try:
                return self._call(client, SEARCH_POSTS, params)
            except _SessionLost:
                self._forget_session()
                if attempt == 2:
                    raise SourceError(f"bluesky: {host_of(self.config.service_url)} refused a fresh session for "
                                      f"{SEARCH_POSTS}", transient=True) from None
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------------------------- login

    def _login(self) -> Client:
        """The logged-in client, logging in on first use (never twice with credentials already refused)."""
        credentials = self.config.credentials()
        names = f"{self.config.handle_env} and {self.config.app_password_env}"
        if credentials is None:
            raise CredentialsError(f"bluesky: backfill needs a login: set {names} ({APP_PASSWORD_HINT}); "
                                   "live posts still come from Jetstream")
        handle, password = credentials
        # Compared by digest: the password itself is not kept beyond the environment that holds it.
        key = hashlib.sha256(f"{handle}\0{password}".encode()).hexdigest()
        with self._lock:
            if self._session is not None and self._session_key == key:
                return self._session
            if self._refused_key == key:
                raise CredentialsError(self._refused_message)
        self._forget_session()
        client = Client(base_url=self.config.service_url, request=Request(timeout=self.config.timeout))
        host = host_of(self.config.service_url)
        try:
            client.login(handle.lstrip("@"), password, fetch_bsky_profile=False)
        except RequestErrorBase as exc:
            client.request.close()
            status = exc.response.status_code if exc.response is not None else None
            if status == 401:
                error, message = _xrpc_error(exc)
                detail = ("the account has two-factor login on; an app password skips it"
                          if error == "AuthFactorTokenRequired" else message or "refused")
                refusal = (f"bluesky: {host} refused the login of {handle}: {detail}; check {names} "
                           f"({APP_PASSWORD_HINT}, not the account password)")
                with self._lock:
                    # createSession allows 30 attempts per 5 minutes: do not retry what was refused.
                    self._refused_key, self._refused_message = key, refusal
                raise CredentialsError(refusal) from None
            if status in (404, 501):
                raise SourceError(f"bluesky: {host} does not serve logins ({CREATE_SESSION}); set "
                                  "bluesky.service_url to your PDS, e.g. https://bsky.social") from None
            raise self._failure(exc, CREATE_SESSION, host) from None
        except httpx.TransportError as exc:
            client.request.close()
            raise SourceError(f"bluesky: {network_failure(host, exc)}", transient=True) from None
        except ValueError:
            client.request.close()
            raise MalformedPage(f"bluesky: {CREATE_SESSION}: the response is not valid JSON") from None
        log.info("bluesky: logged in to %s as %s", host, handle)
        with self._lock:
            self._session, self._session_key = client, key
        return client

    def _forget_session(self) -> None:
        with self._lock:
            session, self._session, self._session_key = self._session, None, None
        if session is not None:
            session.request.close()

    # --------------------------------------------------------------------------------- requests

    def _call(self, client: Client, nsid: str, params: Any) -> tuple[dict[str, Any], dict[str, str], str]:
        """One XRPC query: (the JSON body as sent, the headers, the URL without credentials)."""
        # The SDK keeps its service URL (a login may move it to the account's PDS) private; this is how it
        # forms request URLs.
        endpoint = client._build_url(nsid)
        host = host_of(endpoint)
        try:
            response = client.invoke_query(nsid, params=params)
        except LoginRequiredError:
            raise _SessionLost() from None
        except RequestErrorBase as exc:
            error, _ = _xrpc_error(exc)
            if error in ("InvalidToken", "ExpiredToken"):
                raise _SessionLost() from None
            if exc.response is not None and exc.response.status_code == 400 and getattr(params, "cursor", None):
                raise _StaleCursor() from None
            raise self._failure(exc, nsid, host) from None
        except httpx.TransportError as exc:
            raise SourceError(f"bluesky: {network_failure(host, exc)}", transient=True) from None
        except ValueError:  # the SDK parses JSON bodies itself: a truncated one fails there
            raise MalformedPage(f"bluesky: {nsid}: the response is not valid JSON") from None
        if not isinstance(response.content, dict):
            raise MalformedPage(f"bluesky: {nsid}: the response is not a JSON object")
        query = urlencode(params.model_dump(exclude_none=True, by_alias=True), doseq=True)
        return response.content, response.headers, f"{endpoint}?{query}"

    def _failure(self, exc: RequestErrorBase, nsid: str, host: str) -> SourceError:
        """The one-line error for a refused request: never the response body, never a token."""
        response = exc.response
        if isinstance(exc, RateLimitExceededError) or (response is not None and response.status_code == 429):
            reset = _rate_limit(response.headers if response is not None else None).reset_at
            return RateLimited(f"bluesky: rate limited (429) on {nsid}",
                               reset or self.clock.now() + DEFAULT_RATE_LIMIT_WAIT)
        if response is None:
            failure = (f"cannot reach {host}: timed out" if isinstance(exc, InvokeTimeoutError)
                       else network_failure(host, exc))
            return SourceError(f"bluesky: {failure}", transient=True)
        status = response.status_code
        if status == 403 and nsid == SEARCH_POSTS:
            return SourceError(
                f"bluesky: {host} refused {nsid} (403): Bluesky serves search only to logged-in users; set "
                f"{self.config.handle_env} and {self.config.app_password_env} ({APP_PASSWORD_HINT}) to "
                "backfill; live posts still come from Jetstream")
        error, message = _xrpc_error(exc)
        detail = f"{error}: {message}" if error and message else error or message or ""
        if status >= 500 or status in (408, 409, 413):
            return SourceError(f"bluesky: {nsid}: server error {status}{f' ({detail})' if detail else ''}",
                               transient=True)
        return SourceError(f"bluesky: {nsid}: {status}{f' {detail}' if detail else ''}")


def _after_page(cursor: Cursor, pending: dict[str, Any] | None, newest: str | None) -> Cursor:
    """The cursor once a sweep's page is stored: the sweep goes on (`pending`), or it ends at its newest post."""
    if pending is not None:
        return cursor.advanced(pending=pending)
    return cursor.advanced(position=newest or cursor.position, pending=None)


def _xrpc_error(exc: RequestErrorBase) -> tuple[str, str]:
    """The XRPC `error` name and `message` of a refusal (empty when the body was not XRPC JSON)."""
    content = exc.response.content if exc.response is not None else None
    if isinstance(content, XrpcError):
        return str(content.error or ""), str(content.message or "")[:300]
    return "", ""


def _rate_limit(headers: Any) -> RateLimit:
    return rate_limit(headers, RATE_LIMIT_HEADERS)


def _sort_at(view: Any) -> str | None:
    """A post view's sortAt, the time search orders and filters by: the earlier of createdAt and indexedAt."""
    if type(view) is not dict:
        return None
    stamps = []
    record = view.get("record")
    for value, where in ((record.get("createdAt") if type(record) is dict else None, "createdAt"),
                         (view.get("indexedAt"), "indexedAt")):
        try:
            stamps.append(utc_stamp(value, where)[0])
        except MalformedPage:
            continue
    return min(stamps, default=None)


def _plus_ms(stamp: str, ms: int) -> str:
    return iso_utc(parse_time(stamp) + timedelta(milliseconds=ms))


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _time_us_text(time_us: int) -> str:
    return iso_utc(from_epoch(time_us / 1_000_000))


def _close_code(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    return f"{frame.code} {frame.reason}".strip() if frame is not None else "no close frame"
