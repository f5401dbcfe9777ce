"""Writing the raw archive: every API page as received, one per line, gzip JSONL (twarc2's line format for X)."""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import __version__
from ..errors import StoreError
from ..models import RawPage
from ..store.files import open_private
from ..times import iso_utc

# Query parameters that can carry credentials on some platforms; never archived.
_SECRET_PARAMS = re.compile(r"(token|secret|password|key|auth)", re.IGNORECASE)
_SAFE_PARAMS = {"next_token", "pagination_token"}


def archive_path(root: Path, campaign: str, page: RawPage) -> Path:
    """Where a page goes: `<root>/<campaign>/<source>[-<endpoint>]-<UTC date>.jsonl.gz`."""
    day = page.retrieved_at.strftime("%Y-%m-%d")
    kind = "" if page.endpoint in ("search", "lookup", "timeline", "stream") else f"-{page.endpoint}"
    return root / campaign / f"{page.source}{kind}-{day}.jsonl.gz"


def archive_line(page: RawPage, campaign: str) -> dict[str, Any]:
    """The archived form of a page: the body untouched plus twarc2's `__twarc` provenance stamp."""
    stamp = {
        "url": redact_url(page.url),
        "version": f"stormwatch {__version__}",
        "retrieved_at": page.retrieved_at.isoformat(timespec="seconds"),
    }
    return {**page.body, "__twarc": stamp,
            "__stormwatch": {"campaign": campaign, "source": page.source, "endpoint": page.endpoint,
                             "query": page.query, "retrieved_at": iso_utc(page.retrieved_at)}}


def redact_url(url: str) -> str:
    """The URL with any credential-like query parameter removed."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k in _SAFE_PARAMS or not _SECRET_PARAMS.search(k)]
    return urlunsplit(parts._replace(query=urlencode(kept)))


class RawArchive:
    """Appends pages to the archive; each page is its own gzip member, so a crash loses at most one line."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def write(self, campaign: str, page: RawPage) -> Path:
        """Append one page; returns the file written."""
        return self.write_many(campaign, [page])

    def write_many(self, campaign: str, pages: list[RawPage]) -> Path:
        """Append pages (of one day: a stream's batch) as one gzip member; returns the file written."""
        path = archive_path(self.root, campaign, pages[0])
        line = "".join(json.dumps(archive_line(page, campaign), ensure_ascii=False, separators=(",", ":")) + "\n"
                       for page in pages)
        with self._lock:
            try:
                # Owner-only, folders and file: the archive holds every post and account as received.
                with os.fdopen(open_private(path), "ab") as raw, gzip.GzipFile(fileobj=raw, mode="ab",
                                                                                compresslevel=6) as handle:
                    handle.write(line.encode("utf-8"))
            except OSError as exc:
                raise StoreError(f"{path}: cannot write the raw archive: {exc}") from None
        return path
