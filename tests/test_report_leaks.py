"""What a report must never leave behind or give away: a killed `stormwatch report` leaves no file that pairs a
pseudonym with a handle (and the next report removes its working folder), and a named account's repost, quote or
reply of a hidden account's post shows no id or link that leads to that account."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stormwatch.config import TARGETS_SUFFIX, Config, load_config
from stormwatch.metrics import campaign_window
from stormwatch.models import Account, Batch, Post
from stormwatch.report import remove_stale_partials, write_report
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .conftest import T0, write_config
from .test_report import copy_campaign, csv_rows, hidden_handles

NOW = datetime(2021, 2, 9, 12, 0, 0, tzinfo=UTC)
REPORT_FILES = ("posts.csv", "report.html", "report.md", "summary.json", "accounts.csv")

# --- ids that point at people -------------------------------------------------------------------------------

SMALL_POST = "1358460000000000101"  # by a small (pseudonymized) account
BIG_POST = "1358460000000000102"  # by a large account
REPOST_OF_SMALL = "1358460000000000103"
QUOTE_OF_SMALL = "1358460000000000104"
TARGET_REPLY_TO_SMALL = "1358460000000000105"
QUOTE_OF_BIG = "1358460000000000106"
REPLY_TO_UNKNOWN = "1358460000000000107"  # answers a post that was never stored: whose it is, nobody knows
HIDDEN_IDS = (SMALL_POST, REPOST_OF_SMALL, QUOTE_OF_SMALL, TARGET_REPLY_TO_SMALL, REPLY_TO_UNKNOWN)
SHOWN_IDS = (BIG_POST, QUOTE_OF_BIG)


def _account(native: str, handle: str, followers: int) -> Account:
    return Account(uid=f"x:{native}", platform="x", id=native, handle=handle, name=None, followers_count=followers,
                   following_count=1, posts_count=1, verified=False, created_at=None, updated_at=iso_utc(T0))


def _post(native: str, author: Account, minute: int, likes: int, *, kind: str = "original",
          ref: str | None = None, text: str = "Drop the charges #StandWithIssa") -> Post:
    when = T0 + timedelta(minutes=minute)
    return Post(uid=f"x:{native}", platform="x", id=native, author_uid=author.uid, created_at=iso_utc(when),
                ts=int(when.timestamp()), text=text, lang="en", kind=kind, ref_uid=f"x:{ref}" if ref else None,
                url=f"https://x.com/{author.handle}/status/{native}", like_count=likes, repost_count=1,
                reply_count=1, quote_count=1, bookmark_count=None, impression_count=None, metrics_at=iso_utc(when),
                tags=("standwithissa",))


def referencing_batch() -> tuple[Batch, Post]:
    """A small account's post, reposted, quoted and answered by named accounts (a large one and a target); and the
    target's reply, which the targets' companion campaign holds too."""
    small = _account("2001", "quietneighbour", 12)
    big = _account("2002", "LoudOutlet", 90_000)
    target = _account("2003", "antonioguterres", 30)  # a target: always named, whatever its followers
    posts = (
        _post(SMALL_POST, small, 1, 40),
        _post(BIG_POST, big, 2, 400),
        _post(REPOST_OF_SMALL, big, 3, 0, kind="repost", ref=SMALL_POST),
        _post(QUOTE_OF_SMALL, big, 4, 300, kind="quote", ref=SMALL_POST),
        _post(TARGET_REPLY_TO_SMALL, target, 5, 200, kind="reply", ref=SMALL_POST, text="Thank you #StandWithIssa"),
        _post(QUOTE_OF_BIG, big, 6, 100, kind="quote", ref=BIG_POST),
        _post(REPLY_TO_UNKNOWN, big, 7, 90, kind="reply", ref="1358460000000000999"),
    )
    return Batch(posts=posts, accounts=(small, big, target)), posts[4]


@pytest.fixture(scope="module")
def referencing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path, Path]:
    """(config, pseudonymized report, public report) of a campaign whose named accounts reference a hidden one."""
    folder = tmp_path_factory.mktemp("referencing")
    config = load_config(write_config(folder, "http://127.0.0.1:9"))
    campaign = config.campaigns[0]
    batch, target_reply = referencing_batch()
    with Store.open(config.storage.database) as store:
        store.save_page(batch, campaign=campaign.name, cursor=None, run_id=None, collected_at=NOW)
        store.save_page(Batch(posts=(target_reply,)), campaign=campaign.name + TARGETS_SUFFIX, cursor=None,
                        run_id=None, collected_at=NOW)
        hidden = write_report(store, config, campaign, campaign_window(campaign), out_dir=folder / "pseudonymized",
                              names="pseudonymized", now=NOW)
        public = write_report(store, config, campaign, campaign_window(campaign), out_dir=folder / "public",
                              names="public", now=NOW)
    return config, hidden, public


@pytest.mark.slow  # whole reports
def test_a_named_accounts_repost_quote_or_reply_of_a_hidden_accounts_post_loses_its_id_and_link(
        referencing: tuple[Config, Path, Path]) -> None:
    _, hidden, _ = referencing
    rows = {row["created_at_utc"]: row for row in csv_rows(hidden / "posts.csv")}
    assert len(rows) == 7
    for row in rows.values():
        if row["author"] == "LoudOutlet" and row["kind"] == "original":
            assert row["id"] == BIG_POST and row["url"].endswith(BIG_POST)
    for name in REPORT_FILES:
        text = (hidden / name).read_text(encoding="utf-8-sig")
        for native in HIDDEN_IDS:
            assert native not in text, f"{native} in {name}"
    # A named account quoting a named account's post keeps its link, in posts.csv and among the top posts.
    for name in ("posts.csv", "report.html", "report.md"):
        text = (hidden / name).read_text(encoding="utf-8-sig")
        for native in SHOWN_IDS:
            assert f"https://x.com/LoudOutlet/status/{native}" in text, f"{native} not in {name}"


@pytest.mark.slow  # whole reports
def test_public_reports_keep_every_id_and_link(referencing: tuple[Config, Path, Path]) -> None:
    _, _, public = referencing
    posts = (public / "posts.csv").read_text(encoding="utf-8-sig")
    html = (public / "report.html").read_text(encoding="utf-8")
    for native in (*HIDDEN_IDS, *SHOWN_IDS):
        assert native in posts
    assert f"https://x.com/antonioguterres/status/{TARGET_REPLY_TO_SMALL}" in html


# --- a killed report -------------------------------------------------------------------------------------------


def _partials(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.name.endswith(".partial"))


def _kill_report_when(config_path: Path, out: Path, appears: str) -> bool:
    """Start `stormwatch report`, kill -9 it and its worker as soon as `appears` exists in its working folder;
    whether it was killed before it finished."""
    before = set(_partials(out))
    # A session of its own: the report and the posts.csv worker it starts are one process group, killed at once
    # (an orphaned worker would go on writing its part file).
    process = subprocess.Popen([sys.executable, "-m", "stormwatch", "report", "--config", str(config_path), "--out",
                                str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            working = [p for p in _partials(out) if p not in before]
            if working and (appears == "" or (working[0] / appears).exists()):
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return any(p not in before for p in _partials(out))


@pytest.mark.slow
def test_a_killed_report_leaves_nothing_that_names_a_pseudonymized_account(collected, tmp_path: Path) -> None:
    config, _ = collected
    config_path = copy_campaign(config, tmp_path / "campaign")
    database = load_config(config_path).storage.database
    out = tmp_path / "reports"
    out.mkdir()
    # The pseudonyms are assigned (and stored) by the first report; every later one reuses them.
    subprocess.run([sys.executable, "-m", "stormwatch", "report", "--config", str(config_path), "--out", str(out)],
                   check=True, capture_output=True, timeout=120)
    hidden = [h for h in hidden_handles(database, load_config(config_path)) if len(h) >= 4]
    with sqlite3.connect(database) as conn:
        labels = [label for (label,) in conn.execute("SELECT label FROM pseudonyms")]
    assert len(hidden) > 100 and labels
    handle_pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(h)}(?![\w-])" for h in hidden), re.IGNORECASE)
    # Killed: as its working folder appears, while the posts.csv worker writes, while charts and the page are made.
    # Each report removes the working folder an earlier killed one left: what a kill leaves is searched at once.
    caught = []
    for point in ("", ".posts.csv.part0", "accounts.csv", "volume.png", "report.html"):
        if not _kill_report_when(config_path, out, point):
            continue
        caught.append(point)
        searched = 0
        for path in out.rglob("*"):
            if path.is_file():
                found = handle_pattern.search(path.read_bytes().decode("latin-1"))
                assert found is None, f"killed at {point or 'the start'}: {path.relative_to(out)} names {found[0]}"
                searched += 1
        assert searched >= 5 + (point != "")  # the first report's files, and the killed one's
        assert len(_partials(out)) == 1, "the earlier killed report's working folder is removed"
    assert len(caught) >= 4, f"killed at {caught} only"
    # The next report removes the dead ones' working folders, and its own leaves none.
    result = subprocess.run([sys.executable, "-m", "stormwatch", "report", "--config", str(config_path), "--out",
                             str(out)], check=True, capture_output=True, text=True, timeout=120)
    assert Path(result.stdout.strip().splitlines()[-1]).is_dir()
    assert _partials(out) == []


def test_a_working_folder_in_use_or_just_made_is_left_alone(tmp_path: Path) -> None:
    """Two reports at once: a live report's folder (its lock held, or its process running and the folder new)
    is kept; a dead one's (an older version's name without a pid, or a pid that no longer runs) goes."""
    live = tmp_path / f".standwithissa-20210209T120000Z.{os.getpid()}.partial"
    locked = tmp_path / ".standwithissa-20210209T120001Z.1.partial"
    old_version = tmp_path / ".standwithissa-20210209T120002Z.partial"
    dead = tmp_path / ".standwithissa-20210209T120003Z.999999999.partial"
    for folder in (live, locked, old_version, dead):
        folder.mkdir()
        (folder / "posts.csv").write_text("x", encoding="utf-8")
    descriptor = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        removed = remove_stale_partials(tmp_path)
    finally:
        os.close(descriptor)
    assert sorted(removed) == sorted([old_version, dead])
    assert live.is_dir() and locked.is_dir()
    # Unlocked and old: a pid used again by another process does not keep a dead report's folder.
    os.utime(live, (time.time() - 3600, time.time() - 3600))
    assert remove_stale_partials(tmp_path) == [live]
    assert not live.exists()
