"""Plays the collector during the dashboard benchmark: stores a 100-post page (rows, cursor, run) every interval.

    python -m bench.collector_writer DB CONFIG ARCHIVE SECONDS INTERVAL
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
    campaign = load_config(config_path).campaigns[0]
    deadline = time.monotonic() + seconds
    timings = []
    with Store.open(database) as store, archive.open("rb") as pages:
        store.register_campaign(campaign.name, campaign.start, campaign.end)
        run_id = store.start_run(campaign.name, "x", datetime.now(UTC))
        for line in pages:
            if time.monotonic() >= deadline:
                break
            page = orjson.loads(line)
            started = time.perf_counter()
            batch = normalize_page(page, "2021-02-07T20:00:00.000Z")
            cursor = Cursor(campaign.name, "x", "bench", position=page["meta"]["newest_id"])
            store.save_page(batch, campaign=campaign.name, cursor=cursor, run_id=run_id, collected_at=datetime.now(UTC),
                            billing=Billing("2021-02-07", 0.005, 0.010))
            timings.append(time.perf_counter() - started)
            time.sleep(interval)
        store.finish_run(run_id, "ok", datetime.now(UTC))
    ordered = sorted(timings) or [0.0]
    emit({"pages": len(timings), "mean_ms": round(1000 * sum(timings) / max(1, len(timings)), 2),
          "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)})


if __name__ == "__main__":
    main()
