"""posts.csv, the one report file that grows with the campaign, written by a process of its own.

At a million posts the export is most of a report's work, and it is Python work (naming, rewriting,
CSV): a thread would share one core with the charts, a process gets the other core. It reads the same
database and names accounts by the same pseudonyms (assigned before it starts), so its file says what the
rest of the report says. The processes are workers (`stormwatch.workers`): each is
`python -m stormwatch.report.export '<json job>'` and sends back one message, the rows it wrote.

The pseudonym directory (labels beside the handles they hide) reaches the workers through their standard
input, never through a file: a report killed half-way must leave nothing in reports/ that undoes its labels.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .. import metrics
from ..config import load_config
from ..errors import StormwatchError
from ..metrics import Window
from ..privacy.naming import Namer, NamingPolicy
from ..store import Store
from ..times import iso_utc, parse_time
from ..workers import Worker, read_handover, serve
from .rows import iter_post_rows
from .tables import write_posts_csv

# Below this many posts one process writes the file: starting more costs more than it saves.
PARALLEL_FROM = 50_000


def export_posts(namer: Namer, authors: dict[str, tuple[str, bool, int]], store: Store, campaign: str, part: Window,
                 timezone: ZoneInfo, path: Path, header: bool = True) -> int:
    """Write the posts of `part` of the report's window to `path`, naming accounts through `namer`."""
    # Only a named author's post can show its id, so only theirs need the referenced post's author (none in a
    # public report, where every id shows).
    referencing = [uid for uid, (_, named, _) in authors.items() if named] if namer.policy.pseudonymized else []
    return write_posts_csv(path, iter_post_rows(store, campaign, part, referencing=referencing), namer, timezone,
                           authors, header=header)


@dataclass
class Export:
    """An export under way: one worker process per part of the window, each writing a part file."""

    path: Path
    workers: list[Worker]
    parts: list[Path]

    def remove_scratch(self) -> None:
        """Delete the part files."""
        for scratch in self.parts:
            scratch.unlink(missing_ok=True)


def start_export(store: Store, config_path: Path, campaign: str, window: Window, namer: Namer,
                 authors: dict[str, tuple[str, bool, int]], path: Path, workers: int | None = None) -> Export:
    """Start writing `path` in processes of their own (two at a million posts); `finish_export` waits.

    The processes name accounts exactly as `namer` does: how each contributor is shown (`authors`, from
    `Namer.named_authors`) and the directory for mentions in texts are handed over on each process's standard
    input (never written to disk).
    """
    workers = workers or (min(2, os.cpu_count() or 1) if metrics.campaign_size(store, campaign) >= PARALLEL_FROM
                          else 1)
    bounds = [window.since, *metrics.split_by_posts(store, campaign, window, workers), window.until]
    naming = {"namer": namer.state(), "authors": authors}
    export = Export(path, [], [])
    for index, (since, until) in enumerate(itertools.pairwise(bounds)):
        part_path = path.with_name(f".{path.name}.part{index}")
        job = {"database": str(store.path), "config": str(config_path), "campaign": campaign,
               "platform": window.platform, "part": [iso_utc(since), iso_utc(until)], "header": index == 0,
               "names": namer.policy.mode, "path": str(part_path)}
        export.parts.append(part_path)
        export.workers.append(Worker.start("stormwatch.report.export", job, task="writing posts.csv",
                                           handover=naming))
    return export


def finish_export(export: Export) -> int:
    """Wait for every part and join them into the file; the row count, or a StormwatchError saying what failed
    (`writing posts.csv failed: <the worker's last word>`)."""
    rows = 0
    failure: StormwatchError | None = None
    for worker in export.workers:
        with worker:
            try:
                rows += int(worker.result())
            except StormwatchError as exc:
                failure = failure or exc
    try:
        if failure is not None:
            raise failure
        with export.path.open("wb") as joined:
            for part in export.parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, joined, 1 << 20)
    finally:
        export.remove_scratch()
    return rows


def cancel_export(export: Export) -> None:
    """Stop an export that is no longer wanted and remove its scratch files."""
    for worker in export.workers:
        worker.cancel()
    export.remove_scratch()


def write_part(job: dict[str, Any]) -> Iterator[int]:
    """The export worker: write the job's part of posts.csv and send back how many rows it wrote."""
    config = load_config(job["config"])
    campaign = config.campaign(job["campaign"])
    part = Window(parse_time(job["part"][0]), parse_time(job["part"][1]), job["platform"])
    policy = NamingPolicy.for_campaign(campaign, job["names"], config.report.pseudonymize_below)
    naming = read_handover()  # from the report process that started this one, on standard input
    with Store.open_for_reading(Path(job["database"])) as store:
        namer = Namer.from_state(policy, naming["namer"])
        rows = export_posts(namer, naming["authors"], store, campaign.name, part, campaign.timezone,
                            Path(job["path"]), header=job["header"])
    yield rows


if __name__ == "__main__":
    serve(write_part)
