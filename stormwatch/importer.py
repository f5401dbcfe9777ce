"""Importing archives: records from files -> normalize -> store, in bounded batches; broken lines are reported."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .config import CampaignConfig
from .errors import ArchiveError, MalformedPage
from .models import Batch, CountBucket
from .normalize import x as normalize_x
from .sources import archive
from .store import Store
from .times import iso_utc, parse_time

log = logging.getLogger(__name__)

# Posts written per transaction: big enough to amortize the commit, small enough to keep memory flat.
BATCH_POSTS = 5_000


@dataclass
class ImportReport:
    """What an import read, stored and skipped."""

    files: int = 0
    records: int = 0
    posts_read: int = 0
    posts_new: int = 0
    posts_updated: int = 0
    count_buckets: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        """How many lines or elements could not be imported."""
        return len(self.problems)


def import_archives(store: Store, campaign: CampaignConfig, paths: Iterable[Path], *,
                    on_progress: Callable[[Path, int], None] | None = None,
                    batch_posts: int = BATCH_POSTS) -> ImportReport:
    """Import archive files into a campaign; idempotent (importing twice changes nothing).

    A post becomes a campaign member when it carries one of the campaign's hashtags (a repost also when
    its original does); other posts in the files are kept as context. `on_progress(path, bytes)` is
    told how far into each file reading has got.

    Reading, parsing and normalizing run in a second process while this one writes, so the two halves
    use both cores (threads would not: both halves are mostly Python). The pipe between them holds about
    one batch, which keeps memory flat whatever the file size.
    """
    paths = list(paths)
    for path in paths:
        if not path.is_file():
            raise ArchiveError(f"{path}: no such file")
    report = ImportReport(files=len(paths))
    started = time.perf_counter()
    store.register_campaign(campaign.name, campaign.start, campaign.end)
    hashtags = tuple(sorted(tag.casefold() for tag in campaign.hashtags))
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    receiving, sending = context.Pipe(duplex=False)
    reader = context.Process(target=_reader_process, name="stormwatch-import-reader", daemon=True,
                             args=([str(p) for p in paths], hashtags, batch_posts, sending))
    with _quiet_garbage_collector():
        reader.start()
        sending.close()
        try:
            while True:
                try:
                    kind, *payload = receiving.recv()
                except EOFError:
                    raise ArchiveError("the archive reader stopped unexpectedly") from None
                if kind == "batch":
                    new, updated = store.import_batches(payload[0], campaign.name)
                    report.posts_new += new
                    report.posts_updated += updated
                elif kind == "counts":
                    report.count_buckets += _import_counts(store, campaign, payload[0])
                elif kind == "problem":
                    report.problems.append(payload[0])
                elif kind == "progress":
                    if on_progress is not None:
                        on_progress(Path(payload[0]), payload[1])
                elif kind == "error":
                    raise ArchiveError(payload[0])
                elif kind == "done":
                    report.records, report.posts_read = payload
                    break
        finally:
            receiving.close()
            reader.join(timeout=5)
            if reader.is_alive():
                reader.terminate()
                reader.join()
    report.seconds = time.perf_counter() - started
    return report


def _reader_process(paths: list[str], hashtags: tuple[str, ...], batch_posts: int, out: Any) -> None:
    """The reading process: sends batches, counts pages, problems and progress down the pipe."""
    gc.disable()  # short-lived and allocation-heavy: the cyclic collector would only slow it down
    try:
        for message in read_batches([Path(p) for p in paths], frozenset(hashtags), batch_posts):
            out.send(message)
    except Exception as exc:  # the writing process reports it as one line
        out.send(("error", f"reading the archive failed: {type(exc).__name__}: {exc}"))
    finally:
        out.close()


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
                item = _without_repeats(item, seen_users, seen_posts)
            try:
                batch = _normalize(item, imported_at)
            except MalformedPage as exc:
                yield ("problem", f"{item.path}:{item.line}: {exc}")
                continue
            if batch is None:
                yield ("problem", f"{item.path}:{item.line}: {item.kind} records are not supported yet")
                continue
            for error in batch.errors:
                if _is_damage(error):
                    yield ("problem", f"{item.path}:{item.line}: {error}")
            member_batch = campaign_members(batch, hashtags)
            pending.append((member_batch, _stamp(item.retrieved_at, imported_at)))
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


def _without_repeats(record: archive.Record, seen_users: dict[str, Any],
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


def _normalize(record: archive.Record, imported_at: str) -> Batch | None:
    retrieved = _stamp(record.retrieved_at, imported_at)
    if record.kind == archive.X_PAGE:
        return normalize_x.normalize_page(record.body, retrieved)
    if record.kind == archive.X_POST:
        return normalize_x.normalize_page(_page_of_flattened_post(record.body), retrieved)
    return None


def _page_of_flattened_post(tweet: dict[str, Any]) -> dict[str, Any]:
    """`twarc2 flatten` lines carry their author and referenced posts inline: rebuild the page shape."""
    users = [tweet["author"]] if isinstance(tweet.get("author"), dict) else []
    referenced = [r for r in tweet.get("referenced_tweets") or () if isinstance(r, dict) and "text" in r]
    for reference in referenced:
        if isinstance(reference.get("author"), dict):
            users.append(reference["author"])
    return {"data": [tweet], "includes": {"users": users, "tweets": referenced}}


def _import_counts(store: Store, campaign: CampaignConfig, record: archive.Record) -> int:
    buckets: list[CountBucket] = normalize_x.normalize_counts(record.body)
    stamp = record.body.get("__stormwatch") or {}
    query = stamp.get("query") if isinstance(stamp, dict) else None
    if not query:
        url = (record.body.get("__twarc") or {}).get("url", "")
        query = (parse_qs(urlsplit(url).query).get("query") or ["(archive)"])[0]
    fetched = parse_time(record.retrieved_at) if record.retrieved_at else datetime.now(UTC)
    store.save_counts(None, campaign.name, "x", query, buckets, fetched_at=fetched)
    return len(buckets)


def _stamp(retrieved_at: str | None, default: str) -> str:
    if not retrieved_at:
        return default
    try:
        return iso_utc(parse_time(retrieved_at))
    except ValueError:
        return default


def _is_damage(error: str) -> bool:
    """Item-level damage in a page (an unreadable post) is reported; API notes like deleted originals are not."""
    return ", skipped" in error


@contextmanager
def _quiet_garbage_collector() -> Iterator[None]:
    """Parsed pages are trees of small dicts: the cyclic collector would rescan them constantly for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
