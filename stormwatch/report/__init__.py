"""The post-event report: a folder with report.html, report.md, summary.json, CSV files and PNG charts.

`write_report` reads every figure through `stormwatch.metrics` (never SQL of its own), names accounts by the
campaign's naming policy (names.py), and writes the folder under a temporary name first, so a folder with
the final name is always a complete report. posts.csv, the one file that grows with the campaign, is
written by a process of its own (export.py) while the figures and charts are made.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StormwatchError

if TYPE_CHECKING:
    from ..config import CampaignConfig, Config
    from ..metrics import Window
    from ..store import Store

__all__ = ["folder_name", "write_report"]

DATA_FILES = ("report.html", "report.md", "summary.json", "posts.csv", "accounts.csv", "volume.csv")


def write_report(store: Store, config: Config, campaign: CampaignConfig, window: Window, *,
                 out_dir: Path | None = None, names: str | None = None, now: datetime | None = None) -> Path:
    """Write the report folder `<out_dir or config.report.out_dir>/<campaign>-<UTC stamp>/` and return it."""
    # Imported here, not with the package: the dashboard and the posts.csv workers use report.names and
    # report.tables without paying for matplotlib.
    from .charts import write_charts
    from .content import gather, name_accounts
    from .document import build_document
    from .export import cancel_export, finish_export, start_export
    from .html import render_html
    from .markdown import render_markdown
    from .names import NamingPolicy
    from .tables import summary_json, write_accounts_csv, write_summary_json, write_volume_csv

    generated_at = (now or datetime.now(UTC)).astimezone(UTC)
    policy = NamingPolicy.for_campaign(campaign, names or config.report.names, config.report.pseudonymize_below)
    parent = Path(out_dir) if out_dir is not None else config.report.out_dir
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StormwatchError(f"{parent}: cannot make the reports folder: {exc.strerror or exc}") from None
    final = _free_folder(parent, folder_name(campaign.name, generated_at))
    # Written under a hidden working name, renamed when complete: an interrupted report leaves no lookalike.
    working = parent / f".{final.name}.partial"
    shutil.rmtree(working, ignore_errors=True)
    export = None
    try:
        working.mkdir(mode=0o700)  # the folder can name participants: readable by its owner only
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
        working.rename(final)
    except BaseException as exc:
        if export is not None:
            cancel_export(export)
        shutil.rmtree(working, ignore_errors=True)
        if isinstance(exc, OSError):  # a full disk, a quota, a folder that went away: one line, nothing left behind
            raise StormwatchError(f"{final}: cannot write the report: {exc.strerror or exc}; nothing was "
                                  "left behind") from None
        raise
    return final


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
