"""X API v2 through tweepy: recent search swept without gaps, per-minute counts, trends by place and the targets'
own posts (a `from:` search swept like the campaign's). The only tweepy importer."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import requests
import tweepy

from ..config import CampaignConfig, RetryPolicy, XConfig
from ..errors import MalformedPage, RateLimited, SourceError
from ..models import Billing, Cursor, RateLimit, RawPage
from ..platforms import or_queries, snowflake_ms, x_search_queries
from ..times import Clock, from_epoch, iso_utc, iso_utc_seconds
from .capabilities import trends_query
from .http import RateLimitHeaders, network_failure, raise_if_exhausted, rate_limit, where

SOURCE = "x"
TWEEPY_HOST = "https://api.twitter.com"
RECENT_SEARCH_REACH = timedelta(days=7)
# X rejects a start_time exactly 7 days back; stay a little inside the window.
REACH_MARGIN = timedelta(minutes=2)
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=15)
# The latest start_time a search may use: X serves posts up to 30 s ago and rejects later start times.
NEWEST_START = timedelta(minutes=1)
RATE_LIMIT_HEADERS = RateLimitHeaders("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")

TWEET_FIELDS = ["created_at", "author_id", "public_metrics", "entities", "referenced_tweets", "lang",
                "conversation_id"]
EXPANSIONS = ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"]
USER_FIELDS = ["public_metrics", "created_at", "verified"]
# GET /2/trends/by/woeid/{woeid}: tweepy 4 has no method for it, so it goes through tweepy's own request (same
# session, same errors). X lists up to 50 trends (20 by default): the whole list shows how close a tag came.
TRENDS_ROUTE = "/2/trends/by/woeid/{woeid}"
MAX_TRENDS = 50
TREND_FIELDS = "trend_name,tweet_count"
# A `from:` operand is an X username: 1 to 15 letters, digits or underscores.
_X_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")

log = logging.getLogger(__name__)
# tweepy logs request headers, bearer token included, at DEBUG: never let that through.
logging.getLogger("tweepy").setLevel(logging.INFO)


def build_queries(hashtags: tuple[str, ...], *, include_reposts: bool, max_length: int) -> list[str]:
    """The campaign's hashtags OR'd into as few queries as fit `max_length` characters each (platforms.py)."""
    try:
        return x_search_queries(hashtags, include_reposts=include_reposts, max_length=max_length)
    except ValueError as exc:
        raise SourceError(f"x: {exc}") from None


def target_queries(handles: tuple[str, ...], max_length: int) -> list[str]:
    """`from:` queries covering the targets' X accounts (handles that cannot be X usernames are left out)."""
    try:
        return or_queries([f"from:{handle}" for handle in handles if _X_USERNAME.match(handle)], "", max_length)
    except ValueError as exc:
        raise SourceError(f"x: {exc}") from None


def snowflake_time(post_id: str) -> datetime:
    """When an X post id was minted (ids carry their creation time)."""
    return from_epoch(snowflake_ms(post_id) / 1000)


