"""The baseline every import is measured against: plain sqlite3 executemany of posts, users and tags with orjson,
one transaction, no normalization beyond picking fields.

    python -m bench.baseline_import FILE DB
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import orjson

from .common import emit

SCHEMA = """
CREATE TABLE posts (id TEXT PRIMARY KEY, author_id TEXT, created_at TEXT, text TEXT, lang TEXT, ref_type TEXT,
    ref_id TEXT, retweet_count INTEGER, reply_count INTEGER, like_count INTEGER, quote_count INTEGER,
    impression_count INTEGER);
CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT, name TEXT, followers_count INTEGER,
    following_count INTEGER, tweet_count INTEGER, created_at TEXT, verified INTEGER);
CREATE TABLE tags (post_id TEXT, tag TEXT, PRIMARY KEY (post_id, tag));
"""


def post_row(tweet: dict) -> tuple:
    metrics = tweet.get("public_metrics") or {}
    reference = (tweet.get("referenced_tweets") or [{}])[0]
    return (tweet["id"], tweet.get("author_id"), tweet.get("created_at"), tweet.get("text"), tweet.get("lang"),
            reference.get("type"), reference.get("id"), metrics.get("retweet_count"), metrics.get("reply_count"),
            metrics.get("like_count"), metrics.get("quote_count"), metrics.get("impression_count"))


def user_row(user: dict) -> tuple:
    metrics = user.get("public_metrics") or {}
    return (user["id"], user.get("username"), user.get("name"), metrics.get("followers_count"),
            metrics.get("following_count"), metrics.get("tweet_count"), user.get("created_at"), user.get("verified"))


def main() -> None:
    """Import FILE into a fresh DB and print posts/s."""
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(SCHEMA)
    started = time.perf_counter()
    posts = 0
    conn.execute("BEGIN")
    with source.open("rb") as handle:
        for line in handle:
            page = orjson.loads(line)
            data = page.get("data") or []
            includes = page.get("includes") or {}
            tweets = data + (includes.get("tweets") or [])
            conn.executemany("INSERT OR REPLACE INTO posts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", map(post_row, tweets))
            conn.executemany("INSERT OR REPLACE INTO users VALUES (?,?,?,?,?,?,?,?)",
                             map(user_row, includes.get("users") or []))
            conn.executemany("INSERT OR IGNORE INTO tags VALUES (?,?)",
                             [(t["id"], h["tag"].lower()) for t in data
                              for h in (t.get("entities") or {}).get("hashtags") or ()])
            posts += len(data)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    emit({"posts": posts, "seconds": round(seconds, 2), "posts_per_s": round(posts / seconds)})


if __name__ == "__main__":
    main()
