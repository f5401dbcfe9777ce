"""Reading archive files record by record: twarc2 JSONL (plain or .gz), saved API responses, post arrays.

Each file yields records (one API page, post or status each, with where it came from) or problems
(`FILE:LINE: reason`, or `FILE:LINE:[ITEM]: reason` for an element of an array) for what cannot be read; a
problem never stops the rest of the file. A broken line of JSONL, even the first, costs that line; a broken
element of a JSON array (bad syntax, invalid UTF-8, nesting too deep for the parser) costs that element. What a
record is comes from its content: the caller passes the kinds it knows (each platform's normalizer declares
its own, the source registry orders them), tried one after the other.

Whether a file is JSONL, one JSON array or one pretty-printed JSON document is decided from its first bytes and
lines, never by reading the whole file: JSON arrays are read element by element.

Memory stays flat whatever the file: a line (or an array's element, or a one-document file) longer than a limit
(`MAX_LINE`, `stormwatch import --max-line-mb`) is skipped as `FILE:LINE: line longer than 64 MB` without being
held, gzip is inflated a buffer at a time (a 1 MB `.gz` may hold a GiB), and runs of blank lines are skipped in
bulk. Only regular files are opened: a FIFO would block the import and a device never ends.
"""

from __future__ import annotations

import codecs
import io
import itertools
import json
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..normalize.common import RecordKind

# orjson parses archive lines about twice as fast as the standard library: it matters at a million posts.
_loads = orjson.loads
_DECODE_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError, RecursionError)
_CHUNK = 1 << 20
# A file whose first this many lines hold no whole JSON object is taken for one pretty-printed document.
_DECIDING_LINES = 20
# In a JSON array being scanned after an error: strings (which may hold brackets) and the structure characters.
# Possessive and unrolled: `(?:[^"\\]|\\.)*` kept about 100 bytes of backtracking state per character (a 64 MB
# string took 6 GB); this form keeps none.
_STRUCTURE = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)|[\[\]{},]', re.DOTALL)
# Where structure may change in an element too long to hold: a quote or a bracket, comma.
_STRUCTURE_CHARACTER = re.compile(r'["\[\]{},]')
# Bytes that are not UTF-8, as the decoder's surrogate escapes: they mark an element to skip.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# What may follow an array's element: blank space, then a `,`, the closing `]`, or (so far) nothing.
_VALUE_ENDS = re.compile(r"[ \t\r\n]*(?:[,\]]|\Z)")
# A line, an array's element or a one-document file longer than this (in bytes; `--max-line-mb`) is skipped
# without being held: one hostile line must not take gigabytes.
MAX_LINE = 64 << 20
_MB = 1 << 20
# Blank space between lines (and before a line's content), skipped in bulk: a GiB of newlines costs seconds.
_BLANK = re.compile(rb"[ \t\r\n\x0b\x0c]+")  # what bytes.isspace() takes for blank
# After this many blank lines in a row, the rest of the run is skipped a buffer at a time.
_BLANK_RUN = 16
# What a file that is not a regular file is, for the message (os.stat's mode tests; directories included).
_NOT_FILES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


@dataclass(frozen=True)
class Record:
    """One thing read from an archive: what it is (a `RecordKind` name), its JSON, where it came from and when
    it was fetched."""

    path: Path
    line: int
    kind: str
    body: Any
    retrieved_at: str | None
    item: int | None = None  # its index in the array that holds it (a JSON array file, or a line that is a list)

    def where(self) -> str:
        """`FILE:LINE` or `FILE:LINE:[ITEM]`: where to look for the record."""
        return f"{self.path}:{self.line}" + (f":[{self.item}]" if self.item is not None else "")


@dataclass(frozen=True)
class Problem:
    """A line (or an array's element) that could not be read; `str()` is `FILE:LINE: reason` (`FILE:LINE:[ITEM]:
    reason` for an array's element)."""

    path: Path
    line: int
    reason: str
    item: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" + (f":[{self.item}]" if self.item is not None else "")
        return f"{where}: {self.reason}"


