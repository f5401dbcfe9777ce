"""Read-only queries returning plain dataclasses: campaign metrics and collector health.

Every figure follows DESIGN.md's definitions and states its window ([since, until), UTC) and platform
filter. The dashboard, the report and `summary --json` all read these functions, never SQL of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from .config import CampaignConfig, Config
from .models import Cursor, RunRecord
from .store import Store, tallies, utc_day
from .store.schema import BUSY_POSTS
from .times import from_epoch, iso_utc

# Figures for a campaign's registered storm window come from the running tallies the store keeps (a handful
# of rows, whatever the campaign's size); any other window is counted from the rows. Tests turn this off to
# check that both give the same answer.
USE_TALLIES = True

ENGAGEMENT_SQL = ("coalesce(p.like_count, 0) + coalesce(p.repost_count, 0) + coalesce(p.reply_count, 0) "
                  "+ coalesce(p.quote_count, 0)")
BUCKET_CHOICES = ((timedelta(hours=3), 60), (timedelta(hours=36), 300), (timedelta(days=10), 3600))


# --- windows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The span and platform a metric covers: since <= created_at < until."""

    since: datetime
    until: datetime
    platform: str | None = None

    @property
    def since_ts(self) -> int:
        """`since` as epoch seconds."""
        return int(self.since.timestamp())

    @property
    def until_ts(self) -> int:
        """`until` as epoch seconds."""
        return int(self.until.timestamp())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description of the window."""
        return {"since": iso_utc(self.since), "until": iso_utc(self.until), "platform": self.platform or "all"}


def campaign_window(campaign: CampaignConfig, since: datetime | None = None, until: datetime | None = None,
                    platform: str | None = None) -> Window:
    """The campaign's storm window, narrowed or widened by explicit `since`/`until`."""
    return Window(since or campaign.start, until or campaign.end, platform)


def bucket_seconds_for(window: Window) -> int:
    """Bucket size for charts: a minute for spans up to 3 h, 5 minutes up to 36 h, else an hour (or a day)."""
    span = window.until - window.since
    for limit, seconds in BUCKET_CHOICES:
        if span <= limit:
            return seconds
    return 86400


def _tallied(store: Store, campaign: str, window: Window) -> bool:
    """Whether the running tallies cover exactly this window (the campaign's registered storm window)."""
    if not USE_TALLIES:
        return False
    return tallies.window_of(store.conn, campaign) == (window.since_ts, window.until_ts)


def _minute_aligned(window: Window) -> bool:
    return window.since_ts % 60 == 0 and window.until_ts % 60 == 0


def _minutes(campaign: str, first: int, end: int, platform: str | None) -> tuple[str, list[Any]]:
    """`WHERE` text and arguments for tally_minutes rows of minutes [first, end), optionally one platform."""
    sql = "campaign = ? AND minute >= ? AND minute < ?" + (" AND platform = ?" if platform else "")
    return sql, [campaign, first, end, *([platform] if platform else [])]


def _where(campaign: str, window: Window, alias: str = "c") -> tuple[str, list[Any]]:
    sql = f"{alias}.campaign = ? AND {alias}.ts >= ? AND {alias}.ts < ?"
    args: list[Any] = [campaign, window.since_ts, window.until_ts]
    if window.platform:
        sql += f" AND {alias}.platform = ?"
        args.append(window.platform)
    return sql, args


# --- totals -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """Headline figures for one window (and one platform, or all)."""

    posts: int = 0
    originals: int = 0
    reposts: int = 0
    quotes: int = 0
    replies: int = 0
    contributors: int = 0
    potential_reach: int = 0
    potential_impressions: int = 0
    impressions: int = 0
    engagement: int = 0
    first_post_at: str | None = None
    last_post_at: str | None = None


@dataclass(frozen=True)
class CampaignTotals:
    """Totals for the whole campaign and for each platform."""

    all: Totals
    by_platform: dict[str, Totals] = field(default_factory=dict)


