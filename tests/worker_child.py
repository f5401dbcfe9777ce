"""A worker process for tests/test_workers.py: `python -m tests.worker_child '<json job>'`, served by
`stormwatch.workers.serve` exactly as the import reader is."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from stormwatch.errors import StormwatchError
from stormwatch.workers import serve


def produce(job: dict[str, Any]) -> Iterator[Any]:
    """Count up to `job["count"]`, then behave as `job["then"]` says."""
    for number in range(job["count"]):
        yield ("number", number)
    then = job.get("then")
    if then == "die":  # killed mid-stream, as the kernel's OOM killer would leave it: a last word, no goodbye
        print("loading page 3 of 4", file=sys.stderr, flush=True)
        print("out of memory while reading page 3", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(9)
    if then == "raise":
        raise ValueError("page 3 is not a JSON object")
    if then == "refuse":
        raise StormwatchError("archive.jsonl: no such file")
    if then == "hang":
        time.sleep(600)
    yield ("done", job["count"])


if __name__ == "__main__":
    serve(produce)
