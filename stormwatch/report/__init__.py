"""The post-event report: a folder with report.html, report.md, summary.json, CSV files and PNG charts.

`write_report` reads every figure through `stormwatch.metrics` (never SQL of its own), names accounts by the
campaign's naming policy (`stormwatch.privacy`), and writes the folder under a temporary name first, so a folder with
the final name is always a complete report. posts.csv, the one file that grows with the campaign, is
written by a process of its own (export.py) while the figures and charts are made.

Nothing that pairs a label with the account it hides is ever written under the reports folder: the pseudonyms
live in the database and in memory (the posts.csv workers get theirs through a pipe). A report that was killed
(kill -9, the OOM killer, a closed laptop) leaves its hidden working folder `.<name>.<pid>.partial`; every report
removes those of earlier runs when it starts. A running report holds a lock on its own working folder, so two
reports writing at once never remove each other's.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StormwatchError
from ..privacy.naming import NamingPolicy
from ..store.files import process_running

if TYPE_CHECKING:
    from ..config import CampaignConfig, Config
    from ..metrics import Window
    from ..store import Store

__all__ = ["folder_name", "write_report"]

DATA_FILES = ("report.html", "report.md", "summary.json", "posts.csv", "accounts.csv", "volume.csv")
PARTIAL_SUFFIX = ".partial"
# A working folder whose lock is free is a dead report's, unless its owner is between making it and locking it:
# one younger than this, whose process runs, is left alone.
_UNLOCKED_GRACE = 60.0


def write_report(store: Store, config: Config, campaign: CampaignConfig, window: Window, *,
                 out_dir: Path | None = None, names: str | None = None, now: datetime | None = None) -> Path:
    """Write the report folder `<out_dir or config.report.out_dir>/<campaign>-<UTC stamp>/` and return it; a
    window without posts is a StormwatchError saying so in one line (when the storm starts), and nothing is written."""
    # Imported here, not with the package: the posts.csv workers use report.tables without paying for matplotlib.
    from .charts import write_charts
    from .content import empty_window, gather, name_accounts
    from .document import build_document
    from .export import cancel_export, finish_export, start_export
    from .html import render_html
    from .markdown import render_markdown
    from .tables import summary_json, write_accounts_csv, write_summary_json, write_volume_csv

    generated_at = (now or datetime.now(UTC)).astimezone(UTC)
    empty = empty_window(store, campaign, window, generated_at)
    if empty is not None:
        raise StormwatchError(empty)
    policy = NamingPolicy.for_campaign(campaign, names or config.report.names, config.report.pseudonymize_below)
    parent = Path(out_dir) if out_dir is not None else config.report.out_dir
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StormwatchError(f"{parent}: cannot make the reports folder: {exc.strerror or exc}") from None
    remove_stale_partials(parent)
    final = _free_folder(parent, folder_name(campaign.name, generated_at))
    # Written under a hidden working name, renamed when complete: an interrupted report leaves no lookalike.
    # The pid in the name keeps two reports started in the same second apart.
    working = parent / f".{final.name}.{os.getpid()}{PARTIAL_SUFFIX}"
    shutil.rmtree(working, ignore_errors=True)
    export = None
    lock: int | None = None
    try:
        working.mkdir(mode=0o700)  # the folder can name participants: readable by its owner only
        lock = _lock(working)
        # Pseudonyms are assigned here, once, before the posts export starts reading them.
        namer, contributors = name_accounts(store, campaign, window, policy)
        authors = namer.named_authors((a.uid, a.handle, a.followers) for a in contributors)
        export = start_export(store, config.path, campaign.name, window, namer, authors, working / "posts.csv")
        content = gather(store, campaign, window, namer, contributors, generated_at=generated_at, config=config)
        write_accounts_csv(working / "accounts.csv", content.contributors, content.namer)
        write_volume_csv(working / "volume.csv", content)
        charts = write_charts(content, working)
        document = build_document(content, charts)
        (working / "report.html").write_text(render_html(document, working), encoding="utf-8")
        (working / "report.md").write_text(render_markdown(document), encoding="utf-8")
        finish_export(export)  # raises whatever stopped the export
        files = sorted([*DATA_FILES, *(chart.file for chart in charts)])
        write_summary_json(working / "summary.json", summary_json(content, files, generated_at))
        final = _rename_free(working, parent, final, folder_name(campaign.name, generated_at))
    except BaseException as exc:
        if export is not None:
            cancel_export(export)
        shutil.rmtree(working, ignore_errors=True)
        if lock is not None:
            os.close(lock)
        if isinstance(exc, OSError):  # a full disk, a quota, a folder that went away: one line, nothing left behind
            raise StormwatchError(f"{final}: cannot write the report: {exc.strerror or exc}; nothing was "
                                  "left behind") from None
        raise
    if lock is not None:
        os.close(lock)
    return final


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove the working folders (`.<name>[.<pid>].partial`) that reports which died left in `parent`; the
    ones removed.

    A folder is stale when no running report holds its lock (the kernel lets go of a killed process's locks)
    and either the process its name carries is gone or the folder is older than a minute (a pid used again).
    """
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX)):
            continue
        try:
            descriptor = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:  # not a folder (or a link to one), or gone already
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a report is writing it now
            except OSError:
                pass  # a file system without locks: the pid and the age decide
            if _owner_running(entry.name) and time.time() - os.fstat(descriptor).st_mtime < _UNLOCKED_GRACE:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            os.close(descriptor)
    return removed


def _owner_running(name: str) -> bool:
    """Whether the process a working folder's name carries (`.<name>.<pid>.partial`) still runs."""
    pid = name[:-len(PARTIAL_SUFFIX)].rpartition(".")[2]
    # A folder of an older version has no pid (and no lock): dead.
    return pid.isdigit() and process_running(int(pid))


def _lock(folder: Path) -> int:
    """Hold an exclusive lock on the folder (released when the process ends, however it ends): the descriptor."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise
    except OSError:
        pass  # no locks on this file system: the pid in the name protects the folder
    return descriptor


def _rename_free(working: Path, parent: Path, final: Path, name: str) -> Path:
    """Rename the finished working folder to `final`, or the next free name if another report took it meanwhile."""
    while True:
        try:
            working.rename(final)
            return final
        except OSError:
            if not final.exists():
                raise
            final = _free_folder(parent, name)


def folder_name(campaign: str, generated_at: datetime) -> str:
    """`<campaign>-<UTC stamp>`, e.g. `standwithissa-20210208T120000Z`."""
    return f"{campaign}-{generated_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _free_folder(parent: Path, name: str) -> Path:
    """`parent/name`, or `name-2`, `name-3`… when a report was already written in the same second."""
    candidate = parent / name
    suffix = 2
    while candidate.exists():
        candidate = parent / f"{name}-{suffix}"
        suffix += 1
    return candidate
