"""The post-event report on a big campaign: wall time and peak memory for every chart and file.

    python -m bench.bench_report [--posts 1000000]

Target at 1M posts: <= 15 s wall, peak memory <= 500 MB.
"""

from __future__ import annotations

import argparse

from .common import SMOKE, machine, run_step, table
from .setup import imported_database, label


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000 if SMOKE else 1_000_000)
    posts = parser.parse_args().posts
    imported_database(posts)  # built outside the measured step
    result = run_step("report_step", str(posts))
    print(f"report, {label(posts)}-post campaign ({machine()})")
    writers = " + ".join(f"{mb} MB" for mb in result["writers_peak_rss_mb"]) or "none sampled"
    print(table([("wall", "peak RSS: report process", "posts.csv writers", "files", "posts.csv rows"),
                 (f"{result['seconds']:.1f} s", f"{result['peak_rss_mb']:.0f} MB", writers, str(result["files"]),
                  f"{result['posts_csv_rows']:,}")]))
    print("target: <= 15 s wall, <= 500 MB at 1M posts. posts.csv is written by two processes of its own at this\n"
          "size (a split by time), while the report process makes the figures and charts.")


if __name__ == "__main__":
    main()
