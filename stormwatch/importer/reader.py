"""The reading half of `stormwatch import`, run in its own process: files -> records -> normalized batches.

`python -m stormwatch.importer.reader '<json job>'`, started by the writer through `stormwatch.workers`. It
imports only what reading needs (no database code), so the process stays small; its messages go back to the
writing process pickled on standard output. What each record becomes is the source registry's business:
each platform's normalizer declares the kinds of record it reads.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..archive import reader as archive
from ..errors import MalformedPage
from ..models import Account, Batch, CountBucket, Post
from ..normalize.common import RecordKind, optional_text, utc_stamp
from ..sources import registry
from ..times import iso_utc
from ..workers import serve

# Posts per batch sent to the writer: small batches keep both processes' memory low; commits are cheap in WAL.
BATCH_POSTS = 2_000


def pack(batches: list[tuple[Batch, str]]) -> list[tuple[Any, ...]]:
    """Batches as plain tuples for the pipe: unpickling dataclasses costs the writer ten times more."""
    return [(tuple(astuple_fast(p) for p in batch.posts), tuple(astuple_fast(p) for p in batch.context_posts),
             tuple(astuple_fast(a) for a in batch.accounts), batch.errors, stamp)
            for batch, stamp in batches]


def unpack(packed: list[tuple[Any, ...]]) -> list[tuple[Batch, str]]:
    """The batches `pack` flattened."""
    return [(Batch(tuple(Post(*p) for p in posts), tuple(Post(*p) for p in context),
                   tuple(Account(*a) for a in accounts), errors), stamp)
            for posts, context, accounts, errors, stamp in packed]


def astuple_fast(item: Post | Account) -> tuple[Any, ...]:
    """A slotted dataclass's fields in order (dataclasses.astuple deep-copies, far slower)."""
    return tuple(getattr(item, name) for name in item.__slots__)


def main() -> None:
    """`python -m stormwatch.importer.reader '<json job>'`: the messages of `read_batches`, batches packed."""
    gc.disable()  # short-lived and allocation-heavy: the cyclic collector would only slow it down
    serve(_messages)


def _messages(job: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    for message in read_batches([Path(p) for p in job["paths"]], frozenset(job["hashtags"]), job["batch_posts"],
                                job.get("max_line", archive.MAX_LINE)):
        yield ("batch", pack(message[1])) if message[0] == "batch" else message


def read_batches(paths: list[Path], hashtags: frozenset[str], batch_posts: int = BATCH_POSTS,
                 max_line: int = archive.MAX_LINE) -> Iterator[tuple[Any, ...]]:
    """Files -> messages: ("batch", [(Batch, collected_at)…]) of about `batch_posts` posts, ("counts", Counts as a
    tuple), ("problem", "FILE:LINE: reason"), ("progress", path, bytes) and finally ("done", records, posts read).

    No record costs another: whatever one record does to the normalizers (a wrong type anywhere, an impossible
    value, nesting too deep, a bug) is that record's problem, reported with where it is, and reading goes on.
    """
    imported_at = iso_utc(datetime.now(UTC))
    kinds = registry.record_kinds()
    by_name = {kind.name: kind for kind in kinds}
    pending: list[tuple[Batch, str]] = []
    pending_posts = records = posts_read = 0
    seen_users: dict[str, Any] = {}
    seen_posts: dict[str, Any] = {}
    progress: list[tuple[str, int]] = []
    for path in paths:
        def on_progress(done: int, where: str = str(path)) -> None:
            progress.append((where, done))

        for item in archive.read_archive(path, kinds, on_progress, max_line):
            while progress:
                yield ("progress", *progress.pop(0))
            if isinstance(item, archive.Problem):
                yield ("problem", str(item))
                continue
            records += 1
            kind = by_name[item.kind]
            try:
                if kind.counts is not None:  # stored by the writer, with the query they counted
                    counts = read_counts(kind, item)
                    if pending:
                        yield ("batch", pending)
                        pending, pending_posts = [], 0
                    # As a plain tuple: this module runs as __main__ here, so its classes do not unpickle there.
                    yield ("counts", (counts.platform, counts.query, counts.buckets, counts.fetched_at))
                    continue
                item = without_repeats(item, seen_users, seen_posts)
                batch = normalize_record(kind, item, imported_at)
            except MalformedPage as exc:
                yield ("problem", f"{item.where()}: {exc}")
                continue
            except Exception as exc:  # whatever trips over one record is that record's problem
                yield ("problem", f"{item.where()}: cannot be read ({type(exc).__name__}: {_short(exc)})")
                continue
            if batch is None:
                yield ("problem", f"{item.where()}: {item.kind} records are not supported yet")
                continue
            for error in batch.errors:
                if ", skipped" in error:  # damage to an item is reported; API notes (deleted originals) are not
                    yield ("problem", f"{item.where()}:{error}")
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


@dataclass(frozen=True)
class Counts:
    """A counts record read and checked: its buckets, the query they counted, when they were fetched."""

    platform: str
    query: str
    buckets: list[CountBucket]
    fetched_at: str | None


def read_counts(kind: RecordKind, record: archive.Record) -> Counts:
    """The buckets of a counts record and the query they belong to (MalformedPage when a bucket is unreadable)."""
    assert kind.counts is not None
    buckets = kind.counts(record.body)
    provenance = record.body.get("__stormwatch")
    query = provenance.get("query") if isinstance(provenance, dict) else None
    if not isinstance(query, str) or not query:
        twarc = record.body.get("__twarc")
        url = twarc.get("url") if isinstance(twarc, dict) else None
        query = (parse_qs(urlsplit(url).query).get("query") or ["(archive)"])[0] if isinstance(url, str) else None
    fetched = stamp(record.retrieved_at, "") or None
    return Counts(kind.platform, optional_text(query, "query", 2000) or "(archive)", buckets, fetched)


def _short(exc: BaseException) -> str:
    return str(exc).split("\n")[0][:200]


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
    """The record with included users and posts already seen unchanged in this batch left out (pages that
    carry `includes`: X's).

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
            if type(identity) not in (str, int):
                identity = None  # only ids can be keys
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
    return archive.Record(record.path, record.line, record.kind, body, record.retrieved_at, record.item)


def normalize_record(kind: RecordKind, record: archive.Record, imported_at: str) -> Batch | None:
    """Rows from one archive record of `kind` (None for kinds that are not rows)."""
    if kind.rows is None:
        return None
    return kind.rows(record.body, stamp(record.retrieved_at, imported_at))


def stamp(retrieved_at: str | None, default: str) -> str:
    """A record's retrieval time in the stored form, or `default` when it has none or an impossible one (a
    year-9999 stamp would make its snapshot win over every later one)."""
    if not retrieved_at:
        return default
    try:
        return utc_stamp(retrieved_at, "retrieved_at")[0]
    except MalformedPage:
        return default


if __name__ == "__main__":
    main()
