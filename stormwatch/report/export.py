"""posts.csv, the one report file that grows with the campaign, written by a process of its own.

At a million posts the export is most of a report's work, and it is Python work (naming, rewriting,
CSV): a thread would share one core with the charts, a process gets the other core. It reads the same
database and names accounts by the same pseudonyms (assigned before it starts), so its file says what the
rest of the report says. Run as `python -m stormwatch.report.export '<json job>'`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from .. import metrics
from ..config import CampaignConfig, load_config
from ..errors import StormwatchError
from ..metrics import Window
from ..store import Store
from ..times import iso_utc, parse_time
from .names import Namer, NamingPolicy
from .tables import write_posts_csv


def export_posts(store: Store, campaign: CampaignConfig, window: Window, policy: NamingPolicy,
                 timezone: ZoneInfo, path: Path) -> int:
    """Write the window's posts to `path` under the naming policy; returns the row count."""
    contributors = metrics.accounts(store, campaign.name, window)
    namer = Namer(store, campaign, policy, metrics.mentioned_accounts(store, campaign.name, window))
    namer.assign((a.uid, a.handle, a.followers) for a in contributors)
    authors = {a.uid: (a.handle, a.followers) for a in contributors}
    del contributors
    return write_posts_csv(path, metrics.iter_post_rows(store, campaign.name, window), namer, timezone, authors)


def start_export(database: Path, config_path: Path, campaign: str, window: Window, names: str,
                 path: Path) -> subprocess.Popen[bytes]:
    """Start the export in its own process; `finish_export` waits for it."""
    job = {"database": str(database), "config": str(config_path), "campaign": campaign,
           "since": iso_utc(window.since), "until": iso_utc(window.until), "platform": window.platform,
           "names": names, "path": str(path)}
    return subprocess.Popen([sys.executable, "-m", "stormwatch.report.export", json.dumps(job)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def finish_export(process: subprocess.Popen[bytes]) -> int:
    """Wait for the export; its row count, or a StormwatchError with its last line of output."""
    output, errors = process.communicate()
    if process.returncode != 0:
        lines = errors.decode(errors="replace").strip().splitlines() or ["no output"]
        raise StormwatchError(f"writing posts.csv failed: {lines[-1]}")
    return int(json.loads(output)["rows"])


def main() -> None:
    """The export process: read the job, write the file, print the row count as JSON."""
    job = json.loads(sys.argv[1])
    config = load_config(job["config"])
    campaign = config.campaign(job["campaign"])
    window = Window(parse_time(job["since"]), parse_time(job["until"]), job["platform"])
    policy = NamingPolicy.for_campaign(campaign, job["names"], config.report.pseudonymize_below)
    with Store.open(Path(job["database"]), create=False) as store:
        rows = export_posts(store, campaign, window, policy, campaign.timezone, Path(job["path"]))
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    try:
        main()
    except StormwatchError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
