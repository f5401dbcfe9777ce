"""Campaign figures counted from the rows themselves: any window, any platform, at the cost of a scan.

Like the tallies, they count the supporters' posts: members marked as hijack candidates are left out.

The reference the running tallies must agree with (a test compares every figure), and the reader for
windows other than a campaign's registered storm window.
"""

from __future__ import annotations

from typing import Any

from ..store import Store
from .figures import ACCOUNT_ORDER, AccountStat, BucketCounts, Totals, account_stat, totals_of
from .windows import Window, supporters_where

ENGAGEMENT_SQL = ("coalesce(p.like_count, 0) + coalesce(p.repost_count, 0) + coalesce(p.reply_count, 0) "
                  "+ coalesce(p.quote_count, 0)")
# What a tag or mention count reads: the link table and its key column.
KEY_TABLES = {"tags": ("post_tags", "tag"), "mentions": ("post_mentions", "handle")}


class RowReader:
    """Reads a campaign's figures from `campaign_posts`, `posts`, `accounts` and the link tables."""

    source = "rows"

    def __init__(self, store: Store, campaign: str) -> None:
        self.store = store
        self.campaign = campaign

    def platform_totals(self, window: Window) -> dict[str, Totals]:
        """Totals per platform with posts in the window, by platform name."""
        where, args = supporters_where(self.campaign, window)
        conn = self.store.conn
        posts_rows = conn.execute(
            "SELECT c.platform, count(*), sum(c.kind = 'original'), sum(c.kind = 'repost'), sum(c.kind = 'quote'), "
            "sum(c.kind = 'reply'), "
            "coalesce(sum(CASE WHEN c.kind != 'repost' THEN coalesce(p.impression_count, 0) END), 0), "
            f"coalesce(sum(CASE WHEN c.kind != 'repost' THEN {ENGAGEMENT_SQL} END), 0), min(c.ts), max(c.ts) "
            f"FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE {where} GROUP BY c.platform",
            args).fetchall()
        # Each contributor once: their followers make the reach; followers times their posts the potential
        # impressions.
        people = {row[0]: row[1:] for row in conn.execute(
            "SELECT d.platform, count(*), coalesce(sum(coalesce(a.followers_count, 0)), 0), "
            "coalesce(sum(coalesce(a.followers_count, 0) * d.posts), 0) FROM ("
            f"SELECT c.platform, c.author_uid, count(*) AS posts FROM campaign_posts c WHERE {where} "
            "AND c.author_uid IS NOT NULL GROUP BY c.author_uid) d LEFT JOIN accounts a ON a.uid = d.author_uid "
            "GROUP BY d.platform", args)}
        by_platform = {}
        for platform, *counted in sorted(posts_rows):
            posts, originals, reposts, quotes, replies, impressions, engagement, first, last = counted
            contributors, reach, potential = people.get(platform, (0, 0, 0))
            by_platform[platform] = totals_of(posts, originals, reposts, quotes, replies, contributors, reach,
                                              potential, impressions, engagement, first, last)
        return by_platform

    def bucket_counts(self, window: Window, origin: int, size: int) -> BucketCounts:
        """Posts per bucket and platform, and accounts whose first post in the window falls in each bucket."""
        where, args = supporters_where(self.campaign, window)
        counts: dict[int, dict[str, int]] = {}
        for bucket, platform, posts in self.store.conn.execute(
                f"SELECT (c.ts - ?) / ?, c.platform, count(*) FROM campaign_posts c WHERE {where} GROUP BY 1, 2",
                [origin, size, *args]):
            counts.setdefault(bucket, {})[platform] = posts
        newcomers = dict(self.store.conn.execute(
            f"SELECT (first_ts - ?) / ?, count(*) FROM (SELECT min(c.ts) AS first_ts FROM campaign_posts c "
            f"WHERE {where} AND c.author_uid IS NOT NULL GROUP BY c.author_uid) GROUP BY 1",
            [origin, size, *args]).fetchall())
        return counts, newcomers

    def busiest_minute(self, window: Window) -> tuple[int, int] | None:
        """(epoch minute, posts) of the window's busiest minute, the earliest of equals."""
        where, args = supporters_where(self.campaign, window)
        row = self.store.conn.execute(
            f"SELECT c.ts / 60 AS minute, count(*) AS n FROM campaign_posts c WHERE {where} "
            "GROUP BY minute ORDER BY n DESC, minute ASC LIMIT 1", args).fetchone()
        return (row[0], row[1]) if row else None

    def minute_counts(self, first: int, end: int, platform: str | None) -> dict[int, int]:
        """Member posts per epoch minute in [first, end)."""
        sql = "campaign = ? AND ts >= ? AND ts < ? AND hijack = 0" + (" AND platform = ?" if platform else "")
        args = [self.campaign, first * 60, end * 60, *([platform] if platform else [])]
        return dict(self.store.conn.execute(
            f"SELECT ts / 60, count(*) FROM campaign_posts WHERE {sql} GROUP BY 1", args).fetchall())

    def newcomers_since(self, window: Window, since_ts: int) -> int:
        """Accounts whose first post in the window came at or after `since_ts`."""
        where, args = supporters_where(self.campaign, window)
        row = self.store.conn.execute(
            f"SELECT count(*) FROM (SELECT min(c.ts) AS first_ts FROM campaign_posts c WHERE {where} "
            "AND c.author_uid IS NOT NULL GROUP BY c.author_uid) WHERE first_ts >= ?", [*args, since_ts]).fetchone()
        return int(row[0])

    def ranked_accounts(self, window: Window, by: str, limit: int) -> list[AccountStat]:
        """Contributors of the window ranked by `by` (posts, engagement or followers); `limit` -1 for all."""
        where, args = supporters_where(self.campaign, window)
        source = ("(SELECT c.author_uid, count(*) AS posts, "
                  f"coalesce(sum(CASE WHEN c.kind != 'repost' THEN {ENGAGEMENT_SQL} END), 0) AS engagement "
                  f"FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE {where} "
                  "AND c.author_uid IS NOT NULL GROUP BY c.author_uid)")
        return ranked(self.store, source, args, by, limit)

    def contributor_directory(self, window: Window) -> dict[str, tuple[str, int]]:
        """Every contributor of the window: uid -> (handle, followers)."""
        where, args = supporters_where(self.campaign, window)
        rows = self.store.conn.execute(
            "SELECT d.author_uid, a.handle, coalesce(a.followers_count, 0) FROM (SELECT DISTINCT c.author_uid "
            f"FROM campaign_posts c WHERE {where} AND c.author_uid IS NOT NULL) d "
            "LEFT JOIN accounts a ON a.uid = d.author_uid", args)
        return directory(rows)

    def key_counts(self, window: Window, kind: str, only: list[str] | None, exclude: list[str] | None,
                   limit: int) -> list[tuple[str, int]]:
        """Posts per tag or mention (`kind`), most first: only `only` when given, without `exclude`."""
        table, column = KEY_TABLES[kind]
        filters, values = key_filters(column, only, exclude)
        where, args = supporters_where(self.campaign, window)
        sql = (f"SELECT x.{column}, count(*) AS n FROM campaign_posts c JOIN {table} x ON x.post_uid = c.post_uid "
               f"WHERE {where}{filters} GROUP BY x.{column} ORDER BY n DESC, x.{column} LIMIT ?")
        return [(key, n) for key, n in self.store.conn.execute(sql, [*args, *values, limit])]

    def member_count(self) -> int:
        """How many supporters' posts the campaign holds, any time."""
        row = self.store.conn.execute("SELECT count(*) FROM campaign_posts WHERE campaign = ? AND hijack = 0",
                                      (self.campaign,)).fetchone()
        return int(row[0])

    def mentioned_accounts(self, window: Window) -> list[tuple[str, str, str, int]]:
        """(uid, platform, handle, followers) of known accounts the window's posts mention, on their platform."""
        # Mentions are stored case-folded; SQLite's lower() folds ASCII, which covers the platforms' handle
        # alphabets. A handle mentioned but unknown here stays unknown: the report hides it.
        where, args = supporters_where(self.campaign, window)
        return [(uid, platform, handle, followers) for uid, platform, handle, followers in self.store.conn.execute(
            "SELECT a.uid, a.platform, a.handle, coalesce(a.followers_count, 0) FROM accounts a "
            "WHERE (a.platform, lower(a.handle)) IN (SELECT DISTINCT c.platform, m.handle FROM campaign_posts c "
            f"JOIN post_mentions m ON m.post_uid = c.post_uid WHERE {where}) ORDER BY a.uid", args)]


