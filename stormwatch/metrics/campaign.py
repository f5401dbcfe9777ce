"""Campaign figures: totals, volume, peak, contributors, top accounts and posts, hashtags, targets, coverage.

Every figure follows DESIGN.md's definitions and states its window ([since, until), UTC) and platform filter.
Those that the running tallies can answer take `reader` ("auto", "tallies" or "rows", see reader.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import CampaignConfig, Config
from ..platforms import find_platform, not_reported, x_search_queries
from ..privacy.naming import target_handles
from ..store import Store
from ..times import from_epoch, iso_utc, parse_time
from .figures import (
    ACCOUNT_ORDER,
    AccountStat,
    CampaignTotals,
    Peak,
    PostStat,
    Volume,
    VolumeBucket,
    combined,
)
from .from_rows import ENGAGEMENT_SQL
from .languages import LanguageCount, languages
from .reader import ReaderChoice, figure_reader
from .spending import Spending, storm_spending
from .stream import ESTIMATE_NOTE, StreamCoverage, stream_coverage
from .windows import Window, bucket_origin, bucket_seconds_for, supporters_where, window_where

# --- totals, volume, peak -----------------------------------------------------------------------


def totals(store: Store, campaign: str, window: Window, *, reader: ReaderChoice = "auto") -> CampaignTotals:
    """Posts by kind, contributors, reach, impressions and engagement, overall and per platform."""
    by_platform = figure_reader(store, campaign, reader).platform_totals(window)
    return CampaignTotals(all=combined(by_platform.values()), by_platform=by_platform)


def volume(store: Store, campaign: str, window: Window, bucket_seconds: int | None = None, *,
           reader: ReaderChoice = "auto") -> Volume:
    """Posts per bucket (minute / 5 min / hour by span unless given) and new contributors per bucket."""
    size = bucket_seconds or bucket_seconds_for(window)
    origin = bucket_origin(window, size)
    counts, newcomers = figure_reader(store, campaign, reader).bucket_counts(window, origin, size)
    last_bucket = (window.until_ts - 1 - origin) // size
    buckets = []
    cumulative_posts = cumulative_contributors = 0
    for index in range(0, last_bucket + 1):
        by_platform = counts.get(index, {})
        posts = sum(by_platform.values())
        cumulative_posts += posts
        cumulative_contributors += newcomers.get(index, 0)
        buckets.append(VolumeBucket(
            start=from_epoch(origin + index * size), posts=posts,
            by_platform=dict(sorted(by_platform.items())), new_contributors=newcomers.get(index, 0),
            cumulative_posts=cumulative_posts, cumulative_contributors=cumulative_contributors))
    return Volume(bucket_seconds=size, buckets=tuple(buckets))


def peak_minute(store: Store, campaign: str, window: Window, *, reader: ReaderChoice = "auto") -> Peak:
    """The minute with the most posts (the earliest of equals)."""
    row = figure_reader(store, campaign, reader).busiest_minute(window)
    if row is None or not row[1]:
        return Peak(None, 0)
    return Peak(from_epoch(row[0] * 60), row[1])


def per_minute(store: Store, campaign: str, since: datetime, until: datetime, platform: str | None = None, *,
               reader: ReaderChoice = "auto") -> list[int]:
    """Posts in each minute from `since` (floored to the minute) to `until`, zeros included (any window)."""
    start = int(since.timestamp()) // 60
    end = -(-int(until.timestamp()) // 60)
    counts = figure_reader(store, campaign, reader).minute_counts(start, end, platform)
    return [counts.get(minute, 0) for minute in range(start, end)]


def split_by_posts(store: Store, campaign: str, window: Window, parts: int, *,
                   reader: ReaderChoice = "auto") -> list[datetime]:
    """Minute boundaries that split the window's posts into `parts` runs of about equal size (parts - 1 times)."""
    if parts < 2:
        return []
    minutes = per_minute(store, campaign, window.since, window.until, window.platform, reader=reader)
    total = sum(minutes)
    first = window.since_ts // 60
    bounds: list[datetime] = []
    running = 0
    for offset, posts in enumerate(minutes):
        running += posts
        while len(bounds) < parts - 1 and running >= total * (len(bounds) + 1) / parts:
            moment = from_epoch((first + offset + 1) * 60)
            if window.since < moment < window.until and (not bounds or moment > bounds[-1]):
                bounds.append(moment)
            else:
                break
        if len(bounds) == parts - 1:
            break
    return bounds


