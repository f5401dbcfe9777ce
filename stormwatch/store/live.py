"""The state of each live feed (storing, or failing since when and why), kept in a small file beside the database.

A live feed fails to store for the very reasons the database cannot record it: another process holds the write
lock, or the disk is full. So its state is not a row but the file `<database>-live-<source>` (owner-only), read
by `status`, the dashboard and the alerts. The file has a fixed size and is rewritten in place: once made it
needs no new disk blocks, so a full disk can still be told of. A state written by a process that has ended says
nothing about the feed any more and is not read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..normalize.text import one_line
from ..times import iso_utc, parse_optional_time, parse_time
from .files import private_file, process_running

STATE_BYTES = 4096
ERROR_CHARS = 1000  # a longer error is cut: the state must fit its fixed-size file


@dataclass(frozen=True)
class LiveFeedState:
    """Where one process's live feed of one source stands (storm clock)."""

    source: str
    updated_at: datetime
    failing_since: datetime | None = None  # None: the feed stores what it receives
    error: str | None = None  # the last failure, one clean line
    held: int = 0  # events received and waiting to be stored
    pid: int = 0

    @property
    def failing(self) -> bool:
        """Whether the feed is down (nothing it receives is stored)."""
        return self.failing_since is not None


def live_state_path(database: Path, source: str) -> Path:
    """The file holding `source`'s live feed state beside `database`."""
    return database.with_name(f"{database.name}-live-{source}")


def write_live_state(database: Path, state: LiveFeedState) -> None:
    """Record a live feed's state (OSError when even the fixed-size file cannot be made or written)."""
    path = live_state_path(database, state.source)
    error = one_line(state.error)[:ERROR_CHARS] if state.error else None
    body = json.dumps({"source": state.source, "updated_at": iso_utc(state.updated_at),
                       "failing_since": iso_utc(state.failing_since) if state.failing_since else None,
                       "error": error, "held": state.held, "pid": state.pid or os.getpid()},
                      ensure_ascii=True).encode()
    # Padded with spaces to the fixed size and written over the old state, never truncated: no block to allocate.
    data = body[:STATE_BYTES].ljust(STATE_BYTES, b" ")
    private_file(path)
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(descriptor, data, 0)
    finally:
        os.close(descriptor)


def read_live_state(database: Path, source: str) -> LiveFeedState | None:
    """The live feed state of `source` written by a process still running, if any."""
    try:
        raw = live_state_path(database, source).read_bytes()
        fields = json.loads(raw)
        state = LiveFeedState(source=str(fields["source"]), updated_at=parse_time(fields["updated_at"]),
                              failing_since=parse_optional_time(fields.get("failing_since")),
                              error=fields.get("error"), held=int(fields.get("held") or 0), pid=int(fields["pid"]))
    except (OSError, ValueError, KeyError, TypeError):  # none, or caught half-written: nothing to say
        return None
    return state if state.source == source and process_running(state.pid) else None