class _HostSession(requests.Session):
    """A requests session that sends tweepy's hard-coded host to `api_base` and applies a timeout."""

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__()
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, str) and url.startswith(TWEEPY_HOST):
            url = self.api_base + url[len(TWEEPY_HOST):]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class XSource:
    """Recent search and counts for one configured X account (bearer token)."""

    name = SOURCE

    def __init__(self, config: XConfig, token: str, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.client = tweepy.Client(bearer_token=token, return_type=requests.Response, wait_on_rate_limit=False)
        self.client.session = _HostSession(config.api_base, config.timeout)
        self.client.session.headers["User-Agent"] = self.client.user_agent

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries and backoff from `[x]`."""
        return self.config.retry_policy

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.client.session.close()

    @property
    def counts_cost(self) -> float:
        """What one counts request costs (USD)."""
        return self.config.counts_request_usd

    def billing(self, day: str) -> Billing:
        """X's read prices, deduplicated within the UTC day `day`."""
        return Billing(day=day, post_usd=self.config.post_read_usd, user_usd=self.config.user_read_usd)

    def queries(self, campaign: CampaignConfig) -> list[str]:
        """The search queries that cover a campaign's hashtags."""
        return build_queries(campaign.hashtags, include_reposts=self.config.include_reposts,
                             max_length=self.config.max_query_length)

    def first_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """Where a new query starts: the storm start, or a minute ago if that is later (collecting before the
        storm catches its build-up), never beyond search's reach."""
        since = max(min(campaign.start, now - NEWEST_START), now - RECENT_SEARCH_REACH + REACH_MARGIN)
        # X's start_time is to the second: the cursor keeps where collection began at that precision
        return Cursor(campaign.name, SOURCE, query, since=since.replace(microsecond=0))

    def reach_warning(self, campaign: CampaignConfig, now: datetime) -> str | None:
        """A warning when part of the storm window is already beyond recent search's 7 days."""
        oldest = now - RECENT_SEARCH_REACH + REACH_MARGIN
        if campaign.start < oldest:
            return (f"x: recent search reaches back 7 days; posts before {iso_utc_seconds(oldest)} "
                    "cannot be collected (import an archive for them)")
        return None

    @property
    def trends_cost(self) -> float:
        """What one trends request costs (USD)."""
        return self.config.trends_request_usd

    def trend_locations(self, campaign: CampaignConfig) -> list[str]:
        """The campaign's WOEIDs (`trend_locations`)."""
        return [str(woeid) for woeid in campaign.trend_locations]

    def trends(self, campaign: str, location: str) -> RawPage:
        """X's trending list for one WOEID now (billed per request), as the page X sent."""
        response = self._get(self._trends_request, location, max_trends=MAX_TRENDS, trend_fields=TREND_FIELDS)
        cursor = Cursor(campaign, SOURCE, trends_query(location), position=iso_utc(self.clock.now()))
        return self._page("trends", response, _json(response), cursor, location)

    def _trends_request(self, woeid: str, *, max_trends: int, trend_fields: str) -> requests.Response:
        if not woeid.isdigit():
            raise SourceError(f"x: trends: {woeid!r} is not a WOEID")
        response: requests.Response = self.client.request(
            "GET", TRENDS_ROUTE.format(woeid=woeid), params={"max_trends": max_trends, "trend.fields": trend_fields})
        return response

    def target_queries(self, campaign: CampaignConfig) -> list[str]:
        """One `from:` query for the campaign's targets (more when they make it longer than a query may be)."""
        return target_queries(campaign.targets, self.config.max_query_length)

    def first_target_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """Where the targets' posts are read from: the storm's start (within search's reach)."""
        since = max(campaign.start, now - RECENT_SEARCH_REACH + REACH_MARGIN)
        return Cursor(campaign.name, SOURCE, query, since=since.replace(microsecond=0))

    def target_posts(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """The targets' posts newer than the cursor: a `from:` search swept like the campaign's own."""
        return self._sweep(cursor, now, "targets")

    def search(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """Sweep one query from the cursor, newest first, yielding each page with the cursor that covers it.

        A sweep's newest id becomes the cursor's position only with its last page; until then the
        unfinished sweep (its parameters, next_token, newest and oldest ids) is the cursor's `pending`.
        """
        return self._sweep(cursor, now, "search")

    def _sweep(self, cursor: Cursor, now: datetime, endpoint: str) -> Iterator[RawPage]:
        pending = dict(cursor.pending) if cursor.pending else self._new_sweep(cursor, now)
        while True:
            params = dict(pending["params"])
            try:
                response = self._get(self.client.search_recent_tweets, cursor.query, max_results=100,
                                     next_token=pending.get("next_token"), tweet_fields=TWEET_FIELDS,
                                     expansions=EXPANSIONS, user_fields=USER_FIELDS, **params)
            except _StaleToken:
                # The saved next_token is no longer accepted: continue below the oldest post stored.
                log.info("x: next_token for %r expired; resuming below id %s", cursor.query, pending["oldest_id"])
                pending = {**pending, "next_token": None,
                           "params": {**pending["params"], "until_id": pending["oldest_id"]}}
                continue
            body = _json(response)
            meta = body.get("meta") or {}
            if not isinstance(meta, dict):
                raise MalformedPage(f"x: {where(response)}: meta is not an object")
            newest = pending.get("newest_id") or meta.get("newest_id")
            oldest = meta.get("oldest_id") or pending.get("oldest_id")
            next_token = meta.get("next_token")
            if next_token:
                pending = {**pending, "next_token": next_token, "newest_id": newest, "oldest_id": oldest}
                after = cursor.advanced(pending=pending)
            else:
                after = cursor.advanced(position=newest or cursor.position, pending=None)
            yield self._page(endpoint, response, body, after, cursor.query)
            cursor = after
            if not next_token:
                return
            raise_if_exhausted(_rate_limit(response), SOURCE, where(response))

    def _new_sweep(self, cursor: Cursor, now: datetime) -> dict[str, Any]:
        oldest_reachable = now - RECENT_SEARCH_REACH + REACH_MARGIN
        if cursor.position and snowflake_time(cursor.position) > oldest_reachable:
            params: dict[str, Any] = {"since_id": cursor.position}
        else:
            start = cursor.since if cursor.since else oldest_reachable
            if cursor.position:  # collection stopped for longer than search reaches back
                log.warning("x: %r was last collected more than 7 days ago; posts before %s are out of reach",
                            cursor.query, iso_utc_seconds(oldest_reachable))
            # X wants start_time before its default end_time (now - 30 s): never ask for a later one.
            params = {"start_time": iso_utc_seconds(min(max(start, oldest_reachable), now - NEWEST_START))}
        return {"params": params, "next_token": None, "newest_id": None, "oldest_id": None}

    def counted_queries(self, campaign: CampaignConfig, *, include_reposts: bool) -> list[str]:
        """The queries whose counts cover the campaign, with or without reposts (`-is:retweet`)."""
        return build_queries(campaign.hashtags, include_reposts=include_reposts,
                             max_length=self.config.max_query_length)

    def counts(self, campaign: str, query: str, start: datetime, end: datetime, *,
               granularity: str = "minute") -> Iterator[RawPage]:
        """Counts of a query per minute (or `hour`, `day`) between two times (paginated when X paginates)."""
        next_token = None
        cursor = Cursor(campaign, SOURCE, query)
        while True:
            response = self._get(self.client.get_recent_tweets_count, query, granularity=granularity,
                                 start_time=iso_utc_seconds(start), end_time=iso_utc_seconds(end),
                                 next_token=next_token)
            body = _json(response)
            yield self._page("counts", response, body, cursor, query)
            next_token = (body.get("meta") or {}).get("next_token")
            if not next_token:
                return

    def _get(self, method: Any, query: str, **params: Any) -> requests.Response:
        params = {k: v for k, v in params.items() if v is not None}
        log.debug("x: %s %r %s", method.__name__, query,
                  {k: v for k, v in params.items() if k not in ("tweet_fields", "expansions", "user_fields")})
        try:
            response: requests.Response = method(query, **params)
        except tweepy.TooManyRequests as exc:
            reset_at = _rate_limit(exc.response).reset_at
            raise RateLimited(f"x: rate limited (429) on {where(exc.response)}",
                              reset_at or self.clock.now() + DEFAULT_RATE_LIMIT_WAIT) from None
        except tweepy.TwitterServerError as exc:
            raise SourceError(f"x: {where(exc.response)}: server error {_status(exc.response)}",
                              transient=True) from None
        except tweepy.BadRequest as exc:
            if params.get("next_token") and any("token" in m.lower() for m in _messages(exc)):
                raise _StaleToken() from None
            raise SourceError(f"x: {where(exc.response)}: 400 Bad Request: {'; '.join(_messages(exc))}") from None
        except tweepy.Unauthorized as exc:
            raise SourceError(f"x: {where(exc.response)}: 401 Unauthorized: X refused the bearer token "
                              f"from ${self.config.bearer_token_env}") from None
        except tweepy.HTTPException as exc:  # 403, 404 and other refusals: not worth retrying
            detail = "; ".join(_messages(exc)) or _status(exc.response)
            raise SourceError(f"x: {where(exc.response)}: {_status(exc.response)}: {detail}") from None
        except requests.exceptions.RequestException as exc:
            raise SourceError(f"x: {network_failure(self.config.api_base, exc)}", transient=True) from None
        return response

    def _page(self, endpoint: str, response: requests.Response, body: dict[str, Any], cursor: Cursor,
              query: str) -> RawPage:
        return RawPage(source=SOURCE, endpoint=endpoint, url=response.url, retrieved_at=self.clock.now(),
                       body=body, cursor=cursor, query=query, rate_limit=_rate_limit(response))


class _StaleToken(Exception):
    """X rejected a pagination token (expired or unknown)."""


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, requests.exceptions.RequestException) as exc:
        raise MalformedPage(f"x: {where(response)}: the response is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise MalformedPage(f"x: {where(response)}: the response is {type(body).__name__}, not an object")
    return body


def _rate_limit(response: requests.Response) -> RateLimit:
    return rate_limit(response.headers, RATE_LIMIT_HEADERS)


def _status(response: Any) -> str:
    return f"{getattr(response, 'status_code', '?')} {getattr(response, 'reason', '') or ''}".strip()


def _messages(exc: tweepy.HTTPException) -> list[str]:
    messages = [str(m) for m in exc.api_messages]
    for error in exc.api_errors:
        if isinstance(error, dict) and error.get("detail") and error["detail"] not in messages:
            messages.append(str(error["detail"]))
    return messages
