"""Shared benchmark plumbing: the machine, peak memory from the OS, timing, and running a step in its own process."""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
SMOKE = os.environ.get("STORMWATCH_BENCH_SMOKE") == "1"


def machine() -> str:
    """One line describing where the figures were measured."""
    cpus = os.cpu_count() or 0
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {cpus} cores, {memory:.0f} GiB, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_step(module: str, *args: str) -> dict[str, Any]:
    """Run `python -m bench.<module> args` in its own process; returns its JSON result plus the OS's peak RSS."""
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", f"bench.{module}", *args], cwd=BENCH.parent,
                             stdout=subprocess.PIPE, text=True, check=False)
    if process.returncode != 0:
        raise SystemExit(f"bench step {module} {' '.join(args)} failed with exit code {process.returncode}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    result.setdefault("wall_s", time.perf_counter() - started)
    return result


def emit(result: dict[str, Any]) -> None:
    """Print a step's result as the last line (JSON), for `run_step`."""
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))


def table(rows: list[tuple[str, ...]]) -> str:
    """A plain text table with aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
