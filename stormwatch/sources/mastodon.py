"""Mastodon hashtag timelines through Mastodon.py, walked forward by `min_id`; each instance's trending tags;
the targets' public timelines. The only Mastodon.py importer.

One query per (instance, hashtag): `mastodon.social#StandWithIssa`. A query's cursor is a status id of that
instance (ids are instance-local and time-ordered: milliseconds << 16); each request asks for the statuses
right after it (`min_id`), and each stored page moves the cursor to its newest id. Pages only go forward,
so a crash or an error at any point leaves no gap and costs at most one page fetched again.

One instance cannot hold the others hostage: every request's whole answer must come within a deadline
(`REQUEST_DEADLINE`, not only each socket read), be at most `MAX_RESPONSE_BYTES` (read streaming, never
more), a query walks at most `MAX_PAGES` pages and `QUERY_BUDGET` seconds in one run, and shutdown cuts a
request in flight short. Each of these skips that instance for the rest of the run, named on the run record.

Known limit: an instance gives a status that reaches it late (federation delay) an id from its creation
time, so a status arriving after the cursor has passed its time is not seen on that instance; reading the
author's home instance too (or several instances) covers it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from mastodon import Mastodon, MastodonAPIError, MastodonError, MastodonNetworkError, MastodonRatelimitError
from mastodon.errors import MastodonWarning
from requests.adapters import HTTPAdapter

from .. import __version__
from ..config import CampaignConfig, MastodonConfig, RetryPolicy
from ..errors import MalformedPage, RateLimited, SourceError
from ..models import Cursor, RateLimit, RawPage
from ..times import Clock, iso_utc
from .capabilities import trends_query
from .http import RateLimitHeaders, network_failure, raise_if_exhausted, rate_limit, where

SOURCE = "mastodon"
ENDPOINT = "timeline"
# Mastodon lists at most 20 trending tags (10 unless asked).
TRENDS_LIMIT = 20
# Like X: collecting before the storm starts a minute back, to catch the build-up.
NEWEST_START = timedelta(minutes=1)
# Mastodon's API throttle windows are five minutes long.
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=5)
MAX_ERROR_TEXT = 200
# The reset is an ISO time on Mastodon (epoch seconds on some other servers).
RATE_LIMIT_HEADERS = RateLimitHeaders("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

# Every request's whole answer (connecting, headers, body) must arrive within this many seconds: a socket
# timeout is per read, and an instance dripping a byte every two seconds never trips it.
REQUEST_DEADLINE = 30.0
# The most one answer may hold, decoded (a compressed bomb counts at its real size); Mastodon's 40 statuses
# a page are well under 1 MB.
MAX_RESPONSE_BYTES = 20 * 1024 * 1024
# Pages and seconds one query may take in one run: an instance serving one new status a page forever must
# not keep the run busy. What was stored stays; the next run resumes from the cursor.
MAX_PAGES = 50
QUERY_BUDGET = 120.0
# How often a request's watch looks at its deadline and at shutdown; how much of a body is read at once.
WATCH_TICK = 0.1
CHUNK_BYTES = 64 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one instance may cost a run: the defaults above (tests make them small)."""

    deadline: float = REQUEST_DEADLINE
    max_bytes: int = MAX_RESPONSE_BYTES
    max_pages: int = MAX_PAGES
    budget: float = QUERY_BUDGET


def instance_name(entry: str) -> str:
    """The instance a config entry names: `mastodon.social` for `mastodon.social`, `https://mastodon.social`
    and a base URL with a path ending in it (`http://127.0.0.1:8787/i/mastodon.social`, the simulator)."""
    text = entry.strip().rstrip("/")
    if "://" not in text:
        return text.lower()
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    if path:
        return path.rsplit("/", 1)[-1].lower()
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def base_url(entry: str) -> str:
    """The API base URL of a config entry: as given when it is a URL, else `https://<host>`."""
    text = entry.strip().rstrip("/")
    return text if "://" in text else f"https://{text}"


