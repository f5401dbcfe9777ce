"""Archives of raw pages: `writer` appends every page as received (gzip JSONL, twarc2 lines for X), `reader`
reads archive files of any supported format record by record."""

from __future__ import annotations

from .reader import Problem, Record, classify, read_archive
from .writer import RawArchive, archive_line, archive_path, redact_url

__all__ = ["Problem", "RawArchive", "Record", "archive_line", "archive_path", "classify", "read_archive",
           "redact_url"]
