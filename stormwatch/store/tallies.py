"""Running tallies of each campaign's storm window, kept by the store in the same transaction as the rows.

The dashboard refreshes every second against campaigns of a million posts: instead of recounting, the
store adds each change to per-minute, per-account, per-tag and per-platform tallies as rows arrive.
Only the store's page writer calls the writers here (it remains the only writer); `rebuild` is the full
recomputation the incremental path must always agree with, and it is what a changed window triggers.

Tallies cover member posts whose time falls in the campaign's registered window [start, end), except
`tally_minutes.posts` and the kind counts, which cover every member post (the sparkline shows the
build-up before the window too); `newcomers` counts accounts by the minute of their first post in the window.
They count supporters only: a member carrying one of the counter-hashtags the campaign registered is a hijack
candidate (`campaign_posts.hijack`), left out of every tally (DESIGN.md, Metrics).
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .schema import TALLY_TABLES
from .sql import select_in_chunks, select_pairs

KIND_COLUMN = {"original": 0, "repost": 1, "quote": 2, "reply": 3}


@dataclass(slots=True)
class NewMember:
    """A post that just became a member of the campaign, with its latest counters (built by the thousand)."""

    uid: str
    platform: str
    ts: int
    kind: str
    author_uid: str | None
    engagement: int
    impressions: int
    tags: tuple[str, ...]
    mentions: tuple[str, ...]
    hijack: bool = False  # carries a counter-hashtag: a hijack candidate, never tallied


def engagement_of(kind: str, like: int | None, repost: int | None, reply: int | None, quote: int | None) -> int:
    """Engagement a post adds: its counters, unless it is a repost (whose counters are its original's)."""
    if kind == "repost":
        return 0
    return (like or 0) + (repost or 0) + (reply or 0) + (quote or 0)


def window_of(conn: sqlite3.Connection, campaign: str) -> tuple[int, int] | None:
    """The registered window [start, end) of a campaign, as epoch seconds."""
    row = conn.execute("SELECT window_start, window_end FROM campaigns WHERE campaign = ?", (campaign,)).fetchone()
    return (row[0], row[1]) if row else None


def windows(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Every registered campaign window."""
    rows = conn.execute("SELECT campaign, window_start, window_end FROM campaigns")
    return {campaign: (start, end) for campaign, start, end in rows}


def counter_tags_of(conn: sqlite3.Connection, campaign: str) -> frozenset[str]:
    """The counter-hashtags (case-folded) a campaign registered: its members carrying one are hijack candidates."""
    row = conn.execute("SELECT counter_tags FROM campaigns WHERE campaign = ?", (campaign,)).fetchone()
    return frozenset(row[0].split()) if row else frozenset()


def is_hijack(tags: Sequence[str], counter_tags: frozenset[str]) -> bool:
    """Whether a post with these (stored, case-folded) tags carries one of the counter-hashtags."""
    return bool(counter_tags) and any(tag in counter_tags for tag in tags)


def register(conn: sqlite3.Connection, campaign: str, start: int, end: int,
             counter_tags: Collection[str] = ()) -> bool:
    """Record the campaign's window and counter-hashtags; when new or changed, mark the members carrying a
    counter-hashtag and rebuild the campaign's tallies. True if rebuilt."""
    tags = " ".join(sorted({tag.casefold().lstrip("#") for tag in counter_tags}))
    row = conn.execute("SELECT window_start, window_end, counter_tags FROM campaigns WHERE campaign = ?",
                       (campaign,)).fetchone()
    if row is not None and tuple(row) == (start, end, tags):
        return False
    conn.execute("INSERT INTO campaigns (campaign, window_start, window_end, counter_tags) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (campaign) DO UPDATE SET window_start = excluded.window_start, "
                 "window_end = excluded.window_end, counter_tags = excluded.counter_tags",
                 (campaign, start, end, tags))
    if row is None or row[2] != tags:
        mark_hijacks(conn, campaign, frozenset(tags.split()))
    rebuild(conn, campaign, (start, end))
    return True


def mark_hijacks(conn: sqlite3.Connection, campaign: str, counter_tags: frozenset[str]) -> None:
    """Mark every member of a campaign carrying one of `counter_tags` as a hijack candidate, and no other."""
    conn.execute("UPDATE campaign_posts SET hijack = 0 WHERE campaign = ? AND hijack != 0", (campaign,))
    if counter_tags:
        marks = ", ".join("?" * len(counter_tags))
        conn.execute(f"UPDATE campaign_posts SET hijack = 1 WHERE campaign = ? AND post_uid IN "
                     f"(SELECT post_uid FROM post_tags WHERE tag IN ({marks}))", (campaign, *sorted(counter_tags)))


def add_members(conn: sqlite3.Connection, campaign: str, members: Sequence[NewMember]) -> None:
    """Count new campaign members into the tallies (a no-op for campaigns without a registered window)."""
    window = window_of(conn, campaign)
    if window is None or not members:
        return
    start, end = window
    members = [member for member in members if not member.hijack]
    minutes: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for member in members:
        cell = minutes[(member.platform, member.ts // 60)]
        cell[0] += 1
        cell[1 + KIND_COLUMN.get(member.kind, 0)] += 1
    inside = [m for m in members if start <= m.ts < end]
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * 10 + [None, None])  # type: ignore[list-item]
    for member in inside:
        row = totals[member.platform]
        row[0] += 1
        row[1 + KIND_COLUMN.get(member.kind, 0)] += 1
        row[8] += member.impressions
        row[9] += member.engagement
        row[10] = member.ts if row[10] is None else min(row[10], member.ts)
        row[11] = member.ts if row[11] is None else max(row[11], member.ts)
    by_author: dict[str, list[Any]] = {}
    for member in inside:
        if member.author_uid is None:
            continue
        entry = by_author.get(member.author_uid)
        if entry is None:
            by_author[member.author_uid] = [member.platform, member.ts, 1, member.engagement]
        else:
            entry[1] = min(entry[1], member.ts)
            entry[2] += 1
            entry[3] += member.engagement
    known = select_pairs(conn, "SELECT author_uid, first_ts FROM tally_authors WHERE campaign = ? "
                               "AND author_uid IN ({})", [campaign], list(by_author))
    followers = _followers(conn, list(by_author))
    for author, (platform, first_ts, posts, _) in by_author.items():
        row = totals[platform]
        count = followers.get(author, 0)
        row[7] += count * posts  # potential impressions: every post counts its author's followers
        previous = known.get(author)
        if previous is None:
            row[5] += 1  # a new contributor
            row[6] += count
            minutes[(platform, first_ts // 60)][5] += 1
        elif first_ts < previous:  # an earlier post arrived late: the account joined earlier than thought
            minutes[(platform, previous // 60)][5] -= 1
            minutes[(platform, first_ts // 60)][5] += 1
    conn.executemany(
        "INSERT INTO tally_minutes (campaign, platform, minute, posts, originals, reposts, quotes, replies, newcomers) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, minute, platform) DO UPDATE SET "
        + _adding("posts", "originals", "reposts", "quotes", "replies", "newcomers"),
        [(campaign, platform, minute, *cell) for (platform, minute), cell in minutes.items()])
    conn.executemany(
        "INSERT INTO tally_authors (campaign, author_uid, platform, first_ts, posts, engagement, followers) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, author_uid) DO UPDATE SET "
        "first_ts = min(first_ts, excluded.first_ts), followers = excluded.followers, "
        + _adding("posts", "engagement"),
        [(campaign, author, platform, first_ts, posts, engagement, followers.get(author, 0))
         for author, (platform, first_ts, posts, engagement) in by_author.items()])
    conn.executemany(
        "INSERT INTO tally_totals (campaign, platform, posts, originals, reposts, quotes, replies, contributors, "
        "potential_reach, potential_impressions, impressions, engagement, first_ts, last_ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, platform) DO UPDATE SET "
        "first_ts = min(coalesce(first_ts, excluded.first_ts), excluded.first_ts), "
        "last_ts = max(coalesce(last_ts, excluded.last_ts), excluded.last_ts), "
        + _adding("posts", "originals", "reposts", "quotes", "replies", "contributors", "potential_reach",
                  "potential_impressions", "impressions", "engagement"),
        [(campaign, platform, *row) for platform, row in totals.items()])
    _add_counts(conn, "tally_tags", "tag", campaign, Counter(t for m in inside for t in m.tags))
    _add_counts(conn, "tally_mentions", "handle", campaign, Counter(h for m in inside for h in m.mentions))


def change_counters(conn: sqlite3.Connection, deltas: dict[str, tuple[int, int]]) -> None:
    """Apply engagement and impression changes of already-counted posts: {post uid: (engagement Δ, impressions Δ)}."""
    if not deltas:
        return
    for campaign, (start, end) in windows(conn).items():
        members = select_in_chunks(conn, "SELECT post_uid, ts, platform, author_uid, kind FROM campaign_posts "
                                     "WHERE campaign = ? AND hijack = 0 AND post_uid IN ({})", [campaign],
                                   list(deltas))
        per_author: Counter[str] = Counter()
        per_platform: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for uid, ts, platform, author, kind in members:
            if not start <= ts < end or kind == "repost":
                continue
            engagement, impressions = deltas[uid]
            per_platform[platform][0] += engagement
            per_platform[platform][1] += impressions
            if author is not None:
                per_author[author] += engagement
        conn.executemany("UPDATE tally_authors SET engagement = engagement + ? WHERE campaign = ? AND author_uid = ?",
                         [(delta, campaign, author) for author, delta in per_author.items() if delta])
        conn.executemany("UPDATE tally_totals SET engagement = engagement + ?, impressions = impressions + ? "
                         "WHERE campaign = ? AND platform = ?",
                         [(e, i, campaign, platform) for platform, (e, i) in per_platform.items()])


def change_followers(conn: sqlite3.Connection, followers: dict[str, tuple[int, int]]) -> None:
    """Apply follower-count changes of accounts: {account uid: (old, new)} (None counted as 0)."""
    changed = {uid: (old, new) for uid, (old, new) in followers.items() if old != new}
    if not changed:
        return
    for campaign in windows(conn):
        rows = select_in_chunks(conn, "SELECT author_uid, platform, posts FROM tally_authors "
                                      "WHERE campaign = ? AND author_uid IN ({})", [campaign], list(changed))
        per_platform: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for author, platform, posts in rows:
            old, new = changed[author]
            per_platform[platform][0] += new - old
            per_platform[platform][1] += (new - old) * posts
        conn.executemany("UPDATE tally_authors SET followers = ? WHERE campaign = ? AND author_uid = ?",
                         [(changed[author][1], campaign, author) for author, _, _ in rows])
        conn.executemany("UPDATE tally_totals SET potential_reach = potential_reach + ?, "
                         "potential_impressions = potential_impressions + ? WHERE campaign = ? AND platform = ?",
                         [(reach, impressions, campaign, platform)
                          for platform, (reach, impressions) in per_platform.items()])


def rebuild(conn: sqlite3.Connection, campaign: str, window: tuple[int, int]) -> None:
    """Recompute a campaign's tallies from its rows (the reference the incremental path must match)."""
    start, end = window
    for table in TALLY_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE campaign = ?", (campaign,))
    engagement = ("CASE WHEN c.kind = 'repost' THEN 0 ELSE coalesce(p.like_count, 0) + coalesce(p.repost_count, 0) "
                  "+ coalesce(p.reply_count, 0) + coalesce(p.quote_count, 0) END")
    inside = "c.campaign = ? AND c.ts >= ? AND c.ts < ? AND c.hijack = 0"
    conn.execute(
        "INSERT INTO tally_authors (campaign, author_uid, platform, first_ts, posts, engagement, followers) "
        f"SELECT c.campaign, c.author_uid, min(c.platform), min(c.ts), count(*), sum({engagement}), "
        "coalesce(max(a.followers_count), 0) FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid "
        f"LEFT JOIN accounts a ON a.uid = c.author_uid WHERE {inside} AND c.author_uid IS NOT NULL "
        "GROUP BY c.author_uid", (campaign, start, end))
    conn.execute(
        "INSERT INTO tally_minutes (campaign, platform, minute, posts, originals, reposts, quotes, replies, newcomers) "
        "SELECT campaign, platform, ts / 60, count(*), sum(kind = 'original'), sum(kind = 'repost'), "
        "sum(kind = 'quote'), sum(kind = 'reply'), 0 FROM campaign_posts WHERE campaign = ? AND hijack = 0 "
        "GROUP BY platform, ts / 60", (campaign,))
    conn.executemany(
        "UPDATE tally_minutes SET newcomers = ? WHERE campaign = ? AND minute = ? AND platform = ?",
        [(count, campaign, minute, platform) for platform, minute, count in conn.execute(
            "SELECT platform, first_ts / 60, count(*) FROM tally_authors WHERE campaign = ? GROUP BY 1, 2",
            (campaign,)).fetchall()])
    conn.execute(
        "INSERT INTO tally_totals (campaign, platform, posts, originals, reposts, quotes, replies, contributors, "
        "potential_reach, potential_impressions, impressions, engagement, first_ts, last_ts) "
        "SELECT c.campaign, c.platform, count(*), sum(c.kind = 'original'), sum(c.kind = 'repost'), "
        "sum(c.kind = 'quote'), sum(c.kind = 'reply'), 0, 0, 0, "
        "coalesce(sum(CASE WHEN c.kind = 'repost' THEN 0 ELSE coalesce(p.impression_count, 0) END), 0), "
        f"coalesce(sum({engagement}), 0), min(c.ts), max(c.ts) "
        f"FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid WHERE {inside} GROUP BY c.platform",
        (campaign, start, end))
    conn.executemany(
        "UPDATE tally_totals SET contributors = ?, potential_reach = ?, potential_impressions = ? "
        "WHERE campaign = ? AND platform = ?",
        [(contributors, reach, impressions, campaign, platform) for platform, contributors, reach, impressions in
         conn.execute("SELECT platform, count(*), sum(followers), sum(followers * posts) FROM tally_authors "
                      "WHERE campaign = ? GROUP BY platform", (campaign,)).fetchall()])
    conn.execute("INSERT INTO tally_tags (campaign, tag, posts) SELECT c.campaign, t.tag, count(*) "
                 f"FROM campaign_posts c JOIN post_tags t ON t.post_uid = c.post_uid WHERE {inside} GROUP BY t.tag",
                 (campaign, start, end))
    conn.execute("INSERT INTO tally_mentions (campaign, handle, posts) SELECT c.campaign, m.handle, count(*) "
                 f"FROM campaign_posts c JOIN post_mentions m ON m.post_uid = c.post_uid WHERE {inside} "
                 "GROUP BY m.handle", (campaign, start, end))


def contents(conn: sqlite3.Connection, campaign: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every tally row of a campaign, sorted (for comparing the incremental path with `rebuild`)."""
    return {table: sorted(tuple(row) for row in conn.execute(f"SELECT * FROM {table} WHERE campaign = ?", (campaign,))
                          if not (table == "tally_minutes" and row[3] == 0 and row[8] == 0))
            for table in TALLY_TABLES}


def _adding(*columns: str) -> str:
    """`a = a + excluded.a, …`: an upsert that adds the new counts to the stored ones."""
    return ", ".join(f"{column} = {column} + excluded.{column}" for column in columns)


def _followers(conn: sqlite3.Connection, uids: list[str]) -> dict[str, int]:
    return {uid: count or 0 for uid, count in select_in_chunks(
        conn, "SELECT uid, followers_count FROM accounts WHERE uid IN ({})", [], uids)}


def _add_counts(conn: sqlite3.Connection, table: str, column: str, campaign: str, counts: Counter[str]) -> None:
    conn.executemany(f"INSERT INTO {table} (campaign, {column}, posts) VALUES (?, ?, ?) "
                     f"ON CONFLICT (campaign, {column}) DO UPDATE SET posts = posts + excluded.posts",
                     [(campaign, key, count) for key, count in counts.items()])
