"""One hostile Mastodon instance cannot hold the source hostage: endless `Link` pagination, an answer dripped a
byte at a time, a body of hundreds of megabytes, and SIGTERM while a request hangs, each against a real
localhost server, with a healthy simulated instance beside it where the point is that the others go on."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from stormwatch.collector import Collector
from stormwatch.config import Config, MastodonConfig, load_config
from stormwatch.errors import SourceError
from stormwatch.models import RawPage, RunRecord
from stormwatch.simulator.mastodon import InstanceSettings, instance_urls
from stormwatch.simulator.storm import Storm
from stormwatch.sources.mastodon import Limits, MastodonSource, min_id_at
from stormwatch.store import Store
from tests import mastodon_support
from tests.conftest import HASHTAGS, REPO, T0, write_config
from tests.mastodon_support import SOCIAL, TAG, Fediverse, Reply, campaign, dripping, fediverse, hostile_instance

storm = mastodon_support.storm

ENDLESS, DRIP, HUGE = "endless.example", "drip.example", "huge.example"
# Where an endless instance finally gives up (so the code before the page bound ended at all).
ENDLESS_PAGES = 200
MB = 1024 * 1024


@pytest.fixture
def social(storm: Storm) -> Iterator[Fediverse]:
    """A healthy simulated instance, the clock an hour into the storm."""
    with fediverse(storm, {SOCIAL: InstanceSettings()}, T0 + timedelta(hours=1)) as world:
        yield world


def mastodon_config(directory: Path, *instances: str) -> Config:
    """A config collecting only Mastodon from these instance URLs (first the hostile one), never retrying."""
    path = write_config(directory, "http://127.0.0.1:9", campaign_extra='sources = ["mastodon"]\n',
                        top_extra=f"[mastodon]\ninstances = {list(instances)!r}\nretries = 0\n")
    return load_config(path)


def run_once(config: Config, world: Fediverse, limits: Limits) -> RunRecord:
    """One Mastodon run through the collector into the config's SQLite file."""
    source = MastodonSource(config.mastodon, world.clock, limits=limits)
    collector = Collector(config, clock=world.clock, sources={"mastodon": source})
    try:
        (record,) = collector.run_once()
    finally:
        collector.close()
    return record


def member_uids(config: Config) -> set[str]:
    """The campaign's stored Mastodon post ids (status uris)."""
    with Store.open(config.storage.database) as store:
        return set(store.campaign_post_ids("standwithissa", "mastodon"))


def healthy_uids(world: Fediverse) -> set[str]:
    """Every campaign status the healthy instance holds since the storm's start (where collection begins)."""
    return {world.instances.uri_of(post) for tag in HASHTAGS
            for post in world.instances.tag_timeline(SOCIAL, tag) if post.ms >= T0.timestamp() * 1000}


@pytest.mark.slow  # waits out real deadlines
def test_endless_pagination_ends_the_run_partial_at_the_page_bound_and_the_next_run_resumes(
        social: Fediverse, tmp_path: Path) -> None:
    template = social.instances.status_json(SOCIAL, social.instances.tag_timeline(SOCIAL, TAG)[0])
    asked: list[int] = []

    def one_more(path: str) -> Reply:
        # Each page holds one status newer than min_id and a Link header to the page after it, for ever.
        if "/timelines/tag/" not in path:
            return Reply.json("{}")
        min_id = int(parse_qs(urlsplit(path).query)["min_id"][0])
        asked.append(min_id)
        if min_id >= int(min_id_at(T0)) + ENDLESS_PAGES:
            return Reply.json("[]")
        newest = str(min_id + 1)
        status = {**template, "id": newest, "uri": f"https://{ENDLESS}/users/troll/statuses/{newest}",
                  "url": f"https://{ENDLESS}/@troll/{newest}"}
        link = f'<{base}{urlsplit(path).path}?min_id={newest}>; rel="prev"'
        return Reply.json(json.dumps([status]), {"Link": link})

    with hostile_instance(one_more) as url:
        base = f"{url}/{ENDLESS}"
        config = mastodon_config(tmp_path, base, *instance_urls(social.platform, [SOCIAL]))
        record = run_once(config, social, Limits(max_pages=5))
        first = member_uids(config)
        resumed_at = len(asked)
        run_once(config, social, Limits(max_pages=5))

    endless = {uid for uid in first if ENDLESS in uid}
    assert record.status == "partial" and len(endless) == 5
    assert f"mastodon: {ENDLESS}: " in (record.error or "") and "after 5 in this run" in (record.error or "")
    assert first - endless == healthy_uids(social)  # the healthy instance after it was read whole
    with Store.open(config.storage.database) as store:
        cursor = store.get_cursor("standwithissa", "mastodon", f"{ENDLESS}#{TAG}")
    assert cursor is not None and cursor.position == str(int(min_id_at(T0)) + 10)
    # The next run went on from the stored cursor: nothing asked twice, nothing skipped.
    assert asked[resumed_at] == int(min_id_at(T0)) + 5
    assert len({uid for uid in member_uids(config) if ENDLESS in uid}) == 10