def new_contributors(store: Store, campaign: str, window: Window, since: datetime, *,
                     reader: ReaderChoice = "auto") -> int:
    """Accounts whose first post in the window came at or after `since` (people joining lately)."""
    since_ts = max(int(since.timestamp()), window.since_ts)
    if since_ts >= window.until_ts:
        return 0
    return figure_reader(store, campaign, reader).newcomers_since(window, since_ts)


def campaign_size(store: Store, campaign: str, *, reader: ReaderChoice = "auto") -> int:
    """How many supporters' posts the campaign holds, any time (from the tallies when the campaign has them)."""
    return figure_reader(store, campaign, reader).member_count()


# --- accounts -----------------------------------------------------------------------------------


def top_accounts(store: Store, campaign: str, window: Window, by: str = "posts", limit: int = 10, *,
                 reader: ReaderChoice = "auto") -> list[AccountStat]:
    """Accounts ranked by posts, by engagement received (on their non-repost posts), or by followers."""
    if by not in ACCOUNT_ORDER:
        raise ValueError(f"top accounts by {by!r}: choose posts, engagement or followers")
    return figure_reader(store, campaign, reader).ranked_accounts(window, by, limit)


def accounts(store: Store, campaign: str, window: Window, *, reader: ReaderChoice = "auto") -> list[AccountStat]:
    """Every contributor of the window with posts and engagement received (for exports)."""
    return top_accounts(store, campaign, window, by="posts", limit=-1, reader=reader)


def contributor_directory(store: Store, campaign: str, window: Window, *,
                          reader: ReaderChoice = "auto") -> dict[str, tuple[str, int]]:
    """Every contributor of the window: uid -> (handle, followers), as exports look authors up."""
    return figure_reader(store, campaign, reader).contributor_directory(window)


# --- posts --------------------------------------------------------------------------------------

_POST_SELECT = (
    "SELECT p.uid, p.platform, p.created_at, p.kind, p.author_uid, a.handle, coalesce(a.followers_count, 0), "
    "p.text, p.url, p.lang, coalesce(p.like_count, 0), coalesce(p.repost_count, 0), coalesce(p.reply_count, 0), "
    "coalesce(p.quote_count, 0), p.impression_count, "
    f"CASE WHEN p.kind = 'repost' THEN 0 ELSE {ENGAGEMENT_SQL} END, p.ref_uid "
    "FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid LEFT JOIN accounts a ON a.uid = p.author_uid ")


def _post_stats(store: Store, rows: list[tuple[Any, ...]]) -> list[PostStat]:
    """PostStats of `_POST_SELECT` rows, with the author of each post they reference (one query for the few rows,
    not a join over every post of the window that the ranking reads)."""
    refs = [row[16] for row in rows if row[16]]
    authors: dict[str, tuple[str | None, int | None]] = {}
    if refs:
        authors = {uid: (handle, followers) for uid, handle, followers in store.conn.execute(
            "SELECT r.uid, ra.handle, ra.followers_count FROM posts r LEFT JOIN accounts ra ON ra.uid = r.author_uid "
            f"WHERE r.uid IN ({', '.join('?' * len(refs))})", refs)}
    stats = []
    for (uid, platform, created_at, kind, author_uid, handle, followers, text, url, lang, likes, reposts, replies,
         quotes, impressions, engagement, ref_uid) in rows:
        ref_handle, ref_followers = authors.get(ref_uid, (None, None)) if ref_uid else (None, None)
        stats.append(PostStat(
            uid=uid, platform=platform, created_at=parse_time(created_at), kind=kind, author_uid=author_uid,
            handle=handle or (author_uid or "unknown").split(":", 1)[-1], followers=followers, text=text or "",
            url=url, lang=lang, likes=likes, reposts=reposts, replies=replies, quotes=quotes, impressions=impressions,
            engagement=engagement, ref_handle=ref_handle, ref_followers=ref_followers))
    return stats


