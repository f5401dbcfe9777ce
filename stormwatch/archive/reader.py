"""Reading archive files record by record: twarc2 JSONL (plain or .gz), saved API responses, post arrays.

Each file yields records (one API page, post or status each, with where it came from) or problems
(`FILE:LINE: reason`) for lines that cannot be read; a problem never stops the rest of the file. What a
record is comes from its content: the caller passes the kinds it knows (each platform's normalizer declares
its own, the source registry orders them), tried one after the other.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..normalize.common import RecordKind

# orjson parses archive lines about twice as fast as the standard library: it matters at a million posts.
_loads = orjson.loads
_DECODE_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Record:
    """One thing read from an archive: what it is (a `RecordKind` name), its JSON, where it came from and when
    it was fetched."""

    path: Path
    line: int
    kind: str
    body: Any
    retrieved_at: str | None


@dataclass(frozen=True)
class Problem:
    """A line that could not be read; `str()` is `FILE:LINE: reason`."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def classify(body: Any, kinds: Sequence[RecordKind]) -> RecordKind | None:
    """What a JSON value from an archive is, by its content: the first of `kinds` it matches, or None."""
    if not isinstance(body, dict):
        return None
    for kind in kinds:
        if kind.matches(body):
            return kind
    return None


def read_archive(path: Path, kinds: Sequence[RecordKind],
                 on_bytes: Callable[[int], None] | None = None) -> Iterator[Record | Problem]:
    """Records and problems of one file, streamed (a JSON array is read element by element); a record is of
    the first of `kinds` its content matches.

    `on_bytes` is told how far into the file (compressed bytes) reading has got, now and then.
    """
    try:
        raw = path.open("rb")
    except OSError as exc:
        yield Problem(path, 0, f"cannot open: {exc.strerror or exc}")
        return
    with raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        gzipped = _GzipStream(raw) if compressed else None
        reader: Any = io.BufferedReader(gzipped, buffer_size=_CHUNK) if gzipped else raw
        first = _first_meaningful_byte(reader)
        if first == b"[":
            records = _array_records(path, reader, kinds)
        elif first == b"{":
            records = _line_records(path, reader, kinds)
        else:
            records = None
        last_line = 0
        if records is not None:
            for count, item in enumerate(records):
                if on_bytes is not None and count % 64 == 0:
                    on_bytes(raw.tell())
                last_line = item.line
                yield item
            if on_bytes is not None:
                on_bytes(raw.tell())
        elif first == b"" and not (gzipped and gzipped.damage):
            yield Problem(path, 0, "empty file")
        elif first != b"":
            yield Problem(path, 1, "not JSON (expected an object per line or a JSON array)")
        if gzipped is not None and gzipped.damage:
            yield Problem(path, last_line + 1, f"{gzipped.damage}; every complete line before this one was read")


