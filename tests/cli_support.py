"""`stormwatch` commands run in this process through click's CliRunner (parsing, one-line errors, short commands):
the same answer as `python -m stormwatch` (exit code, stdout, stderr) without a second Python starting up.

A command sets up logging and, for `collect`, SIGINT/SIGTERM handlers as a process would; both are put back
afterwards, so the next test logs and stops as pytest set up. A few end-to-end tests still start a process
(marked slow): kill -9, SIGTERM, the demo.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from stormwatch.cli import main


@dataclass(frozen=True)
class Ran:
    """What a command left: as subprocess.CompletedProcess names it."""

    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str | Path, env: Mapping[str, str | None] | None = None, cwd: Path | None = None) -> Ran:
    """Run `stormwatch ARGS` in this process; `env` overrides variables (None unsets one), `cwd` is the folder."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stops = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
            result = CliRunner().invoke(main, [str(a) for a in args], env=env, prog_name="stormwatch")
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        for number, stop in stops.items():
            if stop is not None:  # None: a handler not set from Python, which a command cannot have replaced
                signal.signal(number, stop)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug, not an answer: its traceback, as the process would print it
    return Ran(result.exit_code, result.stdout, result.stderr)
