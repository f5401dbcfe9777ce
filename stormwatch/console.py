"""Console and file logging (rich on the terminal), with every configured secret redacted and every control
character stripped (log lines quote what platforms and archives said: strangers' text), one line per record on the
terminal (a traceback goes to the log file only), a full disk told once per episode for the whole process
(`DISK_FULL`) and a bug's traceback once (`log_bug`); and the screen layout
helpers the dashboard draws with (strangers' text made one stable terminal line, figures laid out in columns,
parts of a screen kept or dropped whole by priority)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import sys
import threading
import traceback
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.logging import RichHandler
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

from .errors import is_disk_full
from .normalize.text import one_line, strip_controls

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Libraries that log request headers or chatter at DEBUG; they stay at INFO or above whatever -v says.
QUIET_LOGGERS = {"tweepy": logging.INFO, "urllib3": logging.INFO, "apscheduler": logging.ERROR,
                 "matplotlib": logging.WARNING, "PIL": logging.WARNING, "httpx": logging.WARNING,
                 "httpcore": logging.WARNING, "websockets": logging.INFO}


def secret_parts(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Everything to redact for these secret values: each value, and for a URL (an Apprise URL carries its
    service's credentials) also its user name, password, token host and path segments."""
    parts: list[str] = []
    for secret in secrets:
        parts.append(secret)
        _, found, rest = secret.partition("://")
        if not found:
            continue
        netloc, _, tail = rest.partition("/")
        userinfo, at, host = netloc.rpartition("@")
        if at:
            parts.extend(userinfo.split(":", 1))
        # A bare host (name or address, maybe a port) is no secret; anything else there is (tgram://<bot token>).
        if not re.match(r"^(localhost|[\w-]+(\.[\w-]+)+)(:\d+)?$", host):
            parts.append(host)
        parts.extend(re.split(r"[/?&=#]", tail))
    # Short pieces (`json`, `8080`, a path's `api`) would redact ordinary words; whole secrets are always kept.
    return tuple(p for p in dict.fromkeys(parts) if p and (p in secrets or len(p) >= 6))


class RedactSecrets(logging.Filter):
    """Replace secret values anywhere in a record's message or traceback with `[redacted]`, and strip control
    characters from both (an ESC sequence in a hostile server's error text must not reach the terminal)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secret_parts(secrets)

    def redact(self, text: str) -> str:
        """The text with every secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = strip_controls(self.redact(record.getMessage()))
        record.args = None
        if record.exc_info:
            record.exc_text = strip_controls(self.redact("".join(traceback.format_exception(*record.exc_info))))
            record.exc_info = None
        return True


