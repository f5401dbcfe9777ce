"""Mastodon hashtag timelines through Mastodon.py, walked forward by `min_id`; each instance's trending tags;
the targets' public timelines. The only Mastodon.py importer.

One query per (instance, hashtag): `mastodon.social#StandWithIssa`. A query's cursor is a status id of that
instance (ids are instance-local and time-ordered: milliseconds << 16); each request asks for the statuses
right after it (`min_id`), and each stored page moves the cursor to its newest id. Pages only go forward,
so a crash or an error at any point leaves no gap and costs at most one page fetched again.

Known limit: an instance gives a status that reaches it late (federation delay) an id from its creation
time, so a status arriving after the cursor has passed its time is not seen on that instance; reading the
author's home instance too (or several instances) covers it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from mastodon import Mastodon, MastodonAPIError, MastodonError, MastodonNetworkError, MastodonRatelimitError
from mastodon.errors import MastodonWarning

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

log = logging.getLogger(__name__)


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


class _RecordingSession(requests.Session):
    """A requests session that keeps, per thread, the last response Mastodon.py received.

    Mastodon.py converts JSON into its own entity objects; the raw archive needs the JSON exactly as the
    instance sent it, with its headers (Link, X-RateLimit-*), so the source reads the response itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self._local.response = None
        response = super().request(method, url, *args, **kwargs)
        self._local.response = response
        return response

    def last_response(self) -> requests.Response | None:
        """The response to this thread's last request (None when it failed before one arrived)."""
        return getattr(self._local, "response", None)


class MastodonSource:
    """Hashtag timelines of the configured Mastodon instances (anonymous, or with one access token)."""

    name = SOURCE

    def __init__(self, config: MastodonConfig, clock: Clock, token: str | None = None) -> None:
        self.config = config
        self.clock = clock
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
        while True:
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
                session = _RecordingSession()
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
