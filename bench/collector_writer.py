"""Plays the collector during the dashboard benchmark: stores a 100-post page (rows, cursor, run) every interval.

    python -m bench.collector_writer DB CONFIG ARCHIVE SECONDS INTERVAL [SKIP]

SKIP pages of the archive are passed over first, so that runs one after the other each store posts not yet stored.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from stormwatch.config import load_config
from stormwatch.models import Billing, Cursor
from stormwatch.normalize.x import normalize_page
from stormwatch.store import Store

from .common import emit


def main() -> None:
    """Write pages until the time is up; print how many and how long each took."""
    database, config_path, archive = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    seconds, interval = float(sys.argv[4]), float(sys.argv[5])
    skip = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    campaign = load_config(config_path).campaigns[0]
    deadline = time.monotonic() + seconds
    timings = []
    stored_at = []  # wall time each page was stored at: a benchmark can keep the pages of a span (bench_serve)
    with Store.open(database) as store, archive.open("rb") as pages:
        store.register_campaign(campaign.name, campaign.start, campaign.end)
        run_id = store.start_run(campaign.name, "x", datetime.now(UTC))
        for number, line in enumerate(pages):
            if number < skip:
                continue
            if time.monotonic() >= deadline:
                break
            page = orjson.loads(line)
            started = time.perf_counter()
            batch = normalize_page(page, "2021-02-07T20:00:00.000Z")
            cursor = Cursor(campaign.name, "x", "bench", position=page["meta"]["newest_id"])
            store.save_page(batch, campaign=campaign.name, cursor=cursor, run_id=run_id, collected_at=datetime.now(UTC),
                            billing=Billing("2021-02-07", 0.005, 0.010))
            timings.append(time.perf_counter() - started)
            stored_at.append(time.time())
            time.sleep(interval)
        store.finish_run(run_id, "ok", datetime.now(UTC))
    ordered = sorted(timings) or [0.0]
    emit({"pages": len(timings), "mean_ms": round(1000 * sum(timings) / max(1, len(timings)), 2),
          "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
          "page_ms": [[at, round(1000 * took, 3)] for at, took in zip(stored_at, timings, strict=True)]})


if __name__ == "__main__":
    main()
