"""`stormwatch import`: formats detected by content, streamed, idempotent, broken lines reported and skipped."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch import metrics
from stormwatch.config import load_config
from stormwatch.importer import import_archives
from stormwatch.importer.reader import pack, read_batches, unpack
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.wire_x import render_twarc_page
from stormwatch.store import Store

from .cli_support import Ran, invoke
from .conftest import HASHTAGS, T0, sample_path, write_config


def storm_archive(storm: Storm, path: Path, *, compress: bool = False) -> list[dict]:
    """The storm's X campaign posts as a twarc2 JSONL archive (one 100-post page a line)."""
    posts = [p for p in storm.posts if p.platform == "x" and p.campaign and not p.deleted]
    lines = [render_twarc_page(storm, posts[i:i + 100], retrieved_at=T0 + timedelta(hours=4), query="#StandWithIssa")
             for i in range(0, len(posts), 100)]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return lines


def run_import(config: Path, *files: Path) -> Ran:
    return invoke("import", *files, "--config", config)


def test_the_reading_half_gives_in_this_process_what_its_worker_sends(tmp_path: Path) -> None:
    """`stormwatch import` reads in a worker process of its own (slow); its reading, in this process: the
    campaign's members in batches, each problem with its place, progress, and the totals last."""
    path = tmp_path / "two.jsonl"
    member = {"id": "1", "text": "#StandWithIssa now", "created_at": "2021-02-07T16:00:00.000Z",
              "entities": {"hashtags": [{"start": 0, "end": 14, "tag": "StandWithIssa"}]}}
    other = {"id": "2", "text": "unrelated", "created_at": "2021-02-07T16:01:00.000Z"}
    path.write_text(json.dumps({"data": [member, other]}) + "\n{broken\n", encoding="utf-8")
    messages = list(read_batches([path], frozenset({"standwithissa"})))
    batches = [batch for message in messages if message[0] == "batch" for batch in message[1]]
    assert [post.uid for batch, _ in batches for post in batch.posts] == ["x:1"]  # the member only
    problems = [message[1] for message in messages if message[0] == "problem"]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:2: not valid JSON")
    assert [m for m in messages if m[0] == "progress"][-1] == ("progress", str(path), path.stat().st_size)
    assert messages[-1] == ("done", 1, 2)  # one record (the broken line is none) holding two posts
    assert unpack(pack(batches)) == batches  # as the worker sends them and the writer reads them


def members(config: Path) -> list[str]:
    with sqlite3.connect(config.parent / "data" / "test.db") as conn:
        return sorted(row[0] for row in conn.execute("SELECT post_uid FROM campaign_posts"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "http://127.0.0.1:9")


@pytest.mark.slow  # imports a storm
def test_a_twarc2_archive_imports_to_the_ground_truth_and_twice_changes_nothing(small_storm: Storm, config: Path,
                                                                                  tmp_path: Path) -> None:
    archive = tmp_path / "storm.jsonl.gz"
    storm_archive(small_storm, archive, compress=True)
    first = run_import(config, archive)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("standwithissa: ") and "0 skipped" in first.stdout
    truth = small_storm.truth(T0 - timedelta(hours=2), T0 + timedelta(hours=4))
    assert members(config) == sorted(f"x:{i}" for i in truth.post_ids)
    with sqlite3.connect(config.parent / "data" / "test.db") as conn:
        before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                  for t in ("posts", "accounts", "post_tags", "campaign_posts", "tally_totals", "tally_authors")}
    again = run_import(config, archive)
    assert again.returncode == 0 and ": 0 new posts, 0 updated" in again.stdout
    with sqlite3.connect(config.parent / "data" / "test.db") as conn:
        after = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in before}
    assert after == before
    # the imported campaign's figures are the ground truth's
    loaded = load_config(config)
    with Store.open(loaded.storage.database) as store:
        window = metrics.campaign_window(loaded.campaigns[0])
        figures = metrics.totals(store, "standwithissa", window).all
    in_window = small_storm.truth(T0, T0 + timedelta(hours=3))
    assert (figures.posts, figures.contributors, figures.engagement) == (
        in_window.posts, in_window.contributors, in_window.engagement)


@pytest.mark.slow  # imports a storm
def test_broken_lines_are_reported_as_file_and_line_and_the_rest_is_kept(small_storm: Storm, config: Path,
                                                                           tmp_path: Path) -> None:
    archive = tmp_path / "damaged.jsonl"
    pages = storm_archive(small_storm, archive)
    lines = archive.read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]  # cut mid-line, as a full disk leaves it
    lines[4] = '{"hello": "world"}'
    lines.insert(6, "")
    archive.write_text("\n".join(lines) + "\n")
    result = run_import(config, archive)
    assert result.returncode == 1
    problems = result.stderr.strip().splitlines()
    assert problems[0].startswith(f"{archive}:3: not valid JSON")
    assert problems[1] == f"{archive}:5: not a post, status, API page or archive line stormwatch knows"
    assert len(problems) == 2 and "2 skipped" in result.stdout
    expected = {f"x:{t['id']}" for i, page in enumerate(pages) if i not in (2, 4) for t in page["data"]}
    assert set(members(config)) == expected


