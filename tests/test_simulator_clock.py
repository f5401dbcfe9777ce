"""Storm clocks (`simulator/clock.py`)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from stormwatch.simulator import ManualClock, SimClock

from .simulator_support import END, START


def test_clocks() -> None:
    wall = time.time()
    fast = SimClock(START, wall, speed=60)
    assert abs(fast.now() - (START + timedelta(seconds=(time.time() - wall) * 60))) < timedelta(seconds=1)
    assert fast.wall_seconds(120) == 2
    manual = ManualClock(START)
    manual.advance(90)
    assert manual.now() == START + timedelta(seconds=90)
    manual.set(END)
    assert manual.now() == END
    with pytest.raises(ValueError):
        ManualClock(datetime(2021, 1, 1))
