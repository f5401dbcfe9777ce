"""The report's data files: posts.csv (streamed), accounts.csv, volume.csv and summary.json.

Every account and post text goes through the report's Namer, so the files name exactly whom the HTML names.
CSV files are UTF-8 with a byte-order mark (spreadsheet programs then read Arabic and other scripts
correctly). Every row of every file goes through one writer (`SafeCsvWriter`) that makes each text cell,
whatever its column, safe to open: control characters stripped, and a leading apostrophe on a cell that a
spreadsheet would run as a formula. No column can be forgotten.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..metrics import AccountStat
from ..privacy.cleaning import safe_row
from ..privacy.naming import Namer
from ..times import iso_utc, parse_time
from .content import ReportContent, local_iso
from .rows import PostRowTuple

CSV_ENCODING = "utf-8-sig"
POSTS_HEADER = ("created_at_utc", "created_at_local", "platform", "kind", "author", "followers", "likes", "reposts",
                "replies", "quotes", "impressions", "engagement", "tags", "text", "url", "id")
ACCOUNTS_HEADER = ("account", "named", "platform", "followers", "posts", "engagement_received", "name")
# Local-time strings are cached per UTC minute; posts stream in time order, so the cache is emptied now and then.
_LOCAL_CACHE_LIMIT = 10_000


class SafeCsvWriter:
    """A csv writer whose every row is made safe to open in a spreadsheet (`safe_row`): the only way rows are
    written to the report's CSV files."""

    def __init__(self, handle: Any) -> None:
        self._writerow = csv.writer(handle).writerow

    def writerow(self, row: Iterable[object]) -> None:
        """Write one row, each text cell made safe."""
        self._writerow(safe_row(row))


class LocalTimes:
    """ISO local times for UTC timestamps, fast for millions of rows (one zone lookup per minute)."""

    def __init__(self, timezone: ZoneInfo) -> None:
        self.timezone = timezone
        self._minutes: dict[str, tuple[str, str]] = {}

    def __call__(self, created_at: str) -> str:
        """`2021-02-07T16:00:05.000Z` as `2021-02-07T18:00:05+02:00` in the zone."""
        # Zone offsets change on whole minutes, so the minute's local prefix and offset serve every second in it.
        if len(created_at) < 19 or created_at[10] != "T" or created_at[16] != ":":
            return local_iso(parse_time(created_at), self.timezone)
        minute = created_at[:16]
        cached = self._minutes.get(minute)
        if cached is None:
            if len(self._minutes) >= _LOCAL_CACHE_LIMIT:
                self._minutes.clear()
            local = parse_time(minute + ":00Z").astimezone(self.timezone).isoformat(timespec="seconds")
            cached = self._minutes[minute] = (local[:16], local[19:])
        return f"{cached[0]}{created_at[16:19]}{cached[1]}"


