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

Cleaning for a particular output lives with participant safety (`stormwatch.privacy`): formula-safe CSV cells
there, and what a reader sees of a text (`privacy.hiding.visible_form`) for recognizing mentions and links.
"""

from __future__ import annotations

import re

_LINE_BREAKS = frozenset("\n\r\x85\u2028\u2029")
# \r\n first, so a Windows line break becomes one "\n", not two.
_UNSAFE = re.compile("\r\n|[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")



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
