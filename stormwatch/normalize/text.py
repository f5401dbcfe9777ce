"""Text written by strangers, made harmless: the one home of `strip_controls`, used on the way in and on the way out.

Post texts, names, handles and tags come from anyone, including the campaign's opponents. The normalizers
clean every such string before it is stored, and every output (dashboard, Markdown, HTML, CSV, chart labels)
cleans it again, for rows stored by older releases or imported from elsewhere. What is removed:

- C0 and C1 control characters and DEL: an ESC sequence would clear the screen, move the cursor or plant an
  OSC 8 link in a terminal; NUL goes nowhere at all. Line breaks survive as "\\n" (`\\r\\n`, `\\r`, NEL and
  the Unicode line and paragraph separators become "\\n"; a tab becomes a space): layouts decide what a
  line break means.
- Bidirectional *overrides and isolates* (U+202A–U+202E, U+2066–U+2069) are stripped, not isolated: they
  reorder what a terminal or an editor shows (the "Trojan Source" trick), and Arabic or Hebrew text reads
  correctly without them through the Unicode bidi algorithm. The plain direction marks (U+200E, U+200F,
  U+061C) reorder nothing beyond themselves and stay, as do emoji joiners and every other character.
- Lone surrogates (a JSON `\\udc00` escape with no partner) cannot be encoded as UTF-8, so SQLite and every
  file writer would fail on them later: each becomes U+FFFD.

`visible_form` is different: not a cleaner but what a reader *sees*, for recognizing mentions and links (the
report's naming rules). Invisible characters inside `@tiny\u200bvoice` hide a handle from a pattern, not from a
reader, nor from a screen that drops them.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

_LINE_BREAKS = frozenset("\n\r\x85\u2028\u2029")
# \r\n first, so a Windows line break becomes one "\n", not two.
_UNSAFE = re.compile("\r\n|[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# A cell starting with one of these needs a closer look (blank space may hide a formula start behind it).
_CLOSER_LOOK = _FORMULA_STARTS | frozenset(" \u3000")


# Characters a reader does not see: every format character (Cf: soft hyphen, zero-width space, non-joiner and joiner,
# word joiner, BOM, bidi controls, tags), the other default-ignorable code points (variation selectors, the
# combining grapheme joiner, Hangul fillers, Mongolian selectors), emoji skin-tone modifiers (the dashboard drops
# them) and control characters other than line breaks and tabs. A superset of what any output strips
# (`strip_controls`, the dashboard's `screen_text`), so that a handle hidden here is hidden on every screen.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891"
    "\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f"
    "\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U0001f3fb-\U0001f3ff\U000e0000-\U000e0fff]")


def visible_form(text: str) -> str:
    """`text` as a reader sees it, for recognizing names in it: HTML entities decoded (`@&#8203;name`), invisible
    characters removed (see `_INVISIBLE`), then NFKC (`＠ｎａｍｅ` is `@name`). Never an output of its own."""
    if text.isascii() and text.isprintable() and "&" not in text:
        return text  # nearly every word: nothing to decode, remove or normalize
    # Each step can make work for another (`&\u200b#8203;` is an entity once the space goes, `＆#8203;` once
    # NFKC has run, `&amp;#8203;` after one decoding): repeated until nothing changes, a few times at most.
    for _ in range(4):
        before = text
        text = _INVISIBLE.sub("", text)
        if "&" in text:
            text = html.unescape(text)
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        if text == before:
            break
    return text


def _replacement(match: re.Match[str]) -> str:
    char = match.group()
    if char in _LINE_BREAKS or char == "\r\n":
        return "\n"
    if char == "\t":
        return " "
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    return ""


def strip_controls(text: str) -> str:
    """`text` without control characters, bidi overrides or lone surrogates (see the module); line breaks as "\\n"."""
    # Nearly every text is printable: one C-speed check, and the same string back without a copy.
    if text.isprintable():
        return text
    return _UNSAFE.sub(_replacement, text)


def one_line(text: str) -> str:
    """`strip_controls`, then every run of whitespace (line breaks included) as one space: for one-line layouts."""
    return " ".join(strip_controls(text).split())


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
