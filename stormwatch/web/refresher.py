"""The live page's refresh worker: reads the dashboard's snapshot and renders the page and its feed, in a process of
its own (workers.py), one view per request of the page's process.

Why a process: reading a snapshot, rendering it and the copy-paste audit that fills beside it (a thread of its own,
minutes of Python at a million posts) are Python work that holds the interpreter's lock. In the process serving
the page, every request then waits for that lock at each of its reads and writes (up to 5 ms each, Python's
switch interval): 50 viewers asking at once waited hundreds of milliseconds. Here they cost the page nothing but
a core the system shares out, and the page's process only hands out bytes made here.

    python -m stormwatch.web.refresher '{}'   (started by LiveView; the config comes pickled on standard input)
"""

from __future__ import annotations

import hashlib
import json
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from .. import workers
from ..config import CampaignConfig, Config
from ..errors import StormwatchError
from ..metrics.snapshot import take_snapshot
from ..store import Store
from ..store.database import IMMUTABLE
from .page import view

HERE = Path(__file__).parent
LIST_SIZE = 10


@dataclass(frozen=True)
class Rendered:
    """One refresh: the whole page, the feed (JSON bytes) and a version that changes when what is shown does."""

    version: str
    page: bytes
    feed: bytes
    figures: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """What the worker renders: handed over once, pickled (a config may be one built in memory)."""

    config: Config
    campaign: CampaignConfig
    names: str


def templates() -> jinja2.Environment:
    """The page's templates, every value escaped unless the template says otherwise (it never does); the one value
    passed in already escaped is the live part of the page (`fragment`), itself rendered by the escaping template
    live.html. Read once: they are not looked at again for changes (that costs a file system call a render)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              auto_reload=False)


class Renderer:
    """Snapshot to page and feed, on its own read-only connection (opened at the first view)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        environment = templates()
        self._live = environment.get_template("live.html")
        self._page = environment.get_template("page.html")
        self._store: Store | None = None

    def render(self, next_runs: dict[str, datetime | None] | None) -> Rendered:
        """Read a snapshot and render it."""
        if self._store is None:
            self._store = Store.open_for_reading(self.job.config.storage.database, writable=False)
        snapshot = take_snapshot(self._store, self.job.config, self.job.campaign, list_size=LIST_SIZE,
                                 names=self.job.names, next_runs=next_runs)
        shown = view(snapshot)
        fragment = self._live.render(v=shown)
        version = hashlib.sha256(fragment.encode("utf-8")).hexdigest()[:16]
        # The live part is rendered (and escaped) once: the whole page wraps the same text, not a second rendering.
        page = self._page.render(v=shown, fragment=markupsafe.Markup(fragment))
        feed = json.dumps({"version": version, "updated": shown["updated"], "figures": shown["figures"],
                           "html": fragment}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return Rendered(version, page.encode("utf-8"), feed, shown["figures"])

    def access_note(self) -> str | None:
        """What the way the database could be opened limits, if anything: only an unchanging snapshot (the page
        would not see what the collector stores). Read-only is how the page always opens it: nothing to say."""
        if self._store is None or self._store.access != IMMUTABLE:
            return None
        return self._store.access_note()

    def close(self) -> None:
        """Close the connection."""
        if self._store is not None:
            self._store.close()
            self._store = None


def answers(_job: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """One answer per request (the scheduler's next runs, or None): ("view", Rendered, access note), ("error",
    line) for the database busy or gone a moment, ("bug", line, traceback) for anything else. Neither ends the
    worker: the page keeps its last view and asks again."""
    renderer = Renderer(workers.read_handover())
    try:
        for next_runs in workers.requests():
            try:
                rendered = renderer.render(next_runs)
            except StormwatchError as exc:
                yield ("error", str(exc))
            except Exception as exc:
                yield ("bug", f"{type(exc).__name__}: {exc}", traceback.format_exc())
            else:
                yield ("view", rendered, renderer.access_note())
    finally:
        renderer.close()


if __name__ == "__main__":
    # Ctrl-C reaches the whole terminal's process group: the page's process stops this worker (it ends its requests;
    # the kernel ends it if that process dies), so the signal is not this worker's to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from stormwatch.web import refresher  # what is pickled must name this module, not __main__

    workers.serve(refresher.answers)
