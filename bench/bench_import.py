"""Import speed and memory: `stormwatch import` against plain sqlite3 executemany, on the same file, same run.

    python -m bench.bench_import [--posts 100000 [--posts 1000000]]

Target: >= 0.8x the baseline's posts/s; peak memory <= 120 MB and flat in file size.
"""

from __future__ import annotations

import argparse

from .common import DATA, SMOKE, machine, run_step, table
from .setup import label, storm_archive


def measure(posts: int) -> dict:
    """Baseline and stormwatch import figures for one archive size."""
    archive = storm_archive(posts)
    baseline = run_step("baseline_import", str(archive), str(DATA / "baseline-bench.db"))
    ours = run_step("import_step", str(archive), str(posts))
    return {"posts": posts, "size_mb": archive.stat().st_size / 1e6, "baseline": baseline, "ours": ours}


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, action="append")
    sizes = parser.parse_args().posts or ([5000] if SMOKE else [100_000])
    rows = [("archive", "baseline posts/s", "import posts/s", "ratio", "import peak RSS (main + reader)",
             "baseline peak RSS")]
    for posts in sizes:
        result = measure(posts)
        base, ours = result["baseline"], result["ours"]
        rows.append((f"{label(posts)} posts, {result['size_mb']:.0f} MB", f"{base['posts_per_s']:,}",
                     f"{ours['posts_per_s']:,}", f"{ours['posts_per_s'] / base['posts_per_s']:.2f}x",
                     f"{ours['peak_rss_mb']:.0f} + {ours['reader_peak_rss_mb']:.0f} MB",
                     f"{base['peak_rss_mb']:.0f} MB"))
    print(f"import ({machine()})")
    print(table(rows))
    print("target: >= 0.80x the baseline; peak memory <= 120 MB, flat in file size. stormwatch reads and\n"
          "normalizes in a second process (importer.reader) while the first writes: both peaks are shown.")


if __name__ == "__main__":
    main()
