"""Opening the database as a user meets it: private files, read-only copies, damaged files and full disks, each
one line and the right exit code, never a traceback."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stormwatch.archive.writer import RawArchive
from stormwatch.config import Config
from stormwatch.console import setup_logging
from stormwatch.models import Cursor, RawPage
from stormwatch.store import Store

from .cli_support import Ran, invoke
from .conftest import TOKEN

REPO = Path(__file__).resolve().parents[1]
READING_COMMANDS = (("status",), ("summary",), ("report", "--out", "REPORTS"), ("dashboard",))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_campaign(config: Config, folder: Path) -> Path:
    """The collected campaign's config and a consistent copy of its database (no report made yet)."""
    (folder / "data").mkdir(parents=True)
    text = config.path.read_text(encoding="utf-8").replace('raw_archive = "data/raw"', 'raw_archive = ""')
    (folder / "config.toml").write_text(text, encoding="utf-8")
    with sqlite3.connect(config.storage.database) as source, sqlite3.connect(folder / "data" / "test.db") as copy:
        source.backup(copy)
    return folder / "config.toml"


def arguments(config: Path, *args: str) -> list[str]:
    """A command's arguments with its config, REPORTS standing for the reports folder beside it."""
    return [*(a.replace("REPORTS", str(config.parent / "reports")) for a in args), "--config", str(config)]


def run(config: Path, *args: str, python: list[str] | None = None,
        env: dict[str, str] | None = None, **options: object) -> subprocess.CompletedProcess[str]:
    """A command in a process of its own: as another user, or under a file-size limit."""
    return subprocess.run([*(python or [sys.executable]), "-m", "stormwatch", *arguments(config, *args)],
                          capture_output=True, text=True, timeout=180, env=env, **options)  # type: ignore[call-overload]


def cli(config: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    """A command in this process."""
    return invoke(*arguments(config, *args), env=env)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """The most permissive umask: modes must come from stormwatch, not from the environment."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# --- private files --------------------------------------------------------------------------------


def test_database_log_and_archive_are_private_whatever_the_umask(tmp_path: Path, umask_zero: None) -> None:
    data = tmp_path / "new" / "data"
    with Store.open(data / "stormwatch.db") as store:
        store.assign_pseudonyms("c", ["x:1"])  # a write: the WAL files exist now
        files = [data / "stormwatch.db", data / "stormwatch.db-wal", data / "stormwatch.db-shm"]
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
    assert mode(data) == mode(data.parent) == 0o700
    when = datetime(2021, 2, 7, 16, tzinfo=UTC)
    page = RawPage(source="x", endpoint="search", url="https://api.x.com/2/tweets/search/recent?query=x",
                   retrieved_at=when, body={"data": []}, cursor=Cursor("c", "x", "q"))
    written = RawArchive(tmp_path / "raw").write("c", page)
    assert mode(written) == 0o600 and mode(written.parent) == mode(tmp_path / "raw") == 0o700
    log_file = tmp_path / "logs" / "stormwatch.log"
    try:
        setup_logging(log_file, console=False)
        logging.getLogger("stormwatch.test").warning("a line")
        handler = next(h for h in logging.getLogger().handlers if hasattr(h, "doRollover"))
        handler.doRollover()  # type: ignore[attr-defined]
        logging.getLogger("stormwatch.test").warning("after rotating")
    finally:
        setup_logging(None, console=False)
    assert mode(log_file) == mode(log_file.with_name("stormwatch.log.1")) == 0o600
    assert mode(log_file.parent) == 0o700


# --- read-only databases --------------------------------------------------------------------------


@pytest.mark.slow  # a whole report among the commands
def test_a_read_only_copy_serves_every_reading_command(collected, tmp_path: Path) -> None:
    config_path = copy_campaign(collected[0], tmp_path)
    database = tmp_path / "data" / "test.db"
    (tmp_path / "reports").mkdir()
    os.chmod(database, 0o444)  # marked read-only: even root, who could write it, must not
    os.chmod(database.parent, 0o555)
    before = digest(database)
    try:
        for command in READING_COMMANDS:
            result = cli(config_path, *command)
            assert result.returncode == 0, (command, result.stderr)
            assert "opened read-only: nothing was stored" in result.stderr, command
        archive = tmp_path / "one.jsonl"
        archive.write_text('{"data": []}\n')
        imported = cli(config_path, "import", str(archive))
    finally:
        os.chmod(database.parent, 0o755)
        os.chmod(database, 0o644)
    assert digest(database) == before
    (report,) = (tmp_path / "reports").iterdir()
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    assert summary["report"]["labels_stable"] is False
    assert "their labels will differ in the next report" in (report / "report.md").read_text(encoding="utf-8")
    assert "participant-" in (report / "posts.csv").read_text(encoding="utf-8")
    assert imported.returncode == 1 and imported.stderr.count("\n") == 1
    assert "the database is read-only here" in imported.stderr


def _other_user_python(folder: Path) -> tuple[list[str], dict[str, str]]:
    """A command running this package's Python as the user `nobody`, or a skip when this machine cannot."""
    if os.geteuid() != 0:
        return [sys.executable], dict(os.environ)
    setpriv = shutil.which("setpriv")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/bin:/usr/local/bin")
    if setpriv is None or system is None:
        pytest.skip("needs setpriv and a system Python of this version to run as another user")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join([sysconfig.get_paths()["purelib"], str(REPO)])}
    command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", system]
    probe = subprocess.run([*command, "-c", "import stormwatch.cli"], capture_output=True, env=env, cwd=folder)
    if probe.returncode != 0:
        pytest.skip(f"cannot run stormwatch as another user here: {probe.stderr[-200:]!r}")
    return command, env


