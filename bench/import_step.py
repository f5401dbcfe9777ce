"""One `stormwatch import` of an archive into a fresh database, measured (run in its own process).

    python -m bench.import_step ARCHIVE POSTS
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from stormwatch.config import load_config
from stormwatch.importer import import_archives
from stormwatch.store import Store

from .common import DATA, emit
from .setup import config_for


def main() -> None:
    """Import, then print posts/s and the peak memory of this process and of the reader process it forks."""
    archive, posts = Path(sys.argv[1]), int(sys.argv[2])
    database = DATA / "import-bench.db"
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    config = load_config(config_for(database, posts))
    started = time.perf_counter()
    with Store.open(config.storage.database) as store:
        report = import_archives(store, config.campaigns[0], [archive])
    seconds = time.perf_counter() - started
    reader_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    emit({"posts": report.posts_read, "seconds": round(seconds, 2), "posts_per_s": round(report.posts_read / seconds),
          "skipped": report.skipped, "reader_peak_rss_mb": round(reader_mb, 1)})


if __name__ == "__main__":
    main()
