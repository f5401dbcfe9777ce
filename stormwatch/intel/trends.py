"""Did it trend? The campaign's tags in the trending lists fetched for it (X by WOEID, each Mastodon instance).

A trending entry is a **hit** when it is one of the campaign's hashtags, or a hashtag containing one (case-folded,
`#` dropped: `#StandWithIssaNow` is a hit for #StandWithIssa). For every (platform, place, tag) that was a hit: when
it was first and last seen, its best rank, and whether it is trending now (a hit in the place's latest list), since
when (the first list of the current unbroken run) and at which rank. Its rank in every list fetched is the series
the report charts (None where it was not in the list).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from ..store import Store
from ..times import iso_utc, parse_time


@dataclass(frozen=True)
class TrendHit:
    """One campaign tag trending at one place: seen first, last, its best rank, and where it stands now."""

    platform: str
    location: str
    woeid: int | None
    tag: str  # as the platform listed it (`#StandWithIssa`)
    first_seen: datetime
    last_seen: datetime
    best_rank: int
    volume: int | None  # the platform's figure at the last sighting
    rank_now: int | None  # in the place's latest list; None when the tag has dropped out of it
    since: datetime | None  # start of the current unbroken run in the lists (None when not trending now)
    series: tuple[tuple[datetime, int | None], ...]  # (fetched at, rank) for every list fetched at the place

    def to_json(self) -> dict[str, object]:
        """The fields `summary --json` gives a hit."""
        return {"platform": self.platform, "location": self.location, "woeid": self.woeid, "tag": self.tag,
                "first_seen": iso_utc(self.first_seen), "last_seen": iso_utc(self.last_seen),
                "best_rank": self.best_rank}


def is_hit(name: str, hashtags: tuple[str, ...]) -> bool:
    """Whether a trending entry is one of the hashtags or a hashtag containing one (case-folded)."""
    if not name.startswith(("#", "＃")) and " " in name.strip():
        return False  # a phrase, not a hashtag
    folded = name.lstrip("#＃").casefold()
    return any(tag.casefold() in folded for tag in hashtags)


def trending(store: Store, campaign: str, hashtags: tuple[str, ...], since: datetime,
             until: datetime) -> list[TrendHit]:
    """The campaign's hits in the lists fetched in [since, until): trending now first, X before Mastodon, then by
    rank (now, else best)."""
    fetches: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    woeids: dict[tuple[str, str], int | None] = {}
    for platform, location, woeid, seen_at in store.conn.execute(
            "SELECT DISTINCT platform, location, woeid, seen_at FROM trends WHERE campaign = ? AND seen_at >= ? "
            "AND seen_at < ? ORDER BY seen_at", (campaign, iso_utc(since), iso_utc(until))):
        fetches[(platform, location)].append(parse_time(seen_at))
        woeids[(platform, location)] = woeid
    if not fetches:
        return []
    # Only entries that could be hits are read: the campaign's tags, matched case-blind by SQL first.
    clauses = " OR ".join("instr(lower(name), ?) > 0" for _ in hashtags)
    ranks: dict[tuple[str, str, str], dict[datetime, tuple[int, int | None]]] = defaultdict(dict)
    for platform, location, seen_at, rank, name, volume in store.conn.execute(
            "SELECT platform, location, seen_at, rank, name, volume FROM trends WHERE campaign = ? AND seen_at >= ? "
            f"AND seen_at < ? AND ({clauses})", (campaign, iso_utc(since), iso_utc(until),
                                                 *(tag.lower() for tag in hashtags))):
        if is_hit(name, hashtags):
            ranks[(platform, location, name.casefold())].setdefault(parse_time(seen_at), (rank, volume))
    spelled = _spellings(store, campaign, ranks)
    hits = [_hit(platform, location, woeids[(platform, location)], spelled[(platform, location, tag)], seen,
                 fetches[(platform, location)]) for (platform, location, tag), seen in ranks.items()]
    # X's places first: its lists are the world's, a country's, a city's; an instance's tags are its own
    return sorted(hits, key=lambda h: (h.rank_now is None, h.platform != "x", h.rank_now or h.best_rank,
                                       h.platform, h.location))


def fetched(store: Store, campaign: str, since: datetime, until: datetime) -> bool:
    """Whether any trending list was fetched for the campaign between `since` and `until`."""
    return store.conn.execute("SELECT 1 FROM trends WHERE campaign = ? AND seen_at >= ? AND seen_at < ? LIMIT 1",
                              (campaign, iso_utc(since), iso_utc(until))).fetchone() is not None


def _spellings(store: Store, campaign: str,
               ranks: dict[tuple[str, str, str], dict[datetime, tuple[int, int | None]]]) -> dict[tuple[str, str, str],
                                                                                                  str]:
    """How each hit was last written by its platform (ranks are keyed case-folded)."""
    found = {}
    for platform, location, tag in ranks:
        row = store.conn.execute("SELECT name FROM trends WHERE campaign = ? AND platform = ? AND location = ? AND "
                                 "lower(name) = ? ORDER BY seen_at DESC LIMIT 1",
                                 (campaign, platform, location, tag.lower())).fetchone()
        found[(platform, location, tag)] = row[0] if row else tag
    return found


def _hit(platform: str, location: str, woeid: int | None, tag: str, seen: dict[datetime, tuple[int, int | None]],
         fetched: list[datetime]) -> TrendHit:
    times = sorted(seen)
    series = tuple((moment, seen[moment][0] if moment in seen else None) for moment in fetched)
    trending_now = fetched[-1] in seen
    since = None
    if trending_now:
        since = fetched[-1]
        for moment in reversed(fetched):
            if moment not in seen:
                break
            since = moment
    return TrendHit(platform=platform, location=location, woeid=woeid, tag=tag, first_seen=times[0],
                    last_seen=times[-1], best_rank=min(rank for rank, _ in seen.values()),
                    volume=seen[times[-1]][1], rank_now=seen[fetched[-1]][0] if trending_now else None, since=since,
                    series=series)
