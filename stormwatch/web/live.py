"""The live view the page serves: one thread reads a snapshot about once a second and renders it; requests only
read the latest rendering, so fifty viewers cost the database what one costs (the collector's writes go on).

The figures come from the dashboard's snapshot (metrics/snapshot.py) on a read-only connection; a refresh that
fails (the database busy, a bug) keeps the last view and is logged, never shown as figures of nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from ..config import CampaignConfig, Config
from ..errors import StormwatchError
from ..metrics.snapshot import take_snapshot
from ..store import Store
from ..store.database import IMMUTABLE
from .page import view

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
REFRESH_SECONDS = 1.0
LIST_SIZE = 10


@dataclass(frozen=True)
class Rendered:
    """One refresh: the whole page, the feed (JSON bytes) and a version that changes when what is shown does."""

    version: str
    page: bytes
    feed: bytes
    figures: dict[str, Any]


def templates() -> jinja2.Environment:
    """The page's templates, every value escaped unless the template says otherwise (it never does); the one value
    passed in already escaped is the live part of the page (`fragment`), itself rendered by the escaping template
    live.html. Read once: they are not looked at again for changes (that costs a file system call a render)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              auto_reload=False)


class LiveView:
    """The latest rendering of one campaign, refreshed by a thread of its own while started."""

    def __init__(self, config: Config, campaign: CampaignConfig, *, names: str = "pseudonymized",
                 next_runs: Callable[[], dict[str, datetime | None]] | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.config = config
        self.campaign = campaign
        self.names = names
        self.next_runs = next_runs
        self.refresh_seconds = refresh_seconds
        environment = templates()
        self._live_template = environment.get_template("live.html")
        self._page_template = environment.get_template("page.html")
        self._latest: Rendered | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self.refreshes = 0
        self._bug_told = False
        self.refresh_seconds_taken: list[float] = []  # the last refreshes' durations (the benchmark reads them)
        # (version, wall time) of the last views published: the benchmark times their delivery to event streams
        self.published: list[tuple[str, float]] = []
        self._listeners: list[Callable[[], None]] = []

    def start(self) -> None:
        """Open the database read-only, render once (so the first request has a page) and refresh from then on."""
        self._store = Store.open_for_reading(self.config.storage.database, writable=False)
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="stormwatch-web-refresh", daemon=True)
        self._thread.start()

    def access_note(self) -> str | None:
        """What the way the database could be opened limits, if anything: only an unchanging snapshot (the page
        would not see what the collector stores). Read-only is how the page always opens it: nothing to say."""
        if self._store is None or self._store.access != IMMUTABLE:
            return None
        return self._store.access_note()

    def stop(self) -> None:
        """Stop refreshing and close the database."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._store is not None:
            self._store.close()
            self._store = None

    def latest(self) -> Rendered:
        """The newest rendering (there is always one once started)."""
        if self._latest is None:
            raise StormwatchError("the live page is not started")
        return self._latest

    def on_new_view(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the refresh thread; it must be quick) each time a view is published."""
        self._listeners.append(listener)

    def refresh(self) -> None:
        """Read a snapshot and render it (the refresh thread calls this about once a second)."""
        assert self._store is not None
        started = time.perf_counter()
        snapshot = take_snapshot(self._store, self.config, self.campaign, list_size=LIST_SIZE, names=self.names,
                                 next_runs=self.next_runs() if self.next_runs else None)
        shown = view(snapshot)
        fragment = self._live_template.render(v=shown)
        version = hashlib.sha256(fragment.encode("utf-8")).hexdigest()[:16]
        # The live part is rendered (and escaped) once: the whole page wraps the same text, not a second rendering.
        page = self._page_template.render(v=shown, fragment=markupsafe.Markup(fragment))
        feed = json.dumps({"version": version, "updated": shown["updated"], "figures": shown["figures"],
                           "html": fragment}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        rendered = Rendered(version, page.encode("utf-8"), feed, shown["figures"])
        changed = self._latest is None or self._latest.version != version
        self._latest = rendered  # one reference swapped: requests read either the old view or the new
        self.refreshes += 1
        self.refresh_seconds_taken = [*self.refresh_seconds_taken[-99:], time.perf_counter() - started]
        if changed:
            self.published = [*self.published[-199:], (version, time.time())]
            for listener in self._listeners:  # the event streams send it now, not at their next look
                listener()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except StormwatchError as exc:  # the database busy or gone a moment: the last view stays
                log.warning("live page: figures not refreshed: %s", exc)
            except Exception as exc:  # a bug must not end the page's updates: logged (traceback once), tried again
                log.error("live page: figures not refreshed: unexpected %s: %s", type(exc).__name__, exc,
                          exc_info=exc if not self._bug_told else None)
                self._bug_told = True
