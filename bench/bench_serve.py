"""The live page (`stormwatch serve`) under 50 viewers refreshing at once on a big campaign while the collector
writes: p50/p95 of a page update, of a new view reaching the event streams, of a refresh of the figures, and the
collector's per-page p95 without and with the viewers, in the same run.

    python -m bench.bench_serve [--posts 1000000] [--seconds 20] [--viewers 50] [--streams 50] [--every 1]

A page update is one viewer's request of the feed (`feed.json`, what the page asks for when it polls), timed from
writing the request to reading the last byte of the response. The viewers ask all at the same moment, every
`--every` seconds; every tenth turn a viewer reloads the whole page instead (timed apart, as a page load). The
event streams' figure is the time from the server publishing a new view to its event having fully arrived.
The viewers run in a process of their own (bench/serve_viewers.py), each from its own loopback address, as phones
have their own: they share neither the server's interpreter nor its per-client rate limit. The server runs here
as `stormwatch serve` runs it (the page's refresh thread and uvicorn); the collector in a third process.

Target at 1M campaign posts: page update p95 <= 100 ms; the collector's per-page p95 within 10% of without viewers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from stormwatch.config import load_config
from stormwatch.web import in_thread, link_file, link_secret, prepare

from .bench_dashboard import percentile
from .common import BENCH, SMOKE, machine, table
from .setup import imported_database, label, scratch_copy, storm_archive

INTERVAL = 0.2  # the collector stores a 100-post page this often


def writer(database: Path, config_path: Path, pages: Path, seconds: float, skip: int) -> subprocess.Popen[str]:
    """The collector's writes (bench/collector_writer.py): a 100-post page every 0.2 s, in a process of its own,
    starting after the `skip` pages earlier runs stored."""
    return subprocess.Popen([sys.executable, "-m", "bench.collector_writer", str(database), str(config_path),
                             str(pages), str(seconds), str(INTERVAL), str(skip)], stdout=subprocess.PIPE, text=True,
                            cwd=BENCH.parent)


def finished(process: subprocess.Popen[str]) -> dict[str, Any]:
    """A bench step's JSON result (its last line of output)."""
    output = process.communicate(timeout=600)[0]
    if process.returncode != 0:
        raise SystemExit(f"bench step failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), as `uptime` says them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def spread(values: list[float], unit: str = "ms") -> tuple[str, str, str, str]:
    """p50, p95, max and count of `values` for the table."""
    if not values:
        return "—", "—", "—", "0"
    return (f"{percentile(values, 0.5):.1f} {unit}", f"{percentile(values, 0.95):.1f} {unit}",
            f"{max(values):.1f} {unit}", f"{len(values):,}")


def delivery_ms(events: list[list[Any]], published: list[tuple[str, float]]) -> list[float]:
    """For each event a stream received, the time from the server publishing that view to its arrival."""
    when = dict(published)
    return [1000 * (arrived - when[version]) for version, arrived in events if version in when]


def main() -> None:
    """Print the page's latency under load and the collector's per-page p95 with and without viewers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000 if SMOKE else 1_000_000)
    parser.add_argument("--seconds", type=float, default=3 if SMOKE else 20)
    parser.add_argument("--viewers", type=int, default=10 if SMOKE else 50, help="viewers polling the feed")
    parser.add_argument("--streams", type=int, default=10 if SMOKE else 50, help="viewers holding an event stream")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between the viewers' requests")
    options = parser.parse_args()
    cached, config_path = imported_database(options.posts)
    database = scratch_copy(cached, "serve-bench.db")
    loaded = load_config(config_path)
    config = replace(loaded, storage=replace(loaded.storage, database=database))
    # Three runs of the collector, each storing posts not stored before: without viewers, with, without again (the
    # pages stored while the viewers were asking are compared with the pages of both runs without).
    pages = storm_archive(5000 if SMOKE else 40_000, seed=7)
    loads = [load()]

    before = finished(writer(database, config_path, pages, options.seconds, 0))
    skip = before["pages"]
    served = prepare(config, config.campaigns[0], link_secret(link_file(config)), port=0)
    with in_thread(served):
        busy = writer(database, config_path, pages, options.seconds + 3, skip)
        time.sleep(1.0)  # the writer is storing before the viewers start, and goes on after they stop
        viewers = subprocess.Popen([sys.executable, "-m", "bench.serve_viewers", served.url, str(options.viewers),
                                    str(options.streams), str(options.seconds), str(options.every)],
                                   stdout=subprocess.PIPE, text=True, cwd=BENCH.parent)
        seen = finished(viewers)
        loads.append(load())
        during = finished(busy)
        refreshes = [1000 * s for s in served.live.refresh_seconds_taken[1:]]  # the first also started the worker
        published = list(served.live.published)
    after = finished(writer(database, config_path, pages, options.seconds, skip + during["pages"]))
    loads.append(load())

    first, last = seen["span"]
    with_viewers = [took for at, took in during["page_ms"] if first <= at <= last]
    without = [took for _, took in before["page_ms"] + after["page_ms"]]
    quiet = percentile(without, 0.95) if without else 0.0
    change = (percentile(with_viewers, 0.95) - quiet) / quiet if quiet and with_viewers else 0.0
    streamed = delivery_ms(seen["events"], published)
    rows: list[tuple[str, ...]] = [("", "p50", "p95", "max", "count"),
            ("page update (feed request to full response)", *spread(seen["feed_ms"])),
            ("page load (the whole page, every 10th turn)", *spread(seen["page_ms"])),
            ("new view to event stream (published to arrived)", *spread(streamed)),
            ("refresh of the figures (one for all viewers)", *spread(refreshes)),
            ("collector page, no viewers (before and after)", *spread(without)),
            (f"collector page, {options.viewers} + {options.streams} viewers", *spread(with_viewers))]
    print(f"live page, {label(options.posts)}-post campaign: {options.viewers} viewers asking for the feed at once "
          f"every {options.every:g} s and {options.streams} holding event streams, for {options.seconds:g} s, while "
          f"the collector stores a page every {INTERVAL:g} s ({machine()})")
    print(table(rows))
    print(f"collector per-page p95 with the viewers against without: {change:+.0%}; failed requests: "
          f"{len(seen['failures'])}" + (f" ({', '.join(sorted(set(seen['failures'])))})" if seen["failures"] else ""))
    print(f"load averages (1, 5, 15 min): {loads[0]} before, {loads[1]} with the viewers, {loads[2]} after")
    print("target at 1M campaign posts: page update p95 <= 100 ms; collector per-page p95 within 10%")


if __name__ == "__main__":
    main()