@pytest.mark.slow  # a process of its own
def test_another_users_database_in_a_folder_nobody_else_may_write(collected) -> None:
    folder = Path(tempfile.mkdtemp(prefix="stormwatch-shared-"))
    try:
        os.chmod(folder, 0o755)
        config_path = copy_campaign(collected[0], folder)
        database = folder / "data" / "test.db"
        os.chmod(database, 0o644)
        os.chmod(database.parent, 0o755)
        python, env = _other_user_python(folder)
        reports = folder / "reports"
        reports.mkdir()
        if os.geteuid() == 0:
            os.chown(reports, 65534, 65534)
        else:  # not root: the copy is made unwritable to this user instead
            os.chmod(database, 0o444)
            os.chmod(database.parent, 0o555)
        before = digest(database)
        for command in READING_COMMANDS:
            result = run(config_path, *command, python=python, env=env, cwd=folder)
            assert result.returncode == 0, (command, result.stderr)
            assert "nothing was stored" in result.stderr, (command, result.stderr)
        assert digest(database) == before
        assert sorted(p.name for p in database.parent.iterdir()) == ["test.db"]  # no -wal or -shm left
    finally:
        for path in (folder / "data", folder / "data" / "test.db"):
            if path.exists():
                os.chmod(path, 0o755)
        shutil.rmtree(folder, ignore_errors=True)


# --- damaged databases ---------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["header", "truncated", "pages"])
def test_a_damaged_database_is_one_line_from_every_command(collected, tmp_path: Path, damage: str) -> None:
    config_path = copy_campaign(collected[0], tmp_path)
    database = tmp_path / "data" / "test.db"
    size = database.stat().st_size
    if damage == "header":  # SQLite's own first bytes, the rest of the header garbled: "file is not a database"
        with database.open("r+b") as handle:
            handle.seek(16)
            handle.write(b"\xff" * 84)
    elif damage == "truncated":
        with database.open("r+b") as handle:
            handle.truncate(size // 3)
    else:  # pages in the middle overwritten: the file opens, the damage shows when it is read
        with database.open("r+b") as handle:
            for offset in range(size // 4, size, size // 6):
                handle.seek(offset)
                handle.write(b"\xde\xad" * 2048)
    before = digest(database)
    archive = tmp_path / "one.jsonl"
    archive.write_text(json.dumps({"data": [{"id": "1", "text": "#StandWithIssa", "created_at":
                                             "2021-02-07T16:00:00.000Z"}]}) + "\n")
    commands = [("import", str(archive)), *READING_COMMANDS] if damage != "pages" else [("import", str(archive))]
    for command in commands:
        result = cli(config_path, *command, env={"X_BEARER_TOKEN": TOKEN})
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"stormwatch: error: {database}: database is damaged: "), (command, line)
        assert line.endswith(f"run `sqlite3 {database} .recover` to save what can be saved"), line
    assert digest(database) == before  # import refused to write into it
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


# --- a full disk ---------------------------------------------------------------------------------


def _limit_file_size() -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with an OSError as a full disk's does.
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))


@pytest.mark.slow  # a process of its own
def test_a_report_that_cannot_be_written_is_one_line_and_leaves_nothing(collected, tmp_path: Path) -> None:
    config_path = copy_campaign(collected[0], tmp_path)
    first = run(config_path, "report", "--out", "REPORTS")  # pseudonyms stored: the next one only reads
    assert first.returncode == 0, first.stderr
    shutil.rmtree(tmp_path / "reports")
    (tmp_path / "reports").mkdir()
    result = run(config_path, "report", "--out", "REPORTS", preexec_fn=_limit_file_size)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("stormwatch: error: ") and "File too large" in line, line
    assert list((tmp_path / "reports").iterdir()) == []  # no partial folder, no half a report


def test_making_a_file_ready_is_tried_again_while_sqlite_refuses_at_once() -> None:
    # SQLite may refuse one of two connections making a new file ready at once without waiting out its busy
    # timeout (to avoid a deadlock): that step is tried again, and any other error is not.
    from stormwatch.store.database import _while_locked

    attempts: list[int] = []

    def refused_twice() -> None:
        attempts.append(1)
        if len(attempts) <= 2:
            raise sqlite3.OperationalError("database is locked")

    _while_locked(refused_twice, 5.0)
    assert len(attempts) == 3

    def broken() -> None:
        attempts.append(1)
        raise sqlite3.OperationalError("no such table: posts")

    attempts.clear()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        _while_locked(broken, 5.0)
    assert len(attempts) == 1
    def always_refused() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):  # until the timeout, then the error stands
        _while_locked(always_refused, 0.2)