def ranked(store: Store, source: str, args: list[Any], by: str, limit: int) -> list[AccountStat]:
    """Accounts of `source` (a select of author_uid, posts, engagement) with their details, ranked by `by`."""
    rows = store.conn.execute(
        "SELECT s.author_uid, a.platform, a.handle, a.name, coalesce(a.followers_count, 0) AS followers, "
        f"s.posts, s.engagement FROM {source} s LEFT JOIN accounts a ON a.uid = s.author_uid "
        f"ORDER BY {ACCOUNT_ORDER[by]}, s.author_uid LIMIT ?", [*args, limit]).fetchall()
    return [account_stat(row) for row in rows]


def directory(rows: Any) -> dict[str, tuple[str, int]]:
    """uid -> (handle, followers) from (uid, handle, followers) rows; a missing handle is the native id."""
    return {uid: (handle or uid.split(":", 1)[-1], followers) for uid, handle, followers in rows}


def key_filters(column: str, only: list[str] | None, exclude: list[str] | None) -> tuple[str, list[str]]:
    """` AND x.<column> IN (...)` / `NOT IN (...)` text and values for a tag or mention count."""
    filters, values = "", []
    if only is not None:
        filters += f" AND x.{column} IN ({','.join('?' * len(only))})"
        values += only
    if exclude:
        filters += f" AND x.{column} NOT IN ({','.join('?' * len(exclude))})"
        values += exclude
    return filters, values
