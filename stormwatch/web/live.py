"""The live view the page serves: a thread asks the refresh worker (refresher.py, a process of its own) for a new
rendering about once a second; requests only read the latest rendering, so fifty viewers cost the database what
one costs (the collector's writes go on), and the page's process does nothing but hand out bytes.

The figures come from the dashboard's snapshot (metrics/snapshot.py) on a read-only connection; a refresh that
fails (the database busy, a bug, the worker gone) keeps the last view and is logged, never shown as figures of
nothing; a worker that is gone is started again at the next refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import CampaignConfig, Config
from ..errors import StormwatchError
from ..workers import Worker
from .refresher import Job, Rendered

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
REFRESH_SECONDS = 1.0
WORKER = "stormwatch.web.refresher"


class RefreshBug(StormwatchError):
    """The refresh worker met something unexpected (its traceback is logged once)."""

    def __init__(self, line: str, trace: str) -> None:
        super().__init__(line)
        self.trace = trace


class LiveView:
    """The latest rendering of one campaign, refreshed by a thread of its own (and a worker process) while started."""

    def __init__(self, config: Config, campaign: CampaignConfig, *, names: str = "pseudonymized",
                 next_runs: Callable[[], dict[str, datetime | None]] | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.config = config
        self.campaign = campaign
        self.names = names
        self.next_runs = next_runs
        self.refresh_seconds = refresh_seconds
        self._latest: Rendered | None = None
        self._note: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: Worker | None = None
        self._answers: Iterator[Any] | None = None
        self.refreshes = 0
        self._bug_told = False
        self.refresh_seconds_taken: list[float] = []  # the last refreshes' durations (the benchmark reads them)
        # (version, wall time) of the last views published: the benchmark times their delivery to event streams
        self.published: list[tuple[str, float]] = []
        self._listeners: list[Callable[[], None]] = []

    def start(self) -> None:
        """Start the refresh worker, render once (so the first request has a page; its error, such as no database,
        is raised here) and refresh from then on."""
        try:
            self.refresh()
        except BaseException:
            self._close_worker()
            raise
        self._thread = threading.Thread(target=self._run, name="stormwatch-web-refresh", daemon=True)
        self._thread.start()

    def access_note(self) -> str | None:
        """What the way the database could be opened limits, if anything (see refresher.Renderer.access_note)."""
        return self._note

    def stop(self) -> None:
        """Stop refreshing and end the worker."""
        self._stop.set()
        if self._worker is not None:
            self._worker.end_requests()  # a refresh under way is answered, then the worker ends
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close_worker()

    def latest(self) -> Rendered:
        """The newest rendering (there is always one once started)."""
        if self._latest is None:
            raise StormwatchError("the live page is not started")
        return self._latest

    def on_new_view(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the refresh thread; it must be quick) each time a view is published."""
        self._listeners.append(listener)

    def refresh(self) -> None:
        """Ask the worker for a new rendering and publish it (the refresh thread calls this about once a second)."""
        started = time.perf_counter()
        answer = self._ask(self.next_runs() if self.next_runs else None)
        if answer[0] == "error":
            raise StormwatchError(answer[1])
        if answer[0] == "bug":
            raise RefreshBug(answer[1], answer[2])
        rendered: Rendered = answer[1]
        self._note = answer[2]
        changed = self._latest is None or self._latest.version != rendered.version
        self._latest = rendered  # one reference swapped: requests read either the old view or the new
        self.refreshes += 1
        self.refresh_seconds_taken = [*self.refresh_seconds_taken[-99:], time.perf_counter() - started]
        if changed:
            self.published = [*self.published[-199:], (rendered.version, time.time())]
            for listener in self._listeners:  # the event streams send it now, not at their next look
                listener()

    def _ask(self, next_runs: dict[str, datetime | None] | None) -> tuple[Any, ...]:
        """One answer of the worker (started first if there is none, or it is gone)."""
        if self._worker is None or self._answers is None:
            self._worker = Worker.start(WORKER, {}, task="the live page's refresh", requests=True,
                                        handover=Job(self.config, self.campaign, self.names))
            self._answers = self._worker.messages()
        try:
            self._worker.send(next_runs)
            answer: tuple[Any, ...] = next(self._answers)
        except (StormwatchError, StopIteration) as exc:  # the worker is gone: the next refresh starts another
            self._close_worker()
            raise StormwatchError(str(exc) or "the live page's refresh worker ended") from None
        return answer

    def _close_worker(self) -> None:
        worker, self._worker, self._answers = self._worker, None, None
        if worker is not None:
            worker.end_requests()
            worker.close()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except RefreshBug as exc:  # a bug must not end the page's updates: logged (traceback once), tried again
                log.error("live page: figures not refreshed: unexpected %s%s", exc,
                          "" if self._bug_told else f"\n{exc.trace}")
                self._bug_told = True
            except StormwatchError as exc:  # the database busy or gone a moment: the last view stays
                if not self._stop.is_set():
                    log.warning("live page: figures not refreshed: %s", exc)