def classify(body: Any, kinds: Sequence[RecordKind]) -> RecordKind | None:
    """What a JSON value from an archive is, by its content: the first of `kinds` it matches, or None."""
    if not isinstance(body, dict):
        return None
    for kind in kinds:
        try:
            if kind.matches(body):
                return kind
        except Exception:  # a matcher that trips over an odd value has not recognized it
            continue
    return None


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be imported before anything is read (`FILE: no such file`, `FILE: is a named pipe (FIFO),
    not a file: give an archive file`), or None for a regular file. Nothing is opened: a FIFO would block."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{path}: no such file"
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc})"
    for test, what in _NOT_FILES:
        if test(mode):
            return f"{path}: is {what}, not a file: give an archive file"
    return None if stat.S_ISREG(mode) else f"{path}: is not a regular file: give an archive file"


def mb(size: int) -> str:
    """A byte limit as the messages say it (`64 MB`)."""
    return f"{size / _MB:g} MB"


def read_archive(path: Path, kinds: Sequence[RecordKind], on_bytes: Callable[[int], None] | None = None,
                 max_line: int = MAX_LINE) -> Iterator[Record | Problem]:
    """Records and problems of one file, streamed (a JSON array is read element by element); a record is of
    the first of `kinds` its content matches. A line or element longer than `max_line` bytes is a problem.

    `on_bytes` is told how far into the file (compressed bytes) reading has got, now and then.
    """
    try:
        raw = _open_regular(path)
    except OSError as exc:
        yield Problem(path, 0, f"cannot open: {exc.strerror or exc}")
        return
    except ValueError as exc:  # not a regular file
        yield Problem(path, 0, str(exc))
        return
    with raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        gzipped = _GzipStream(raw) if compressed else None
        reader: Any = io.BufferedReader(gzipped, buffer_size=_CHUNK) if gzipped else raw
        first, blank_lines = _first_meaningful_byte(reader)
        if first == b"[":
            records = _array_records(path, reader, kinds, max_line, 1 + blank_lines)
        elif first:  # JSONL (its first line may be broken) or one pretty-printed document
            records = _line_records(path, _Lines(reader, max_line, 1 + blank_lines), kinds)
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
        elif not (gzipped and gzipped.damage):
            yield Problem(path, 0, "empty file")
        if gzipped is not None and gzipped.damage:
            yield Problem(path, last_line + 1, f"{gzipped.damage}; every complete line before this one was read")


def _open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file (ValueError saying what it is otherwise).

    Opened without blocking and checked on the open file, so a FIFO put in a file's place never hangs the import.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            what = next((what for test, what in _NOT_FILES if test(mode)), "not a regular file")
            raise ValueError(f"is {what}, not a file: give an archive file")
        os.set_blocking(descriptor, True)
        return open(descriptor, "rb", buffering=_CHUNK)  # closed by the caller's `with`
    except BaseException:
        os.close(descriptor)
        raise


