"""Rows for the report's exports, read in bulk: every post of a window, and the accounts its posts mention.

The report (report/rows.py) turns them into what it writes; the SQL stays here, with the other reads.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..store import Store
from .from_rows import ENGAGEMENT_SQL
from .reader import ReaderChoice, figure_reader
from .windows import Window, window_where

# One post as posts.csv reads it, a plain tuple in this field order (naming a million rows costs time the
# export does not need): uid, platform, created_at, kind, author_uid, text, url, lang, likes, reposts, replies,
# quotes, impressions, engagement, tags (space-separated), then the handle and followers of the author of the post
# it reposts, quotes or answers (None when that post or its author is not stored). Counters are 0 where unknown,
# impressions None.
PostRowTuple = tuple[str, str, str, str, str | None, str, str | None, str | None, int, int, int, int, int | None,
                     int, str, str | None, int | None]
POST_ROW_FIELDS = ("uid", "platform", "created_at", "kind", "author_uid", "text", "url", "lang", "likes",
                   "reposts", "replies", "quotes", "impressions", "engagement", "tags", "ref_handle", "ref_followers")


def post_rows(store: Store, campaign: str, window: Window) -> Iterator[PostRowTuple]:
    """Every post of the window in time order, with its tags, as plain tuples (streams a million rows).

    Authors are not joined in: a million random lookups cost seconds, and an export already holds every
    contributor to look authors up in. The referenced post's author is (a repost's id leads to whom it reposted),
    in the same statement: two key lookups, and only for posts that reference one.
    """
    where, args = window_where(campaign, window)
    yield from store.conn.execute(
        "SELECT p.uid, p.platform, p.created_at, p.kind, p.author_uid, coalesce(p.text, ''), p.url, p.lang, "
        "coalesce(p.like_count, 0), coalesce(p.repost_count, 0), coalesce(p.reply_count, 0), "
        "coalesce(p.quote_count, 0), p.impression_count, "
        f"CASE WHEN p.kind = 'repost' THEN 0 ELSE {ENGAGEMENT_SQL} END, "
        "coalesce((SELECT group_concat(t.tag, ' ') FROM post_tags t WHERE t.post_uid = p.uid), ''), "
        "ra.handle, ra.followers_count "
        "FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid LEFT JOIN posts r ON r.uid = p.ref_uid "
        f"LEFT JOIN accounts ra ON ra.uid = r.author_uid WHERE {where} ORDER BY c.ts, c.post_uid", args)


def mentioned_account_rows(store: Store, campaign: str, window: Window, *,
                           reader: ReaderChoice = "auto") -> list[tuple[str, str, str, int]]:
    """(uid, platform, handle, followers) of known accounts whose handle the window's posts mention.

    Matched per platform and case-insensitively; from the tallies (all platforms) when they cover the window.
    """
    return figure_reader(store, campaign, reader).mentioned_accounts(window)
