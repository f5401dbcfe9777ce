"""X API v2 through tweepy: recent search swept without gaps, per-minute counts, trends by place and the targets'
own posts (a `from:` search swept like the campaign's). The only tweepy importer."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import requests
import tweepy
import urllib3

from ..config import TARGETS_SUFFIX, CampaignConfig, RetryPolicy, XConfig
from ..errors import MalformedPage, RateLimited, SourceError
from ..models import Billing, Cursor, RateLimit, RawPage
from ..platforms import or_queries, snowflake_ms, x_search_queries
from ..times import Clock, from_epoch, iso_utc, iso_utc_seconds
from .capabilities import RulesReconciled, StreamDelays, StreamEvents, StreamRule, trends_query
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
LOOKUP_IDS = 100  # GET /2/tweets takes at most 100 ids
LOOKUP_QUERY = "(counters)"  # the query a lookup page is archived under
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
        self._token = token
        self._stream_client: _StreamClient | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries and backoff from `[x]`."""
        return self.config.retry_policy

    def close(self) -> None:
        """Release the HTTP connection pools."""
        self.client.session.close()
        if self._stream_client is not None:
            self._stream_client.session.close()

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

    def profile_pages(self, account_ids: Iterable[str], campaign: str) -> Iterator[RawPage]:
        """None: X sends every author's follower count with the posts (`includes.users`)."""
        return iter(())

    def lookup_pages(self, post_ids: Iterable[str], campaign: str) -> Iterator[RawPage]:
        """Post pages (GET /2/tweets, 100 ids a request) with the posts' counters as they stand now: a post read
        from the stream as it was made has no reposts yet, and a gap's repost estimate needs them (billed as reads,
        once per UTC day)."""
        wanted = list(dict.fromkeys(i for i in post_ids if isinstance(i, str) and i.isdigit()))
        for start in range(0, len(wanted), LOOKUP_IDS):
            ids = wanted[start:start + LOOKUP_IDS]
            response = self._get(self.client.get_tweets, ",".join(ids), tweet_fields=TWEET_FIELDS,
                                 expansions=EXPANSIONS, user_fields=USER_FIELDS)
            yield self._page("lookup", response, _json(response), Cursor(campaign, SOURCE, LOOKUP_QUERY),
                             LOOKUP_QUERY)

    def repost_sample(self, campaign: CampaignConfig, start: datetime, end: datetime) -> RawPage:
        """One page (at most 100) of the campaign's newest posts without reposts in [start, end), with their
        metrics: the plan's sample of how often its posts are reposted (search has served no reposts since
        2026-05-04, and neither do the counts)."""
        query = self.counted_queries(campaign, include_reposts=False)[0]
        response = self._get(self.client.search_recent_tweets, query, max_results=100, tweet_fields=TWEET_FIELDS,
                             expansions=EXPANSIONS, user_fields=USER_FIELDS, start_time=iso_utc_seconds(start),
                             end_time=iso_utc_seconds(end))
        return self._page("search", response, _json(response), Cursor(campaign.name, SOURCE, query), query)

    @property
    def stream_lead(self) -> timedelta | None:
        """How long before a storm window the filtered stream connects (None: `[x] stream = false`)."""
        return self.config.stream_lead if self.config.stream else None

    @property
    def stream_client(self) -> _StreamClient:
        """tweepy's StreamingClient for this app (rules and the stream), sharing nothing with search."""
        if self._stream_client is None:
            session = _HostSession(self.config.api_base, self.config.timeout)
            self._stream_client = _StreamClient(self._token, session, self._no_loop)
            session.headers["User-Agent"] = self._stream_client.user_agent
        return self._stream_client

    def _no_loop(self, url: str, params: dict[str, Any]) -> None:
        raise SourceError("x stream: follow_stream() connects the stream")

    def stream_rules(self, campaigns: Sequence[CampaignConfig]) -> list[StreamRule]:
        """The rules that cover these campaigns on the filtered stream (see `stream_rules`)."""
        return stream_rules(campaigns)

    def reconcile_rules(self, wanted: Sequence[StreamRule]) -> RulesReconciled:
        """Make the app's rules `wanted`: add the missing, delete stale `stormwatch:` rules, keep foreign ones."""
        client = self.stream_client
        body = _json(self._get(lambda _q, **p: client.get_rules(**p), "stream rules"))
        have = [StreamRule(str(r.get("value", "")), str(r.get("tag") or ""), str(r.get("id", "")))
                for r in body.get("data") or [] if isinstance(r, dict)]
        ours = [r for r in have if r.tag.startswith(TAG_PREFIX)]
        keys = {(r.value, r.tag) for r in wanted}
        stale = [r for r in ours if (r.value, r.tag) not in keys]
        present = {(r.value, r.tag) for r in ours}
        missing = [r for r in dict.fromkeys(wanted) if (r.value, r.tag) not in present]
        if stale:
            self._get(lambda _q, **p: client.delete_rules([r.id for r in stale], **p), "stream rules")
        if missing:
            added = _json(self._get(lambda _q, **p: client.add_rules(
                [tweepy.StreamRule(r.value, tag=r.tag) for r in missing], **p), "stream rules"))
            problems = [e for e in added.get("errors") or []
                        if isinstance(e, dict) and e.get("title") != "DuplicateRule"]
            if problems:
                raise SourceError("x stream: rules refused: " + "; ".join(_api_error(e) for e in problems))
        foreign = tuple(r for r in have if not r.tag.startswith(TAG_PREFIX))
        if foreign:
            log.info("x stream: %d rules of another program on this app are left alone: %s", len(foreign),
                     ", ".join(f"{r.value!r} ({r.tag or 'no tag'})" for r in foreign))
        return RulesReconciled(tuple(missing), tuple(stale), foreign)

    def follow_stream(self, rules: list[StreamRule], stop: threading.Event, events: StreamEvents,
                      delays: StreamDelays | None = None) -> None:
        """Follow the filtered stream with `rules` until `stop` is set, telling `events` everything."""
        loop = _StreamLoop(self, rules, stop, events, delays or StreamDelays())
        client = self.stream_client
        client._loop = loop.run
        client.filter(expansions=EXPANSIONS, tweet_fields=TWEET_FIELDS, user_fields=USER_FIELDS)

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


