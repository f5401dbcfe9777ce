"""Importing archives: records from files -> normalize -> store, in bounded batches; broken lines are reported."""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
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
BATCH_POSTS = 20_000


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

    Reading and normalizing run on a second thread while this one writes: SQLite does its work with the
    interpreter lock released, so on two cores the two halves overlap. At most two batches wait in
    between, which keeps memory flat whatever the file size.
    """
    paths = list(paths)
    for path in paths:
        if not path.is_file():
            raise ArchiveError(f"{path}: no such file")
    report = ImportReport(files=len(paths))
    started = time.perf_counter()
    store.register_campaign(campaign.name, campaign.start, campaign.end)
    handoff: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader = threading.Thread(target=_read_into, name="stormwatch-import-reader", daemon=True,
                              args=(paths, campaign, report, on_progress, batch_posts, handoff, stop))
    with _quiet_garbage_collector():
        reader.start()
        try:
            while (item := handoff.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, archive.Record):
                    report.count_buckets += _import_counts(store, campaign, item)
                    continue
                new, updated = store.import_batches(item, campaign.name)
                report.posts_new += new
                report.posts_updated += updated
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting to hand over, then let it finish
                with contextlib.suppress(queue.Empty):
                    handoff.get(timeout=0.1)
            reader.join()
    report.seconds = time.perf_counter() - started
    return report


_DONE = object()


def _read_into(paths: list[Path], campaign: CampaignConfig, report: ImportReport,
               on_progress: Callable[[Path, int], None] | None, batch_posts: int, handoff: queue.Queue[Any],
               stop: threading.Event) -> None:
    """The reading thread: files -> records -> normalized batches of about `batch_posts` posts."""
    try:
        hashtags = frozenset(tag.casefold() for tag in campaign.hashtags)
        imported_at = iso_utc(datetime.now(UTC))
        pending: list[tuple[Batch, str]] = []
        pending_posts = 0
        for path in paths:
            progress = (lambda done, p=path: on_progress(p, done)) if on_progress else None
            for item in archive.read_archive(path, progress):
                if stop.is_set():
                    return
                if isinstance(item, archive.Problem):
                    report.problems.append(str(item))
                    continue
                report.records += 1
                if item.kind == archive.X_COUNTS:
                    if pending:
                        handoff.put(pending)
                        pending, pending_posts = [], 0
                    handoff.put(item)
                    continue
                try:
                    batch = _normalize(item, imported_at)
                except MalformedPage as exc:
                    report.problems.append(f"{item.path}:{item.line}: {exc}")
                    continue
                if batch is None:
                    report.problems.append(f"{item.path}:{item.line}: {item.kind} records are not supported yet")
                    continue
                report.problems.extend(f"{item.path}:{item.line}: {e}" for e in batch.errors if _is_damage(e))
                member_batch = campaign_members(batch, hashtags)
                pending.append((member_batch, _stamp(item.retrieved_at, imported_at)))
                pending_posts += len(member_batch.posts) + len(member_batch.context_posts)
                report.posts_read += len(batch.posts)
                if pending_posts >= batch_posts:
                    handoff.put(pending)
                    pending, pending_posts = [], 0
        if pending:
            handoff.put(pending)
        handoff.put(_DONE)
    except BaseException as exc:  # hand any failure to the writing thread, which reports it
        handoff.put(exc)


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
