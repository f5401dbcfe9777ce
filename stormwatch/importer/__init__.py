"""`stormwatch import`: archive files read and normalized by a reader process (`reader`), stored by the writer
(`writer.import_archives`).

`import_archives` and `ImportReport` are loaded on first use: the reader process starts from this package
too (`python -m stormwatch.importer.reader`) and must not load the database code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .writer import ImportReport, import_archives

__all__ = ["ImportReport", "import_archives"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import writer

        return getattr(writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
