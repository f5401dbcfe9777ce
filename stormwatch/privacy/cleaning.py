"""Stranger-written text made safe for a spreadsheet: formula-safe CSV cells (OWASP's rule for CSV injection).

Every CSV the report writes (posts.csv, accounts.csv, volume.csv) goes through `safe_row`: a cell a
spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM(...)`, a full-width `＝`) is written as text.
Control characters are stripped first by `normalize.text.strip_controls`, the one home of that rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..normalize.text import strip_controls

_FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# A cell starting with one of these needs a closer look (blank space may hide a formula start behind it).
_CLOSER_LOOK = _FORMULA_STARTS | frozenset(" \u3000")


def is_formula_start(text: str) -> bool:
    """Whether a spreadsheet would run `text` as a formula: its first character (after any blank space, which some
    programs trim on import) is `=`, `+`, `-`, `@`, a tab or a line break, or a full-width `＝ ＋ － ＠`."""
    return text.lstrip(" \u3000")[:1] in _FORMULA_STARTS


def safe_cell(value: str | None) -> str:
    """A text cell every spreadsheet shows as text: controls stripped, a leading apostrophe before a formula start
    (OWASP's rule for CSV injection). None is an empty cell."""
    if not value:
        return ""
    value = strip_controls(value)
    return "'" + value if is_formula_start(value) else value


def safe_row(row: Iterable[object]) -> list[object]:
    """A CSV row with every text cell made safe by `safe_cell`, whatever its column; numbers stay numbers."""
    # posts.csv writes a million rows: printable cells that start harmlessly (nearly all) pass without a call.
    return [safe_cell(cell) if type(cell) is str and not (cell.isprintable() and cell[:1] not in _CLOSER_LOOK)
            else cell for cell in row]
