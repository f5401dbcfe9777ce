"""Run every benchmark and print its figures: `python -m bench.run_all` (full size, by hand) or `--smoke` (CI).

The full size uses a seeded 1,000,000-post storm archive (about 2.3 GB, generated once into bench/data/,
which is not committed); smoke size uses 5,000 posts and takes seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from .common import BENCH

BENCHMARKS = ("bench_import", "bench_collector", "bench_dashboard", "bench_report", "bench_copypaste", "bench_x_stream",
              "bench_serve")


def main() -> None:
    """Run the benchmarks one after the other, each in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmarks still run")
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    options = parser.parse_args()
    environment = {**os.environ, "STORMWATCH_BENCH_SMOKE": "1" if options.smoke else "0"}
    started = time.perf_counter()
    for name in options.only or BENCHMARKS:
        print(f"\n== {name}", flush=True)
        arguments = ["--posts", "100000", "--posts", "1000000"] if name == "bench_import" and not options.smoke else []
        subprocess.run([sys.executable, "-m", f"bench.{name}", *arguments], check=True, cwd=BENCH.parent,
                       env=environment)
    print(f"\nall benchmarks in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