def split_query(query: str) -> tuple[str, str]:
    """(instance name, hashtag) of a query `instance#tag`."""
    instance, sep, tag = query.partition("#")
    if not sep or not instance or not tag:
        raise SourceError(f"mastodon: {query!r} is not a query like mastodon.social#StandWithIssa")
    return instance, tag


def min_id_at(moment: datetime) -> str:
    """A status id just below every status created at or after `moment` (ids are milliseconds << 16)."""
    return str((int(moment.timestamp() * 1000) << 16) - 1)


class _Abandoned(Exception):
    """A request stormwatch gave up on (too big, too slow, or shutdown); its text is what the run records."""


# The watch of the request this thread is making, for the connections that request uses.
_current = threading.local()


class _Watch:
    """One request's deadline and shutdown: past either, the sockets under its connections are shut, so a read
    blocked on them (headers or body, dripped or stalled) ends at once instead of after the instance's pleasure."""

    def __init__(self, seconds: float, stopping: Callable[[], bool]) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.reason: str | None = None
        self._stopping = stopping
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._run, name="mastodon-request-watch", daemon=True).start()

    def add(self, sock: socket.socket) -> None:
        """A socket this request reads (of a new connection or one reused from the pool)."""
        with self._lock:
            if sock not in self._sockets:
                self._sockets.append(sock)
        if self.reason is not None:
            self._cut()

    def finish(self) -> None:
        """The request is over: stop watching."""
        self._done.set()

    def abandoned(self, what: str) -> _Abandoned:
        """The error naming why the request was cut short."""
        if self.reason == "stopped":
            return _Abandoned(f"{what}: cut short by shutdown")
        return _Abandoned(f"{what}: no complete answer within {self.seconds:g} s, skipped for this run")

    def _run(self) -> None:
        while not self._done.wait(WATCH_TICK):
            if self.reason is None:
                if self._stopping():
                    self.reason = "stopped"
                elif time.monotonic() >= self.expires:
                    self.reason = "deadline"
            if self.reason is not None:
                self._cut()  # again each tick: a connection may be made after the first cut

    def _cut(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would drop its SSL object under
            # the reading thread's feet. The blocked read then sees the end of the stream.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Registering:
    """Mixed into urllib3's connection classes: each connection hands its socket to the watch of the request
    using it. (The socket itself: the connection lets go of it while the body is still being read.)"""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)  # a connection reused from the pool (a new one registers as it connects)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _register(sock: socket.socket | None) -> None:
    watch = getattr(_current, "watch", None)
    if isinstance(watch, _Watch) and sock is not None:
        watch.add(sock)


@functools.cache
def _watched_pool(pool: type) -> type:
    """`pool` (an urllib3 connection pool class) making connections that register with the request's watch."""
    base = pool.ConnectionCls  # type: ignore[attr-defined]
    if issubclass(base, _Registering):
        return pool
    connection = type(f"Watched{base.__name__}", (_Registering, base), {})
    return type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": connection})


def _watch_manager(manager: Any) -> Any:
    """An urllib3 pool manager (direct or through a proxy) whose connections register with the watch."""
    classes = getattr(manager, "pool_classes_by_scheme", None)
    if isinstance(classes, dict):
        manager.pool_classes_by_scheme = {scheme: _watched_pool(pool) for scheme, pool in classes.items()}
    return manager


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, its connections (proxied ones too) registering with the watch of their request."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_manager(self.poolmanager)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        return _watch_manager(super().proxy_manager_for(*args, **kwargs))


