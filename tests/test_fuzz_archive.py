"""Fuzzing the archive reader and the import's reading half: whatever bytes a file holds, reading never raises, every
problem says where it is, and a broken line or element costs only itself."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stormwatch.archive import reader as archive
from stormwatch.importer.reader import read_batches
from stormwatch.sources import registry
from stormwatch.store import MEMORY, Store

from .test_fuzz_normalize import FUZZ, JSON, NORMALIZERS, broken, mastodon_status

KINDS = registry.record_kinds()
HASHTAGS = frozenset({"standwithissa"})
# Bytes that cannot end an element or a line early (no quotes, brackets, commas or line breaks), and are not blank.
GARBAGE = st.binary(min_size=1, max_size=40).map(lambda raw: bytes(b for b in raw if b not in b'"[]{},\n\r')).map(
    lambda kept: kept if kept.strip() else b"\xff" + kept)
QUICK = settings(FUZZ, max_examples=max(20, FUZZ.max_examples // 2),
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def located(problem: str, path: Path) -> bool:
    return re.match(re.escape(str(path)) + r":\d+(?::\[\d+\])?:", problem) is not None


def statuses(count: int) -> list[dict[str, Any]]:
    return [mastodon_status(number) for number in range(count)]


def read(path: Path) -> tuple[list[archive.Record], list[str]]:
    records, problems = [], []
    for item in archive.read_archive(path, KINDS):
        if isinstance(item, archive.Problem):
            problems.append(str(item))
        else:
            records.append(item)
    return records, problems


@pytest.mark.slow  # a Hypothesis search (the fast lane keeps the quick ones)
@FUZZ
@given(pieces=st.lists(st.one_of(st.builds(json.dumps, JSON).map(str.encode), GARBAGE,
                                 st.sampled_from([b"[" * 3000 + b"]" * 3000, b'{"a": "\\ud800"}', b"\xef\xbb\xbf",
                                                  b'{"data": "\xff"}'])), max_size=8),
       records=st.lists(st.sampled_from(sorted(NORMALIZERS)), max_size=4),
       data=st.data(), layout=st.sampled_from(["jsonl", "array", "pretty", "gzip", "cut-gzip"]))
def test_any_file_reads_to_records_and_located_problems(pieces: list[bytes], records: list[str],
                                                        data: st.DataObject, layout: str) -> None:
    pieces = pieces + [json.dumps(data.draw(broken(NORMALIZERS[name][0]))).encode() for name in records]
    if layout == "array":
        raw = b"[\n" + b",\n".join(pieces) + b"\n]"
    elif layout == "pretty":
        raw = b"[" + b", ".join(pieces) + b"]"
    else:
        raw = b"\n".join(pieces) + b"\n"
    if layout in ("gzip", "cut-gzip"):
        raw = gzip.compress(raw)
        if layout == "cut-gzip":
            raw = raw[: data.draw(st.integers(min_value=0, max_value=len(raw)))]
    with tempfile.TemporaryDirectory() as folder, Store.open(MEMORY) as store:
        path = Path(folder) / "archive.json"
        path.write_bytes(raw)
        for message in read_batches([path], HASHTAGS, batch_posts=5):
            if message[0] == "problem":
                assert located(message[1], path), message[1]
            elif message[0] == "batch":
                store.import_batches(message[1], "fuzz")


@QUICK
@given(good=st.integers(min_value=1, max_value=12), data=st.data())
def test_a_broken_jsonl_line_costs_only_itself(good: int, data: st.DataObject) -> None:
    lines: list[bytes | None] = [json.dumps(status).encode() for status in statuses(good)]
    for index in data.draw(st.lists(st.integers(min_value=0, max_value=good + 2), max_size=4)):
        lines.insert(index, None)  # the first lines too: a JSONL file is known by any of its lines
    broken_at = [number for number, line in enumerate(lines) if line is None]
    garbage = [data.draw(GARBAGE) for _ in broken_at]
    assume(not any(archive._is_object_line(line) for line in garbage))
    assume(not (broken_at[:1] == [0] and garbage[-1].startswith(b"\x1f\x8b")))  # that is a gzip file
    lines = [line if line is not None else garbage.pop() for line in lines]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statuses.jsonl"
        path.write_bytes(b"\n".join(line for line in lines if line is not None) + b"\n")
        records, problems = read(path)
    assert [r.body["uri"] for r in records] == [s["uri"] for s in statuses(good)]
    assert len(problems) == len(broken_at) and all(located(p, path) for p in problems)
    assert sorted(int(p.split(":")[1]) for p in problems) == sorted(i + 1 for i in broken_at), problems


@QUICK
@given(good=st.integers(min_value=1, max_value=12), pretty=st.booleans(), data=st.data())
def test_a_broken_array_element_costs_only_itself(good: int, pretty: bool, data: st.DataObject) -> None:
    elements = [json.dumps(status, indent=2 if pretty else None).replace("\n", "\n  ").encode()
                for status in statuses(good)]
    broken_at = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=good - 1), max_size=3)))
    for index in broken_at:
        if data.draw(st.booleans()):  # bytes that are not UTF-8 inside a string
            elements[index] = elements[index].replace(b'"Yas"', b'"Y\xffs"')
        else:  # an element that is not JSON at all
            elements[index] = b"x" + data.draw(GARBAGE)
    raw = b"[\n  " + b",\n  ".join(elements) + b"\n]\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statuses.json"
        path.write_bytes(raw)
        records, problems = read(path)
    kept = [s["uri"] for i, s in enumerate(statuses(good)) if i not in broken_at]
    assert [r.body["uri"] for r in records] == kept
    items = [int(re.search(r":\[(\d+)\]:", p).group(1)) for p in problems]  # type: ignore[union-attr]
    assert items == broken_at, problems
