"""Import speed and memory: `stormwatch import` against plain sqlite3 executemany, on the same file, same run.

    python -m bench.bench_import [--posts 100000 [--posts 1000000]] [--hostile]

Target: >= 0.8x the baseline's posts/s; peak memory <= 120 MB and flat in file size. `--hostile` also imports
1 MB gzip files, each a good line, 1 GiB of one line (or of newlines), a good line, and a JSON array of a good
element, a 1 GiB element, a good element: seconds, flat memory.
"""

from __future__ import annotations

import argparse

from .common import DATA, SMOKE, machine, run_step, table
from .setup import hostile_archive, label, storm_archive


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
    parser.add_argument("--hostile", action="store_true", help="also the 1 GiB line and 1 GiB of blank lines")
    arguments = parser.parse_args()
    sizes = arguments.posts or ([5000] if SMOKE else [100_000])
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
    if arguments.hostile:
        print(hostile())


def hostile() -> str:
    """Figures for the hostile files: a 1 GiB line between two good ones, and 1 GiB of blank lines."""
    rows = [("file (gzip)", "seconds", "peak RSS (main + reader)", "posts", "skipped")]
    for kind, what in (("line", "good line, 1 GiB line, good line"), ("blank", "good line, 1 GiB of \\n, good line"),
                       ("element", "JSON array: good, 1 GiB element, good")):
        archive = hostile_archive(kind)
        ours = run_step("import_step", str(archive), "5000")
        rows.append((f"{what} ({archive.stat().st_size / 1e6:.1f} MB)", f"{ours['seconds']:.1f}",
                     f"{ours['peak_rss_mb']:.0f} + {ours['reader_peak_rss_mb']:.0f} MB", f"{ours['posts']:,}",
                     str(ours["skipped"])))
    return "hostile files (target: seconds, memory flat)\n" + table(rows)


if __name__ == "__main__":
    main()
