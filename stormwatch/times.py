"""Time handling: the storm clock, durations like `5m`, and ISO-8601 UTC timestamps.

Inside the program a moment is an aware UTC `datetime`; it becomes an ISO string only at the edges, in the
store's SQL, JSON, CSV, HTML and the terminal (`iso_utc`), and is parsed back there (`parse_time`). The one
exception is the rows a page normalizes to (`models.Post`, `models.Account`), which carry their stamps in
the stored form: see models.py.

`Clock` is the program's one clock: the wall clock, or a simulated storm clock, and every part that asks
"what time is it in the storm" takes one. The simulator (the stand-in for the outside world, which imports
nothing of stormwatch) has its own one clock interface in `simulator/clock.py`; a `Clock` satisfies it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Campaign windows, the storm clock and --since/--until: dates a storm can have (a year-9999 window would make a
# report count buckets without end).
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """Parse `90s`, `5m`, `1h30m`, `250ms` or `2d` into a timedelta; raise ValueError otherwise."""
    compact = text.strip().replace(" ", "")
    seconds = 0.0
    position = 0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(compact) or seconds <= 0:
        raise ValueError(f'"{text}" is not a duration like 90s, 5m, 1h')
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Render a duration compactly: `1h05m`, `4m10s`, `12s`."""
    total = int(abs(delta.total_seconds()))
    sign = "-" if delta.total_seconds() < 0 else ""
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m{seconds:02d}s"
    return f"{sign}{seconds}s"


def next_full_hour(now: datetime, zone: tzinfo, at_least: timedelta = timedelta(minutes=15)) -> datetime:
    """The next full hour in `zone` at least `at_least` away (where `stormwatch init` starts a storm window)."""
    local = now.astimezone(zone)
    start = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return start if start - local >= at_least else start + timedelta(hours=1)


def parse_time(text: str, default_tz: tzinfo = UTC) -> datetime:
    """Parse an ISO-8601 time (`2021-02-07T18:00:00+02:00`, `...Z`, or naive in `default_tz`) to UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed.astimezone(UTC)


def parse_optional_time(text: str | None) -> datetime | None:
    """`parse_time` for a stored time that may be missing: None (or empty text) gives None."""
    return parse_time(text) if text else None


def iso_utc(moment: datetime) -> str:
    """Format an aware datetime as ISO-8601 UTC with milliseconds: `2021-02-07T16:00:00.000Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_utc_seconds(moment: datetime) -> str:
    """Format an aware datetime as ISO-8601 UTC to the second (`2021-02-07T16:00:00Z`), as APIs take it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_compact(moment: datetime) -> str:
    """ISO-8601 UTC to the second when the moment falls on a whole second (`2021-02-07T16:00:00Z`), with
    milliseconds otherwise: for moments whose precision is their own (where a collection began)."""
    moment = moment.astimezone(UTC)
    return iso_utc_seconds(moment) if moment.microsecond == 0 else iso_utc(moment)


def from_epoch(seconds: float) -> datetime:
    """An aware UTC datetime from epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True)
class Clock:
    """Storm time: the wall clock, or a simulated clock that reads `anchor` at wall time `anchor_wall`
    and runs `speed` times faster (for rehearsals and the demo against the simulated platform).

    `wall` is where wall time comes from (epoch seconds): `time.time`, or a hand-moved clock in tests, so
    that what is computed from storm time (the scheduler's fire times among it) can be checked without waiting.
    """

    speed: float = 1.0
    anchor: datetime | None = None
    anchor_wall: float = 0.0
    wall: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    frozen: bool = False  # it always reads `anchor` (a finished demo: its storm as it ended)
    until: datetime | None = None  # it stands still once it reads this (the demo's collector, at the storm's end)

    @property
    def simulated(self) -> bool:
        """Whether this clock differs from the wall clock."""
        return self.anchor is not None

    def now(self) -> datetime:
        """The current storm time, UTC."""
        if self.anchor is None:
            return from_epoch(self.wall())
        if self.frozen:
            return self.anchor
        moment = self.anchor + timedelta(seconds=(self.wall() - self.anchor_wall) * self.speed)
        return moment if self.until is None or moment < self.until else self.until

    def wall_seconds(self, storm: timedelta) -> float:
        """How many wall-clock seconds a storm-time span takes."""
        return storm.total_seconds() / self.speed

    def wall_time(self, moment: datetime) -> float:
        """The wall epoch seconds at which the storm clock reads `moment`."""
        if self.anchor is None:
            return moment.timestamp()
        return self.anchor_wall + (moment - self.anchor).total_seconds() / self.speed


SYSTEM_CLOCK = Clock()


def zone_named(text: str) -> ZoneInfo:
    """The time zone called `text` (`Asia/Hebron`, `UTC`); ValueError saying so when there is none."""
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not a time zone name like Asia/Hebron or UTC") from None


def window_time(text: str, timezone: ZoneInfo) -> datetime:
    """A campaign or report window's time (naive times in `timezone`), UTC: ValueError saying why when it is not
    a time, or not between 1970 and 2100."""
    try:
        moment = parse_time(text, timezone)
    except OverflowError:
        raise ValueError(f"{text!r} is not between 1970 and 2100") from None
    except ValueError:
        raise ValueError(f'"{text}" is not a time like 2021-02-07T18:00:00+02:00') from None
    if not EARLIEST_TIME <= moment < LATEST_TIME:
        raise ValueError(f"{text!r} is not between 1970 and 2100")
    return moment


# --- times shown to people ----------------------------------------------------------------------
# Every time a person reads is in the campaign's zone, named once per screen or document by the caller. A time
# carries its date when it is not the day of `today` (or, in a span, when the span crosses midnight).


def local_day(moment: datetime, zone: tzinfo) -> str:
    """The local date in words: `Sun 7 Feb`."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}"


def local_time(moment: datetime, zone: tzinfo, today: datetime | None = None) -> str:
    """`18:05` in `zone` when it falls on `today`'s local date, `Mon 8 Feb 00:05` otherwise (and with no `today`)."""
    local = moment.astimezone(zone)
    if today is not None and local.date() == today.astimezone(zone).date():
        return f"{local:%H:%M}"
    return f"{local_day(local, zone)} {local:%H:%M}"


def local_span(since: datetime, until: datetime, zone: tzinfo, today: datetime | None = None,
               arrow: str = " → ") -> str:
    """A span in `zone`: `18:00 → 23:00` on `today`, `Sun 7 Feb 18:00 → 23:00` on another day, and
    `Mon 7 Dec 23:00 → Tue 8 Dec 02:00` when it crosses midnight."""
    start, end = since.astimezone(zone), until.astimezone(zone)
    if start.date() != end.date():
        return f"{local_time(start, zone)}{arrow}{local_time(end, zone)}"
    return f"{local_time(start, zone, today)}{arrow}{end:%H:%M}"


_ISO_STAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")


def local_stamps(text: str, zone: tzinfo, today: datetime | None = None) -> str:
    """`text` with every ISO-8601 time that has a zone (`2021-02-07T16:10:00Z`, as errors store them) shown as
    `local_time` in `zone`."""

    def shown(match: re.Match[str]) -> str:
        try:
            return local_time(parse_time(match.group(0)), zone, today)
        except ValueError:
            return match.group(0)

    return _ISO_STAMP.sub(shown, text)