def _api_error(error: dict[str, Any]) -> str:
    return str(error.get("details") or error.get("detail") or error.get("title") or error)


def _messages(exc: tweepy.HTTPException) -> list[str]:
    messages = [str(m) for m in exc.api_messages]
    for error in exc.api_errors:
        if isinstance(error, dict) and error.get("detail") and error["detail"] not in messages:
            messages.append(str(error["detail"]))
    return messages


# --- the filtered stream -------------------------------------------------------------------------------------

STREAM_ROUTE = "/2/tweets/search/stream"
TAG_PREFIX = "stormwatch:"
MAX_RULE_LENGTH = 1024  # pay-per-use: 1,000 rules per app of at most 1,024 characters
TOO_MANY_CONNECTIONS = "another program is connected to this app's stream"


def stream_rules(campaigns: Sequence[CampaignConfig]) -> list[StreamRule]:
    """The rules covering campaigns: their hashtags, their counter-hashtags and their targets' `from:` (each
    tagged `stormwatch:<campaign>[:<role>]`), split like search queries to fit 1,024 characters each."""
    rules: list[StreamRule] = []
    for campaign in campaigns:
        tag = TAG_PREFIX + campaign.name
        groups = [("", build_queries(campaign.hashtags, include_reposts=True, max_length=MAX_RULE_LENGTH)),
                  (":counter", build_queries(campaign.counter_hashtags, include_reposts=True,
                                             max_length=MAX_RULE_LENGTH) if campaign.counter_hashtags else []),
                  (":targets", target_queries(campaign.targets, MAX_RULE_LENGTH))]
        members = {"": (campaign.name, campaign.hashtags), ":targets": (campaign.name + TARGETS_SUFFIX, None)}
        counter = campaign.counter()
        if counter is not None:
            members[":counter"] = (counter.name, counter.hashtags)
        rules += [StreamRule(value, tag + role, None, *members[role]) for role, values in groups for value in values]
    return rules


class _StreamClient(tweepy.StreamingClient):  # type: ignore[misc]  # tweepy is untyped
    """tweepy's StreamingClient with stormwatch's own connection loop: stalls detected, waits cut short by
    shutdown, and every connection and disconnection told to the follower (tweepy's loop sleeps unstoppably)."""

    def __init__(self, token: str, session: requests.Session, loop: Callable[[str, dict[str, Any]], None]) -> None:
        super().__init__(token, return_type=requests.Response, wait_on_rate_limit=False)
        self.session = session
        self._loop = loop

    def _connect(self, method: str, endpoint: str, **kwargs: Any) -> None:
        self.session.headers["Authorization"] = f"Bearer {self.bearer_token}"
        self._loop(f"{TWEEPY_HOST}/2/tweets/{endpoint}/stream", dict(kwargs.get("params") or {}))