def totals(store: Store, campaign: str, window: Window) -> CampaignTotals:
    """Posts by kind, contributors, reach, impressions and engagement, overall and per platform."""
    if _tallied(store, campaign, window):
        rows = store.conn.execute(
            "SELECT platform, posts, originals, reposts, quotes, replies, contributors, potential_reach, "
            "potential_impressions, impressions, engagement, first_ts, last_ts FROM tally_totals "
            "WHERE campaign = ? AND posts > 0 ORDER BY platform", (campaign,)).fetchall()
        by_platform = {row[0]: _totals_row(*row[1:]) for row in rows
                       if window.platform is None or row[0] == window.platform}
        return CampaignTotals(all=_combine(by_platform.values()), by_platform=by_platform)
    where, args = _where(campaign, window)
    posts_rows = store.conn.execute(
        "SELECT c.platform, count(*), sum(c.kind = 'original'), sum(c.kind = 'repost'), sum(c.kind = 'quote'), "
        "sum(c.kind = 'reply'), "
        "coalesce(sum(CASE WHEN c.kind != 'repost' THEN coalesce(p.impression_count, 0) END), 0), "
        f"coalesce(sum(CASE WHEN c.kind != 'repost' THEN {ENGAGEMENT_SQL} END), 0), min(c.ts), max(c.ts) "
        f"FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE {where} GROUP BY c.platform",
        args).fetchall()
    # Each contributor once: their followers make the reach; followers times their posts the potential impressions.
    people = {row[0]: row[1:] for row in store.conn.execute(
        "SELECT d.platform, count(*), coalesce(sum(coalesce(a.followers_count, 0)), 0), "
        "coalesce(sum(coalesce(a.followers_count, 0) * d.posts), 0) FROM ("
        f"SELECT c.platform, c.author_uid, count(*) AS posts FROM campaign_posts c WHERE {where} "
        "AND c.author_uid IS NOT NULL GROUP BY c.author_uid) d LEFT JOIN accounts a ON a.uid = d.author_uid "
        "GROUP BY d.platform", args)}
    by_platform = {}
    for platform, *counted in sorted(posts_rows):
        posts, originals, reposts, quotes, replies, impressions, engagement, first, last = counted
        contributors, reach, potential = people.get(platform, (0, 0, 0))
        by_platform[platform] = _totals_row(posts, originals, reposts, quotes, replies, contributors, reach,
                                            potential, impressions, engagement, first, last)
    return CampaignTotals(all=_combine(by_platform.values()), by_platform=by_platform)


def _totals_row(posts: int, originals: int, reposts: int, quotes: int, replies: int, contributors: int, reach: int,
                potential: int, impressions: int, engagement: int, first: int | None, last: int | None) -> Totals:
    return Totals(posts=posts, originals=originals, reposts=reposts, quotes=quotes, replies=replies,
                  contributors=contributors, potential_reach=reach, potential_impressions=potential,
                  impressions=impressions, engagement=engagement,
                  first_post_at=iso_utc(from_epoch(first)) if first is not None else None,
                  last_post_at=iso_utc(from_epoch(last)) if last is not None else None)


def _combine(parts: Any) -> Totals:
    """Platform totals added up: accounts are per platform, so contributors and reach simply add."""
    parts = list(parts)
    if not parts:
        return Totals()
    summed = {name: sum(getattr(p, name) for p in parts) for name in (
        "posts", "originals", "reposts", "quotes", "replies", "contributors", "potential_reach",
        "potential_impressions", "impressions", "engagement")}
    firsts = [p.first_post_at for p in parts if p.first_post_at]
    lasts = [p.last_post_at for p in parts if p.last_post_at]
    return Totals(**summed, first_post_at=min(firsts) if firsts else None, last_post_at=max(lasts) if lasts else None)


# --- volume -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeBucket:
    """Posts in one time bucket, per platform, with new and cumulative contributors."""

    start: str
    posts: int
    by_platform: dict[str, int]
    new_contributors: int
    cumulative_posts: int
    cumulative_contributors: int


@dataclass(frozen=True)
class Volume:
    """Posts per bucket over a window; empty buckets included so charts show the gaps."""

    bucket_seconds: int
    buckets: tuple[VolumeBucket, ...]


