"""What every source needs from an HTTP answer or failure: rate-limit headers, stopping before a refused
request, the request in a few words, and what went wrong on the network.

Library-neutral on purpose (each HTTP library is imported by its own source module only): headers are read
through `.get`, responses through their `request.path_url` or `url`, and network failures through the
exception chain's standard exceptions, class names and messages (requests, urllib3, httpx and websockets
all end in the same socket errors).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import RateLimited
from ..models import RateLimit
from ..times import from_epoch, parse_time

log = logging.getLogger(__name__)

DROPPED = "the connection dropped mid-response"
TIMED_OUT = "timed out"
NO_ANSWER = "no answer in time"


@dataclass(frozen=True)
class RateLimitHeaders:
    """The names a platform gives its rate-limit headers."""

    limit: str
    remaining: str
    reset: str  # epoch seconds (X, Bluesky) or an ISO time (Mastodon)


def rate_limit(headers: Any, names: RateLimitHeaders) -> RateLimit:
    """The rate-limit state a response's headers announce (fields None where a header is absent or unreadable)."""
    if not headers:
        return RateLimit(None, None, None)
    reset_text = _header(headers, names.reset)
    reset_at: datetime | None = None
    if reset_text.isdigit():
        reset_at = from_epoch(int(reset_text))
    elif reset_text:
        try:
            reset_at = parse_time(reset_text)
        except ValueError:
            log.warning("unreadable %s header %r", names.reset, reset_text[:60])
    return RateLimit(limit=_number(headers, names.limit), remaining=_number(headers, names.remaining),
                     reset_at=reset_at)


def raise_if_exhausted(limit: RateLimit, who: str, where: str) -> None:
    """Stop before a request the platform would refuse: the last response said none remain until its reset."""
    if limit.remaining == 0 and limit.reset_at is not None:
        raise RateLimited(f"{who}: rate limit used up on {where}", limit.reset_at, request_made=False)


def where(response: Any) -> str:
    """`GET <path>` of a response's request, without the query string (it can carry tokens and says nothing
    about what went wrong); `request` when the response does not say."""
    request = getattr(response, "request", None)
    path = getattr(request, "path_url", "") or ""
    if not path:
        url = getattr(response, "url", "")
        path = urlsplit(str(url)).path if url else ""
    return f"GET {path.split('?')[0]}" if path else "request"


def host(url: str) -> str:
    """The host (and port) of a URL: what error messages name instead of the whole address."""
    return urlsplit(url).netloc or url


# Exceptions are recognized by their own class names (never their bases': urllib3 makes "cannot connect" a
# subclass of its connect timeout), by the standard exceptions behind them, and by words in their messages.
_READ_TIMEOUT_TYPES = frozenset({"ReadTimeout", "ReadTimeoutError"})
_TIMEOUT_TYPES = frozenset({"Timeout", "ConnectTimeout", "ConnectTimeoutError", "TimeoutException", "PoolTimeout",
                            "WriteTimeout", "timeout"})
_DROPPED_TYPES = frozenset({"ChunkedEncodingError", "RemoteProtocolError", "ReadError", "ProtocolError",
                            "IncompleteRead", "RemoteDisconnected"})
_CONNECTION_TYPES = frozenset({"ConnectionError", "ConnectError", "NewConnectionError", "MaxRetryError"})
_REASON_WORDS = (("Connection refused", "connection refused"), ("Name or service not known", "name not found"),
                 ("Temporary failure in name resolution", "name not found"),
                 ("nodename nor servname", "name not found"), ("No route to host", "no route to host"),
                 ("Network is unreachable", "network is unreachable"),
                 ("certificate verify failed", "certificate verify failed"))
_DROPPED_WORDS = ("IncompleteRead", "RemoteDisconnected", "Connection aborted", "Connection reset", "Connection broken",
                  "Server disconnected", "peer closed connection")


def network_reason(exc: BaseException | None) -> str:
    """What went wrong on the network in a few words (`connection refused`, `timed out`,
    `the connection dropped mid-response`…), never the exception's text, which can carry the request URL."""
    if exc is None:
        return "network error"
    chain = list(_chain(exc))
    names = {type(error).__name__ for error in chain}
    texts = " ".join(str(error) for error in chain)
    if names & _READ_TIMEOUT_TYPES:
        return NO_ANSWER
    if any(isinstance(error, ConnectionRefusedError) for error in chain):
        return "connection refused"
    if any(isinstance(error, socket.gaierror) for error in chain):
        return "name not found"
    if any(isinstance(error, ssl.SSLCertVerificationError) for error in chain):
        return "certificate verify failed"
    for words, reason in _REASON_WORDS:
        if words in texts:
            return reason
    if names & _TIMEOUT_TYPES or any(isinstance(error, TimeoutError) for error in chain):
        return TIMED_OUT
    if (names & _DROPPED_TYPES or any(isinstance(error, ConnectionResetError | BrokenPipeError) for error in chain)
            or any(words in texts for words in _DROPPED_WORDS)):
        return DROPPED
    if names & _CONNECTION_TYPES or any(isinstance(error, ConnectionError) for error in chain):
        return "connection failed"
    return type(exc).__name__


def network_failure(base: str, exc: BaseException | None) -> str:
    """A network failure as an error message names it: `cannot reach <base>: <reason>`, or that `base` was
    reached but did not answer in time, or that the connection to it dropped mid-response."""
    reason = network_reason(exc)
    if reason == DROPPED:
        return f"the connection to {base} dropped mid-response"
    if reason == NO_ANSWER:
        return f"{base} did not answer in time"
    return f"cannot reach {base}: {reason}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those behind it (`raise … from`, exceptions raised while handling, urllib3's reasons)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        for behind in (error.__cause__, error.__context__, getattr(error, "reason", None)):
            if isinstance(behind, BaseException):
                pending.append(behind)
        pending.extend(arg for arg in error.args if isinstance(arg, BaseException))


def _header(headers: Any, name: str) -> str:
    value = headers.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(headers: Any, name: str) -> int | None:
    value = _header(headers, name)
    return int(value) if value.isdigit() else None
