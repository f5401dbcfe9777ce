"""Console and file logging (rich on the terminal), with every configured secret redacted and every control
character stripped (log lines quote what platforms and archives said: strangers' text)."""

from __future__ import annotations

import io
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from .normalize.text import strip_controls

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Libraries that log request headers or chatter at DEBUG; they stay at INFO or above whatever -v says.
QUIET_LOGGERS = {"tweepy": logging.INFO, "urllib3": logging.INFO, "apscheduler": logging.ERROR,
                 "matplotlib": logging.WARNING, "PIL": logging.WARNING, "httpx": logging.WARNING,
                 "httpcore": logging.WARNING, "websockets": logging.INFO}


class RedactSecrets(logging.Filter):
    """Replace secret values anywhere in a record's message or traceback with `[redacted]`, and strip control
    characters from both (an ESC sequence in a hostile server's error text must not reach the terminal)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

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
    else:  # a pipe or a file: plain lines, one per record, nothing wrapped
        terminal = logging.StreamHandler(sys.stderr)
        terminal.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
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


class _PrivateLogFile(RotatingFileHandler):
    """The log file (and each one it rotates to) readable by its owner only: log lines name accounts."""

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
