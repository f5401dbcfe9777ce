"""The writing half of `stormwatch import`: a reader process's batches -> store, in bounded batches; broken
lines are reported."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..archive.reader import MAX_LINE, not_a_file
from ..config import CampaignConfig
from ..errors import ArchiveError
from ..store import Store
from ..times import parse_time
from ..workers import Worker
from . import reader as import_reader

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
                    batch_posts: int = import_reader.BATCH_POSTS, max_line: int = MAX_LINE) -> ImportReport:
    """Import archive files into a campaign; idempotent (importing twice changes nothing).

    A post becomes a campaign member when it carries one of the campaign's hashtags (a repost also when
    its original does); other posts in the files are kept as context. `on_progress(path, bytes)` is
    told how far into each file reading has got. A line (or array element) longer than `max_line` bytes is
    skipped and reported, never held; a path that is not a regular file (a FIFO, a device) is refused at once.

    Reading, parsing and normalizing run in a second process (`importer.reader`) while this one writes, so
    the two halves use both cores (threads would not: both halves are mostly Python). The pipe between them
    holds about one batch, which keeps memory flat whatever the file size.
    """
    paths = list(paths)
    for path in paths:
        if (reason := not_a_file(path)) is not None:
            raise ArchiveError(reason)
    report = ImportReport(files=len(paths))
    started = time.perf_counter()
    store.register_campaign(campaign.name, campaign.start, campaign.end, campaign.counter_hashtags)
    hashtags = tuple(sorted(tag.casefold() for tag in campaign.hashtags))
    job = {"paths": [str(p) for p in paths], "hashtags": hashtags, "batch_posts": batch_posts, "max_line": max_line}
    done = False
    # A fresh interpreter for the reader: it loads only the reading code, so it stays small.
    with (Worker.start("stormwatch.importer.reader", job, task="reading the archive", error=ArchiveError) as reader,
          _quiet_garbage_collector(), store.bulk_writes()):
        for kind, *payload in reader.messages():
            if kind == "batch":
                new, updated = store.import_batches(import_reader.unpack(payload[0]), campaign.name)
                report.posts_new += new
                report.posts_updated += updated
            elif kind == "counts":
                report.count_buckets += _import_counts(store, campaign, import_reader.Counts(*payload[0]))
            elif kind == "problem":
                report.problems.append(payload[0])
            elif kind == "progress":
                if on_progress is not None:
                    on_progress(Path(payload[0]), payload[1])
            elif kind == "done":
                report.records, report.posts_read = payload
                done = True
    if not done:
        raise ArchiveError("reading the archive failed: the reader ended before reading every file")
    report.seconds = time.perf_counter() - started
    return report


def _import_counts(store: Store, campaign: CampaignConfig, counts: import_reader.Counts) -> int:
    fetched = parse_time(counts.fetched_at) if counts.fetched_at else datetime.now(UTC)
    store.save_counts(None, campaign.name, counts.platform, counts.query, counts.buckets, fetched_at=fetched)
    return len(counts.buckets)


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