class _GzipStream(io.RawIOBase):
    """Decompresses gzip (several members, as appended archives have) and stops cleanly where the data does.

    The standard GzipFile raises at a truncated end and loses the lines already decompressed in its
    buffer; here the end simply comes early and `damage` says why, so every complete line is kept. Each read
    inflates at most what its buffer holds: a megabyte of compressed newlines is a gigabyte inflated.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw = raw
        self.damage: str | None = None
        self._inflater = zlib.decompressobj(wbits=31)
        self._in_member = False
        self._input = b""  # compressed bytes read but not inflated yet
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._finished:
            if not self._input:
                self._input = self.raw.read(_CHUNK)
                if not self._input:
                    if self._in_member:
                        self.damage = "the compressed file is cut short"
                    self._finished = True
                    break
            try:
                data = self._inflate(len(buffer))
            except zlib.error as exc:
                self.damage = f"the compressed data is damaged ({exc})"
                self._finished = True
                break
            if data:
                buffer[:len(data)] = data
                return len(data)
        return 0

    def _inflate(self, most: int) -> bytes:
        self._in_member = True
        data = self._inflater.decompress(self._input, most)
        self._input = self._inflater.unconsumed_tail
        if self._inflater.eof:  # one member ended: what follows is the next member (or nothing)
            self._input = self._inflater.unused_data
            self._inflater = zlib.decompressobj(wbits=31)
            self._in_member = bool(self._input)
        return data


def _first_meaningful_byte(reader: Any) -> tuple[bytes, int]:
    """The first byte that is not blank space (or a BOM), with how many newlines came before it (read past)."""
    newlines = 0
    while True:
        chunk: bytes = reader.peek(_CHUNK)
        if not chunk:
            return b"", newlines
        stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
        newlines += chunk.count(b"\n", 0, len(chunk) - len(stripped))
        reader.read(len(chunk) - len(stripped))
        if stripped:
            return stripped[:1], newlines


class _Lines:
    """A stream's non-blank lines with their numbers: `(number, line)`, or `(number, None)` for a line longer than
    `limit` bytes, which is read past piece by piece and never held.

    Blank lines are skipped; after 16 in a row, the rest of the run is skipped a buffer at a time (newlines
    counted), so a GiB of empty lines costs seconds, not a billion turns of a loop.
    """

    def __init__(self, reader: Any, limit: int, line: int = 1) -> None:
        self.reader = reader
        self.limit = limit
        self.line = line  # the number of the line the stream is at

    def __iter__(self) -> Iterator[tuple[int, bytes | None]]:
        return self

    def __next__(self) -> tuple[int, bytes | None]:
        reader = self.reader
        blank_lines = 0
        while (piece := reader.readline(_CHUNK)).isspace():
            self.line += piece.endswith(b"\n")
            blank_lines += 1
            if blank_lines >= _BLANK_RUN:  # many: skip them in bulk (a look at the buffer copies it: not each line)
                self._skip_blank()
                blank_lines = 0
        if not piece:
            raise StopIteration
        pieces: list[bytes] = []
        size = 0
        too_long = False
        while piece:
            ended = piece.endswith(b"\n")
            size += len(piece)
            if not too_long and size - ended > self.limit:
                too_long, pieces = True, []  # the rest of the line is read and dropped
            if not too_long:
                pieces.append(piece)
            if ended:
                break
            piece = reader.readline(_CHUNK)
        number = self.line
        self.line += 1
        if too_long:
            return number, None
        return number, pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _skip_blank(self) -> None:
        """Read past blank space a buffer at a time, counting its newlines."""
        while buffered := self.reader.peek(1):
            if buffered.isspace():
                end = len(buffered)  # all blank: isspace is several times faster than the expression
            elif (blank := _BLANK.match(buffered)) is not None:
                end = blank.end()
            else:
                return
            self.line += buffered.count(b"\n", 0, end)
            self.reader.read(end)


def _line_records(path: Path, lines: _Lines, kinds: Sequence[RecordKind]) -> Iterator[Record | Problem]:
    """JSONL; or, when the file is one pretty-printed JSON document, that document.

    A file is JSONL when one of its first lines is a whole JSON object on its own (a pretty-printed document never
    has one): so broken first lines cost only themselves, and the decision reads a few lines, not the file.
    Otherwise the file is one document spread over lines (a saved API response) and is read whole, as the one
    record it is, if it is no longer than the line limit; if it is not valid JSON but holds lines that are, it was
    JSONL after all, read line by line.
    """
    head: list[tuple[int, bytes | None]] = []
    start = lines.line
    for numbered in lines:
        head.append(numbered)
        if numbered[1] is not None and _is_object_line(numbered[1]):
            yield from _numbered_lines(path, itertools.chain(head, lines), lines, kinds)
            return
        if len(head) >= _DECIDING_LINES:
            break
    size = sum(_size(line, lines.limit) for _, line in head)
    while size <= lines.limit and (following := next(lines, None)) is not None:  # the document, up to the limit
        head.append(following)
        size += _size(following[1], lines.limit)
    first = head[0][0] if head else start  # no line at all: only blank bytes Python counts (\x0b, \x0c)
    if size > lines.limit:
        if any(line is not None and _is_object_line(line) for _, line in head):
            yield from _numbered_lines(path, itertools.chain(head, lines), lines, kinds)
        else:
            yield Problem(path, first, f"not JSON lines, and longer than {mb(lines.limit)} as one document")
        return
    document = b"".join(line for _, line in head if line is not None)
    try:
        value = _loads(document)
    except _DECODE_ERRORS as exc:
        if any(line is not None and _is_object_line(line) for _, line in head):
            yield from _numbered_lines(path, head, lines, kinds)
        elif document.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] != b"{":
            yield Problem(path, first, "not JSON (expected an object per line or a JSON array)")
        else:
            yield Problem(path, first, f"not valid JSON ({_short(exc)})")
        return
    yield from _records_for(path, first, value, kinds)
def _size(line: bytes | None, limit: int) -> int:
    """A line's length, and more than the limit for a line already found too long."""
    return len(line) if line is not None else limit + 1


