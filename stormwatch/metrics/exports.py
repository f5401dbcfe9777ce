"""Rows for the report's exports, read in bulk: every post of a window, and the accounts its posts mention.

The report (report/rows.py) turns them into what it writes; the SQL stays here, with the other reads.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator

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


def post_rows(store: Store, campaign: str, window: Window, *,
              referencing: Collection[str] | None = None) -> Iterator[PostRowTuple]:
    """Every post of the window in time order, with its tags, as plain tuples (streams a million rows).

    The referenced post's author (ref_handle, ref_followers) is read for the posts of the `referencing` authors
    only (every post when None): a report asks it for the named accounts' posts, whose ids it may show.
    Authors are not joined in: a million random lookups cost seconds, and an export already holds every
    contributor to look authors up in.
    """
    where, args = window_where(campaign, window)
    # Measured at 100k posts: joining every post's referenced post and its author doubled the read (1.0 -> 2.0 s);
    # a look-up only for the named authors' posts costs about 0.15 s (the author test runs on the index).
    wanted = "p.ref_uid IS NOT NULL"
    ref_args: list[object] = []
    if referencing is not None:
        wanted += " AND c.author_uid IN (SELECT value FROM json_each(?))"
        ref_args = [json.dumps(sorted(referencing))] * 2
    referenced = "FROM posts r JOIN accounts ra ON ra.uid = r.author_uid WHERE r.uid = p.ref_uid"
    yield from store.conn.execute(
        "SELECT p.uid, p.platform, p.created_at, p.kind, p.author_uid, coalesce(p.text, ''), p.url, p.lang, "
        "coalesce(p.like_count, 0), coalesce(p.repost_count, 0), coalesce(p.reply_count, 0), "
        "coalesce(p.quote_count, 0), p.impression_count, "
        f"CASE WHEN p.kind = 'repost' THEN 0 ELSE {ENGAGEMENT_SQL} END, "
        "coalesce((SELECT group_concat(t.tag, ' ') FROM post_tags t WHERE t.post_uid = p.uid), ''), "
        f"CASE WHEN {wanted} THEN (SELECT ra.handle {referenced}) END, "
        f"CASE WHEN {wanted} THEN (SELECT ra.followers_count {referenced}) END "
        f"FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE {where} ORDER BY c.ts, c.post_uid",
        [*ref_args, *args])


def mentioned_account_rows(store: Store, campaign: str, window: Window, *,
                           reader: ReaderChoice = "auto") -> list[tuple[str, str, str, int]]:
    """(uid, platform, handle, followers) of known accounts whose handle the window's posts mention.

    Matched per platform and case-insensitively; from the tallies (all platforms) when they cover the window.
    """
    return figure_reader(store, campaign, reader).mentioned_accounts(window)