class _RecordingSession(requests.Session):
    """A requests session that bounds every answer and keeps, per thread, the last response Mastodon.py received.

    Mastodon.py converts JSON into its own entity objects; the raw archive needs the JSON exactly as the
    instance sent it, with its headers (Link, X-RateLimit-*), so the source reads the response itself.
    Bodies are streamed: at most `limits.max_bytes` are read, and the whole request has `limits.deadline`
    seconds (or less, once `stopping()` says so).
    """

    def __init__(self, limits: Limits, stopping: Callable[[], bool]) -> None:
        super().__init__()
        self._local = threading.local()
        self._limits = limits
        self._stopping = stopping
        adapter = _WatchedAdapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self._local.response = None
        what = f"{method} {urlsplit(url if isinstance(url, str) else url.decode()).path}"
        if self._stopping():
            raise _Abandoned(f"{what}: not sent, collecting stops")
        kwargs["stream"] = True
        watch = _Watch(self._limits.deadline, self._stopping)
        _current.watch = watch
        try:
            response = super().request(method, url, *args, **kwargs)
            try:
                self._read_body(response, watch, what)
            except BaseException:
                response.close()  # never drained: the rest of an oversized or stalled answer is not read
                raise
        except _Abandoned:
            raise
        except Exception:
            if watch.reason is not None:
                raise watch.abandoned(what) from None
            raise
        finally:
            _current.watch = None
            watch.finish()
        self._local.response = response
        return response

    def _read_body(self, response: requests.Response, watch: _Watch, what: str) -> None:
        """The body into `response.content`, refused past the byte limit, chunk by chunk."""
        limit = self._limits.max_bytes
        too_big = _Abandoned(f"{what}: instance sent more than {_megabytes(limit)} MB, skipped")
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > limit:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise too_big
            if watch.reason is not None:
                raise watch.abandoned(what)
            chunks.append(chunk)
        if watch.reason is not None:
            # A cut can look like the end of the headers or of a body sent until the connection closes:
            # whatever came is not the whole answer.
            raise watch.abandoned(what)
        response._content = b"".join(chunks)  # what .content, .text and .json() read from now on

    def last_response(self) -> requests.Response | None:
        """The response to this thread's last request (None when it failed before one arrived)."""
        return getattr(self._local, "response", None)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g}"


