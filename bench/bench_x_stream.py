"""X's filtered stream, stored: stream lines (as the simulator sends them) fed through the follower's batch path
(archive raw, normalize, store each batch in one transaction with tallies, billing and the connection row).

    python -m bench.bench_x_stream [--posts 30000] [--rate 0]

`--rate` offers that many lines a second (0: as fast as they can be taken). Prints posts/s stored and the delay
from a line's arrival to its batch being stored (p50/p95). Target: >= 1,000 posts/s, p95 <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from stormwatch.archive.writer import RawArchive
from stormwatch.config import load_config
from stormwatch.simulator.spec import StormSpec
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.wire_x import Selection, render_page
from stormwatch.sources import registry
from stormwatch.sources.capabilities import FilteredStreaming
from stormwatch.store import Store
from stormwatch.streaming import XStreamFollower, _StreamWriter
from stormwatch.times import Clock

from .bench_dashboard import percentile
from .common import SMOKE, machine, table

HASHTAGS = ("StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners")
PARAMS = {"tweet.fields": "created_at,author_id,public_metrics,entities,referenced_tweets,lang,conversation_id",
          "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id",
          "user.fields": "public_metrics,created_at,verified"}


def lines(posts: int) -> list[bytes]:
    """The stream lines of a seeded storm's X posts, with the campaign rule's tag."""
    spec = StormSpec(hashtags=HASHTAGS, accounts=("Issaamro",), targets=("antonioguterres",),
                     start=__import__("datetime").datetime(2021, 2, 24, 15, tzinfo=__import__("datetime").UTC),
                     end=__import__("datetime").datetime(2021, 2, 24, 18, tzinfo=__import__("datetime").UTC),
                     posts=posts, platforms=(("x", 1.0),))
    storm = Storm.build(spec)
    selection = Selection.from_params(PARAMS)
    out = []
    for post in storm.posts:
        if post.platform != "x" or post.deleted:
            continue
        page = render_page(storm, [post], selection)
        line = {"data": page["data"][0], "includes": page.get("includes", {}),
                "matching_rules": [{"id": "1", "tag": "stormwatch:standwithissa"}]}
        out.append(json.dumps(line).encode())
    return out


def measure(raw: list[bytes], rate: float, folder: Path) -> dict[str, float]:
    """Feed `raw` lines (at `rate` a second, or at once) and store them through the follower's writer."""
    config_path = folder / "config.toml"
    config_path.write_text(f"""[storage]
database = "{(folder / 'bench.db').as_posix()}"
[x]
bearer_token_env = "BENCH_X_TOKEN"
api_base = "http://127.0.0.1:9"
[[campaigns]]
name = "standwithissa"
hashtags = {list(HASHTAGS)!r}
start = "2021-02-24T15:00:00+00:00"
end = "2021-02-24T18:00:00+00:00"
""", encoding="utf-8")
    __import__("os").environ["BENCH_X_TOKEN"] = "bench"
    config = load_config(config_path)
    clock = Clock(speed=1.0, anchor=config.campaigns[0].start + timedelta(minutes=30), anchor_wall=time.time())
    source = registry.make_source(config, "x", clock)
    assert isinstance(source, FilteredStreaming)
    follower = XStreamFollower(source, config.campaigns, config.storage.database, clock=clock,
                               archive=RawArchive(folder / "raw"))
    stop = threading.Event()

    def feed() -> None:
        started = time.perf_counter()
        follower.connected(clock.now())
        for number, line in enumerate(raw):
            if rate:
                ahead = started + number / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            follower.line(json.loads(line), clock.now())  # the reader's JSON decoding, as in the stream thread
        follower.disconnected("stopped", clock.now())

    with Store.open(config.storage.database) as store:
        store.register_campaign("standwithissa", config.campaigns[0].start, config.campaigns[0].end)
        writer = _StreamWriter(follower, store)
        feeder = threading.Thread(target=feed)
        started = time.perf_counter()
        feeder.start()
        while feeder.is_alive() or not follower._queue.empty():
            writer.step(stop)
        writer.finish()
        elapsed = time.perf_counter() - started
        stored = store.count_campaign_posts("standwithissa")
    delays = sorted(follower.delays_seen)
    return {"lines": len(raw), "stored": stored, "seconds": elapsed, "posts_per_s": stored / elapsed,
            "p50_s": percentile(delays, 0.5), "p95_s": percentile(delays, 0.95)}


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000 if SMOKE else 30_000)
    parser.add_argument("--rate", type=float, default=0.0, help="lines offered per second (0: all at once)")
    options = parser.parse_args()
    raw = lines(options.posts)
    rows = [("offered", "lines", "stored", "seconds", "posts/s", "p50 delay", "p95 delay")]
    for rate in ([options.rate] if options.rate else [0.0, 1000.0]):
        with tempfile.TemporaryDirectory() as folder:
            got = measure(raw, rate, Path(folder))
        rows.append(("all at once" if not rate else f"{rate:,.0f}/s", f"{got['lines']:,.0f}", f"{got['stored']:,.0f}",
                     f"{got['seconds']:.1f}", f"{got['posts_per_s']:,.0f}", f"{got['p50_s']:.2f} s",
                     f"{got['p95_s']:.2f} s"))
    print(machine())
    print(table(rows))


if __name__ == "__main__":
    main()