def setup_logging(log_file: Path | None, *, secrets: tuple[str, ...] = (), verbose: bool = False,
                  quiet: bool = False, console: bool = True) -> None:
    """Log to the terminal (rich) and to `log_file`; secrets never reach either.

    `console=False` keeps the terminal for a full-screen view (the dashboard): the log file only.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    redact = RedactSecrets(secrets)
    console_level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    terminal: logging.Handler
    if sys.stderr.isatty():
        terminal = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False,
                               markup=False, log_time_format="%H:%M:%S")
        terminal.setFormatter(_OneLine("%(message)s", None, log_file=log_file is not None))
    else:  # a pipe or a file: plain lines, one per record, nothing wrapped
        terminal = logging.StreamHandler(sys.stderr)
        terminal.setFormatter(_OneLine("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S",
                                       log_file=log_file is not None))
    terminal.setLevel(console_level)
    terminal.addFilter(redact)
    if console:
        root.addHandler(terminal)
    if log_file is not None:
        try:
            file_handler = _PrivateLogFile(log_file, maxBytes=10_000_000, backupCount=3, encoding="utf-8")
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot write the log file %s: %s", log_file, exc)
        else:
            file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            file_handler.addFilter(redact)
            root.addHandler(file_handler)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(level, logging.getLogger(name).level))


class _OneLine(logging.Formatter):
    """A record as one terminal line: line breaks folded, a traceback left to the log file (1,043 multi-line
    tracebacks on a full disk drowned what mattered)."""

    def __init__(self, fmt: str, datefmt: str | None, *, log_file: bool) -> None:
        super().__init__(fmt, datefmt)
        self.log_file = log_file

    def format(self, record: logging.LogRecord) -> str:
        exc_text, exc_info = record.exc_text, record.exc_info
        record.exc_text, record.exc_info = None, None  # restored: the log file's handler still writes it
        try:
            text = one_line(super().format(record))
        finally:
            record.exc_text, record.exc_info = exc_text, exc_info
        if exc_text or exc_info:
            text += " (its traceback is in the log file)" if self.log_file else " (its traceback left out)"
        return text


class DiskFullNotice:
    """Says "disk full" once per episode for the whole process, with what to do; every part of stormwatch that
    meets a full disk (the live feeds, scheduled runs, profile lookups, alerts) tells it here and logs its own
    failure in one line. The episode ends when a write succeeds on a disk with room again."""

    ROOM_BYTES = 1_000_000  # free space that ends an episode (a write into space SQLite had already is no sign)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._told = False

    def tell(self, error: BaseException, folder: Path) -> bool:
        """If `error` says the disk is full: log the advice unless this episode had it already; whether it did."""
        if not is_disk_full(error):
            return False
        with self._lock:
            told, self._told = self._told, True
        if not told:
            logging.getLogger("stormwatch").error(
                "disk full: free space on %s and stormwatch goes on (live posts are held and stored when it can "
                "write again; scheduled runs try again on their schedule)", folder.absolute())
        return True

    def wrote(self, folder: Path) -> None:
        """A write succeeded: if the disk has room again, the next full disk is told again."""
        if not self._told:
            return
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return
        if free >= self.ROOM_BYTES:
            with self._lock:
                self._told = False


DISK_FULL = DiskFullNotice()
_bugs_told: set[tuple[str, str]] = set()
_bugs_lock = threading.Lock()


def log_bug(logger: logging.Logger, what: str, error: BaseException) -> None:
    """An unexpected exception (a bug) in one line; its traceback the first time this kind of bug is met here."""
    key = (what, type(error).__name__)
    with _bugs_lock:
        first = key not in _bugs_told
        _bugs_told.add(key)
    logger.error("%s: unexpected %s: %s", what, type(error).__name__, one_line(str(error)),
                 exc_info=error if first else None)


class _PrivateLogFile(RotatingFileHandler):
    """The log file (and each one it rotates to) readable by its owner only: log lines name accounts.

    A record that cannot be written (the disk is full) is not told with logging's own multi-line traceback on
    stderr for each record, but in one line, once until the file can be written again."""

    _failing = False  # told already, until a record is written again
    _failed_now = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)  # calls `handleError` on a failure
        if not self._failed_now:
            self._failing = False

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed_now = True
        if self._failing:
            return
        self._failing = True
        error = sys.exc_info()[1]
        reason = one_line(str(error)) if error is not None else "unknown error"
        with contextlib.suppress(OSError, ValueError):  # stderr closed too: nothing left to tell
            sys.stderr.write(f"stormwatch: cannot write the log file {self.baseFilename}: {reason} "
                             "(lines are left out of it until it can be written again)\n")

    def _open(self) -> io.TextIOWrapper:
        from .store.files import open_private

        return os.fdopen(open_private(Path(self.baseFilename)), "a", encoding=self.encoding, errors=self.errors)


def is_terminal() -> bool:
    """Whether standard output is an interactive terminal."""
    return sys.stdout.isatty()


@contextmanager
def progress_bar(paths: list[Path]) -> Iterator[Callable[[Path, int], None]]:
    """A rich progress bar over the total size of some files; a no-op when not on a terminal."""
    sizes = {path: path.stat().st_size for path in paths if path.exists()}
    if not sys.stderr.isatty() or sum(sizes.values()) < 20_000_000:
        yield lambda path, done: None
        return
    done_before: dict[Path, int] = {}
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("importing", total=sum(sizes.values()))

        def advance(path: Path, done: int) -> None:
            done_before[path] = done
            progress.update(task, completed=sum(done_before.values()), description=f"importing {path.name}")

        yield advance


# --- laying a screen out ------------------------------------------------------------------------------

GAP = "   "  # between figures on a line
# Characters whose drawn width terminals disagree on (tmux draws 🕊️ in one cell, ✊🏽 in four, rich counts two):
# emoji variation selectors, skin-tone modifiers, zero-width joiners and tag characters. Dropped from the
# screen, the emoji stay (🕊, ✊, 👩⚕) and every terminal agrees with rich on where a line ends.
_UNSTABLE_WIDTH = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")
# Bidirectional controls and other invisible formatting that could reorder or hide what follows on a line.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def screen_text(text: str) -> str:
    """Text from strangers as one terminal line: `one_line` (no control characters, bidi overrides or line
    breaks), without emoji modifiers (whose width terminals disagree on) or other invisible formatting."""
    text = one_line(_BIDI_CONTROLS.sub("", _UNSTABLE_WIDTH.sub("", text)))
    if not text.isprintable():
        # Invisible formatting goes (the zero-width non-joiner stays: Persian needs it, and it never widens).
        text = "".join(c for c in text if c.isprintable() or c == "\u200c" or unicodedata.category(c) != "Cf")
    return text


@dataclass
class ScreenPart:
    """One part of a screen: where it goes, how much it matters, and how tall it must and may be."""

    order: int  # top to bottom
    drop: int  # 0: never dropped; otherwise dropped whole, highest first, when the screen is too small
    least: int  # rows it needs
    most: int  # rows it can use
    draw: Callable[[int], RenderableType]  # given the rows it gets


def fit_parts(parts: list[ScreenPart], height: int) -> list[tuple[ScreenPart, int]]:
    """The parts that fit in `height` rows (dropped whole, least important first) with the rows each gets, top
    to bottom; spare rows go to the parts that can grow, most important first, a row at a time."""
    kept = sorted(parts, key=lambda p: p.drop)
    while sum(p.least for p in kept) > height and kept and kept[-1].drop > 0:
        kept.pop()
    rows = {id(p): p.least for p in kept}
    spare = height - sum(rows.values())
    growing = [p for p in kept if p.most > p.least]
    while spare > 0 and growing:
        for part in list(growing):
            if spare <= 0:
                break
            rows[id(part)] += 1
            spare -= 1
            if rows[id(part)] >= part.most:
                growing.remove(part)
    return sorted(((p, rows[id(p)]) for p in kept), key=lambda item: item[0].order)


def text_part(order: int, drop: int, text: Text | None, console: Console, width: int) -> list[ScreenPart]:
    """A text as a part of the screen, as tall as it wraps to `width` (none for no text)."""
    if text is None:
        return []
    rows = len(text.wrap(console, width))
    return [ScreenPart(order, drop, rows, rows, lambda _rows: text)]


def first_that_fits(variants: Iterable[Text], width: int) -> Text:
    """The first of the variants (longest first) that fits in `width`; the last one cropped if none does."""
    last = Text()
    for variant in variants:
        last = variant
        if cell_len(variant.plain) <= width:
            return variant
    last.no_wrap, last.overflow = True, "crop"
    return last


def in_columns(cells: list[Text], width: int) -> list[Text]:
    """Cells laid out in as many aligned columns as fit in `width` (one per line at worst), never one cut."""
    sizes = [cell_len(cell.plain) for cell in cells]
    count, widths = 1, sizes[:1]
    for count in range(len(cells), 0, -1):
        widths = [max(sizes[i::count]) for i in range(count)]
        if sum(widths) + len(GAP) * (count - 1) <= width:
            break
    lines = []
    for row in range(0, len(cells), count):
        line = Text(no_wrap=True)
        for column, cell in enumerate(cells[row:row + count]):
            if column:
                line.append(GAP)
            line.append_text(cell)
            if column < count - 1 and row + column + 1 < len(cells):
                line.append(" " * (widths[column] - sizes[row + column]))
        lines.append(line)
    return lines


def packed(segments: list[Text], width: int, separator: str = GAP) -> list[Text]:
    """Segments packed onto as few lines as they fit in `width`, never one cut."""
    lines: list[Text] = []
    current: Text | None = None
    for segment in segments:
        if current is not None and cell_len(current.plain) + len(separator) + cell_len(segment.plain) <= width:
            current.append(separator)
            current.append_text(segment)
            continue
        current = Text(no_wrap=True)
        current.append_text(segment)
        lines.append(current)
    return lines
