"""The copy-paste audit's cost: reading a whole window (report, `summary --json`) and the dashboard's refreshes.

    python -m bench.bench_copypaste [--posts 2000 --posts 100000]

`--posts` counts the non-repost campaign posts in the storm window (what the audit reads): the demo's storm has
about 2,000; a big storm 100,000. The storm is the simulator's, with a third of its supporters pasting the toolkit
(varied a little) and the others adding a sentence of their own, on X. For each size it prints: the whole
window read at once (report, `summary --json`: time, the share and whether it is exact or estimated from a sample
of distinct texts, peak memory of this process so far); on the dashboard, where the audit runs in a thread of its
own, how long a refresh takes while it fills and once it is full, how long it takes to fill, and how soon 200 new
posts are in its figures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from stormwatch import intel
from stormwatch.config import CampaignConfig
from stormwatch.models import Batch, Post
from stormwatch.simulator import StormSpec, iter_storm
from stormwatch.simulator.spec import REPOST, unescape_text
from stormwatch.store import Store

from .common import SMOKE, machine, peak_rss_mb, table

START = datetime(2021, 2, 7, 16, 0, tzinfo=UTC)
HOURS = 5
NON_REPOST_SHARE = 0.4  # of a storm's posts (the rest are reposts)


def storm_posts(wanted: int) -> list[Post]:
    """About `wanted` non-repost campaign posts of a seeded storm with a toolkit, as the store keeps them."""
    spec = StormSpec(hashtags=("StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners"),
                     accounts=("Issaamro", "YASHebron"), targets=("antonioguterres",), start=START,
                     end=START + timedelta(hours=HOURS), lead=timedelta(0), seed=12,
                     posts=int(wanted / NON_REPOST_SHARE * 1.05), toolkit_share=0.35, personal_texts=True)
    found = []
    for post in iter_storm(spec):
        if post.campaign and not post.deleted and post.kind != REPOST and post.created_at >= START:
            stamp = post.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            found.append(Post(uid=f"x:{post.id}", platform="x", id=str(post.id), author_uid=f"x:u{post.author}",
                              created_at=stamp, ts=post.ms // 1000, text=unescape_text(post.text), lang=post.lang,
                              kind=post.kind, ref_uid=None, url=None, like_count=0, repost_count=0, reply_count=0,
                              quote_count=0, bookmark_count=None, impression_count=None, metrics_at=stamp,
                              tags=("standwithissa",)))
            if len(found) == wanted:
                break
    return found


def measure(wanted: int) -> list[tuple[str, ...]]:
    """Figures for one size."""
    posts = storm_posts(wanted)
    late, early = posts[-200:], posts[:-200]
    campaign = CampaignConfig(name="bench", hashtags=("StandWithIssa",), accounts=(), targets=(), sources=("x",),
                              start=START, end=START + timedelta(hours=HOURS), timezone=ZoneInfo("UTC"),
                              interval=timedelta(minutes=5), storm_interval=timedelta(minutes=1),
                              daily_budget_usd=None, trend_locations=())
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "bench.db") as store:
        store.register_campaign(campaign.name, campaign.start, campaign.end)
        for start in range(0, len(early), 5000):
            store.import_batches([(Batch(posts=tuple(early[start:start + 5000])), early[0].created_at)], campaign.name)
        started = time.perf_counter()
        whole = intel.window_copies(store, campaign.name, campaign.start, campaign.end)
        rows.append((f"{len(early):,}", "whole window, read at once", f"{time.perf_counter() - started:.2f} s",
                     f"{whole.share:.1%} copies ({whole.basis}), peak RSS {peak_rss_mb():.0f} MB"))
        now = campaign.end
        refreshes = []
        started = time.perf_counter()
        while True:
            begun = time.perf_counter()
            found = intel.live(store, campaign, now)
            refreshes.append(time.perf_counter() - begun)
            if found.window_copies.complete and found.window_copies.posts:
                break
            time.sleep(0.05)
        filled = time.perf_counter() - started
        rows.append(("", "dashboard refresh while the audit fills", f"{statistics.median(refreshes) * 1000:.1f} ms "
                     f"median, {max(refreshes) * 1000:.0f} ms max", f"the audit filled in {filled:.2f} s"))
        steady = []
        for _ in range(20):
            begun = time.perf_counter()
            intel.live(store, campaign, now)
            steady.append(time.perf_counter() - begun)
            time.sleep(0.05)
        rows.append(("", "dashboard refresh, audit full", f"{statistics.median(steady) * 1000:.1f} ms median", ""))
        store.import_batches([(Batch(posts=tuple(late)), late[0].created_at)], campaign.name)
        started = time.perf_counter()
        while intel.live(store, campaign, now).window_copies.posts < len(posts):
            time.sleep(0.01)
        after = intel.live(store, campaign, now)
        rows.append(("", "200 new posts in the dashboard's figures", f"{(time.perf_counter() - started) * 1000:.0f} ms",
                     f"{after.window_copies.share:.0%} copies of {after.window_copies.posts:,}"))
    return rows


def main() -> None:
    """Print the figures for each size asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, action="append")
    options = parser.parse_args()
    sizes = options.posts or ([1000] if SMOKE else [2000, 100_000])
    print(machine())
    rows: list[tuple[str, ...]] = [("non-repost posts", "what", "time", "")]
    for size in sizes:
        rows += measure(size)
    print(table(rows))


if __name__ == "__main__":
    main()
