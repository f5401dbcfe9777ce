"""Writing pages of rows: posts, accounts, tags, mentions, campaign membership, and the tallies they change.

`write_batches` runs inside the caller's transaction (the store opens it, with the page's cursor and run
counters), so rows and tallies are stored together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..models import Account, Batch, Post
from . import tallies
from .sql import select_in_chunks

_POST_COLUMNS = ("uid", "platform", "id", "author_uid", "created_at", "ts", "text", "lang", "kind", "ref_uid",
                 "url", "like_count", "repost_count", "reply_count", "quote_count", "bookmark_count",
                 "impression_count", "metrics_at")
_COUNTER_COLUMNS = ("like_count", "repost_count", "reply_count", "quote_count", "bookmark_count",
                    "impression_count", "metrics_at")
_ACCOUNT_COLUMNS = ("uid", "platform", "id", "handle", "name", "followers_count", "following_count",
                    "posts_count", "verified", "created_at", "updated_at")

_INSERT_POST = (f"INSERT INTO posts ({', '.join(_POST_COLUMNS)}, collected_at) "
                f"VALUES ({', '.join('?' * len(_POST_COLUMNS))}, ?)")
# A later snapshot of a post's counters replaces an earlier one, never the reverse (imports of old files).
_UPDATE_POST_COUNTERS = (f"UPDATE posts SET {', '.join(f'{c} = ?' for c in _COUNTER_COLUMNS)} "
                         "WHERE uid = ? AND (metrics_at IS NULL OR metrics_at < ?)")
# Snapshots that do not know a count (Bluesky post views name their author without counts) keep the stored one.
_KEPT_WHEN_UNKNOWN = ("name", "followers_count", "following_count", "posts_count", "verified", "created_at")
_UPSERT_ACCOUNT = (
    f"INSERT INTO accounts ({', '.join(_ACCOUNT_COLUMNS)}) VALUES ({', '.join('?' * len(_ACCOUNT_COLUMNS))}) "
    "ON CONFLICT(uid) DO UPDATE SET "
    + ", ".join(f"{c} = COALESCE(excluded.{c}, accounts.{c})" if c in _KEPT_WHEN_UNKNOWN else f"{c} = excluded.{c}"
                for c in _ACCOUNT_COLUMNS[3:])
    + " WHERE excluded.updated_at >= accounts.updated_at"
)


def write_batches(conn: sqlite3.Connection, batches: Sequence[tuple[Batch, str]],
                  campaign: str | None) -> tuple[int, int]:
    """Write posts, accounts, tags, mentions, membership and tallies; returns (new members, posts updated).

    Repeats within the batches are merged first (the newest snapshot of a post or account wins), so
    an archive that carries the same account on every page writes it once.
    """
    posts: dict[str, tuple[Post, str]] = {}
    members: dict[str, None] = {}
    accounts: dict[str, Account] = {}
    for batch, collected_at in batches:
        for post in batch.posts:
            members[post.uid] = None
        for post in batch.posts + batch.context_posts:
            held = posts.get(post.uid)
            if held is None or post.metrics_at > held[0].metrics_at:
                posts[post.uid] = (post, held[1] if held else collected_at)
        for account in batch.accounts:
            held_account = accounts.get(account.uid)
            accounts[account.uid] = account if held_account is None else _merged(held_account, account)
    if accounts:
        _write_accounts(conn, list(accounts.values()))
    if not posts:
        return 0, 0
    stored = {row[0]: row[1:] for row in select_in_chunks(
        conn, "SELECT uid, kind, like_count, repost_count, reply_count, quote_count, impression_count, metrics_at "
              "FROM posts WHERE uid IN ({})", [], list(posts))}
    fresh = [(post, collected_at) for uid, (post, collected_at) in posts.items() if uid not in stored]
    if fresh:
        conn.executemany(_INSERT_POST, [_post_row(p, collected_at) for p, collected_at in fresh])
    changed, deltas = [], {}
    for uid, old in stored.items():
        post = posts[uid][0]
        counters = (post.like_count, post.repost_count, post.reply_count, post.quote_count, post.impression_count)
        # A later snapshot replaces an earlier one, never the reverse (imports of old files).
        if (old[6] is None or post.metrics_at > old[6]) and counters != old[1:6]:
            changed.append(post)
            deltas[uid] = (tallies.engagement_of(old[0], *counters[:4]) - tallies.engagement_of(old[0], *old[1:5]),
                           (counters[4] or 0) - (old[5] or 0))
    if changed:
        conn.executemany(_UPDATE_POST_COUNTERS, [_counters_row(p) for p in changed])
        tallies.change_counters(conn, deltas)
    new_members = 0
    if campaign is not None and members:
        already = {row[0] for row in select_in_chunks(
            conn, "SELECT post_uid FROM campaign_posts WHERE campaign = ? AND post_uid IN ({})", [campaign],
            list(members))}
        joining = [posts[uid][0] for uid in members if uid not in already]
        counter_tags = tallies.counter_tags_of(conn, campaign)
        hijacks = {p.uid for p in joining if tallies.is_hijack(p.tags, counter_tags)}
        conn.executemany(
            "INSERT INTO campaign_posts (campaign, post_uid, ts, platform, kind, author_uid, hijack) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(campaign, p.uid, p.ts, p.platform, p.kind, p.author_uid, int(p.uid in hijacks)) for p in joining])
        # Tags and mentions are kept for members only (context posts are never counted); a post seen
        # before as context gets them when it joins, and one already a member elsewhere has them.
        conn.executemany("INSERT OR IGNORE INTO post_tags (post_uid, tag) VALUES (?, ?)",
                         [(p.uid, t) for p in joining for t in p.tags])
        conn.executemany("INSERT OR IGNORE INTO post_mentions (post_uid, handle) VALUES (?, ?)",
                         [(p.uid, m) for p in joining for m in p.mentions])
        new_members = len(joining)
        tallies.add_members(conn, campaign, [_new_member(p, stored.get(p.uid), p.uid in hijacks) for p in joining])
    return new_members, len(changed)

def _write_accounts(conn: sqlite3.Connection, accounts: list[Account]) -> None:
    """Upsert account snapshots (newest wins) and pass follower changes on to the tallies."""
    stored = {row[0]: row[1:] for row in select_in_chunks(
        conn, "SELECT uid, followers_count, updated_at, handle, name, following_count, posts_count, verified "
              "FROM accounts WHERE uid IN ({})", [], [a.uid for a in accounts])}
    writes, fills, followers = [], [], {}
    for account in accounts:
        old = stored.get(account.uid)
        if old is None:
            writes.append(account)
            followers[account.uid] = (0, account.followers_count or 0)
            continue
        if account.updated_at < old[1]:
            # An older snapshot still fills in what the newer ones did not know (Bluesky post views
            # name their authors without follower counts; a profile read earlier has them).
            if any(old[i] is None and value is not None for i, value in (
                    (0, account.followers_count), (3, account.name), (4, account.following_count),
                    (5, account.posts_count), (6, account.verified))):
                fills.append(account)
                if old[0] is None and account.followers_count is not None:
                    followers[account.uid] = (0, account.followers_count)
            continue
        verified = old[6] if account.verified is None else int(account.verified)
        known = (old[0] if account.followers_count is None else account.followers_count, account.handle,
                 old[3] if account.name is None else account.name,
                 old[4] if account.following_count is None else account.following_count,
                 old[5] if account.posts_count is None else account.posts_count, verified)
        if known != (old[0], *old[2:]):
            writes.append(account)
            followers[account.uid] = (old[0] or 0, known[0] or 0)
    if writes:
        conn.executemany(_UPSERT_ACCOUNT, [_account_row(a) for a in writes])
    if fills:
        conn.executemany(
            "UPDATE accounts SET " + ", ".join(f"{c} = coalesce({c}, ?)" for c in _KEPT_WHEN_UNKNOWN)
            + " WHERE uid = ?", [(*_account_row(a)[4:10], a.uid) for a in fills])
    if writes or fills:
        tallies.change_followers(conn, followers)


def _post_row(post: Post, collected_at: str) -> tuple[Any, ...]:
    return (post.uid, post.platform, post.id, post.author_uid, post.created_at, post.ts, post.text, post.lang,
            post.kind, post.ref_uid, post.url, post.like_count, post.repost_count, post.reply_count,
            post.quote_count, post.bookmark_count, post.impression_count, post.metrics_at, collected_at)


def _counters_row(post: Post) -> tuple[Any, ...]:
    return (post.like_count, post.repost_count, post.reply_count, post.quote_count, post.bookmark_count,
            post.impression_count, post.metrics_at, post.uid, post.metrics_at)


def _account_row(account: Account) -> tuple[Any, ...]:
    verified = None if account.verified is None else int(account.verified)
    return (account.uid, account.platform, account.id, account.handle, account.name, account.followers_count,
            account.following_count, account.posts_count, verified, account.created_at, account.updated_at)


def _merged(first: Account, second: Account) -> Account:
    """Two snapshots of one account: the newer one's values, with what only the older one knew filled in."""
    newer, older = (second, first) if second.updated_at >= first.updated_at else (first, second)
    gaps = {f: getattr(older, f) for f in _KEPT_WHEN_UNKNOWN if getattr(newer, f) is None}
    return replace(newer, **gaps) if any(v is not None for v in gaps.values()) else newer


def _new_member(post: Post, stored: tuple[Any, ...] | None, hijack: bool) -> tallies.NewMember:
    """A post joining a campaign, with the newest counters known (the stored ones when they are newer)."""
    like, repost, reply, quote, impressions = (post.like_count, post.repost_count, post.reply_count,
                                               post.quote_count, post.impression_count)
    # What the posts table holds after this write: the incoming snapshot only replaced a strictly older one.
    if stored is not None and stored[6] is not None and not post.metrics_at > stored[6]:
        like, repost, reply, quote, impressions = stored[1:6]
    return tallies.NewMember(
        uid=post.uid, platform=post.platform, ts=post.ts, kind=post.kind, author_uid=post.author_uid,
        engagement=tallies.engagement_of(post.kind, like, repost, reply, quote),
        impressions=0 if post.kind == "repost" else impressions or 0, tags=post.tags, mentions=post.mentions,
        hijack=hijack)

