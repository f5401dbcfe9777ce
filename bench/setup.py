"""Benchmark fixtures: storm archives of a given size and databases imported from them (cached in bench/data/)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

from .common import DATA
from .storm_file import START, storm_spec

CONFIG = """\
[storage]
database = "{database}"
raw_archive = ""

[[campaigns]]
name = "standwithissa"
hashtags = ["StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners"]
accounts = ["Issaamro", "YASHebron"]
targets = ["antonioguterres", "vonderleyen"]
start = "{start}"
end = "{end}"
timezone = "Asia/Hebron"
"""


def label(posts: int) -> str:
    """`1m`, `100k`, `5000` — how sizes appear in file names."""
    if posts % 1_000_000 == 0:
        return f"{posts // 1_000_000}m"
    if posts % 1000 == 0:
        return f"{posts // 1000}k"
    return str(posts)


def storm_archive(posts: int, seed: int = 2021) -> Path:
    """The twarc2 JSONL archive of a seeded storm of `posts` campaign posts (generated once)."""
    path = DATA / f"storm-{label(posts)}{'' if seed == 2021 else f'-seed{seed}'}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        subprocess.run([sys.executable, "-m", "bench.storm_file", "--posts", str(posts), "--seed", str(seed),
                        "--out", str(partial)], check=True, stdout=subprocess.DEVNULL, cwd=DATA.parent.parent)
        partial.rename(path)
    return path


def scratch_copy(database: Path, name: str) -> Path:
    """A throwaway copy of a cached database (benchmarks that write must not change the cache)."""
    target = DATA / name
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    with sqlite3.connect(database) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return target


def config_for(database: Path, posts: int) -> Path:
    """A config whose campaign window is the generated storm's window."""
    spec = storm_spec(posts)
    path = database.with_suffix(".toml")
    path.write_text(CONFIG.format(database=database, start=START.isoformat(),
                                  end=(START + (spec.end - spec.start)).isoformat()), encoding="utf-8")
    return path


def imported_database(posts: int) -> tuple[Path, Path]:
    """(database, config) holding the storm archive of `posts` posts, imported by `stormwatch import` (built once)."""
    database = DATA / f"storm-{label(posts)}.db"
    config = config_for(database, posts)
    complete = database.with_suffix(".complete")
    if not complete.exists():
        for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            leftover.unlink(missing_ok=True)
        archive = storm_archive(posts)
        subprocess.run([sys.executable, "-m", "stormwatch", "import", str(archive), "--config", str(config)],
                       check=True, stdout=subprocess.DEVNULL)
        complete.touch()
    return database, config


def repeated_gzip(path: Path, head: bytes, block: bytes, times: int, tail: bytes) -> Path:
    """A gzip file of `head`, `block` `times` times, then `tail`, written in one pass without holding the whole:
    the block is deflated once (after a full flush it needs nothing before it) and its bytes repeated, so a GiB
    of content takes a second and about a megabyte of disk."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    crc = zlib.crc32(head)
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip header: deflate, no name, no time
        out.write(deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH))
        piece = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
        for _ in range(times):
            out.write(piece)
            crc = zlib.crc32(block, crc)
        out.write(deflate.compress(tail) + deflate.flush())
        size = len(head) + len(block) * times + len(tail)
        out.write(zlib.crc32(tail, crc).to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
    return path


def hostile_archive(kind: str, gib: int = 1) -> Path:
    """A storm archive's first line, then `gib` GiB of one line (kind "line") or of newlines (kind "blank"), then
    its second line, gzipped: about a megabyte on disk. Kind "element": the same as a JSON array's elements."""
    path = DATA / f"hostile-{kind}-{gib}g.jsonl.gz"
    if not path.exists():
        with storm_archive(5000).open("rb") as lines:
            first, second = lines.readline(), lines.readline()
        if kind == "line":
            repeated_gzip(path, first + b'{"data": "', b"x" * (1 << 20), gib << 10, b'"}\n' + second)
        elif kind == "element":  # a JSON array of the two pages with the huge one between them
            repeated_gzip(path, b"[" + first.strip() + b', {"data": "', b"x" * (1 << 20), gib << 10,
                          b'"}, ' + second.strip() + b"]\n")
        else:
            repeated_gzip(path, first, b"\n" * (1 << 20), gib << 10, second)
    return path