def top_posts(store: Store, campaign: str, window: Window, limit: int = 10) -> list[PostStat]:
    """Supporters' non-repost posts ranked by engagement received."""
    where, args = supporters_where(campaign, window)
    rows = store.conn.execute(
        _POST_SELECT + f"WHERE {where} AND c.kind != 'repost' ORDER BY 16 DESC, p.created_at ASC LIMIT ?",
        [*args, limit]).fetchall()
    return _post_stats(store, rows)


def latest_posts(store: Store, campaign: str, window: Window, limit: int = 8) -> list[PostStat]:
    """The supporters' newest posts of the window."""
    where, args = supporters_where(campaign, window)
    rows = store.conn.execute(_POST_SELECT + f"WHERE {where} ORDER BY c.ts DESC, c.post_uid DESC LIMIT ?",
                              [*args, limit]).fetchall()
    return _post_stats(store, rows)


# --- hashtags and mentions ----------------------------------------------------------------------


def tag_counts(store: Store, campaign: str, window: Window, tags: list[str] | None = None,
               exclude: list[str] | None = None, limit: int = -1, *,
               reader: ReaderChoice = "auto") -> list[tuple[str, int]]:
    """Posts per hashtag in the window, most used first: only `tags` when given, without `exclude`."""
    return figure_reader(store, campaign, reader).key_counts(window, "tags", tags, exclude, limit)


def mention_counts(store: Store, campaign: str, window: Window, handles: list[str], *,
                   reader: ReaderChoice = "auto") -> dict[str, int]:
    """Posts in the window mentioning each of `handles` (case-folded)."""
    return dict(figure_reader(store, campaign, reader).key_counts(window, "mentions", handles, None, -1))


def co_hashtags(store: Store, campaign: CampaignConfig, window: Window, limit: int = 10, *,
                reader: ReaderChoice = "auto") -> list[tuple[str, int]]:
    """Other hashtags the supporters used alongside the campaign's, by number of posts (the counter-hashtags are
    never among them: a post carrying one is a hijack candidate, not a supporter's)."""
    return tag_counts(store, campaign.name, window, limit=limit, reader=reader,
                      exclude=[t.casefold() for t in campaign.hashtags + campaign.counter_hashtags])


def campaign_hashtags(store: Store, campaign: CampaignConfig, window: Window, *,
                      reader: ReaderChoice = "auto") -> list[tuple[str, int]]:
    """How many posts carried each of the campaign's own hashtags."""
    counts = dict(tag_counts(store, campaign.name, window, tags=[t.casefold() for t in campaign.hashtags],
                             reader=reader))
    return [(tag, counts.get(tag.casefold(), 0)) for tag in campaign.hashtags]


def target_mentions(store: Store, campaign: CampaignConfig, window: Window, *,
                    reader: ReaderChoice = "auto") -> list[tuple[str, int]]:
    """For each target the campaign addresses on any platform, how many supporters' posts mention it (in config
    order: X, Mastodon, Bluesky). Mentions are stored as each platform writes them (`name`, `name@instance`,
    `name.bsky.social`), so a handle finds the mentions of its own platform."""
    targets = target_handles(campaign)
    if not targets:
        return []
    counts = mention_counts(store, campaign.name, window, [t.casefold() for t in targets], reader=reader)
    return [(target, counts.get(target.casefold(), 0)) for target in targets]


# --- coverage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageBucket:
    """Posts collected vs the platform's own count for one bucket (X counts endpoint)."""

    start: datetime
    collected: int
    counted: int | None


def counted_queries(config: Config, campaign: CampaignConfig, source: str) -> tuple[str, ...]:
    """The queries whose platform counts are the campaign's coverage on `source`: the ones the collector asks
    with now (X: the campaign's hashtags, split when long). Counts stored for any other query (an imported
    counts file for `dogs`, the hashtags of an earlier config) stay in the database and count for nothing here."""
    if source != "x":
        return ()
    try:
        return tuple(x_search_queries(campaign.hashtags, include_reposts=config.x.include_reposts,
                                      max_length=config.x.max_query_length))
    except ValueError:
        return ()