def _is_object_line(line: bytes) -> bool:
    """Whether a line is a whole, non-empty JSON object on its own."""
    try:
        value = _loads(line)
    except _DECODE_ERRORS:
        return False
    return isinstance(value, dict) and bool(value)


def _numbered_lines(path: Path, numbered: Iterable[tuple[int, bytes | None]], lines: _Lines,
                    kinds: Sequence[RecordKind]) -> Iterator[Record | Problem]:
    for number, line in numbered:
        if line is None:
            yield Problem(path, number, f"line longer than {mb(lines.limit)}")
            continue
        if not line.endswith(b"\n") and _truncated(lines.reader):
            return  # the last, incomplete line of a damaged file: read_archive reports it
        if not line.strip():
            continue
        try:
            value = _loads(line)
        except _DECODE_ERRORS as exc:
            yield Problem(path, number, f"not valid JSON ({_short(exc)})")
            continue
        yield from _records_for(path, number, value, kinds)


def _array_records(path: Path, reader: Any, kinds: Sequence[RecordKind], max_element: int,
                   line: int) -> Iterator[Record | Problem]:
    """A JSON array read element by element, so a big saved response never sits in memory whole.

    An element that cannot be read (bad syntax, bytes that are not UTF-8, nesting too deep) is reported and
    skipped: its end is found by scanning strings and brackets, and reading goes on after it.
    """
    decoder = json.JSONDecoder()
    # Bytes that are not UTF-8 become surrogate escapes, found in the element's text afterwards.
    text_of = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    buffer = ""
    position = 0
    started = False
    index = 0
    exhausted = False
    indent: str | None = None  # how elements start their lines (None: not each on a line of its own)
    while True:
        if not exhausted:
            # An element still open is read in growing pieces (up to 16 MB): parsed again a few times, not once a MB.
            chunk = reader.read(min(max(_CHUNK, len(buffer) - position), max_element, 16 * _CHUNK))
            exhausted = not chunk
            buffer = buffer[position:] + text_of.decode(chunk, final=exhausted)
            position = 0
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
                return
            if index == 0:
                line_start = buffer.rfind("\n", 0, position) + 1
                indent = buffer[line_start:position] if line_start and not buffer[line_start:position].strip() else None
            end: int | None
            try:
                value, end = decoder.raw_decode(buffer, position)
                reason = None
                if not _VALUE_ENDS.match(buffer, end):  # junk after the value (`0\x00`, `{…}x`): one bad element
                    value, end, reason = None, _element_end(buffer, end), "not valid JSON (extra data after the value)"
            except json.JSONDecodeError as exc:
                value, end, reason = None, _element_end(buffer, position), f"not valid JSON ({exc.msg})"
            except RecursionError:
                value, end, reason = None, _element_end(buffer, position), "nested too deeply to read"
            except ValueError:  # an integer of more than 4,300 digits: Python refuses to convert it
                value, end, reason = None, _element_end(buffer, position), "not valid JSON (a number too long)"
            if reason is not None:  # a broken element ends at the latest where the next one starts its line
                next_element = _next_element_line(buffer, position, indent)
                if next_element is not None and (end is None or next_element < end):
                    end = next_element
            if (end is None or end == len(buffer)) and not exhausted and len(buffer) - position < max_element:
                break  # the element (or a bare number) may go on in the next chunk
            if end is None and exhausted:  # it never ends: the file is cut short
                yield Problem(path, line, "the JSON array is cut short (this element has no end)", index)
                return
            if end is None:  # too long to hold: read past it, keeping only which brackets are open
                yield Problem(path, line, f"element longer than {mb(max_element)}", index)
                buffer, newlines, exhausted = _read_past(buffer[position:], reader, text_of)
                line += newlines
                position = 0
                index += 1
                continue
            line_of_element = line
            line += buffer.count("\n", position, end)
            if _NOT_UTF8.search(buffer, position, end):
                yield Problem(path, line_of_element, "not UTF-8 text", index)
            elif reason is not None:
                yield Problem(path, line_of_element, reason, index)
            else:
                yield from _records_for(path, line_of_element, value, kinds, index)
            position = end
            index += 1
        if exhausted:
            if started:
                yield Problem(path, line, "the JSON array is cut short (no closing ])")
            return