def write_posts_csv(path: Path, posts: Iterable[PostRowTuple], namer: Namer, timezone: ZoneInfo,
                    authors: dict[str, tuple[str, bool, int]], *, header: bool = True) -> int:
    """Write one row per post (streamed, never held in memory); returns the number of rows.

    `authors` maps an author's uid to how the report shows it, (label, named, followers), for every
    contributor of the window (`Namer.named_authors`). A post that references another (repost, quote, reply) keeps
    its id and URL only when that post is known and its author named: fail closed. Without `header` the file is a
    later part of a split export (no byte-order mark, no header row).
    """
    local_time = LocalTimes(timezone)
    rewrite = namer.text
    is_named = namer.is_named
    no_author = (*namer.author(None, None, 0), 0)  # posts whose author the platform did not name
    count = 0
    # The byte-order mark by hand: the utf-8-sig codec encodes every write in Python, plain utf-8 in C.
    with path.open("w", encoding="utf-8", newline="", buffering=1 << 20) as handle:
        writer = SafeCsvWriter(handle)
        if header:
            handle.write("\ufeff")
            writer.writerow(POSTS_HEADER)
        write = writer.writerow
        # A million rows: plain tuple unpacking and inlined checks, not attribute lookups and helper calls.
        for (uid, platform, created_at, kind, author_uid, text, url, _lang, likes, reposts, replies, quotes,
             impressions, engagement, tags, ref_handle, ref_followers) in posts:
            label, named, followers = authors.get(author_uid, no_author) if author_uid else no_author
            text = rewrite(text, platform)
            # A post's id or URL leads straight to its author, and a repost's, quote's or reply's to the post it
            # references too: only named authors referencing a named account's post (or nothing) get them.
            if named and (kind == "original" or is_named(ref_handle, ref_followers)):
                native_id = uid.split(":", 1)[-1]
                url = url or ""
            else:
                native_id = url = ""
            if kind == "repost":  # the original's counters: left empty so that no column adds them up twice
                write((created_at, local_time(created_at), platform, kind, label, followers, "", "", "", "", "",
                       engagement, tags, text, url, native_id))
            else:
                write((created_at, local_time(created_at), platform, kind, label, followers, likes, reposts,
                       replies, quotes, "" if impressions is None else impressions, engagement, tags, text, url,
                       native_id))
            count += 1
    return count


def write_accounts_csv(path: Path, contributors: Iterable[AccountStat], namer: Namer) -> int:
    """Write one row per contributor, most posts first; names only for named accounts. Returns the row count."""
    count = 0
    with path.open("w", encoding=CSV_ENCODING, newline="") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(ACCOUNTS_HEADER)
        for account in contributors:
            named = namer.is_named(account.handle, account.followers)
            writer.writerow((namer.label(account.uid, account.handle, account.followers),
                             "yes" if named else "no", account.platform, account.followers, account.posts,
                             account.engagement,
                             # A named account's name can carry a small account's handle or link: named as in texts.
                             namer.display_name(account.name, account.handle, account.followers, account.platform)
                             or ""))
            count += 1
    return count


def write_volume_csv(path: Path, content: ReportContent) -> int:
    """Write one row per bucket: posts per platform, totals, contributors, and each platform's own count."""
    tz = content.timezone
    platforms = content.platforms
    # Coverage buckets are keyed by start so a count lands on the bucket it describes.
    counted = {c.source: {b.start: b.counted for b in c.buckets} for c in content.coverage}
    header = ("bucket_start_utc", "bucket_start_local", *(f"posts_{p}" for p in platforms), "posts_total",
              "new_contributors", "cumulative_posts", "cumulative_contributors",
              *(f"{source}_platform_count" for source in counted))
    with path.open("w", encoding=CSV_ENCODING, newline="") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(header)
        for bucket in content.volume.buckets:
            counts = [counted[source].get(bucket.start) for source in counted]
            writer.writerow((iso_utc(bucket.start), local_iso(bucket.start, tz),
                             *(bucket.by_platform.get(p, 0) for p in platforms), bucket.posts,
                             bucket.new_contributors, bucket.cumulative_posts, bucket.cumulative_contributors,
                             *("" if n is None else n for n in counts)))
    return len(content.volume.buckets)


def summary_json(content: ReportContent, files: list[str], generated_at: datetime) -> dict[str, Any]:
    """`summary --json`'s object for the window plus a `report` object saying how the report was made."""
    return {
        **content.summary.to_json(),
        **(content.intel.to_json() if content.intel is not None else {}),
        # Written before the window ended: the figures are the storm so far (`report.generated_at`).
        "interim": content.interim,
        "report": {
            "names": content.policy.mode,
            "pseudonymize_below": content.policy.threshold,
            "labels_stable": content.namer.labels_stable,
            "generated_at": iso_utc(generated_at),
            "bucket_seconds": content.bucket_seconds,
            "timezone": content.timezone_name,
            "generator": f"stormwatch {content.version}",
            "files": files,
        },
    }


def write_summary_json(path: Path, data: dict[str, Any]) -> None:
    """Write the summary object as indented UTF-8 JSON."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