def coverage(store: Store, campaign: str, window: Window, bucket_seconds: int | None = None,
             source: str = "x", *, queries: Collection[str], reader: ReaderChoice = "auto") -> list[CoverageBucket]:
    """Collected posts (those the platform's counts count: no reposts on X) against the platform's counts of
    `queries` (`counted_queries`) per bucket; `counted` is None where no count was fetched. The counts of split
    queries add up (each counts its own hashtags)."""
    size = bucket_seconds or bucket_seconds_for(window)
    # the same origin as `volume`, so the platform's counts land in the buckets the collected posts are in
    origin = bucket_origin(window, size)
    found = find_platform(source)
    # A platform that counts what its search returns (X since 2026-05-04: no reposts) is compared like with like.
    collected = _collected_buckets(store, campaign, Window(window.since, window.until, source), origin, size,
                                   reposts=found is None or found.reports.counts_reposts)
    counted: dict[int, int] = {}
    wanted = list(dict.fromkeys(queries))
    marks = ", ".join("?" * len(wanted))
    for start, count in store.conn.execute(
            "SELECT bucket_start, sum(count) FROM volume_counts WHERE campaign = ? AND source = ? "
            f"AND query IN ({marks}) AND bucket_start >= ? AND bucket_start < ? GROUP BY bucket_start",
            (campaign, source, *wanted, iso_utc(window.since), iso_utc(window.until))):
        index = (int(parse_time(start).timestamp()) - origin) // size
        counted[index] = counted.get(index, 0) + count
    last_bucket = (window.until_ts - 1 - origin) // size
    return [CoverageBucket(start=from_epoch(origin + i * size), collected=collected.get(i, 0), counted=counted.get(i))
            for i in range(last_bucket + 1)]


def _collected_buckets(store: Store, campaign: str, window: Window, origin: int, size: int, *,
                       reposts: bool) -> dict[int, int]:
    """Members per bucket of a window, hijack candidates included (the platform counts every post its query
    matches), reposts only when the platform's counts count them."""
    where, args = window_where(campaign, window)
    return dict(store.conn.execute(f"SELECT (c.ts - ?) / ?, count(*) FROM campaign_posts c WHERE {where}"
                                   + ("" if reposts else " AND c.kind != 'repost'") + " GROUP BY 1",
                                   [origin, size, *args]).fetchall())


# --- summary ------------------------------------------------------------------------------------


DEFINITIONS = {
    "posts": "supporters' campaign posts collected in the window, all kinds",
    "contributors": "distinct accounts with at least one supporters' post (an account per platform)",
    "potential_reach": "sum of followers over distinct contributors (latest snapshot)",
    "potential_impressions": "sum over supporters' posts of the author's followers (a repost counts again)",
    "impressions": "sum of impression counts over supporters' non-repost posts, where the platform reports them",
    "engagement": "likes + reposts + replies + quotes received by supporters' non-repost posts, each post once",
    "peak_posts_per_minute": "supporters' posts in the busiest minute of the window",
    "hijack_posts": "campaign posts also carrying a counter-hashtag (hijack candidates)",
    "hijack_accounts": "distinct accounts that posted hijack candidates",
    "cost_usd": "estimated spend on every UTC day of the window (cost_days), and the plan's for the whole window",
    "cost_by_kind": "that spend by kind: posts, users (account reads), counts, trends, plan (unsplit: older runs)",
    "languages": "supporters' posts and distinct contributors per language, as each platform tagged the post (X "
                 "lang, Mastodon language, Bluesky's first langs), so one account can count in several; not stated "
                 "(null in JSON): no language, or only hashtags, links or mentions",
}
STREAM_DEFINITIONS = {
    "x_stream.connected_seconds": "seconds of the window (from the stream's start, up to now during the storm) "
                                  "that X's filtered stream was connected: reposts are collected only then",
    "x_stream.posts": "posts the stream's connections during the window stored for the campaign",
    "x_stream.gaps": "the parts of the window the stream was not connected, each with how the connection before "
                     "it ended",
    "x_stream.reposts_missed_estimate": ESTIMATE_NOTE,
}


