"""Bounded import (issue 15): a line or array element longer than the limit is skipped and named without being
held, blank lines cost nothing, memory stays flat whatever the file, and a FIFO or device given as FILE is named
for what it is instead of blocking the import or being called missing."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench.setup import repeated_gzip
from stormwatch.archive import reader as archive
from stormwatch.config import load_config
from stormwatch.errors import ArchiveError
from stormwatch.importer import import_archives
from stormwatch.simulator.storm import Storm
from stormwatch.sources import registry
from stormwatch.store import Store

from .conftest import write_config
from .test_fuzz_archive import statuses
from .test_importer import members, storm_archive

KINDS = registry.record_kinds()
MB = 1 << 20


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "http://127.0.0.1:9")


@pytest.fixture
def pages(small_storm: Storm, tmp_path: Path) -> tuple[bytes, bytes, set[str]]:
    """Two twarc2 lines of campaign posts (as written, with their newline) and the members they make."""
    lines = storm_archive(small_storm, tmp_path / "storm.jsonl")[:2]
    return (json.dumps(lines[0]).encode() + b"\n", json.dumps(lines[1]).encode() + b"\n",
            {f"x:{post['id']}" for line in lines for post in line["data"]})


def run(config: Path, *args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stormwatch", "import", "--config", str(config), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def huge_line(size: int) -> bytes:
    return b'{"data": "' + b"x" * size + b'"}\n'


@pytest.mark.slow
@pytest.mark.parametrize("where, compress", [("middle", False), ("first", True)])
def test_a_line_longer_than_the_limit_is_skipped_and_named_and_the_lines_around_it_kept(
        config: Path, tmp_path: Path, pages: tuple[bytes, bytes, set[str]], where: str, compress: bool) -> None:
    first, second, expected = pages
    lines = [first, huge_line(3 * MB), second] if where == "middle" else [huge_line(3 * MB), first, second]
    path = tmp_path / ("long.jsonl.gz" if compress else "long.jsonl")
    path.write_bytes(gzip.compress(b"".join(lines)) if compress else b"".join(lines))
    result = run(config, path, "--max-line-mb", "1")
    assert result.returncode == 1, result.stderr
    line = 2 if where == "middle" else 1
    assert result.stderr.splitlines() == [f"{path}:{line}: line longer than 1 MB"]
    assert "1 skipped" in result.stdout
    assert set(members(config)) == expected


@pytest.mark.slow
def test_blank_lines_are_skipped_and_keep_every_line_number(config: Path, tmp_path: Path,
                                                              pages: tuple[bytes, bytes, set[str]]) -> None:
    first, second, expected = pages
    path = tmp_path / "blank.jsonl"
    # 100 blank lines before the first (more than the first look at the file reads), Windows and space-filled ones
    path.write_bytes(b"\n" * 100 + first + b"\r\n  \t\n" * 500 + b" " * 3 * MB + b"\n" + b"{broken\n" + second)
    result = run(config, path, "--max-line-mb", "1")  # a line of only blank space is never "too long"
    (problem,) = result.stderr.splitlines()
    assert problem.startswith(f"{path}:{100 + 1 + 1000 + 1 + 1}: not valid JSON (")
    assert set(members(config)) == expected


def test_a_document_longer_than_the_limit_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"data": ["x" * 1000] * 3000}, indent=2))  # one pretty-printed 3 MB document
    problems = [str(item) for item in archive.read_archive(path, KINDS, max_line=MB)]
    assert problems == [f"{path}:1: not JSON lines, and longer than 1 MB as one document"]


@pytest.mark.parametrize("content, line", [(b"\x0b", 1), (b"\n\x0c\n\x0b \n", 2)])
def test_a_file_of_blank_bytes_json_does_not_take_is_one_problem(tmp_path: Path, content: bytes, line: int) -> None:
    path = tmp_path / "blank.json"
    path.write_bytes(content)
    problems = [str(item) for item in archive.read_archive(path, KINDS)]
    assert problems == [f"{path}:{line}: not JSON (expected an object per line or a JSON array)"]


@pytest.mark.parametrize("pretty", [False, True])
# The escape-dense element takes seconds to scan: in the slow lane.
@pytest.mark.parametrize("huge", [pytest.param({"content": "x\\\"[{" * MB}, marks=pytest.mark.slow), "y" * (3 * MB),
                                  "digits"])
def test_an_array_element_longer_than_the_limit_costs_only_itself(tmp_path: Path, pretty: bool, huge: Any) -> None:
    elements = statuses(3)
    body = [elements[0], {**elements[1], **huge} if isinstance(huge, dict) else huge, elements[2]]
    text = json.dumps(body, indent=1 if pretty else None).replace('"digits"', "1" * (3 * MB))  # a huge number
    path = tmp_path / "statuses.json"
    path.write_text(text)
    items = list(archive.read_archive(path, KINDS, max_line=MB))
    assert [str(item) for item in items if isinstance(item, archive.Problem)] == [
        f"{path}:{(1 + 1 + len(json.dumps(elements[0], indent=1).splitlines())) if pretty else 1}:[1]: "
        "element longer than 1 MB"]
    assert [(item.item, item.body["id"]) for item in items if isinstance(item, archive.Record)] == [
        (0, elements[0]["id"]), (2, elements[2]["id"])]


# --- what is not a file -------------------------------------------------------------------------


@pytest.fixture(params=["fifo", "character device", "socket"])
def not_a_file(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "fifo":
        path = tmp_path / "archive.jsonl"
        os.mkfifo(path)
        yield path, "a named pipe (FIFO)"
    elif request.param == "character device":
        yield Path(os.devnull), "a character device"
    else:
        path = tmp_path / "s.sock"
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(path))
            yield path, "a socket"


@pytest.mark.slow
def test_a_fifo_or_device_given_as_file_is_named_for_what_it_is(config: Path, not_a_file: tuple[Path, str]) -> None:
    path, what = not_a_file
    result = run(config, path, timeout=60)  # a FIFO opened for reading would wait for a writer forever
    assert result.returncode == 1
    assert result.stderr.strip() == f"stormwatch: error: {path}: is {what}, not a file: give an archive file"


def test_the_library_refuses_a_fifo_and_reading_one_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "archive.jsonl"
    os.mkfifo(fifo)
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    with Store.open(config.storage.database) as store, pytest.raises(ArchiveError) as raised:
        import_archives(store, config.campaigns[0], [fifo])
    assert str(raised.value) == f"{fifo}: is a named pipe (FIFO), not a file: give an archive file"
    read: list[str] = []  # a file swapped for a FIFO after the check: opened without blocking, then refused
    reading = threading.Thread(target=lambda: read.extend(map(str, archive.read_archive(fifo, KINDS))), daemon=True)
    reading.start()
    reading.join(20)
    assert read == [f"{fifo}:0: is a named pipe (FIFO), not a file: give an archive file"]


# --- memory and time, measured: 1 GiB inside a 1 MB gzip ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["line", "blank", "element"])
def test_a_gibibyte_line_blank_run_or_element_in_a_1_mb_gzip_takes_seconds_and_flat_memory(
        config: Path, tmp_path: Path, pages: tuple[bytes, bytes, set[str]], kind: str) -> None:
    first, second, expected = pages
    path = tmp_path / f"{kind}.jsonl.gz"
    if kind == "line":  # written a compressed megabyte at a time: the test itself stays light
        repeated_gzip(path, first + b'{"data": "', b"x" * MB, 1024, b'"}\n' + second)
    elif kind == "element":  # the same in a JSON array
        repeated_gzip(path, b"[" + first.strip() + b', {"data": "', b"x" * MB, 1024, b'"}, ' + second.strip() + b"]")
    else:
        repeated_gzip(path, first, b"\n" * MB, 1024, second)
    assert path.stat().st_size < 2 * MB
    # A process of its own measures its children's peak (the import and its reader), not this session's.
    measure = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True, timeout=280); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "stormwatch", "import", "--config",
                             str(config), str(path)], capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stdout)
    assert set(members(config)) == expected
    # The line: 64 MB held once at most (before: 3.2 GB); an array's element: as text, parsed, and read (before: GBs).
    assert peak_mb < (250 if kind != "element" else 400), f"peak memory {peak_mb} MB"
    assert seconds < 120, f"{seconds:.0f} s"  # about 5-10 s here (before: 7 minutes; blank lines: over 8)
