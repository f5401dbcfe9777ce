"""Write a seeded storm of any size as a twarc2 JSONL archive (one 100-post search page a line).

    python -m bench.storm_file --posts 1000000 --out bench/data/storm-1m.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stormwatch.simulator.generator import StormGenerator
from stormwatch.simulator.spec import StormSpec
from stormwatch.simulator.wire_x import render_twarc_page

from .common import emit

HASHTAGS = ("StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners")
START = datetime(2021, 2, 7, 16, 0, tzinfo=UTC)
QUERY = "(#StandWithIssa OR #DropTheCharges OR #FreePoliticalPrisoners)"


def storm_spec(posts: int, seed: int = 2021) -> StormSpec:
    """A #StandWithIssa storm with `posts` campaign posts; a longer storm for bigger sizes, as in life."""
    hours = 6 if posts <= 100_000 else 24 * 3
    return StormSpec(hashtags=HASHTAGS, accounts=("Issaamro", "YASHebron"),
                     targets=("antonioguterres", "vonderleyen"), start=START, end=START + timedelta(hours=hours),
                     seed=seed, posts=posts)


def write_storm(path: Path, posts: int, seed: int = 2021) -> dict[str, int]:
    """Write the archive: campaign posts only (what a hashtag search returns), newest first within a page."""
    generator = StormGenerator(storm_spec(posts, seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    written = pages = 0
    page: list = []
    with path.open("w", encoding="utf-8") as out:
        def flush() -> None:
            nonlocal pages
            retrieved = datetime.fromtimestamp(page[-1].ms / 1000 + 60, tz=UTC)
            line = render_twarc_page(generator, page, retrieved_at=retrieved, query=QUERY)
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            pages += 1
            page.clear()

        for post in generator.posts():
            if post.platform != "x" or not post.campaign or post.deleted:
                continue
            page.append(post)
            written += 1
            if len(page) == 100:
                flush()
        if page:
            flush()
    return {"posts": written, "pages": pages, "bytes": path.stat().st_size}


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    started = time.perf_counter()
    result = write_storm(options.out, options.posts, options.seed)
    emit({**result, "seconds": round(time.perf_counter() - started, 2)})


if __name__ == "__main__":
    main()