@dataclass(frozen=True)
class Summary:
    """The figures `summary --json`, the report and the dashboard share."""

    campaign: str
    window: dict[str, Any]
    totals: CampaignTotals
    peak: Peak
    x_stream: StreamCoverage | None = None  # X's filtered stream over the window (None: off, or not read)
    x_stream_read: bool = False  # whether the stream was asked about (a summary read without the config was not)
    hijack_posts: int = 0  # campaign posts carrying a counter-hashtag: left out of every figure above
    hijack_accounts: int = 0
    cost: Spending | None = None  # what the window's UTC days cost (None: not read)
    languages: tuple[LanguageCount, ...] = ()  # most posts first, "not stated" last

    def to_json(self) -> dict[str, Any]:
        """One flat JSON object with the headline figures and a per-platform split. A figure a platform cannot
        give (Mastodon's and Bluesky's impressions, Bluesky's reposts) is null there, listed in its
        `not_reported` and in the top-level `not_reported` (`bluesky.reposts`); an overall figure no platform of
        the window gives is null too."""
        figures = self.totals.all.to_json()
        by_platform: dict[str, Any] = {}
        unreported: list[str] = []
        for name, platform_totals in self.totals.by_platform.items():
            missing = not_reported(name)
            by_platform[name] = {**platform_totals.to_json(), **dict.fromkeys(missing), "not_reported": list(missing)}
            unreported += [f"{name}.{figure}" for figure in missing]
        headline = {k: figures[k] for k in ("posts", "originals", "reposts", "quotes", "replies", "contributors",
                                            "potential_reach", "potential_impressions", "impressions", "engagement")}
        for figure in ("impressions", "reposts"):
            if by_platform and all(platform[figure] is None for platform in by_platform.values()):
                headline[figure] = None
        return {
            "campaign": self.campaign,
            "window": self.window,
            **headline,
            "peak_minute": iso_utc(self.peak.minute) if self.peak.minute is not None else None,
            "peak_posts_per_minute": self.peak.posts,
            "hijack_posts": self.hijack_posts,
            "hijack_accounts": self.hijack_accounts,
            **(self.cost.to_json() if self.cost is not None else {}),
            "first_post_at": figures["first_post_at"],
            "last_post_at": figures["last_post_at"],
            "by_platform": by_platform,
            "languages": [language.to_json() for language in self.languages],
            "not_reported": unreported,
            "definitions": {**DEFINITIONS, **(STREAM_DEFINITIONS if self.x_stream is not None else {})},
            # null when the stream is off or the campaign does not collect X: not reported, never 0
            **({"x_stream": self.x_stream.to_json() if self.x_stream else None} if self.x_stream_read else {}),
        }


def summary(store: Store, campaign: CampaignConfig, window: Window, *, reader: ReaderChoice = "auto",
            config: Config | None = None, now: datetime | None = None) -> Summary:
    """Headline figures for a campaign window; with the config, X's filtered stream over it as of `now` too."""
    stream = stream_coverage(store, config, campaign, window, now or config.clock.now()) if config else None
    hijack_posts, hijack_accounts = hijacks(store, campaign.name, window)
    return Summary(campaign=campaign.name, window=window.to_json(),
                   totals=totals(store, campaign.name, window, reader=reader),
                   peak=peak_minute(store, campaign.name, window, reader=reader),
                   x_stream=stream, x_stream_read=config is not None, hijack_posts=hijack_posts,
                   hijack_accounts=hijack_accounts, cost=storm_spending(store, campaign, window.since, window.until),
                   languages=tuple(languages(store, campaign, window)))


def hijacks(store: Store, campaign: str, window: Window) -> tuple[int, int]:
    """(posts, distinct accounts) of the window's hijack candidates: campaign posts carrying a counter-hashtag."""
    where, args = window_where(campaign, window)
    row = store.conn.execute(f"SELECT count(*), count(DISTINCT c.author_uid) FROM campaign_posts c WHERE {where} "
                             "AND c.hijack = 1", args).fetchone()
    return int(row[0]), int(row[1])