def _read_past(text: str, reader: Any, text_of: codecs.IncrementalDecoder) -> tuple[str, int, bool]:
    """What follows an array element too long to hold, read past chunk by chunk from its start in `text`: the text
    after it, how many newlines it held, and whether the file ended inside it."""
    scanner = _ElementScanner()
    newlines = 0
    while (end := scanner.end_in(text)) is None:
        newlines += text.count("\n")
        chunk = reader.read(_CHUNK)
        text = text_of.decode(chunk, final=not chunk)
        if not chunk:
            return text, newlines, True
    return text[end:], newlines + text.count("\n", 0, end), False


class _ElementScanner:
    """Finds where an array element ends in text given piece by piece, keeping only its open brackets and whether
    it is inside a string (the rules of `_element_end`)."""

    def __init__(self) -> None:
        self.openers: list[str] = []
        self.in_string = False
        self.backslashes = 0  # how many backslashes ended the last piece, inside a string
        self.begun = False  # whether the element's first bracket or string has been seen

    def end_in(self, text: str) -> int | None:
        """Where the element ends in this piece (None: it goes on)."""
        position = 0
        while True:
            if self.in_string:
                quote = text.find('"', position)
                if quote < 0:
                    tail = len(text) - len(text.rstrip("\\")) if text.endswith("\\") else 0
                    self.backslashes = (self.backslashes if tail == len(text) else 0) + tail
                    return None
                before = quote
                while before > position and text[before - 1] == "\\":
                    before -= 1
                escapes = quote - before + (self.backslashes if before == 0 else 0)
                self.backslashes = 0
                position = quote + 1
                if escapes % 2 == 0:
                    self.in_string = False
                    if not self.openers:
                        return position  # a bare string was the element
                continue
            found = _STRUCTURE_CHARACTER.search(text, position)
            if found is None:
                return None
            character, position = found.group(), found.end()
            if character == '"':
                self.in_string, self.begun = True, True
            elif character in "[{":
                self.openers.append("]" if character == "[" else "}")
                self.begun = True
            elif not self.openers:  # a `,` or `]` after a bare value ends it
                return found.start()
            elif character != ",":
                while self.openers and self.openers.pop() != character:
                    pass
                if not self.openers:
                    return position


def _element_end(buffer: str, start: int) -> int | None:
    """Where the array element starting at `start` ends (None when it goes on past the buffer): after the bracket
    that closes its first one, or at the `,` or `]` that ends a bare value. Brackets inside strings do not count;
    a closing bracket of the wrong kind also closes what it skips (`[1, 2}` ends at the `}`)."""
    openers: list[str] = []
    for token in _STRUCTURE.finditer(buffer, start):
        text = token.group()
        if text[0] == '"':
            if len(text) == 1 or text[-1] != '"' or (text.endswith('\\"') and _escaped_quote(text)):
                return None  # a string that goes on past the buffer
            continue
        if text in "[{":
            openers.append("]" if text == "[" else "}")
        elif not openers:  # a `,` or the array's own `]` after a bare value; a stray `}` is junk of its own
            return token.end() if text == "}" or token.start() == start else token.start()
        elif text != ",":
            while openers and openers.pop() != text:
                pass
            if not openers:
                return token.end()
    return None


def _next_element_line(buffer: str, start: int, indent: str | None) -> int | None:
    """Where the next element starts after a broken one, when elements start lines at the same indentation (as
    tools write arrays: one element a line, or pretty-printed): the next line that starts an object there."""
    if indent is None:
        return None
    found = buffer.find("\n" + indent + "{", start + 1)
    return found + 1 + len(indent) if found >= 0 else None


def _escaped_quote(text: str) -> bool:
    """Whether a string token's last quote is escaped (an odd run of backslashes before it)."""
    backslashes = len(text) - 1 - len(text[:-1].rstrip("\\"))
    return backslashes % 2 == 1


def _records_for(path: Path, line: int, value: Any, kinds: Sequence[RecordKind],
                 item: int | None = None) -> Iterator[Record | Problem]:
    kind = classify(value, kinds)
    if kind is None:
        if isinstance(value, list) and item is None:  # a line holding a list of records
            for index, element in enumerate(value):
                yield from _records_for(path, line, element, kinds, index)
            return
        yield Problem(path, line, "not a post, status, API page or archive line stormwatch knows", item)
        return
    yield Record(path=path, line=line, kind=kind.name, body=value, retrieved_at=_retrieved_at(value), item=item)


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
