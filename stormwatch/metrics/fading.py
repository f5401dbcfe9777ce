"""Volume fading, with hysteresis: when a storm's pace drops well below its peak, and when it has recovered.

One rule for the dashboard's warning and the organizers' alert, so both say the same thing at the same time.
It reads the per-minute series of the storm window so far (complete minutes only) and is pure.

An episode **begins** in the minute whose 5-minute mean falls below `FADE_SHARE` of the busiest minute so far,
once that peak is at least `FADE_MIN_PEAK` posts a minute (a quiet campaign is not "fading"). It **ends**, and
the rule is armed again, when the 5-minute mean is back to `RECOVER_SHARE` of the peak so far: a storm that
hovers around 30% of its peak fades once, not every other minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MEAN_MINUTES = 5
FADE_SHARE = 0.3
FADE_MIN_PEAK = 10
RECOVER_SHARE = 0.6
ADVICE = "time for the next push: share the next prepared posts, and ask people to quote rather than repost"


@dataclass(frozen=True)
class FadingEpisode:
    """One drop of volume: when it began, the pace and peak then, and when volume recovered (None: still low)."""

    started_at: datetime  # the start of the minute that brought the 5-minute mean below the threshold
    rate: float  # posts per minute, mean of the 5 minutes up to and including that minute
    peak: int  # the busiest minute so far when it began
    recovered_at: datetime | None = None

    @property
    def ongoing(self) -> bool:
        """Whether volume has not recovered since."""
        return self.recovered_at is None


def fading_episodes(per_minute: Sequence[int], first_minute: datetime) -> list[FadingEpisode]:
    """Every fading episode of a per-minute series whose first value counts the minute from `first_minute`."""
    episodes: list[FadingEpisode] = []
    peak = 0
    armed = True
    for index, posts in enumerate(per_minute):
        peak = max(peak, posts)
        if index + 1 < MEAN_MINUTES:
            continue  # the storm's first minutes: no 5-minute mean yet
        mean = sum(per_minute[index + 1 - MEAN_MINUTES:index + 1]) / MEAN_MINUTES
        minute = first_minute + timedelta(minutes=index)
        if armed and peak >= FADE_MIN_PEAK and mean < FADE_SHARE * peak:
            episodes.append(FadingEpisode(started_at=minute, rate=mean, peak=peak))
            armed = False
        elif not armed and mean >= RECOVER_SHARE * peak:
            last = episodes[-1]
            episodes[-1] = FadingEpisode(last.started_at, last.rate, last.peak, recovered_at=minute)
            armed = True
    return episodes


def current_fading(per_minute: Sequence[int], first_minute: datetime) -> FadingEpisode | None:
    """The episode still going on at the end of the series, if any."""
    episodes = fading_episodes(per_minute, first_minute)
    return episodes[-1] if episodes and episodes[-1].ongoing else None