class _GzipStream(io.RawIOBase):
    """Decompresses gzip (several members, as appended archives have) and stops cleanly where the data does.

    The standard GzipFile raises at a truncated end and loses the lines already decompressed in its
    buffer; here the end simply comes early and `damage` says why, so every complete line is kept.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw = raw
        self.damage: str | None = None
        self._inflater = zlib.decompressobj(wbits=31)
        self._in_member = False
        self._pending = b""
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._finished:
            chunk = self.raw.read(_CHUNK)
            if not chunk:
                if self._in_member:
                    self.damage = "the compressed file is cut short"
                self._finished = True
                break
            try:
                self._pending = self._inflate(chunk)
            except zlib.error as exc:
                self.damage = f"the compressed data is damaged ({exc})"
                self._finished = True
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _inflate(self, chunk: bytes) -> bytes:
        data = self._inflater.decompress(chunk)
        self._in_member = True
        while self._inflater.eof:  # one member ended: what follows is the next member (or nothing)
            rest = self._inflater.unused_data
            self._inflater = zlib.decompressobj(wbits=31)
            self._in_member = bool(rest)
            if not rest:
                break
            data += self._inflater.decompress(rest)
        return data


def _first_meaningful_byte(reader: Any) -> bytes:
    while True:
        chunk: bytes = reader.peek(64)[:64]
        if not chunk:
            return b""
        stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
        if stripped:
            return stripped[:1]
        reader.read(len(chunk))


def _line_records(path: Path, reader: Any, kinds: Sequence[RecordKind]) -> Iterator[Record | Problem]:
    """JSONL; or, when the first line is not a whole object, one (pretty-printed) JSON document."""
    first_line = reader.readline()
    try:
        value = _loads(first_line)
    except _DECODE_ERRORS:
        document = first_line + reader.read()
        try:
            value = _loads(document)
        except _DECODE_ERRORS as exc:
            yield Problem(path, 1, f"not valid JSON ({exc})")
            return
        yield from _records_for(path, 1, value, kinds)
        return
    yield from _records_for(path, 1, value, kinds)
    for number, line in enumerate(reader, start=2):
        if not line.endswith(b"\n") and _truncated(reader):
            return  # the last, incomplete line of a damaged file: read_archive reports it
        if not line.strip():
            continue
        try:
            value = _loads(line)
        except _DECODE_ERRORS as exc:
            yield Problem(path, number, f"not valid JSON ({_short(exc)})")
            continue
        yield from _records_for(path, number, value, kinds)


def _array_records(path: Path, reader: Any, kinds: Sequence[RecordKind]) -> Iterator[Record | Problem]:
    """A JSON array read element by element, so a big saved response never sits in memory whole."""
    decoder = json.JSONDecoder()
    buffer = ""
    position = 0
    line = 1
    started = False
    ended = False
    pending = b""
    index = 0
    while not ended:
        chunk = reader.read(_CHUNK)
        if chunk:
            pending += chunk
            try:
                text = pending.decode("utf-8")
                pending = b""
            except UnicodeDecodeError as exc:  # a character split across chunks: keep its bytes for later
                text = pending[:exc.start].decode("utf-8")
                pending = pending[exc.start:]
                if len(pending) > 4:
                    yield Problem(path, line, "not UTF-8 text")
                    return
            buffer = buffer[position:] + text
            position = 0
        elif not buffer[position:].strip():
            if started:
                yield Problem(path, line, "the JSON array is cut short (no closing ])")
            return
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n,\ufeff":
                if buffer[position] == "\n":
                    line += 1
                position += 1
            if position >= len(buffer):
                break
            if not started:
                if buffer[position] != "[":
                    yield Problem(path, line, "expected a JSON array")
                    return
                started = True
                position += 1
                continue
            if buffer[position] == "]":
                ended = True
                break
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as exc:
                if chunk and exc.pos >= len(buffer) - 1:
                    break  # the element continues in the next chunk
                if not chunk:
                    yield Problem(path, line, f"element {index + 1}: not valid JSON ({exc.msg}); the rest of the "
                                              "array cannot be read")
                    return
                break
            line_of_element = line
            line += buffer.count("\n", position, end)
            position = end
            index += 1
            yield from _records_for(path, line_of_element, value, kinds)
        if not chunk and not ended:
            yield Problem(path, line, "the JSON array is cut short (no closing ])")
            return


def _records_for(path: Path, line: int, value: Any, kinds: Sequence[RecordKind]) -> Iterator[Record | Problem]:
    kind = classify(value, kinds)
    if kind is None:
        if isinstance(value, list):
            for element in value:
                yield from _records_for(path, line, element, kinds)
            return
        yield Problem(path, line, "not a post, status, API page or archive line stormwatch knows")
        return
    yield Record(path=path, line=line, kind=kind.name, body=value, retrieved_at=_retrieved_at(value))


def _retrieved_at(value: dict[str, Any]) -> str | None:
    stamp = value.get("__twarc") or value.get("__stormwatch")
    retrieved = stamp.get("retrieved_at") if isinstance(stamp, dict) else None
    return retrieved if isinstance(retrieved, str) else None


def _truncated(reader: Any) -> bool:
    """Whether the stream behind a reader ended early (a cut-short gzip)."""
    stream = getattr(reader, "raw", None)
    return isinstance(stream, _GzipStream) and stream.damage is not None


def _short(exc: Exception) -> str:
    return str(exc).split("\n")[0][:200]
