"""Text as storm intelligence reads and shows it: the words of a post without its hashtags, mentions and links,
and stranger-written text made safe to show on one line.

`shown` is how intel's output shows text written by strangers: on one line, through normalize/text.py (the one home
of control-character stripping), cut to a length.
"""

from __future__ import annotations

import re

from ..normalize.text import one_line

# Links (with or without a scheme), mentions in every platform's form (`@name`, `@name.bsky.social`,
# `@user@instance`) and hashtags (`#tag`, the full-width `＃tag`).
# (Case spelled out rather than re.IGNORECASE: twice as fast, and the audit cleans every post of a window.)
_LINK = re.compile(r"(?:[hH][tT][tT][pP][sS]?://|[wW][wW][wW]\.)\S+")
_MENTION = re.compile(r"@\w+(?:[.\-]\w+)*(?:@\w+(?:[.\-]\w+)*)?")
_HASHTAG = re.compile(r"[#＃]\w+")
_NOT_WORD = re.compile(r"\W+")


def clean_words(text: str) -> list[str]:
    """A post's words, case-folded, with its links, mentions and hashtags taken out (punctuation and emoji go too)."""
    return clean_text(text).split()


def clean_text(text: str) -> str:
    """`clean_words` joined by single spaces, made in one pass (the copy-paste audit cleans every post of a window)."""
    return _NOT_WORD.sub(" ", _HASHTAG.sub(" ", _MENTION.sub(" ", _LINK.sub(" ", text)))).strip().casefold()


def shown(text: str, limit: int | None = None) -> str:
    """Stranger-written text on one line (control characters and bidi overrides gone, runs of space one space);
    cut to `limit` characters with an ellipsis."""
    flat = one_line(text)
    if limit is not None and len(flat) > limit:
        return flat[:limit - 1].rstrip() + "…"
    return flat
