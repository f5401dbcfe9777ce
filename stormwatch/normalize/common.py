"""Helpers every platform normalizer shares: field validation, timestamps, ids, tags, counters, and the kinds of
archive record.

Every field a normalizer reads is checked here before it is used: a field of the wrong JSON type, an id that
is not the platform's shape, or a time that cannot be (hour 25, 30 February, year 1, year 9999) raises
MalformedPage naming the field, and the normalizer skips that one record; stranger-written strings are cleaned
(`text.strip_controls`) and bounded in length. The checks are type tests and a few comparisons, cheap enough for
the import's million posts.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import MalformedPage
from ..models import Batch, CountBucket
from .text import strip_controls

# Posts, accounts and counts are dated between these moments. X began in 2006 (Mastodon in 2016, Bluesky in
# 2023), so nothing collected is older; 2100 is the bound the config puts on campaign windows. Anything outside
# is a broken or hostile record, and a year-9999 time would make every chart and table span eighty centuries.
EARLIEST = datetime(2006, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_EARLIEST_S = int(EARLIEST.timestamp())
_LATEST_S = int(LATEST.timestamp())
# Longest strings kept. Texts: X's long posts run to 25,000 characters, Mastodon instances set their own limit;
# a 100 MB "post" from a hostile instance must not reach the database. Other fields are far shorter.
MAX_TEXT = 100_000
MAX_NAME = 1_000
MAX_TAG = 640  # Bluesky's limit for a tag, in bytes; longer tags are dropped (the post is kept)
MAX_LANG = 64
MAX_URL = 4_096
MAX_COUNTER = 2**63 - 1  # SQLite's integers are signed 64-bit
_MAX_ID = 2**64 - 1  # X ids are unsigned 64-bit snowflakes
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "true/false", type(None): "null"}


def type_name(value: Any) -> str:
    """How a JSON value's type is named in a reason: `an object`, `a list`, `a string`…"""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def wrong_type(where: str, expected: str, value: Any) -> MalformedPage:
    """The error for a field of the wrong type: `<where>: expected <expected>, got <type>`."""
    return MalformedPage(f"{where}: expected {expected}, got {type_name(value)}")


def optional_dict(value: Any, where: str) -> dict[str, Any] | None:
    """An object field: the dict, None when absent or null, MalformedPage for any other type."""
    if value is None or type(value) is dict:
        return value
    raise wrong_type(where, "an object", value)


def optional_list(value: Any, where: str) -> list[Any]:
    """A list field: the list (empty when absent or null), MalformedPage for any other type."""
    if type(value) is list:
        return value
    if value is None:
        return []
    raise wrong_type(where, "a list", value)


def optional_text(value: Any, where: str, limit: int = MAX_NAME) -> str | None:
    """A string written by a stranger: cleaned of control characters and cut to `limit` characters; None when
    absent, null or empty; MalformedPage for any other type."""
    if value is None:
        return None
    if type(value) is not str:
        raise wrong_type(where, "a string", value)
    if len(value) > limit:
        value = value[:limit]
    return strip_controls(value) or None


def numeric_id(value: Any, where: str) -> str:
    """An X-style numeric id (JSON string or number) as text: ASCII digits that fit in 64 bits."""
    if type(value) is str:
        # Up to 19 digits always fit; only a 20-digit id needs the comparison.
        digits = value.isascii() and value.isdigit()
        if not digits or (len(value) > 19 and (len(value) > 20 or int(value) > _MAX_ID)):
            raise MalformedPage(f"{where}: {value[:40]!r} is not a numeric id")
        return value
    if type(value) is int and 0 <= value <= _MAX_ID:
        return str(value)
    if value is None:
        raise MalformedPage(f"{where}: missing")
    raise wrong_type(where, "a numeric id", value)


