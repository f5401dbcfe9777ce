"""One `write_report` on a benchmark database, measured in its own process.

    python -m bench.report_step POSTS
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from stormwatch.config import load_config
from stormwatch.metrics import campaign_window
from stormwatch.report import write_report
from stormwatch.store import Store

from .common import emit
from .setup import imported_database


def main() -> None:
    """Write the full report (all charts and files) and print wall time and peak memory."""
    database, config_path = imported_database(int(sys.argv[1]))
    config = load_config(config_path)
    campaign = config.campaigns[0]
    out = Path(tempfile.mkdtemp(prefix="stormwatch-report-bench-"))
    writers: dict[str, int] = {}
    done = threading.Event()
    watcher = threading.Thread(target=_watch_children, args=(writers, done), daemon=True)
    watcher.start()
    started = time.perf_counter()
    with Store.open(database) as store:
        folder = write_report(store, config, campaign, campaign_window(campaign), out_dir=out)
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    files = sorted(p.name for p in folder.iterdir())
    rows = sum(1 for _ in (folder / "posts.csv").open(encoding="utf-8-sig")) - 1
    shutil.rmtree(out)
    emit({"seconds": round(seconds, 2), "files": len(files), "posts_csv_rows": rows,
          "writers_peak_rss_mb": sorted(writers.values())})


def _watch_children(peaks: dict[str, int], done: threading.Event) -> None:
    """Sample the resident memory of this process's children (the posts.csv writers) from /proc.

    resource's RUSAGE_CHILDREN would report a child's memory before it replaced itself with a fresh
    interpreter (a copy of this process), not what the writer itself used.
    """
    me = os.getpid()
    while not done.wait(0.05):
        try:
            children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        peaks[child] = max(peaks.get(child, 0), int(line.split()[1]) // 1024)
            except OSError:
                pass


if __name__ == "__main__":
    main()
