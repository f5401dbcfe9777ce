"""One `write_report` on a benchmark database, measured in its own process.

    python -m bench.report_step POSTS
"""

from __future__ import annotations

import resource
import shutil
import sys
import tempfile
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
    started = time.perf_counter()
    with Store.open(database) as store:
        folder = write_report(store, config, campaign, campaign_window(campaign), out_dir=out)
    seconds = time.perf_counter() - started
    files = sorted(p.name for p in folder.iterdir())
    rows = sum(1 for _ in (folder / "posts.csv").open(encoding="utf-8-sig")) - 1
    shutil.rmtree(out)
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    emit({"seconds": round(seconds, 2), "files": len(files), "posts_csv_rows": rows,
          "export_peak_rss_mb": round(workers_mb, 1)})


if __name__ == "__main__":
    main()