def utc_stamp(text: Any, where: str) -> tuple[str, int]:
    """Parse a platform timestamp into (`YYYY-MM-DDTHH:MM:SS.mmmZ`, epoch seconds); only times from 2006 to 2100."""
    if not isinstance(text, str):
        raise MalformedPage(f"{where}: expected a timestamp, got {type_name(text)}")
    if len(text) == 24 and text[10] == "T" and text[19] == "." and text[23] == "Z":
        return text, stored_stamp_seconds(text, where)  # the stored form itself (X and Mastodon send it)
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        elif moment.utcoffset():
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise MalformedPage(f"{where}: {text[:40]!r} is not an ISO-8601 timestamp") from None
    if not EARLIEST <= moment < LATEST:
        raise MalformedPage(f"{where}: {text[:40]!r} is not between 2006 and 2100")
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return stamp, int(moment.timestamp())


def stored_stamp_seconds(stamp: str, where: str) -> int:
    """Epoch seconds of a `YYYY-MM-DDTHH:MM:SS.mmmZ` stamp, checked: every digit a digit, every part in range
    (no hour 25, no 30 February), the time between 2006 and 2100. Fast: the minute's start is cached."""
    if len(stamp) != 24 or not stamp.isascii():
        raise MalformedPage(f"{where}: {stamp[:40]!r} is not a timestamp")
    minute = _minute_start(stamp[:16])
    seconds, millis = stamp[17:19], stamp[20:23]
    if (minute is None or stamp[16] != ":" or stamp[19] != "." or stamp[23] != "Z" or not seconds.isdigit()
            or not millis.isdigit() or seconds > "59"):
        raise MalformedPage(f"{where}: {stamp!r} is not a possible time between 2006 and 2100")
    return minute + int(seconds)


@functools.lru_cache(maxsize=8192)
def _minute_start(prefix: str) -> int | None:
    """Epoch seconds of `YYYY-MM-DDTHH:MM` (ASCII), or None when it is not a possible minute from 2006 to 2100."""
    if (prefix[4] != "-" or prefix[7] != "-" or prefix[10] != "T" or prefix[13] != ":"
            or not (prefix[:4] + prefix[5:7] + prefix[8:10] + prefix[11:13] + prefix[14:16]).isdigit()):
        return None
    year, month, day = int(prefix[:4]), int(prefix[5:7]), int(prefix[8:10])
    hour, minute = int(prefix[11:13]), int(prefix[14:16])
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month] and hour < 24 and minute < 60):
        return None
    if month == 2 and day == 29 and not calendar.isleap(year):
        return None
    start = calendar.timegm((year, month, day, hour, minute, 0))
    return start if _EARLIEST_S <= start < _LATEST_S else None


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


def utc_moment(text: Any, where: str) -> datetime:
    """A platform timestamp as an aware UTC datetime (to the millisecond), checked like `utc_stamp`."""
    stamp, seconds = utc_stamp(text, where)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=int(stamp[20:23]) * 1000)


def epoch_stamp(millis: int, where: str = "time") -> tuple[str, int]:
    """(`YYYY-MM-DDTHH:MM:SS.mmmZ`, epoch seconds) for epoch milliseconds between 2006 and 2100."""
    if not _EARLIEST_S * 1000 <= millis < _LATEST_S * 1000:
        raise MalformedPage(f"{where}: {millis} ms since 1970 is not between 2006 and 2100")
    moment = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z", millis // 1000


def clean_tag(tag: Any) -> str | None:
    """A hashtag as stored: lower-case, without `#`, control characters stripped; None when it is not a usable tag
    (not a string, empty, or longer than any platform allows)."""
    if type(tag) is not str or len(tag) > MAX_TAG:
        return None
    if tag.isidentifier():  # nearly every tag: letters, digits and `_`, nothing to strip
        return tag.casefold()
    cleaned = strip_controls(tag).strip().lstrip("#＃").casefold()
    return cleaned or None


def unique(values: list[str]) -> tuple[str, ...]:
    """The values in first-seen order without repeats."""
    return tuple(dict.fromkeys(values))


def counter(value: Any) -> int | None:
    """A non-negative integer counter, or None when absent, not a number, or too large to store."""
    if type(value) is int:
        return value if 0 <= value <= MAX_COUNTER else None
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if number <= MAX_COUNTER else None
    return None
