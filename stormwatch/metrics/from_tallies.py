"""Campaign figures read from the running tallies the store keeps: a handful of rows, whatever the campaign's size.

The tallies cover one window exactly, the campaign's registered storm window, in whole minutes, for all
platforms (tags and mentions are not split by platform); `tally_minutes` counts every member post, inside
the window or not. A question they cannot answer goes to the fallback reader (the rows) when there is one,
and is an error when the tallies were asked for explicitly.
"""

from __future__ import annotations

from typing import Any

from ..store import Store
from ..store.schema import BUSY_POSTS
from .figures import AccountStat, BucketCounts, Totals, totals_of
from .from_rows import KEY_TABLES, RowReader, directory, key_filters, ranked
from .windows import Window


class TallyReader:
    """Reads a campaign's figures from its running tallies (`tally_*`), registered for `window` [start, end)."""

    source = "tallies"

    def __init__(self, store: Store, campaign: str, window: tuple[int, int], fallback: RowReader | None) -> None:
        self.store = store
        self.campaign = campaign
        self.window = window
        self.fallback = fallback

    def covers(self, window: Window) -> bool:
        """Whether the tallies cover exactly this window's span (the registered storm window)."""
        return (window.since_ts, window.until_ts) == self.window

    def _instead(self, question: str) -> RowReader:
        """The reader for what the tallies cannot answer: the rows, unless the tallies were asked for."""
        if self.fallback is None:
            raise ValueError(f"the running tallies of {self.campaign!r} cannot give {question} "
                             "(they cover the registered storm window, in whole minutes, all platforms)")
        return self.fallback

    def platform_totals(self, window: Window) -> dict[str, Totals]:
        """Totals per platform with posts in the window, by platform name."""
        if not self.covers(window):
            return self._instead("totals for this window").platform_totals(window)
        rows = self.store.conn.execute(
            "SELECT platform, posts, originals, reposts, quotes, replies, contributors, potential_reach, "
            "potential_impressions, impressions, engagement, first_ts, last_ts FROM tally_totals "
            "WHERE campaign = ? AND posts > 0 ORDER BY platform", (self.campaign,)).fetchall()
        return {row[0]: totals_of(*row[1:]) for row in rows if window.platform is None or row[0] == window.platform}

    def bucket_counts(self, window: Window, origin: int, size: int) -> BucketCounts:
        """Posts per bucket and platform, and accounts whose first post in the window falls in each bucket."""
        if not (self.covers(window) and window.minute_aligned and size % 60 == 0 and origin % 60 == 0):
            return self._instead("buckets that are not whole minutes of this window").bucket_counts(
                window, origin, size)
        counts: dict[int, dict[str, int]] = {}
        newcomers: dict[int, int] = {}
        where, args = self._minutes(window.since_ts // 60, window.until_ts // 60, window.platform)
        for minute, platform, posts, joined in self.store.conn.execute(
                f"SELECT minute, platform, posts, newcomers FROM tally_minutes WHERE {where}", args):
            bucket = (minute * 60 - origin) // size
            cell = counts.setdefault(bucket, {})
            cell[platform] = cell.get(platform, 0) + posts
            newcomers[bucket] = newcomers.get(bucket, 0) + joined
        return counts, newcomers

    def busiest_minute(self, window: Window) -> tuple[int, int] | None:
        """(epoch minute, posts) of the window's busiest minute, the earliest of equals."""
        if not (self.covers(window) and window.minute_aligned):
            return self._instead("the busiest minute of this window").busiest_minute(window)
        where, args = self._minutes(window.since_ts // 60, window.until_ts // 60, window.platform)
        row = self.store.conn.execute(f"SELECT minute, sum(posts) AS n FROM tally_minutes WHERE {where} "
                                      "GROUP BY minute ORDER BY n DESC, minute ASC LIMIT 1", args).fetchone()
        return (row[0], row[1]) if row else None

    def minute_counts(self, first: int, end: int, platform: str | None) -> dict[int, int]:
        """Member posts per epoch minute in [first, end) (any minutes: the tally counts every member post)."""
        where, args = self._minutes(first, end, platform)
        return dict(self.store.conn.execute(
            f"SELECT minute, sum(posts) FROM tally_minutes WHERE {where} GROUP BY minute", args).fetchall())

    def newcomers_since(self, window: Window, since_ts: int) -> int:
        """Accounts whose first post in the window came at or after `since_ts`."""
        if not (self.covers(window) and window.minute_aligned and since_ts % 60 == 0):
            return self._instead("newcomers since a time that is not a whole minute of this window").newcomers_since(
                window, since_ts)
        where, args = self._minutes(since_ts // 60, window.until_ts // 60, window.platform)
        row = self.store.conn.execute(f"SELECT coalesce(sum(newcomers), 0) FROM tally_minutes WHERE {where}",
                                      args).fetchone()
        return int(row[0])

    def ranked_accounts(self, window: Window, by: str, limit: int) -> list[AccountStat]:
        """Contributors of the window ranked by `by` (posts, engagement or followers); `limit` -1 for all."""
        if not self.covers(window):
            return self._instead("accounts of this window").ranked_accounts(window, by, limit)
        platform_sql = " AND platform = ?" if window.platform else ""
        args: list[Any] = [self.campaign, *([window.platform] if window.platform else [])]
        source = f"(SELECT author_uid, posts, engagement FROM tally_authors WHERE campaign = ?{platform_sql})"
        if by == "posts" and limit > 0:
            # The busiest accounts are indexed by post count: when at least `limit` of them are busy, the
            # top is everyone with at least as many posts as the limit-th busiest (ties included).
            row = self.store.conn.execute(
                f"SELECT posts FROM tally_authors WHERE campaign = ? AND posts >= {BUSY_POSTS}{platform_sql} "
                "ORDER BY posts DESC LIMIT 1 OFFSET ?", [*args, limit - 1]).fetchone()
            if row is not None:
                # BETWEEN (not >=) so that SQLite seeks to the threshold in the index instead of scanning
                # every busy account from the partial index's own bound.
                busy = ("(SELECT author_uid, posts, engagement FROM tally_authors WHERE campaign = ? "
                        f"AND posts >= {BUSY_POSTS} AND posts BETWEEN ? AND {2**63 - 1}{platform_sql})")
                return ranked(self.store, busy, [self.campaign, row[0], *args[1:]], by, limit)
        return ranked(self.store, source, args, by, limit)

    def contributor_directory(self, window: Window) -> dict[str, tuple[str, int]]:
        """Every contributor of the window: uid -> (handle, followers)."""
        if not self.covers(window):
            return self._instead("the contributors of this window").contributor_directory(window)
        platform_sql = " AND t.platform = ?" if window.platform else ""
        return directory(self.store.conn.execute(
            "SELECT t.author_uid, a.handle, coalesce(a.followers_count, 0) FROM tally_authors t "
            f"LEFT JOIN accounts a ON a.uid = t.author_uid WHERE t.campaign = ?{platform_sql}",
            [self.campaign, *([window.platform] if window.platform else [])]))

    def key_counts(self, window: Window, kind: str, only: list[str] | None, exclude: list[str] | None,
                   limit: int) -> list[tuple[str, int]]:
        """Posts per tag or mention (`kind`), most first: only `only` when given, without `exclude`."""
        if not self.covers(window) or window.platform is not None:
            return self._instead(f"{kind} of this window or platform").key_counts(window, kind, only, exclude, limit)
        column = KEY_TABLES[kind][1]
        filters, values = key_filters(column, only, exclude)
        sql = (f"SELECT x.{column}, x.posts AS n FROM tally_{kind} x WHERE x.campaign = ?{filters} "
               f"ORDER BY n DESC, x.{column} LIMIT ?")
        return [(key, n) for key, n in self.store.conn.execute(sql, [self.campaign, *values, limit])]

    def member_count(self) -> int:
        """How many posts the campaign holds, any time."""
        row = self.store.conn.execute("SELECT coalesce(sum(posts), 0) FROM tally_minutes WHERE campaign = ?",
                                      (self.campaign,)).fetchone()
        return int(row[0])

    def mentioned_accounts(self, window: Window) -> list[tuple[str, str, str, int]]:
        """(uid, platform, handle, followers) of known accounts whose handle the window's posts mention."""
        if not self.covers(window) or window.platform is not None:
            return self._instead("mentions of this window or platform").mentioned_accounts(window)
        # The tally has no platform: accounts of another platform with a mentioned handle come along, and
        # are only ever looked up for mentions on their own platform.
        return [(uid, platform, handle, followers) for uid, platform, handle, followers in self.store.conn.execute(
            "SELECT a.uid, a.platform, a.handle, coalesce(a.followers_count, 0) FROM accounts a "
            "WHERE lower(a.handle) IN (SELECT handle FROM tally_mentions WHERE campaign = ?) ORDER BY a.uid",
            (self.campaign,))]

    def _minutes(self, first: int, end: int, platform: str | None) -> tuple[str, list[Any]]:
        """`WHERE` text and arguments for tally_minutes rows of minutes [first, end), optionally one platform."""
        sql = "campaign = ? AND minute >= ? AND minute < ?" + (" AND platform = ?" if platform else "")
        return sql, [self.campaign, first, end, *([platform] if platform else [])]
