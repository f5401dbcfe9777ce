"""Importing archives: records from files -> normalize -> store, in bounded batches; broken lines are reported."""

from __future__ import annotations

import gc
import json
import logging
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import import_reader
from .config import CampaignConfig
from .errors import ArchiveError
from .models import CountBucket
from .normalize import x as normalize_x
from .sources import archive
from .store import Store
from .times import parse_time

log = logging.getLogger(__name__)


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
                    batch_posts: int = import_reader.BATCH_POSTS) -> ImportReport:
    """Import archive files into a campaign; idempotent (importing twice changes nothing).

    A post becomes a campaign member when it carries one of the campaign's hashtags (a repost also when
    its original does); other posts in the files are kept as context. `on_progress(path, bytes)` is
    told how far into each file reading has got.

    Reading, parsing and normalizing run in a second process (`import_reader`) while this one writes, so
    the two halves use both cores (threads would not: both halves are mostly Python). The pipe between them
    holds about one batch, which keeps memory flat whatever the file size.
    """
    paths = list(paths)
    for path in paths:
        if not path.is_file():
            raise ArchiveError(f"{path}: no such file")
    report = ImportReport(files=len(paths))
    started = time.perf_counter()
    store.register_campaign(campaign.name, campaign.start, campaign.end)
    hashtags = tuple(sorted(tag.casefold() for tag in campaign.hashtags))
    # A fresh interpreter for the reader: it loads only the reading code, so it stays small.
    job = json.dumps({"paths": [str(p) for p in paths], "hashtags": hashtags, "batch_posts": batch_posts})
    reader = subprocess.Popen([sys.executable, "-m", "stormwatch.import_reader", job], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert reader.stdout is not None
    with _quiet_garbage_collector(), store.bulk_writes():
        try:
            while True:
                try:
                    kind, *payload = pickle.load(reader.stdout)
                except EOFError:
                    detail = (reader.stderr.read().decode(errors="replace").strip().splitlines() or ["no output"])
                    raise ArchiveError(f"the archive reader stopped unexpectedly: {detail[-1]}") from None
                if kind == "batch":
                    new, updated = store.import_batches(import_reader.unpack(payload[0]), campaign.name)
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
            reader.stdout.close()
            try:
                reader.wait(timeout=5)
            except subprocess.TimeoutExpired:
                reader.kill()
                reader.wait()
            if reader.stderr is not None:
                reader.stderr.close()
    report.seconds = time.perf_counter() - started
    return report


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