class MastodonSource:
    """Hashtag timelines of the configured Mastodon instances (anonymous, or with one access token)."""

    name = SOURCE

    def __init__(self, config: MastodonConfig, clock: Clock, token: str | None = None, *,
                 limits: Limits | None = None) -> None:
        self.config = config
        self.clock = clock
        self.limits = limits or Limits()
        self._stop: threading.Event | None = None
        self._token = token or None
        self._bases: dict[str, str] = {}
        for entry in config.instances:
            self._bases.setdefault(instance_name(entry), base_url(entry))
        self._clients: dict[str, tuple[Mastodon, _RecordingSession]] = {}
        self._account_ids: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries and backoff from `[mastodon]`."""
        return self.config.retry_policy

    def close(self) -> None:
        """Release every instance's connection pool."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for _, session in clients:
            session.close()

    def stop_with(self, stop: threading.Event) -> None:
        """Cut requests in flight short (within a tenth of a second) once `stop` is set: shutdown never waits
        for an instance's answer."""
        self._stop = stop

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def queries(self, campaign: CampaignConfig) -> list[str]:
        """One query per (instance, hashtag): `mastodon.social#StandWithIssa`."""
        return [f"{name}#{tag}" for name in self._bases for tag in campaign.hashtags]

    def server_of(self, query: str) -> str:
        """The instance a query reads: rate limits and outages are per instance, so are their errors."""
        return split_query(query)[0]

    def first_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """Where a new query starts: the storm start, or a minute ago if that is later (collecting before the
        storm catches its build-up), as the min_id of that moment."""
        since = min(campaign.start, now - NEWEST_START)
        return Cursor(campaign.name, SOURCE, query, position=min_id_at(since), since=since.replace(microsecond=0))

    def search(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """Pages of statuses newer than the cursor, oldest page first, until one comes back empty.

        Each page carries the cursor moved to its newest id; the last (empty) page leaves it where it is.
        """
        instance, tag = split_query(cursor.query)

        def page(client: Mastodon, min_id: str) -> object:
            return client.timeline_hashtag(tag, min_id=min_id, limit=self.config.page_size)

        return self._walk(cursor, now, instance, ENDPOINT, {"tag": tag}, page, "/timelines/tag/", "hashtag timeline")

    def _walk(self, cursor: Cursor, now: datetime, instance: str, endpoint: str, labels: dict[str, str],
              fetch: Callable[[Mastodon, str], object], path: str, what: str) -> Iterator[RawPage]:
        """Pages of a timeline after the cursor's min_id, each with the cursor that covers it, until one is empty."""
        position = cursor.position or min_id_at(cursor.since if cursor.since else now - NEWEST_START)
        started, pages = time.monotonic(), 0
        while True:
            self._within_limits(instance, what, pages, time.monotonic() - started)
            pages += 1
            response, statuses = self._statuses(instance, functools.partial(_after, fetch, position), path, what)
            newest = _newest_id(response, statuses) if statuses else position
            if statuses and not _moves_forward(position, newest):
                # A server that ignores min_id would serve the same page forever; stop instead.
                raise MalformedPage(f"mastodon: {instance}: {where(response)} returned statuses but did not move "
                                    f"past min_id {position}")
            after = cursor.advanced(position=newest, pending=None)
            yield RawPage(source=SOURCE, endpoint=endpoint, url=response.url, retrieved_at=self.clock.now(),
                          body={"instance": instance, **labels, "statuses": statuses}, cursor=after,
                          query=cursor.query, rate_limit=_rate_limit(response))
            if not statuses:
                return
            cursor, position = after, newest
            raise_if_exhausted(_rate_limit(response), f"{SOURCE}: {instance}", where(response))

    def _within_limits(self, instance: str, what: str, pages: int, elapsed: float) -> None:
        """Stop a walk that has had its pages or its time for this run (what it stored stays)."""
        resume = "stopped; the next run resumes from the stored cursor"
        if pages >= self.limits.max_pages:
            raise SourceError(f"mastodon: {instance}: the {what} had more pages after {pages} in this run "
                              f"(endless pagination?); {resume}", request_made=False)
        if elapsed >= self.limits.budget:
            raise SourceError(f"mastodon: {instance}: the {what} took more than {self.limits.budget:g} s in this "
                              f"run ({pages} pages); {resume}", request_made=False)

    # ------------------------------------------------------------------------------------ trends

    @property
    def trends_cost(self) -> float:
        """Trending tags cost nothing."""
        return 0.0

    def trend_locations(self, campaign: CampaignConfig) -> list[str]:
        """Every configured instance: each has its own trending tags."""
        return list(self._bases)

    def trends(self, campaign: str, location: str) -> RawPage:
        """An instance's trending tags now (`GET /api/v1/trends/tags`), as the instance sent them."""
        response, tags = self._request(location, lambda client: client.trending_tags(limit=TRENDS_LIMIT),
                                       "/trends/tags", "trending tag")
        if not isinstance(tags, list):
            raise MalformedPage(f"mastodon: {location}: {where(response)}: the response is {type(tags).__name__}, "
                                "not a list of tags")
        cursor = Cursor(campaign, SOURCE, trends_query(location), position=iso_utc(self.clock.now()))
        return RawPage(source=SOURCE, endpoint="trends", url=response.url, retrieved_at=self.clock.now(),
                       body={"instance": location, "tags": tags}, cursor=cursor, query=location,
                       rate_limit=_rate_limit(response))

    # ------------------------------------------------------------------------------------ targets

    def target_queries(self, campaign: CampaignConfig) -> list[str]:
        """The targets' Mastodon accounts (`targets_mastodon`, `user@instance`)."""
        return list(campaign.targets_mastodon)

    def first_target_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """A target's timeline is read from the storm's start."""
        return Cursor(campaign.name, SOURCE, query, position=min_id_at(campaign.start),
                      since=campaign.start.replace(microsecond=0))

    def target_posts(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """A target's public statuses after the cursor, read from its home instance when that is configured
        (else the first configured instance, which knows the account if it federates with it)."""
        account = cursor.query
        home = account.rsplit("@", 1)[-1].lower()
        instance = home if home in self._bases else next(iter(self._bases), home)
        account_id = self._account_id(instance, account)

        def page(client: Mastodon, min_id: str) -> object:
            return client.account_statuses(account_id, min_id=min_id, limit=self.config.page_size)

        return self._walk(cursor, now, instance, "targets", {"account": account}, page, "/statuses",
                          "account timeline")

    def _account_id(self, instance: str, account: str) -> str:
        """The instance's id of an account (looked up once per instance and account)."""
        key = (instance, account.lower())
        with self._lock:
            known = self._account_ids.get(key)
        if known is not None:
            return known
        response, found = self._request(instance, lambda client: client.account_lookup(account),
                                        "/accounts/lookup", "account lookup")
        if not isinstance(found, dict) or not isinstance(found.get("id"), str | int):
            raise MalformedPage(f"mastodon: {instance}: {where(response)}: no account id in the answer")
        with self._lock:
            self._account_ids[key] = str(found["id"])
        return str(found["id"])

    # ------------------------------------------------------------------------------------ requests

    def _client(self, instance: str) -> tuple[Mastodon, _RecordingSession]:
        with self._lock:
            if instance not in self._clients:
                base = self._bases.get(instance)
                if base is None:
                    raise SourceError(f"mastodon: {instance}: not in mastodon.instances (any more)",
                                      request_made=False)
                session = _RecordingSession(self.limits, self._stopping)
                # "throw": a rate limit is ours to handle (the collector pauses the query), never a sleep.
                client = Mastodon(api_base_url=base, access_token=self._token, ratelimit_method="throw",
                                  request_timeout=self.config.timeout, session=session, version_check_mode="none",
                                  user_agent=f"stormwatch/{__version__}")
                self._clients[instance] = (client, session)
            return self._clients[instance]

    def _statuses(self, instance: str, call: Callable[[Mastodon], object], path: str,
                  what: str) -> tuple[requests.Response, list[Any]]:
        """One page of a timeline: the response and its statuses, JSON as sent; errors as SourceErrors."""
        response, statuses = self._request(instance, call, path, what)
        if not isinstance(statuses, list):
            raise MalformedPage(f"mastodon: {instance}: {where(response)}: the response is "
                                f"{type(statuses).__name__}, not a list of statuses")
        return response, statuses

    def _request(self, instance: str, call: Callable[[Mastodon], object], path: str,
                 what: str) -> tuple[requests.Response, Any]:
        """One Mastodon.py call on an instance: the response and its JSON as sent; errors as SourceErrors."""
        client, session = self._client(instance)
        log.debug("mastodon: %s: GET %s", instance, path)
        try:
            with warnings.catch_warnings():
                # Mastodon.py warns when an instance's configuration says tag timelines need a login; the
                # request then fails with a clearer error of ours (naming mastodon.access_token_env).
                warnings.simplefilter("ignore", MastodonWarning)
                call(client)
        except MastodonNetworkError as exc:
            if isinstance(exc.__context__, _Abandoned):
                # Too big, too slow or shutdown: asking again this run would cost the same, or nothing is wanted.
                raise SourceError(self._clean(f"mastodon: {instance}: {exc.__context__}")) from None
            # Mastodon.py wraps the requests exception it caught: that one says what happened.
            raise SourceError(f"mastodon: {instance}: {network_failure(self._bases[instance], exc.__context__)}",
                              transient=True) from None
        except MastodonRatelimitError:
            response = session.last_response()
            # Mastodon.py also throws this when it cannot read a 200's X-RateLimit-Reset: that page is fine.
            if response is None or not response.ok:
                raise self._rate_limited(instance, what, response) from None
        except MastodonAPIError:
            response = session.last_response()
            if response is None or not response.ok:
                raise self._refused(instance, what, response) from None
            # A 200 whose body Mastodon.py could not parse: reported below, as malformed.
        except MastodonError as exc:
            raise SourceError(self._clean(f"mastodon: {instance}: {type(exc).__name__}: {exc}")) from None
        except (RecursionError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # Mastodon.py trips over some answers a hostile or broken instance can give (an /api/v1/instance
            # without a version sends its version check into endless recursion): that costs this instance only.
            raise SourceError(self._clean(f"mastodon: {instance}: Mastodon.py could not read the answer to {path} "
                                          f"({type(exc).__name__})")) from None
        response = session.last_response()
        if response is None or path not in response.url:
            raise SourceError(f"mastodon: {instance}: no response to the {what} request", transient=True)
        try:
            return response, json.loads(response.content)
        except ValueError as exc:
            raise MalformedPage(f"mastodon: {instance}: {where(response)}: the response is not valid JSON "
                                f"({exc})") from None

    def _rate_limited(self, instance: str, what: str, response: requests.Response | None) -> RateLimited:
        reset_at = _rate_limit(response).reset_at if response is not None else None
        request = where(response) if response is not None else f"the {what} request"
        return RateLimited(f"mastodon: {instance}: rate limited (429) on {request}",
                           reset_at or self.clock.now() + DEFAULT_RATE_LIMIT_WAIT)

    def _refused(self, instance: str, what: str, response: requests.Response | None) -> SourceError:
        """The error for a non-2xx answer other than 429, by status code."""
        if response is None:
            return SourceError(f"mastodon: {instance}: the {what} request failed without a response",
                               transient=True)
        status, request, detail = response.status_code, where(response), self._error_text(response)
        if status in (401, 403, 422) and ("authenticated" in detail.lower() or status == 401):
            if self._token is None:
                return SourceError(f"mastodon: {instance}: this instance shows {what}s only to signed-in "
                                   f"users ({status}: {detail}); set mastodon.access_token_env to the name of an "
                                   "environment variable holding an access token for an account there, or remove "
                                   "the instance from mastodon.instances")
            return SourceError(f"mastodon: {instance}: the instance refused the access token from "
                               f"${self.config.access_token_env} ({status}: {detail}); it may be for another "
                               "instance, revoked, or lack the read:statuses scope")
        if status == 404:
            return SourceError(f"mastodon: {instance}: {request}: 404 Not Found ({detail}); is "
                               f"{self._bases[instance]} a Mastodon instance?")
        if status >= 500:
            return SourceError(f"mastodon: {instance}: {request}: server error {status} ({detail})", transient=True)
        return SourceError(f"mastodon: {instance}: {request}: {status} {response.reason or ''}".rstrip()
                           + f" ({detail})")

    def _error_text(self, response: requests.Response) -> str:
        """The `error` of a Mastodon error body (or the start of whatever else came), never the token."""
        try:
            body = response.json()
            text = str(body.get("error") or body) if isinstance(body, dict) else str(body)
        except ValueError:
            text = response.text.strip() or (response.reason or "no details")
        return self._clean(text[:MAX_ERROR_TEXT])

    def _clean(self, text: str) -> str:
        """`text` with the access token blanked out, wherever it may have come from."""
        return text.replace(self._token, "[token]") if self._token else text


def _after(fetch: Callable[[Mastodon, str], object], min_id: str, client: Mastodon) -> object:
    """A timeline request for the page after `min_id` (bound before the call, not when it runs)."""
    return fetch(client, min_id)


def _moves_forward(position: str, newest: str) -> bool:
    """Whether a page's newest id lies after the cursor (ids compare as numbers on Mastodon, else as text)."""
    if position.isdigit() and newest.isdigit():
        return int(newest) > int(position)
    return newest != position


def _newest_id(response: requests.Response, statuses: list[Any]) -> str:
    """Where the next page starts: the `Link` header's `prev` min_id, else the page's first (newest) id."""
    prev = response.links.get("prev", {}).get("url")
    if prev:
        values = parse_qs(urlsplit(prev).query).get("min_id")
        if values and values[0]:
            return values[0]
    first = statuses[0]
    if not isinstance(first, dict) or not isinstance(first.get("id"), str | int):
        raise MalformedPage(f"mastodon: {where(response)}: the newest status has no id")
    return str(first["id"])


def _rate_limit(response: requests.Response | None) -> RateLimit:
    """Mastodon's X-RateLimit-* headers."""
    return rate_limit(response.headers if response is not None else None, RATE_LIMIT_HEADERS)
