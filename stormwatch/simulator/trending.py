"""Trending lists on the simulated platforms: X's trends by place (WOEID) and each Mastodon instance's tags.

Every place has its everyday trends (fillers, drawn from the seed and the place, each with a fixed "heat"). A
campaign hashtag joins a list while its posts of the last hour reach the spec's `trend_threshold` times the place's
bar (a small city trends on fewer posts than the world): its heat is that ratio, and the list is ordered by heat.
A storm without `trend_threshold` never trends; the lists are served all the same, so a collector always has one.

The mounts (`x.py`, `mastodon.py`) serve these lists; tests ask the same functions what a list was at a moment.
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from stormwatch.simulator.draws import mix_seed
from stormwatch.simulator.spec import Post, StormSpec

HOUR = 3600
DAY = 86400
# WOEID -> (name, bar, share of the world's posts seen there): the places X's documentation lists.
PLACES: dict[int, tuple[str, float, float]] = {
    1: ("Worldwide", 3.0, 1.0), 23424977: ("United States", 2.0, 0.30), 23424975: ("United Kingdom", 1.0, 0.15),
    23424856: ("Japan", 2.0, 0.10), 2459115: ("New York", 0.8, 0.06), 2442047: ("Los Angeles", 0.8, 0.05),
    44418: ("London", 0.6, 0.08), 1118370: ("Tokyo", 1.0, 0.05),
}
OTHER_PLACE = ("", 1.0, 0.05)
MASTODON_BAR = 0.1  # an instance's trending tags move on a few dozen posts
X_FILLERS = (
    "#MondayMotivation", "Champions League", "#BreakingNews", "Taylor Swift", "#WeatherAlert", "Arsenal",
    "#BookTwitter", "Grammys", "#ClimateAction", "Premier League", "#NowPlaying", "Elon", "#Election2021",
    "Lakers", "#TechNews", "Bitcoin", "#FridayFeeling", "Netflix", "#SuperBowl", "BTS", "#WorldCup", "Oscars",
    "#COVID19", "Vaccine", "#StockMarket", "Real Madrid", "#HealthyLiving", "Messi", "#Travel", "Marvel",
    "#ArtistOnTwitter", "Liverpool", "#Foodie", "Beyonce", "#GameOfThrones", "NASA", "#Photography", "F1",
    "#Anime", "Wordle",
)
MASTODON_FILLERS = (
    "caturday", "photography", "introduction", "fediart", "gardening", "books", "linux", "opensource", "music",
    "mastoart", "birds", "science", "coffee", "history", "climate", "foss", "cooking", "hiking", "astronomy", "art",
)


class TagSeconds:
    """When posts carrying each campaign hashtag were created (epoch seconds, ascending), to count by hour and day."""

    def __init__(self, posts: Iterable[Post], tags: Sequence[str]) -> None:
        self.tags = tuple(tags)
        wanted = {tag.casefold(): tag for tag in tags}
        seconds: dict[str, array[int]] = {tag: array("q") for tag in tags}
        for post in posts:
            for tag in dict.fromkeys(wanted[t.casefold()] for _, _, t in post.hashtags if t.casefold() in wanted):
                seconds[tag].append(post.ms // 1000)
        self.seconds = seconds

    def count(self, tag: str, since_s: float, until_s: float) -> int:
        """Posts carrying `tag` created in (since, until]."""
        times = self.seconds[tag]
        return bisect.bisect_right(times, until_s) - bisect.bisect_right(times, since_s)


@dataclass(frozen=True)
class Entry:
    """One entry of a trending list: its name, the platform's volume figure (if any) and its heat."""

    name: str
    volume: int | None
    heat: float


def x_trends(spec: StormSpec, tags: TagSeconds, woeid: int, now: datetime) -> list[Entry]:
    """X's trending list at a place (a WOEID) at `now`, hottest first (50 entries at most)."""
    _, bar, share = PLACES.get(woeid, OTHER_PLACE)
    rng = random.Random(mix_seed(spec.seed, 11_000_000 + woeid))
    names = list(X_FILLERS)
    rng.shuffle(names)
    fillers = [Entry(name, None if rng.random() < 0.2 else int(heat * 20_000 * share * rng.uniform(0.5, 1.5)), heat)
               for name, heat in zip(names[:35], _heats(35, 8.0, 1.1), strict=True)]
    entries = fillers + _campaign_entries(spec, tags, now, bar, lambda tag, day: int(day * share) or None, "#")
    return sorted(entries, key=lambda entry: -entry.heat)[:50]


def instance_trends(spec: StormSpec, instance: str, tags: TagSeconds, now: datetime) -> list[dict[str, object]]:
    """A Mastodon instance's trending tags at `now` as Tag entities with a week of history, hottest first."""
    rng = random.Random(mix_seed(spec.seed, 12_000_000 + sum(ord(c) * 31 ** i for i, c in enumerate(instance))))
    names = list(MASTODON_FILLERS)
    rng.shuffle(names)
    entries = [Entry(name, int(heat * 40 * rng.uniform(0.6, 1.4)), heat)
               for name, heat in zip(names[:15], _heats(15, 6.0, 0.9), strict=True)]
    entries += _campaign_entries(spec, tags, now, MASTODON_BAR, lambda tag, day: day, "")
    today = int(now.timestamp()) // DAY * DAY
    listed: list[dict[str, object]] = []
    for number, entry in enumerate(sorted(entries, key=lambda e: -e.heat)):
        campaign = entry.name in tags.seconds
        history = []
        for back in range(7):
            day = today - back * DAY
            if campaign:
                uses = tags.count(entry.name, day - 1, min(day + DAY - 1, now.timestamp()))
            else:
                uses = int((entry.volume or 0) * (1.0 if back == 0 else rng.uniform(0.05, 0.6)))
            history.append({"day": str(day), "accounts": str(max(0, uses - uses // 4)), "uses": str(uses)})
        listed.append({"id": str(1000 + number * 7919 % 100_000), "name": entry.name,
                       "url": f"https://{instance}/tags/{entry.name.lower()}", "history": history})
    return listed


def _campaign_entries(spec: StormSpec, tags: TagSeconds, now: datetime, bar: float,
                      volume: Callable[[str, int], int | None], prefix: str) -> list[Entry]:
    """The campaign hashtags trending now at a place of this bar: posts of the last hour over threshold x bar."""
    if spec.trend_threshold is None:
        return []
    now_s = now.timestamp()
    found = []
    for tag in tags.tags:
        heat = tags.count(tag, now_s - HOUR, now_s) / (spec.trend_threshold * bar)
        if heat >= 1.0:
            day = tags.count(tag, now_s - DAY, now_s)
            found.append(Entry(prefix + tag, volume(tag, day), heat))
    return found


def _heats(count: int, hottest: float, coolest: float) -> list[float]:
    """`count` heats falling geometrically from `hottest` to `coolest`."""
    return [hottest * (coolest / hottest) ** (i / (count - 1)) for i in range(count)]
