"""The reading half of `stormwatch import`, run in its own process: files -> records -> normalized batches.

It imports only what reading needs (no database code), so the process stays small; its messages go back
to the writing process pickled on standard output (the two processes are the same program, one trusts
the other).
"""

from __future__ import annotations

import gc
import json
import pickle
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import MalformedPage
from .models import Account, Batch, Post
from .normalize import bluesky as normalize_bluesky
from .normalize import mastodon as normalize_mastodon
from .normalize import x as normalize_x
from .sources import archive
from .times import iso_utc, parse_time

# Posts per batch sent to the writer: small batches keep both processes' memory low; commits are cheap in WAL.
BATCH_POSTS = 2_000


def pack(batches: list[tuple[Batch, str]]) -> list[tuple]:
    """Batches as plain tuples for the pipe: unpickling dataclasses costs the writer ten times more."""
    return [(tuple(astuple_fast(p) for p in batch.posts), tuple(astuple_fast(p) for p in batch.context_posts),
             tuple(astuple_fast(a) for a in batch.accounts), batch.errors, stamp)
            for batch, stamp in batches]


def unpack(packed: list[tuple]) -> list[tuple[Batch, str]]:
    """The batches `pack` flattened."""
    return [(Batch(tuple(Post(*p) for p in posts), tuple(Post(*p) for p in context),
                   tuple(Account(*a) for a in accounts), errors), stamp)
            for posts, context, accounts, errors, stamp in packed]


def astuple_fast(item: Post | Account) -> tuple[Any, ...]:
    """A slotted dataclass's fields in order (dataclasses.astuple deep-copies, far slower)."""
    return tuple(getattr(item, name) for name in item.__slots__)


def main() -> None:
    """`python -m stormwatch.import_reader '<json job>'`: pickled messages on standard output, one after another."""
    job = json.loads(sys.argv[1])
    gc.disable()  # short-lived and allocation-heavy: the cyclic collector would only slow it down
    out = sys.stdout.buffer
    try:
        for message in read_batches([Path(p) for p in job["paths"]], frozenset(job["hashtags"]), job["batch_posts"]):
            if message[0] == "batch":
                message = ("batch", pack(message[1]))
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
            if message[0] != "batch":
                out.flush()
    except BrokenPipeError:  # the writing process stopped reading (it failed or was interrupted)
        return
    except Exception as exc:  # the writing process reports it as one line
        pickle.dump(("error", f"reading the archive failed: {type(exc).__name__}: {exc}"), out)
    out.flush()


def read_batches(paths: list[Path], hashtags: frozenset[str], batch_posts: int = BATCH_POSTS) -> Iterator[tuple]:
    """Files -> messages: ("batch", [(Batch, collected_at)…]) of about `batch_posts` posts, ("counts", record),
    ("problem", "FILE:LINE: reason"), ("progress", path, bytes) and finally ("done", records, posts read)."""
    imported_at = iso_utc(datetime.now(UTC))
    pending: list[tuple[Batch, str]] = []
    pending_posts = records = posts_read = 0
    seen_users: dict[str, Any] = {}
    seen_posts: dict[str, Any] = {}
    progress: list[tuple[str, int]] = []
    for path in paths:
        for item in archive.read_archive(path, lambda done, p=str(path): progress.append((p, done))):
            while progress:
                yield ("progress", *progress.pop(0))
            if isinstance(item, archive.Problem):
                yield ("problem", str(item))
                continue
            records += 1
            if item.kind == archive.X_COUNTS:
                if pending:
                    yield ("batch", pending)
                    pending, pending_posts = [], 0
                yield ("counts", item)
                continue
            if item.kind == archive.X_PAGE:
                item = without_repeats(item, seen_users, seen_posts)
            try:
                batch = normalize_record(item, imported_at)
            except MalformedPage as exc:
                yield ("problem", f"{item.path}:{item.line}: {exc}")
                continue
            if batch is None:
                yield ("problem", f"{item.path}:{item.line}: {item.kind} records are not supported yet")
                continue
            for error in batch.errors:
                if ", skipped" in error:  # damage to an item is reported; API notes (deleted originals) are not
                    yield ("problem", f"{item.path}:{item.line}: {error}")
            member_batch = campaign_members(batch, hashtags)
            pending.append((member_batch, stamp(item.retrieved_at, imported_at)))
            pending_posts += len(member_batch.posts) + len(member_batch.context_posts)
            posts_read += len(batch.posts)
            if pending_posts >= batch_posts:
                yield ("batch", pending)
                pending, pending_posts = [], 0
                seen_users.clear()
                seen_posts.clear()
        while progress:
            yield ("progress", *progress.pop(0))
    if pending:
        yield ("batch", pending)
    yield ("done", records, posts_read)