@pytest.mark.slow  # waits out real deadlines
@pytest.mark.parametrize("dripped", ["body", "headers"])
def test_a_dripping_instance_is_abandoned_at_the_deadline_and_the_next_instance_is_still_read(
        social: Fediverse, tmp_path: Path, dripped: str) -> None:
    def drip(path: str) -> Reply:
        # A byte (or a header line) every half second: no socket read ever waits long enough to time out.
        if "/timelines/tag/" not in path:
            return Reply.json("{}")
        if dripped == "headers":
            return Reply(dripping(b"HTTP/1.1 200 OK\r\n", every=0.5, lasting=20, drop=b"X-Drip: 1\r\n"), raw=True)
        return Reply(dripping(every=0.5, lasting=20), length=100_000)

    with hostile_instance(drip) as url:
        config = mastodon_config(tmp_path, f"{url}/{DRIP}", *instance_urls(social.platform, [SOCIAL]))
        began = time.monotonic()
        record = run_once(config, social, Limits(deadline=2.0))
        took = time.monotonic() - began

    assert took < 8, f"the run took {took:.1f} s"
    assert record.status == "partial"
    assert f"mastodon: {DRIP}: GET /{DRIP}/api/v1/timelines/tag/" in (record.error or "")
    assert "no complete answer within 2 s, skipped for this run" in (record.error or "")
    assert member_uids(config) == healthy_uids(social)


@pytest.mark.slow  # waits out real deadlines
def test_a_slow_endless_instance_is_stopped_by_its_time_budget(social: Fediverse) -> None:
    template = social.instances.status_json(SOCIAL, social.instances.tag_timeline(SOCIAL, TAG)[0])

    def slowly_one_more(path: str) -> Reply:
        # Each page well within any deadline (0.3 s), one new status each, for ever.
        if "/timelines/tag/" not in path:
            return Reply.json("{}")
        newest = str(int(parse_qs(urlsplit(path).query)["min_id"][0]) + 1)
        body = json.dumps([{**template, "id": newest, "uri": f"https://{ENDLESS}/s/{newest}"}]).encode()

        def late() -> Iterator[bytes]:
            time.sleep(0.3)
            yield body

        return Reply(late(), {"Link": f'<{url}/{ENDLESS}/api/v1/timelines/tag/{TAG}?min_id={newest}>; rel="prev"'},
                     length=len(body))

    with hostile_instance(slowly_one_more) as url:
        config = MastodonConfig(instances=(f"{url}/{ENDLESS}",))
        source = MastodonSource(config, social.clock, limits=Limits(budget=1.5))
        pages: list[RawPage] = []
        began = time.monotonic()
        with pytest.raises(SourceError, match=r"took more than 1.5 s in this run \(\d+ pages\); stopped") as caught:
            for page in source.search(source.first_cursor(campaign(), f"{ENDLESS}#{TAG}", social.clock.now()),
                                      social.clock.now()):
                pages.append(page)
                if len(pages) > 40:
                    break  # what the code before the budget did: walk on for as long as the instance likes
        took = time.monotonic() - began
        source.close()
    assert 3 <= len(pages) <= 7 and took < 3.5
    assert str(caught.value).startswith(f"mastodon: {ENDLESS}: the hashtag timeline took more than 1.5 s")
    assert not caught.value.request_made and not caught.value.transient


