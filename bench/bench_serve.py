"""The live page (`stormwatch serve`) under 50 viewers refreshing at once on a big campaign while the collector
writes: p95 of a page update (the page and its feed, as a phone fetches them), how long a refresh of the figures
takes, and the collector's per-page p95 with and without the viewers.

    python -m bench.bench_serve [--posts 1000000] [--seconds 20] [--viewers 50]

Target at 1M campaign posts: page update p95 <= 100 ms; the collector's per-page p95 within 10% of without viewers.
Each viewer connects from its own loopback address (127.0.0.N), as phones have their own: the page's per-client
rate limit applies to each, not to all.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

from stormwatch.config import load_config
from stormwatch.web import in_thread, link_file, link_secret, prepare

from .bench_dashboard import percentile
from .common import SMOKE, machine, table
from .setup import imported_database, label, scratch_copy, storm_archive


def writer(database: object, config_path: object, pages: object, seconds: float) -> subprocess.Popen[str]:
    """The collector's writes (bench/collector_writer.py): a 100-post page every 0.2 s, in a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "bench.collector_writer", str(database), str(config_path),
                             str(pages), str(seconds), "0.2"], stdout=subprocess.PIPE, text=True)


def viewer(url: str, number: int, until: float, every: float, timings: list[float], failures: list[str]) -> None:
    """One phone: fetches the page, then its feed every `every` seconds, from 127.0.0.<number>."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10,
                                            source_address=(f"127.0.0.{number}", 0))
    paths = [parts.path, parts.path + "feed.json"]
    turn = 0
    while time.monotonic() < until:
        path = paths[0] if turn % 10 == 0 else paths[1]  # a reload now and then, the feed in between
        turn += 1
        started = time.perf_counter()
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            answer.read()
        except (OSError, http.client.HTTPException) as exc:
            failures.append(type(exc).__name__)
            connection.close()
            continue
        if answer.status != 200:
            failures.append(str(answer.status))
        timings.append(time.perf_counter() - started)
        time.sleep(every)
    connection.close()


def main() -> None:
    """Print the page's latency under load and the collector's per-page p95 with and without viewers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000 if SMOKE else 1_000_000)
    parser.add_argument("--seconds", type=float, default=3 if SMOKE else 20)
    parser.add_argument("--viewers", type=int, default=10 if SMOKE else 50)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between a viewer's refreshes")
    options = parser.parse_args()
    cached, config_path = imported_database(options.posts)
    database = scratch_copy(cached, "serve-bench.db")
    loaded = load_config(config_path)
    config = replace(loaded, storage=replace(loaded.storage, database=database))
    campaign = config.campaigns[0]
    pages = storm_archive(20_000 if not SMOKE else 2000, seed=7)

    alone = writer(database, config_path, pages, options.seconds)
    without = json.loads(alone.communicate(timeout=300)[0].strip().splitlines()[-1])

    served = prepare(config, campaign, link_secret(link_file(config)), port=0)
    timings: list[float] = []
    failures: list[str] = []
    with in_thread(served):
        busy = writer(database, config_path, pages, options.seconds + 2)
        time.sleep(1.0)  # let the writer start
        until = time.monotonic() + options.seconds
        threads = [threading.Thread(target=viewer, args=(served.url, 2 + n, until, options.every, timings, failures))
                   for n in range(options.viewers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refreshes = list(served.live.refresh_seconds_taken)
        with_viewers = json.loads(busy.communicate(timeout=300)[0].strip().splitlines()[-1])
    change = (with_viewers["p95_ms"] - without["p95_ms"]) / without["p95_ms"] if without["p95_ms"] else 0.0
    rows = [("", "p50", "p95", "max", "count"),
            ("page update (page or feed, per request)", f"{1000 * percentile(timings or [0.0], 0.5):.1f} ms",
             f"{1000 * percentile(timings or [0.0], 0.95):.1f} ms", f"{1000 * max(timings, default=0):.1f} ms",
             f"{len(timings):,}"),
            ("refresh of the figures (one for all viewers)", f"{1000 * percentile(refreshes or [0.0], 0.5):.0f} ms",
             f"{1000 * percentile(refreshes or [0.0], 0.95):.0f} ms", f"{1000 * max(refreshes, default=0):.0f} ms",
             f"{len(refreshes):,}"),
            ("collector page, no viewers", f"mean {without['mean_ms']:.1f} ms", f"{without['p95_ms']:.1f} ms", "",
             f"{without['pages']:,}"),
            (f"collector page, {options.viewers} viewers", f"mean {with_viewers['mean_ms']:.1f} ms",
             f"{with_viewers['p95_ms']:.1f} ms", "", f"{with_viewers['pages']:,}")]
    print(f"live page, {label(options.posts)}-post archive, {options.viewers} viewers refreshing every "
          f"{options.every:g} s while the collector writes a page every 0.2 s ({machine()})")
    print(table(rows))
    print(f"collector per-page p95 with viewers: {change:+.0%}; failed requests: {len(failures)}"
          + (f" ({', '.join(sorted(set(failures)))})" if failures else ""))
    print("target at 1M campaign posts: page update p95 <= 100 ms; collector per-page p95 within 10%")


if __name__ == "__main__":
    main()