def campaign_members(batch: Batch, hashtags: frozenset[str]) -> Batch:
    """The batch with only posts carrying a campaign hashtag (or reposting one that does) as members."""
    originals = {p.uid: p for p in batch.context_posts}
    originals.update((p.uid, p) for p in batch.posts)
    members, others = [], []
    for post in batch.posts:
        original = originals.get(post.ref_uid) if post.kind == "repost" and post.ref_uid else None
        if hashtags.intersection(post.tags) or (original is not None and hashtags.intersection(original.tags)):
            members.append(post)
        else:
            others.append(post)
    if not others:
        return batch
    return Batch(posts=tuple(members), context_posts=tuple(others) + batch.context_posts, accounts=batch.accounts,
                 errors=batch.errors)


def without_repeats(record: archive.Record, seen_users: dict[str, Any],
                    seen_posts: dict[str, Any]) -> archive.Record:
    """The record with included users and posts already seen unchanged in this batch left out.

    An archive repeats the same accounts and reposted originals on page after page; the store keeps one
    copy of each anyway, so normalizing the repeats is wasted work. A copy that differs (new counters)
    is kept. The record itself is not modified.
    """
    includes = record.body.get("includes") if isinstance(record.body, dict) else None
    if not isinstance(includes, dict):
        return record
    changed = False
    kept: dict[str, Any] = {}
    for key, seen in (("users", seen_users), ("tweets", seen_posts)):
        items = includes.get(key)
        if not isinstance(items, list):
            continue
        fresh = []
        for item in items:
            identity = item.get("id") if isinstance(item, dict) else None
            if identity is not None and seen.get(identity) == item:
                continue
            if identity is not None:
                seen[identity] = item
            fresh.append(item)
        if len(fresh) != len(items):
            changed = True
        kept[key] = fresh
    if not changed:
        return record
    body = {**record.body, "includes": {**includes, **kept}}
    return archive.Record(record.path, record.line, record.kind, body, record.retrieved_at)


def normalize_record(record: archive.Record, imported_at: str) -> Batch | None:
    """Rows from one archive record, by its kind (None for kinds not read yet)."""
    retrieved = stamp(record.retrieved_at, imported_at)
    if record.kind == archive.X_PAGE:
        return normalize_x.normalize_page(record.body, retrieved)
    if record.kind == archive.X_POST:
        return normalize_x.normalize_page(_page_of_flattened_post(record.body), retrieved)
    if record.kind == archive.MASTODON_PAGE:
        return normalize_mastodon.normalize_timeline(record.body, retrieved)
    if record.kind == archive.MASTODON_STATUS:
        return normalize_mastodon.normalize_statuses([record.body], retrieved, None)
    if record.kind == archive.BLUESKY_PAGE:
        return normalize_bluesky.normalize_post_views(record.body, retrieved)
    if record.kind == archive.BLUESKY_POST:
        return normalize_bluesky.normalize_post_views([record.body], retrieved)
    if record.kind == archive.BLUESKY_EVENTS:
        body = record.body if isinstance(record.body.get("events"), list) else {"events": [record.body]}
        return normalize_bluesky.normalize_jetstream(body, retrieved)
    if record.kind == archive.BLUESKY_PROFILES:
        return normalize_bluesky.normalize_profiles(record.body, retrieved)
    return None


def _page_of_flattened_post(tweet: dict[str, Any]) -> dict[str, Any]:
    """`twarc2 flatten` lines carry their author and referenced posts inline: rebuild the page shape."""
    users = [tweet["author"]] if isinstance(tweet.get("author"), dict) else []
    referenced = [r for r in tweet.get("referenced_tweets") or () if isinstance(r, dict) and "text" in r]
    for reference in referenced:
        if isinstance(reference.get("author"), dict):
            users.append(reference["author"])
    return {"data": [tweet], "includes": {"users": users, "tweets": referenced}}


def stamp(retrieved_at: str | None, default: str) -> str:
    """A record's retrieval time in the stored form, or `default` when it has none."""
    if not retrieved_at:
        return default
    try:
        return iso_utc(parse_time(retrieved_at))
    except ValueError:
        return default


if __name__ == "__main__":
    main()