class _Refused(Exception):
    """The stream answered a connection with an HTTP error."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class _StreamLoop:
    """One follow of the stream: rules reconciled, connected while not paused, reconnected per X's guidance."""

    def __init__(self, source: XSource, rules: list[StreamRule], stop: threading.Event, events: StreamEvents,
                 delays: StreamDelays) -> None:
        self.source = source
        self.rules = rules
        self.stop = stop
        self.events = events
        self.delays = delays
        self.network_wait = 0.0
        self.http_wait: float | None = None
        self.reconciled = False

    def run(self, url: str, params: dict[str, Any]) -> None:
        while not self.stop.is_set():
            if self.events.paused() is not None:
                self.stop.wait(self.delays.watch)
                continue
            try:
                if not self.reconciled:
                    self.events.reconciled(self.source.reconcile_rules(self.rules))
                    self.reconciled = True
                self._connection(url, params)
                continue
            except _Refused as exc:
                self.reconciled = False  # the rules may be what is wrong (or gone): read them again
                wait = self._http_wait(exc.status)
                why = exc.args[0]
            except SourceError as exc:  # the rules endpoints refused or failed
                wait = self._http_wait(429 if isinstance(exc, RateLimited) else 500)
                why = str(exc)
            except requests.exceptions.RequestException as exc:
                wait = self.network_wait
                self.network_wait = min(self.network_wait + self.delays.network_step, self.delays.network_max)
                why = network_failure(self.source.config.api_base, exc)
            self.events.trouble(why, wait)
            self.stop.wait(wait)

    def _http_wait(self, status: int) -> float:
        delays = self.delays
        first = delays.rate_limited_first if status in (420, 429) else delays.http_first
        wait = min(max(first, self.http_wait or 0.0), delays.http_max)
        self.http_wait = wait * 2
        return wait

    def _connection(self, url: str, params: dict[str, Any]) -> None:
        session = self.source.stream_client.session
        response = session.request("GET", url, params=params, stream=True,
                                   timeout=(self.delays.connect_timeout, self.delays.stall))
        with response:
            if response.status_code != 200:
                raise _Refused(response.status_code, _refusal(response))
            self.network_wait, self.http_wait = 0.0, None
            clock = self.source.clock
            self.events.connected(clock.now())
            cut: list[str] = []  # why the watch shut the connection (shutdown, a pause)
            done = threading.Event()
            watch = threading.Thread(target=self._watch, args=(response, done, cut), daemon=True,
                                     name="stormwatch-x-stream-watch")
            watch.start()
            reason = "dropped"  # X closed the connection
            try:
                for line in response.iter_lines(chunk_size=STREAM_CHUNK):
                    if cut:
                        break
                    if line:
                        self.events.line(_line(line), clock.now())
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if not cut and _timed_out(exc):
                    reason = "stalled"
            finally:
                done.set()
            self.events.disconnected(cut[0] if cut else reason, clock.now())

    def _watch(self, response: requests.Response, done: threading.Event, cut: list[str]) -> None:
        """Shut the connection's socket when collecting stops or the stream must pause (a read blocks up to the
        stall timeout otherwise)."""
        while not done.wait(self.delays.watch):
            reason = "stopped" if self.stop.is_set() else self.events.paused()
            if reason is not None:
                cut.append(reason)
                _shut(response)
                return


STREAM_CHUNK = 1024


def _line(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return {"errors": [{"title": "stream line is not JSON", "detail": str(exc)}]}
    return body if isinstance(body, dict) else {"errors": [{"title": "stream line is not an object"}]}


def _refusal(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if isinstance(body, dict) and body.get("connection_issue") == "TooManyConnections":
        return f"x stream: {TOO_MANY_CONNECTIONS} (429 TooManyConnections)"
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else None
    return f"x stream: {where(response)}: {_status(response)}" + (f": {detail}" if detail else "")


def _timed_out(exc: BaseException) -> bool:
    """Whether a read failed for want of bytes (a stall) rather than a broken connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.exceptions.Timeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)):
            return True
        seen = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else seen.__context__
    return False


def _shut(response: requests.Response) -> None:
    """Shut the socket under a streamed response so that a read blocked on it ends now."""
    connection = getattr(response.raw, "_connection", None) or getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        else:
            response.close()
    except OSError:
        pass
