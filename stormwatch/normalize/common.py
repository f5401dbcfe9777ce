"""Helpers every platform normalizer shares: timestamps, tags, counters, and the kinds of archive record."""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import MalformedPage
from ..models import Batch, CountBucket


@dataclass(frozen=True)
class RecordKind:
    """One kind of record an archive can hold (an API page, a post, a status…): how it is recognized by its
    content, and what it becomes (rows, or per-minute counts). Each normalizer module lists the kinds it reads
    in `RECORD_KINDS`; the importer tries them in the registry's order.
    """

    name: str
    platform: str
    matches: Callable[[dict[str, Any]], bool]  # given a JSON object; never raises
    rows: Callable[[Any, str], Batch] | None = None  # (body, retrieved_at) -> Batch
    counts: Callable[[Any], list[CountBucket]] | None = None  # body -> buckets
    # Recognized by a few common fields only: tried after every other platform's kinds.
    loose: bool = False


def utc_stamp(text: object, where: str) -> tuple[str, int]:
    """Parse a platform timestamp into (`YYYY-MM-DDTHH:MM:SS.mmmZ`, epoch seconds)."""
    moment = utc_moment(text, where)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return stamp, int(moment.timestamp())


def utc_moment(text: object, where: str) -> datetime:
    """Parse a platform timestamp into an aware UTC datetime (naive ones are UTC); MalformedPage otherwise."""
    if not isinstance(text, str):
        raise MalformedPage(f"{where}: expected a timestamp, got {type(text).__name__}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedPage(f"{where}: {text!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment


@functools.lru_cache(maxsize=4096)
def _day_start(day: str) -> int:
    year, month, date = int(day[:4]), int(day[5:7]), int(day[8:10])
    return calendar.timegm((year, month, date, 0, 0, 0))


def epoch_seconds(stamp: str) -> int:
    """Epoch seconds of a stored `YYYY-MM-DDTHH:MM:SS.mmmZ` stamp (fast: the day's start is cached)."""
    return _day_start(stamp[:10]) + int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])


def epoch_stamp(millis: int) -> tuple[str, int]:
    """(`YYYY-MM-DDTHH:MM:SS.mmmZ`, epoch seconds) for epoch milliseconds."""
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z", millis // 1000


def clean_tag(tag: Any) -> str | None:
    """A hashtag as stored: lower-case, without `#`; None when it is not a usable tag."""
    if not isinstance(tag, str):
        return None
    cleaned = tag.strip().lstrip("#").casefold()
    return cleaned or None


def unique(values: list[str]) -> tuple[str, ...]:
    """The values in first-seen order without repeats."""
    return tuple(dict.fromkeys(values))


def counter(value: Any) -> int | None:
    """A non-negative integer counter, or None when absent or not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