@pytest.mark.slow  # imports a storm
def test_a_gzip_archive_cut_short_keeps_every_complete_line(small_storm: Storm, config: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl.gz"
    storm_archive(small_storm, whole, compress=True)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    result = run_import(config, cut)
    assert result.returncode == 1
    (problem,) = result.stderr.strip().splitlines()
    line = int(problem.split(":")[1])
    assert problem == f"{cut}:{line}: the compressed file is cut short; every complete line before this one was read"
    # every complete line before the cut was imported: 100 posts a line
    assert line > 5 and len(members(config)) == (line - 1) * 100


def test_saved_api_responses_and_json_arrays_are_recognized(config: Path, tmp_path: Path) -> None:
    page = json.loads(sample_path("x-twarc2", "two_tweets.jsonl").read_text().splitlines()[0])
    page["data"][0]["entities"]["hashtags"][0]["tag"] = "StandWithIssa"  # make it a campaign post
    pretty = tmp_path / "response.json"
    pretty.write_text(json.dumps({k: v for k, v in page.items() if k != "__twarc"}, indent=2))
    array = tmp_path / "responses.json"
    array.write_text(json.dumps([page, page]))
    counts = sample_path("x-twarc2", "counts.jsonl")
    result = run_import(config, pretty, array, counts)
    assert result.returncode == 0, result.stderr
    assert members(config) == ["x:1394735776701816833"]
    with sqlite3.connect(config.parent / "data" / "test.db") as conn:
        assert conn.execute("SELECT sum(count) FROM volume_counts").fetchone()[0] == 771665
        # the reposted original came only as context: stored, never a member
        assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 2


def test_membership_follows_the_campaign_hashtags(config: Path, tmp_path: Path) -> None:
    page = json.loads(sample_path("x-twarc2", "two_tweets.jsonl").read_text().splitlines()[0])
    archive = tmp_path / "other.jsonl"
    archive.write_text(json.dumps(page) + "\n")  # #POIUYTREWQ is not one of the campaign's hashtags
    result = run_import(config, archive)
    assert result.returncode == 0
    assert members(config) == []


def test_a_missing_file_is_one_line(config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = run_import(config, missing)
    assert result.returncode == 1 and result.stderr.strip() == f"stormwatch: error: {missing}: no such file"


@pytest.mark.slow  # imports a storm
def test_import_library_call_reports_progress(small_storm: Storm, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    archive = tmp_path / "storm.jsonl"
    storm_archive(small_storm, archive)
    seen: list[int] = []
    with Store.open(config.storage.database) as store:
        report = import_archives(store, config.campaigns[0], [archive], on_progress=lambda p, n: seen.append(n),
                                 batch_posts=300)
    assert report.skipped == 0 and report.posts_new > 1000
    assert seen == sorted(seen) and seen[-1] == archive.stat().st_size


@pytest.mark.slow  # imports a storm
def test_our_own_raw_archive_reimports_to_the_same_campaign(collected, tmp_path: Path) -> None:
    source_config, _ = collected
    raw = sorted((source_config.storage.raw_archive / "standwithissa").glob("*.jsonl.gz"))
    assert [f.name.split("-2021")[0] for f in raw] == ["x", "x-counts"]  # one gzip member per page, appended
    config = write_config(tmp_path, "http://127.0.0.1:9")
    result = run_import(config, *raw)
    assert result.returncode == 0, result.stderr
    with Store.open(source_config.storage.database) as store:
        original = sorted(f"x:{i}" for i in store.campaign_post_ids("standwithissa"))
    assert members(config) == original
    with sqlite3.connect(config.parent / "data" / "test.db") as conn, \
            sqlite3.connect(source_config.storage.database) as before:
        query = "SELECT query, bucket_start, count FROM volume_counts ORDER BY 1, 2"
        assert conn.execute(query).fetchall() == before.execute(query).fetchall()


def campaign_config(tmp_path: Path, hashtags: list[str], start: str, end: str) -> Path:
    """A config whose campaign is about the hashtags a real sample carries."""
    text = write_config(tmp_path, "http://127.0.0.1:9").read_text()
    text = text.replace(repr(list(HASHTAGS)), repr(hashtags))
    text = text.replace(f'start = "{T0.isoformat()}"', f'start = "{start}"')
    text = text.replace(f'end = "{(T0 + timedelta(hours=3)).isoformat()}"', f'end = "{end}"')
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.slow  # imports a storm
def test_a_mastodon_status_array_and_a_bluesky_post_view_array(tmp_path: Path) -> None:
    import yaml

    cassette = yaml.safe_load(sample_path("mastodon", "test_hashtag_tl.yaml").read_text())
    statuses = next(json.loads(i["response"]["body"]["string"]) for i in cassette["interactions"]
                    if i["request"]["uri"].endswith("/timelines/tag/hoot"))
    view = json.loads(sample_path("bluesky", "postview_with_tag_facets.json").read_text())
    (tmp_path / "statuses.json").write_text(json.dumps(statuses))
    (tmp_path / "views.json").write_text(json.dumps([view]))
    config = campaign_config(tmp_path, ["hoot", "KeepLearning"], "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
    result = run_import(config, tmp_path / "statuses.json", tmp_path / "views.json")
    assert result.returncode == 0, result.stderr
    assert members(config) == sorted([f"mastodon:{statuses[0]['uri']}", f"bluesky:{view['uri']}"])
    with sqlite3.connect(config.parent / "data" / "test.db") as conn:
        platforms = dict(conn.execute("SELECT platform, count(*) FROM accounts GROUP BY platform").fetchall())
        tags = {row[0] for row in conn.execute("SELECT tag FROM post_tags")}
    assert platforms == {"mastodon": 1, "bluesky": 1}
    assert {"hoot", "keeplearning", "swiftui"} <= tags
    # importing again changes nothing
    again = run_import(config, tmp_path / "statuses.json", tmp_path / "views.json")
    assert ": 0 new posts, 0 updated" in again.stdout
