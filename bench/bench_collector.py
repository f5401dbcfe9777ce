"""The collector's own work per 100-post page, network excluded: normalize, store rows + tallies + cursor + run.

    python -m bench.bench_collector [--posts 1000000] [--pages 300]

Target: <= 10 ms per page, on a campaign that already holds the given number of posts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import orjson

from stormwatch.config import load_config
from stormwatch.models import Billing, Cursor
from stormwatch.normalize.x import normalize_page
from stormwatch.store import Store

from .bench_dashboard import percentile
from .common import SMOKE, machine, table
from .setup import imported_database, label, scratch_copy, storm_archive


def measure(posts: int, pages: int) -> dict:
    """Time `pages` pages of a different storm stored into a copy of the `posts`-post database."""
    cached, config_path = imported_database(posts)
    database = scratch_copy(cached, "collector-bench.db")
    campaign = load_config(config_path).campaigns[0]
    archive = storm_archive(20_000 if not SMOKE else 2000, seed=7)
    normalize_ms, store_ms = [], []
    with Store.open(database) as store, archive.open("rb") as lines:
        store.register_campaign(campaign.name, campaign.start, campaign.end)
        run_id = store.start_run(campaign.name, "x", datetime.now(UTC))
        for number, line in enumerate(lines):
            if number >= pages:
                break
            page = orjson.loads(line)  # the HTTP client's JSON decoding: network work, not counted
            started = time.perf_counter()
            batch = normalize_page(page, "2021-02-07T20:00:00.000Z")
            normalized = time.perf_counter()
            cursor = Cursor(campaign.name, "x", "bench", pending={"next_token": f"t{number}", "newest_id": "1"})
            store.save_page(batch, campaign=campaign.name, cursor=cursor, run_id=run_id,
                            collected_at=datetime.now(UTC), billing=Billing("2021-02-07", 0.005, 0.010))
            done = time.perf_counter()
            normalize_ms.append(1000 * (normalized - started))
            store_ms.append(1000 * (done - normalized))
    total = [a + b for a, b in zip(normalize_ms, store_ms, strict=True)]
    return {"pages": len(total), "normalize_ms": statistics.median(normalize_ms),
            "store_ms": statistics.median(store_ms), "p50_ms": statistics.median(total),
            "mean_ms": statistics.fmean(total), "p95_ms": percentile(total, 0.95)}


def main() -> None:
    """Print per-page figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000 if SMOKE else 1_000_000)
    parser.add_argument("--pages", type=int, default=50 if SMOKE else 300)
    options = parser.parse_args()
    result = measure(options.posts, options.pages)
    print(f"collector per 100-post page into a {label(options.posts)}-post campaign ({machine()})")
    print(table([("pages", "normalize p50", "store p50", "total p50", "total mean", "total p95"),
                 (str(result["pages"]), f"{result['normalize_ms']:.2f} ms", f"{result['store_ms']:.2f} ms",
                  f"{result['p50_ms']:.2f} ms", f"{result['mean_ms']:.2f} ms", f"{result['p95_ms']:.2f} ms")]))
    print("target: <= 10 ms per page (network excluded). The mean and p95 include SQLite's WAL checkpoints,\n"
          "which write the pages of several commits at once.")


if __name__ == "__main__":
    main()
