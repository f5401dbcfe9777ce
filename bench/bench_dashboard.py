"""Dashboard snapshot latency (everything the screen shows) on a big campaign while the collector writes.

    python -m bench.bench_dashboard [--posts 1000000] [--seconds 20]

Target at 1M campaign posts: p50 <= 50 ms, p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from dataclasses import replace

from rich.console import Console

from stormwatch import metrics
from stormwatch.config import load_config
from stormwatch.dashboard import render, take_snapshot
from stormwatch.store import Store

from .common import SMOKE, machine, table
from .setup import imported_database, label, scratch_copy, storm_archive


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the sorted values fall."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    """Print p50/p95 of snapshot+render with tallies, and of the same snapshot counted from the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000 if SMOKE else 1_000_000)
    parser.add_argument("--seconds", type=float, default=3 if SMOKE else 20)
    options = parser.parse_args()
    cached, config_path = imported_database(options.posts)
    database = scratch_copy(cached, "dashboard-bench.db")
    loaded = load_config(config_path)
    config = replace(loaded, storage=replace(loaded.storage, database=database))
    campaign = config.campaigns[0]
    writer_pages = storm_archive(20_000 if not SMOKE else 2000, seed=7)
    writer = subprocess.Popen([sys.executable, "-m", "bench.collector_writer", str(database), str(config_path),
                               str(writer_pages), str(options.seconds + 5), "0.2"], stdout=subprocess.PIPE, text=True)
    now = campaign.start + (campaign.end - campaign.start) / 3
    fast: list[float] = []
    drawn: list[float] = []
    screen = Console(width=120, height=40, file=io.StringIO(), color_system="truecolor", force_terminal=True)
    with Store.open(database) as store:
        members = metrics.campaign_size(store, campaign.name)
        time.sleep(1.0)  # let the writer start
        deadline = time.monotonic() + options.seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            snapshot = take_snapshot(store, config, campaign, now=now, list_size=20)
            taken = time.perf_counter()
            screen.print(render(snapshot))
            fast.append(taken - started)
            drawn.append(time.perf_counter() - taken)
            screen.file = io.StringIO()
        naive: list[float] = []
        for _ in range(3 if not SMOKE else 2):
            started = time.perf_counter()
            take_snapshot(store, config, campaign, now=now, list_size=20, reader="rows")
            naive.append(time.perf_counter() - started)
    written, _ = writer.communicate(timeout=120)
    rows = [("snapshot", "p50", "p95", "max", "refreshes"),
            ("running tallies (stormwatch)", f"{1000 * statistics.median(fast):.1f} ms",
             f"{1000 * percentile(fast, 0.95):.1f} ms", f"{1000 * max(fast):.1f} ms", str(len(fast))),
            ("counted from the rows (naive)", f"{1000 * statistics.median(naive):.0f} ms", "", "",
             str(len(naive))),
            ("drawing the 120x40 screen (rich)", f"{1000 * statistics.median(drawn):.1f} ms",
             f"{1000 * percentile(drawn, 0.95):.1f} ms", f"{1000 * max(drawn):.1f} ms", str(len(drawn)))]
    print(f"dashboard snapshot, {label(options.posts)}-post archive ({members:,} campaign posts), collector "
          f"writing a page every 0.2 s ({machine()})")
    print(table(rows))
    print(f"collector during the run: {written.strip().splitlines()[-1]}")
    print("target: p50 <= 50 ms, p95 <= 100 ms at 1M campaign posts")


if __name__ == "__main__":
    main()