def huge_body(total: int) -> Iterator[bytes]:
    """A JSON list of `total` bytes or a little more, produced 64 KB at a time (never held whole anywhere)."""
    piece = b'{"id": "1", "content": "' + b"x" * (64 * 1024) + b'"},'
    yield b"["
    for _ in range(total // len(piece) + 1):
        yield piece
    yield b"{}]"


MEASURE = textwrap.dedent("""
    import json, resource, sys
    from datetime import timedelta
    from stormwatch.config import MastodonConfig
    from stormwatch.errors import StormwatchError
    from stormwatch.models import Cursor
    from stormwatch.simulator.clock import ManualClock
    from stormwatch.sources.mastodon import MastodonSource, min_id_at
    from tests.conftest import T0

    source = MastodonSource(MastodonConfig(instances=(sys.argv[1],), timeout=10.0), ManualClock(T0))
    cursor = Cursor("standwithissa", "mastodon", "huge.example#StandWithIssa", position=min_id_at(T0), since=T0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        pages = list(source.search(cursor, T0 + timedelta(hours=1)))
        error = f"no error: {len(pages)} pages"
    except StormwatchError as exc:
        error = str(exc)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"error": error, "grew_kb": after - before, "peak_kb": after}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-closed"])
def test_a_300_mb_answer_is_refused_without_being_held(declared: bool) -> None:
    total = 300 * MB
    sent = [0]

    def huge(path: str) -> Reply:
        if "/timelines/tag/" not in path:
            return Reply.json("{}")

        def counted() -> Iterator[bytes]:
            for piece in huge_body(total):
                sent[0] += len(piece)
                yield piece

        length = sum(len(piece) for piece in huge_body(total)) if declared else None
        return Reply(counted(), length=length)

    with hostile_instance(huge) as url:
        done = subprocess.run([sys.executable, "-c", MEASURE, f"{url}/{HUGE}"], capture_output=True, text=True,
                              timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["error"] == (f"mastodon: {HUGE}: GET /{HUGE}/api/v1/timelines/tag/StandWithIssa: instance "
                                 "sent more than 20 MB, skipped")
    # At most the 20 MB it may keep (and one copy while joining them), never the 300 MB.
    assert measured["grew_kb"] < 60 * 1024, measured
    assert sent[0] < 100 * MB  # and it stopped reading: the rest was never produced


@pytest.mark.slow
@pytest.mark.parametrize("once", [True, False], ids=["collect-once", "collect-scheduled"])
def test_sigterm_stops_a_collect_stuck_on_a_dripping_instance_within_seconds(tmp_path: Path, once: bool) -> None:
    dripping_now = threading.Event()

    def drip(path: str) -> Reply:
        if "/timelines/tag/" not in path:
            return Reply.json("{}")
        dripping_now.set()
        return Reply(dripping(every=0.5, lasting=25), length=100_000)

    with hostile_instance(drip) as url:
        config = write_config(tmp_path, "http://127.0.0.1:9", campaign_extra='sources = ["mastodon"]\n',
                              top_extra=f"[mastodon]\ninstances = ['{url}/{DRIP}']\nretries = 0\n")
        process = subprocess.Popen([sys.executable, "-m", "stormwatch", "collect", "--config", str(config),
                                    *(["--once"] if once else [])],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        try:
            assert dripping_now.wait(60), "the collector never asked the instance"
            time.sleep(1.0)  # well into the dripped answer
            process.send_signal(signal.SIGTERM)
            began = time.monotonic()
            process.wait(timeout=30)
            took = time.monotonic() - began
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    with sqlite3.connect(config.parent / "data" / "test.db") as conn:
        status, error = conn.execute("SELECT status, error FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "partial" and "stopped by shutdown" in error