def volume(store: Store, campaign: str, window: Window, bucket_seconds: int | None = None) -> Volume:
    """Posts per bucket (minute / 5 min / hour by span unless given) and new contributors per bucket."""
    size = bucket_seconds or bucket_seconds_for(window)
    origin = window.since_ts - window.since_ts % size if size < 86400 else window.since_ts
    counts: dict[int, dict[str, int]] = {}
    newcomers: dict[int, int] = {}
    if _tallied(store, campaign, window) and _minute_aligned(window) and size % 60 == 0 and origin % 60 == 0:
        where, args = _minutes(campaign, window.since_ts // 60, window.until_ts // 60, window.platform)
        for minute, platform, posts, joined in store.conn.execute(
                f"SELECT minute, platform, posts, newcomers FROM tally_minutes WHERE {where}", args):
            bucket = (minute * 60 - origin) // size
            cell = counts.setdefault(bucket, {})
            cell[platform] = cell.get(platform, 0) + posts
            newcomers[bucket] = newcomers.get(bucket, 0) + joined
    else:
        where, args = _where(campaign, window)
        for bucket, platform, posts in store.conn.execute(
                f"SELECT (c.ts - ?) / ?, c.platform, count(*) FROM campaign_posts c WHERE {where} GROUP BY 1, 2",
                [origin, size, *args]):
            counts.setdefault(bucket, {})[platform] = posts
        newcomers = dict(store.conn.execute(
            f"SELECT (first_ts - ?) / ?, count(*) FROM (SELECT min(c.ts) AS first_ts FROM campaign_posts c "
            f"WHERE {where} AND c.author_uid IS NOT NULL GROUP BY c.author_uid) GROUP BY 1",
            [origin, size, *args]).fetchall())
    last_bucket = (window.until_ts - 1 - origin) // size
    buckets = []
    cumulative_posts = cumulative_contributors = 0
    for index in range(0, last_bucket + 1):
        by_platform = counts.get(index, {})
        posts = sum(by_platform.values())
        cumulative_posts += posts
        cumulative_contributors += newcomers.get(index, 0)
        buckets.append(VolumeBucket(
            start=iso_utc(from_epoch(origin + index * size)), posts=posts,
            by_platform=dict(sorted(by_platform.items())), new_contributors=newcomers.get(index, 0),
            cumulative_posts=cumulative_posts, cumulative_contributors=cumulative_contributors))
    return Volume(bucket_seconds=size, buckets=tuple(buckets))


@dataclass(frozen=True)
class Peak:
    """The busiest minute of a window."""

    minute: str | None
    posts: int


def peak_minute(store: Store, campaign: str, window: Window) -> Peak:
    """The minute with the most posts (the earliest of equals)."""
    if _tallied(store, campaign, window) and _minute_aligned(window):
        where, args = _minutes(campaign, window.since_ts // 60, window.until_ts // 60, window.platform)
        row = store.conn.execute(f"SELECT minute, sum(posts) AS n FROM tally_minutes WHERE {where} "
                                 "GROUP BY minute ORDER BY n DESC, minute ASC LIMIT 1", args).fetchone()
    else:
        where, args = _where(campaign, window)
        row = store.conn.execute(
            f"SELECT c.ts / 60 AS minute, count(*) AS n FROM campaign_posts c WHERE {where} "
            "GROUP BY minute ORDER BY n DESC, minute ASC LIMIT 1", args).fetchone()
    if row is None or not row[1]:
        return Peak(None, 0)
    return Peak(iso_utc(from_epoch(row[0] * 60)), row[1])


def per_minute(store: Store, campaign: str, since: datetime, until: datetime, platform: str | None = None) -> list[int]:
    """Posts in each minute from `since` (floored to the minute) to `until`, zeros included (any window)."""
    start = int(since.timestamp()) // 60
    end = -(-int(until.timestamp()) // 60)
    if USE_TALLIES and tallies.window_of(store.conn, campaign) is not None:
        # tally_minutes counts every member post, inside the storm window or not
        where, args = _minutes(campaign, start, end, platform)
        counts = dict(store.conn.execute(
            f"SELECT minute, sum(posts) FROM tally_minutes WHERE {where} GROUP BY minute", args).fetchall())
    else:
        where, args = _where(campaign, Window(from_epoch(start * 60), from_epoch(end * 60), platform))
        counts = dict(store.conn.execute(
            f"SELECT c.ts / 60, count(*) FROM campaign_posts c WHERE {where} GROUP BY 1", args).fetchall())
    return [counts.get(minute, 0) for minute in range(start, end)]


def split_by_posts(store: Store, campaign: str, window: Window, parts: int) -> list[datetime]:
    """Minute boundaries that split the window's posts into `parts` runs of about equal size (parts - 1 times)."""
    if parts < 2:
        return []
    minutes = per_minute(store, campaign, window.since, window.until, window.platform)
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


def new_contributors(store: Store, campaign: str, window: Window, since: datetime) -> int:
    """Accounts whose first post in the window came at or after `since` (people joining lately)."""
    since_ts = max(int(since.timestamp()), window.since_ts)
    if since_ts >= window.until_ts:
        return 0
    if _tallied(store, campaign, window) and _minute_aligned(window) and since_ts % 60 == 0:
        where, args = _minutes(campaign, since_ts // 60, window.until_ts // 60, window.platform)
        row = store.conn.execute(f"SELECT coalesce(sum(newcomers), 0) FROM tally_minutes WHERE {where}",
                                 args).fetchone()
        return int(row[0])
    where, args = _where(campaign, window)
    row = store.conn.execute(
        f"SELECT count(*) FROM (SELECT min(c.ts) AS first_ts FROM campaign_posts c WHERE {where} "
        "AND c.author_uid IS NOT NULL GROUP BY c.author_uid) WHERE first_ts >= ?", [*args, since_ts]).fetchone()
    return int(row[0])


# --- accounts, posts, tags ----------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a report builds one per contributor, hundreds of thousands
class AccountStat:
    """One account's part in the window."""

    uid: str
    platform: str
    handle: str
    name: str | None
    followers: int
    posts: int
    engagement: int


_ACCOUNT_ORDER = {"posts": "posts DESC, engagement DESC", "engagement": "engagement DESC, posts DESC",
                  "followers": "followers DESC, posts DESC"}


def top_accounts(store: Store, campaign: str, window: Window, by: str = "posts", limit: int = 10) -> list[AccountStat]:
    """Accounts ranked by posts, by engagement received (on their non-repost posts), or by followers."""
    if by not in _ACCOUNT_ORDER:
        raise ValueError(f"top accounts by {by!r}: choose posts, engagement or followers")
    if _tallied(store, campaign, window):
        platform_sql = " AND platform = ?" if window.platform else ""
        args: list[Any] = [campaign, *([window.platform] if window.platform else [])]
        source = f"(SELECT author_uid, posts, engagement FROM tally_authors WHERE campaign = ?{platform_sql})"
        if by == "posts" and limit > 0:
            # The busiest accounts are indexed by post count: when at least `limit` of them are busy, the
            # top is everyone with at least as many posts as the limit-th busiest (ties included).
            row = store.conn.execute(
                f"SELECT posts FROM tally_authors WHERE campaign = ? AND posts >= {BUSY_POSTS}{platform_sql} "
                "ORDER BY posts DESC LIMIT 1 OFFSET ?", [*args, limit - 1]).fetchone()
            if row is not None:
                # BETWEEN (not >=) so that SQLite seeks to the threshold in the index instead of scanning
                # every busy account from the partial index's own bound.
                busy = ("(SELECT author_uid, posts, engagement FROM tally_authors WHERE campaign = ? "
                        f"AND posts >= {BUSY_POSTS} AND posts BETWEEN ? AND {2**63 - 1}{platform_sql})")
                return _ranked_accounts(store, busy, [campaign, row[0], *args[1:]], by, limit)
    else:
        where, args = _where(campaign, window)
        source = ("(SELECT c.author_uid, count(*) AS posts, "
                  f"coalesce(sum(CASE WHEN c.kind != 'repost' THEN {ENGAGEMENT_SQL} END), 0) AS engagement "
                  f"FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE {where} "
                  "AND c.author_uid IS NOT NULL GROUP BY c.author_uid)")
    return _ranked_accounts(store, source, args, by, limit)


def _ranked_accounts(store: Store, source: str, args: list[Any], by: str, limit: int) -> list[AccountStat]:
    rows = store.conn.execute(
        "SELECT s.author_uid, a.platform, a.handle, a.name, coalesce(a.followers_count, 0) AS followers, "
        f"s.posts, s.engagement FROM {source} s LEFT JOIN accounts a ON a.uid = s.author_uid "
        f"ORDER BY {_ACCOUNT_ORDER[by]}, s.author_uid LIMIT ?", [*args, limit]).fetchall()
    return [_account_stat(row) for row in rows]


def contributor_directory(store: Store, campaign: str, window: Window) -> dict[str, tuple[str, int]]:
    """Every contributor of the window: uid -> (handle, followers), as exports look authors up."""
    if _tallied(store, campaign, window):
        platform_sql = " AND t.platform = ?" if window.platform else ""
        rows = store.conn.execute(
            "SELECT t.author_uid, a.handle, coalesce(a.followers_count, 0) FROM tally_authors t "
            f"LEFT JOIN accounts a ON a.uid = t.author_uid WHERE t.campaign = ?{platform_sql}",
            [campaign, *([window.platform] if window.platform else [])])
    else:
        where, args = _where(campaign, window)
        rows = store.conn.execute(
            "SELECT d.author_uid, a.handle, coalesce(a.followers_count, 0) FROM (SELECT DISTINCT c.author_uid "
            f"FROM campaign_posts c WHERE {where} AND c.author_uid IS NOT NULL) d "
            "LEFT JOIN accounts a ON a.uid = d.author_uid", args)
    return {uid: (handle or uid.split(":", 1)[-1], followers) for uid, handle, followers in rows}


def _account_stat(row: tuple[Any, ...]) -> AccountStat:
    uid, platform, handle, name, followers, posts, engagement = row
    return AccountStat(uid, platform or uid.split(":", 1)[0], handle or uid.split(":", 1)[-1], name, followers,
                       posts, engagement)


def accounts(store: Store, campaign: str, window: Window) -> list[AccountStat]:
    """Every contributor of the window with posts and engagement received (for exports)."""
    return top_accounts(store, campaign, window, by="posts", limit=-1)


@dataclass(frozen=True)
class PostStat:
    """One post with its author and engagement."""

    uid: str
    platform: str
    created_at: str
    kind: str
    author_uid: str | None
    handle: str
    followers: int
    text: str
    url: str | None
    lang: str | None
    likes: int
    reposts: int
    replies: int
    quotes: int
    impressions: int | None
    engagement: int
    tags: tuple[str, ...] = ()


_POST_SELECT = (
    "SELECT p.uid, p.platform, p.created_at, p.kind, p.author_uid, a.handle, coalesce(a.followers_count, 0), "
    "p.text, p.url, p.lang, coalesce(p.like_count, 0), coalesce(p.repost_count, 0), coalesce(p.reply_count, 0), "
    "coalesce(p.quote_count, 0), p.impression_count, "
    f"CASE WHEN p.kind = 'repost' THEN 0 ELSE {ENGAGEMENT_SQL} END "
    "FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid LEFT JOIN accounts a ON a.uid = p.author_uid ")


def _post_stat(row: tuple[Any, ...]) -> PostStat:
    (uid, platform, created_at, kind, author_uid, handle, followers, text, url, lang, likes, reposts, replies, quotes,
     impressions, engagement) = row
    return PostStat(uid=uid, platform=platform, created_at=created_at, kind=kind, author_uid=author_uid,
                    handle=handle or (author_uid or "unknown").split(":", 1)[-1], followers=followers, text=text or "",
                    url=url, lang=lang, likes=likes, reposts=reposts, replies=replies, quotes=quotes,
                    impressions=impressions, engagement=engagement)


def top_posts(store: Store, campaign: str, window: Window, limit: int = 10) -> list[PostStat]:
    """Non-repost posts ranked by engagement received."""
    where, args = _where(campaign, window)
    rows = store.conn.execute(
        _POST_SELECT + f"WHERE {where} AND c.kind != 'repost' ORDER BY 16 DESC, p.created_at ASC LIMIT ?",
        [*args, limit]).fetchall()
    return [_post_stat(row) for row in rows]


def latest_posts(store: Store, campaign: str, window: Window, limit: int = 8) -> list[PostStat]:
    """The newest posts of the window."""
    where, args = _where(campaign, window)
    rows = store.conn.execute(_POST_SELECT + f"WHERE {where} ORDER BY c.ts DESC, c.post_uid DESC LIMIT ?",
                              [*args, limit]).fetchall()
    return [_post_stat(row) for row in rows]


def tag_counts(store: Store, campaign: str, window: Window, tags: list[str] | None = None,
               exclude: list[str] | None = None, limit: int = -1) -> list[tuple[str, int]]:
    """Posts per hashtag in the window, most used first: only `tags` when given, without `exclude`."""
    return _counts(store, campaign, window, "tally_tags", "post_tags", "tag", tags, exclude, limit)


def mention_counts(store: Store, campaign: str, window: Window, handles: list[str]) -> dict[str, int]:
    """Posts in the window mentioning each of `handles` (case-folded)."""
    return dict(_counts(store, campaign, window, "tally_mentions", "post_mentions", "handle", handles, None, -1))


def _counts(store: Store, campaign: str, window: Window, tally: str, table: str, column: str,
            only: list[str] | None, exclude: list[str] | None, limit: int) -> list[tuple[str, int]]:
    """Posts per tag or mention, from the tallies when they cover the window, else from the rows."""
    filters, values = "", []
    if only is not None:
        filters += f" AND x.{column} IN ({','.join('?' * len(only))})"
        values += only
    if exclude:
        filters += f" AND x.{column} NOT IN ({','.join('?' * len(exclude))})"
        values += exclude
    if _tallied(store, campaign, window) and window.platform is None:
        sql = (f"SELECT x.{column}, x.posts AS n FROM {tally} x WHERE x.campaign = ?{filters} "
               f"ORDER BY n DESC, x.{column} LIMIT ?")
        return [tuple(row) for row in store.conn.execute(sql, [campaign, *values, limit])]
    where, args = _where(campaign, window)
    sql = (f"SELECT x.{column}, count(*) AS n FROM campaign_posts c JOIN {table} x ON x.post_uid = c.post_uid "
           f"WHERE {where}{filters} GROUP BY x.{column} ORDER BY n DESC, x.{column} LIMIT ?")
    return [tuple(row) for row in store.conn.execute(sql, [*args, *values, limit])]


def co_hashtags(store: Store, campaign: CampaignConfig, window: Window, limit: int = 10) -> list[tuple[str, int]]:
    """Other hashtags used alongside the campaign's, by number of posts."""
    return tag_counts(store, campaign.name, window, exclude=[t.casefold() for t in campaign.hashtags], limit=limit)


def campaign_hashtags(store: Store, campaign: CampaignConfig, window: Window) -> list[tuple[str, int]]:
    """How many posts carried each of the campaign's own hashtags."""
    counts = dict(tag_counts(store, campaign.name, window, tags=[t.casefold() for t in campaign.hashtags]))
    return [(tag, counts.get(tag.casefold(), 0)) for tag in campaign.hashtags]


def target_mentions(store: Store, campaign: CampaignConfig, window: Window) -> list[tuple[str, int]]:
    """For each target the campaign addresses, how many posts mention it (in config order)."""
    if not campaign.targets:
        return []
    counts = mention_counts(store, campaign.name, window, [t.casefold() for t in campaign.targets])
    return [(target, counts.get(target.casefold(), 0)) for target in campaign.targets]


def campaign_size(store: Store, campaign: str) -> int:
    """How many posts the campaign holds, any time (from the tallies when the campaign has them)."""
    if USE_TALLIES and tallies.window_of(store.conn, campaign) is not None:
        row = store.conn.execute("SELECT coalesce(sum(posts), 0) FROM tally_minutes WHERE campaign = ?",
                                 (campaign,)).fetchone()
        return int(row[0])
    return store.count_campaign_posts(campaign)


# --- coverage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageBucket:
    """Posts collected vs the platform's own count for one bucket (X counts endpoint)."""

    start: str
    collected: int
    counted: int | None


def coverage(store: Store, campaign: str, window: Window, bucket_seconds: int | None = None,
             source: str = "x") -> list[CoverageBucket]:
    """Collected posts against the platform's counts per bucket; `counted` is None where no count was fetched."""
    size = bucket_seconds or bucket_seconds_for(window)
    # the same origin as `volume`, so the platform's counts land in the buckets the collected posts are in
    origin = window.since_ts - window.since_ts % size if size < 86400 else window.since_ts
    collected = volume(store, campaign, Window(window.since, window.until, source), size)
    counted: dict[int, int] = {}
    for start, count in store.conn.execute(
            "SELECT bucket_start, sum(count) FROM volume_counts WHERE campaign = ? AND source = ? "
            "AND bucket_start >= ? AND bucket_start < ? GROUP BY bucket_start",
            (campaign, source, iso_utc(window.since), iso_utc(window.until))):
        moment = int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp())
        index = (moment - origin) // size
        counted[index] = counted.get(index, 0) + count
    return [CoverageBucket(start=b.start, collected=b.posts, counted=counted.get(i))
            for i, b in enumerate(collected.buckets)]


# --- summary ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The figures `summary --json`, the report and the dashboard share."""

    campaign: str
    window: dict[str, Any]
    totals: CampaignTotals
    peak: Peak

    def to_json(self) -> dict[str, Any]:
        """One flat JSON object with the headline figures and a per-platform split."""
        figures = asdict(self.totals.all)
        return {
            "campaign": self.campaign,
            "window": self.window,
            **{k: figures[k] for k in ("posts", "originals", "reposts", "quotes", "replies", "contributors",
                                       "potential_reach", "potential_impressions", "impressions", "engagement")},
            "peak_minute": self.peak.minute,
            "peak_posts_per_minute": self.peak.posts,
            "first_post_at": figures["first_post_at"],
            "last_post_at": figures["last_post_at"],
            "by_platform": {name: asdict(t) for name, t in self.totals.by_platform.items()},
            "definitions": DEFINITIONS,
        }


DEFINITIONS = {
    "posts": "campaign posts collected in the window, all kinds",
    "contributors": "distinct accounts that posted (an account per platform)",
    "potential_reach": "sum of followers over distinct contributors (latest snapshot)",
    "potential_impressions": "sum over posts of the author's followers (a repost counts again)",
    "impressions": "sum of impression counts over non-repost posts, where the platform reports them",
    "engagement": "likes + reposts + replies + quotes received by non-repost posts, each post once",
    "peak_posts_per_minute": "posts in the busiest minute of the window",
}


def summary(store: Store, campaign: CampaignConfig, window: Window) -> Summary:
    """Headline figures for a campaign window."""
    return Summary(campaign=campaign.name, window=window.to_json(), totals=totals(store, campaign.name, window),
                   peak=peak_minute(store, campaign.name, window))


# --- collector health ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CursorState:
    """Where one query's collection stands."""

    query: str
    position: str | None
    pending: bool
    since: str | None
    updated_at: str


@dataclass(frozen=True)
class SourceHealth:
    """One source of one campaign: its last run, cursors, errors, requests and spend today."""

    source: str
    last_run: RunRecord | None
    last_success_at: str | None
    backoff_until: str | None
    cursors: tuple[CursorState, ...]
    runs_today: int
    requests_today: int
    spent_today_usd: float
    recent_errors: tuple[str, ...]


@dataclass(frozen=True)
class CampaignHealth:
    """Collection status of one campaign."""

    name: str
    window_start: str
    window_end: str
    posts: int
    daily_budget_usd: float | None
    spent_today_usd: float
    sources: tuple[SourceHealth, ...]


@dataclass(frozen=True)
class CollectionStatus:
    """Collection status of every selected campaign, as of `now` (storm clock)."""

    database: str
    now: str
    campaigns: tuple[CampaignHealth, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def collection_status(store: Store, config: Config, campaigns: tuple[CampaignConfig, ...],
                      now: datetime | None = None) -> CollectionStatus:
    """Campaigns, sources, cursors, last runs, errors, requests and spend."""
    now = now or config.clock.now()
    return CollectionStatus(database=str(store.path), now=iso_utc(now),
                            campaigns=tuple(campaign_health(store, c, now) for c in campaigns))


def campaign_health(store: Store, campaign: CampaignConfig, now: datetime) -> CampaignHealth:
    """Collection status of one campaign."""
    day = utc_day(now)
    cursors = store.cursors(campaign.name)
    sources = tuple(_source_health(store, campaign.name, source, cursors, day) for source in campaign.sources)
    return CampaignHealth(
        name=campaign.name, window_start=iso_utc(campaign.start), window_end=iso_utc(campaign.end),
        posts=campaign_size(store, campaign.name), daily_budget_usd=campaign.daily_budget_usd,
        spent_today_usd=round(store.spent(campaign.name, day), 4), sources=sources)


def _source_health(store: Store, campaign: str, source: str, cursors: list[tuple[Cursor, str]],
                   day: str) -> SourceHealth:
    runs = store.last_runs(campaign, source, limit=50)
    finished = [r for r in runs if r.status != "running"]
    runs_today, requests_today, spent_today = store.run_totals(campaign, source, day)
    backoff = store.backoff_until(campaign, source)
    errors = tuple(dict.fromkeys(f"{r.started_at}: {r.error}" for r in finished[:10] if r.error))[:5]
    return SourceHealth(
        source=source,
        last_run=runs[0] if runs else None,
        last_success_at=next((r.finished_at for r in finished if r.status in ("ok", "partial")), None),
        backoff_until=iso_utc(backoff) if backoff else None,
        cursors=tuple(CursorState(c.query, c.position, c.pending is not None, c.since, updated)
                      for c, updated in cursors if c.source == source),
        runs_today=runs_today,
        requests_today=requests_today,
        spent_today_usd=round(spent_today, 4),
        recent_errors=errors,
    )


# --- report helpers ---


@dataclass(frozen=True, slots=True)  # a report holds one per mentioned account: a hundred thousand at scale
class KnownAccount:
    """An account the accounts table knows, as the report's naming rules need it."""

    uid: str
    platform: str
    handle: str
    followers: int


def mentioned_accounts(store: Store, campaign: str, window: Window) -> list[KnownAccount]:
    """Known accounts whose handle the window's campaign posts mention (matched per platform, case-insensitively)."""
    # Mentions are stored case-folded; SQLite's lower() folds ASCII, which covers the platforms' handle alphabets.
    # A handle mentioned but unknown here stays unknown: the report hides it.
    if _tallied(store, campaign, window) and window.platform is None:
        # The tally has no platform: accounts of another platform with a mentioned handle come along, and
        # are only ever looked up for mentions on their own platform.
        rows = store.conn.execute(
            "SELECT a.uid, a.platform, a.handle, coalesce(a.followers_count, 0) FROM accounts a "
            "WHERE lower(a.handle) IN (SELECT handle FROM tally_mentions WHERE campaign = ?) ORDER BY a.uid",
            (campaign,)).fetchall()
        return [KnownAccount(*row) for row in rows]
    where, args = _where(campaign, window)
    rows = store.conn.execute(
        "SELECT a.uid, a.platform, a.handle, coalesce(a.followers_count, 0) FROM accounts a "
        "WHERE (a.platform, lower(a.handle)) IN (SELECT DISTINCT c.platform, m.handle FROM campaign_posts c "
        f"JOIN post_mentions m ON m.post_uid = c.post_uid WHERE {where}) ORDER BY a.uid", args).fetchall()
    return [KnownAccount(*row) for row in rows]


class PostRow(NamedTuple):
    """One post for exports, as a plain tuple: the author as a uid (exports look accounts up once each)."""

    uid: str
    platform: str
    created_at: str
    kind: str
    author_uid: str | None
    text: str
    url: str | None
    lang: str | None
    likes: int
    reposts: int
    replies: int
    quotes: int
    impressions: int | None
    engagement: int
    tags: str


def iter_post_rows(store: Store, campaign: str, window: Window) -> Iterator[PostRow]:
    """Every post of the window in time order, with its tags, as plain tuples (streams a million rows).

    Accounts are not joined in: a million random lookups cost seconds, and an export already holds every
    contributor (`accounts`) to look authors up in.
    """
    where, args = _where(campaign, window)
    cursor = store.conn.execute(
        "SELECT p.uid, p.platform, p.created_at, p.kind, p.author_uid, coalesce(p.text, ''), p.url, p.lang, "
        "coalesce(p.like_count, 0), coalesce(p.repost_count, 0), coalesce(p.reply_count, 0), "
        "coalesce(p.quote_count, 0), p.impression_count, "
        f"CASE WHEN p.kind = 'repost' THEN 0 ELSE {ENGAGEMENT_SQL} END, "
        "coalesce((SELECT group_concat(t.tag, ' ') FROM post_tags t WHERE t.post_uid = p.uid), '') "
        f"FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE {where} ORDER BY c.ts, c.post_uid", args)
    # Plain tuples in PostRow's field order: naming a million of them costs a second the export does not need.
    yield from cursor


@dataclass(frozen=True)
class SourceRuns:
    """How collection went for one source of a campaign: runs by status and the span they cover."""

    source: str
    runs: int
    by_status: dict[str, int]
    first_started_at: str | None
    last_finished_at: str | None
    posts_new: int


def run_history(store: Store, campaign: str) -> list[SourceRuns]:
    """Collection runs per source of a campaign (counts by status, first start, last finish, posts stored)."""
    grouped: dict[str, dict[str, Any]] = {}
    for source, status, runs, first, last, posts_new in store.conn.execute(
            "SELECT source, status, count(*), min(started_at), max(finished_at), coalesce(sum(posts_new), 0) "
            "FROM runs WHERE campaign = ? GROUP BY source, status ORDER BY source, status", (campaign,)):
        entry = grouped.setdefault(source, {"runs": 0, "by_status": {}, "first": None, "last": None, "posts": 0})
        entry["runs"] += runs
        entry["by_status"][status] = runs
        entry["first"] = min(filter(None, (entry["first"], first)), default=None)
        entry["last"] = max(filter(None, (entry["last"], last)), default=None)
        entry["posts"] += posts_new
    return [SourceRuns(source=source, runs=e["runs"], by_status=e["by_status"], first_started_at=e["first"],
                       last_finished_at=e["last"], posts_new=e["posts"]) for source, e in grouped.items()]
