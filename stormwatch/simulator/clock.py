"""Storm clocks: what "now" means for the simulated platform.

Every time-dependent part of the simulator takes a `Clock`: anything with a `.now()` method returning an
aware UTC datetime (`SimClock`, `ManualClock`, or the program's own clock, which the wiring passes), so the
same platforms can replay a 2021 storm in real time, fast-forward it for a demo, or be stepped by hand in
tests.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """The simulator's one clock interface: what "now" is on the storm's timeline."""

    def now(self) -> datetime:
        """The current storm time (UTC-aware)."""
        ...


def _require_aware(moment: datetime, name: str) -> datetime:
    """Return `moment` converted to UTC, refusing naive datetimes (they are ambiguous)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


class SimClock:
    """Storm time that reads `anchor` at wall epoch `anchor_wall` and runs `speed` times faster than wall time."""

    def __init__(self, anchor: datetime, anchor_wall: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.anchor = _require_aware(anchor, "anchor")
        self.anchor_wall = float(anchor_wall)
        self.speed = float(speed)

    @classmethod
    def starting_at(cls, anchor: datetime, speed: float = 1.0) -> SimClock:
        """A clock that reads `anchor` right now (wall time) and then runs at `speed`."""
        return cls(anchor, time.time(), speed)

    def now(self) -> datetime:
        """The current storm time (UTC-aware)."""
        elapsed_wall = time.time() - self.anchor_wall
        return self.anchor + timedelta(seconds=elapsed_wall * self.speed)

    def wall_seconds(self, storm_seconds: float) -> float:
        """How many wall-clock seconds pass while `storm_seconds` of storm time pass."""
        return storm_seconds / self.speed

    def __repr__(self) -> str:
        return f"SimClock(anchor={self.anchor.isoformat()}, anchor_wall={self.anchor_wall}, speed={self.speed})"


class ManualClock:
    """A storm clock that only moves when told to; thread-safe, for tests."""

    speed = 1.0

    def __init__(self, now: datetime) -> None:
        self._now = _require_aware(now, "now")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current storm time (UTC-aware)."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward by `seconds` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards by advancing {seconds} s; use set()")
        with self._lock:
            self._now = self._now + timedelta(seconds=seconds)
            return self._now

    def set(self, t: datetime) -> None:
        """Jump to `t` (any direction: tests sometimes rewind)."""
        moment = _require_aware(t, "t")
        with self._lock:
            self._now = moment

    def wall_seconds(self, storm_seconds: float) -> float:
        """Manual time has no wall-clock relation; report storm seconds one to one."""
        return storm_seconds

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"
