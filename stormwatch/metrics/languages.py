"""The languages a storm reached: supporters' posts and people per language, as each platform tags a post.

X gives a post's `lang`, Mastodon its `language`, Bluesky the record's `langs` (the store keeps the first); the
store keeps each in `posts.lang`. Codes are BCP 47 tags written by the platform or the poster's app: `pt-BR` and
`pt` are one language here (the primary subtag, lower-cased), a deprecated code is read as its successor (X's
`iw`, `in`), and what is not a language (X's `und`, `zxx` and its `qxx` codes for posts of only hashtags, links
or mentions) counts as "not stated", never as a language reached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config import CampaignConfig
from ..store import Store
from .windows import Window, window_where

# ISO 639 codes that name no language (undetermined, no linguistic content, several, not coded).
NOT_LANGUAGES = frozenset({"und", "zxx", "mul", "mis"})
# ISO 639-1 codes withdrawn in favour of others, still written by some platforms (X writes `iw` and `in`).
RENAMED = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}
# A primary language subtag (2–3 letters) or an X private code (`qme`, `qht`, `qam`, `qct`, `qst`).
_PRIMARY = re.compile(r"[a-z]{2,3}")
_X_PRIVATE = re.compile(r"q[a-z]{2}")


@dataclass(frozen=True)
class LanguageCount:
    """Posts and distinct contributors in one language (`code` None: no language stated)."""

    code: str | None
    posts: int
    contributors: int

    def to_json(self) -> dict[str, Any]:
        """`{language, posts, contributors}` (language null: not stated)."""
        return {"language": self.code, "posts": self.posts, "contributors": self.contributors}


def language_code(tag: str | None) -> str | None:
    """The language a platform's tag names (`pt-BR` -> `pt`, `iw` -> `he`), or None when it names none."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].casefold()
    if not _PRIMARY.fullmatch(primary) or primary in NOT_LANGUAGES or _X_PRIVATE.fullmatch(primary):
        return None
    return RENAMED.get(primary, primary)


def languages(store: Store, campaign: CampaignConfig, window: Window) -> list[LanguageCount]:
    """Supporters' posts and people per language in the window, most posts first; "not stated" last.

    A campaign post that also carries a counter-hashtag is a hijack candidate, not a supporter's post: left out.
    """
    where, args = window_where(campaign.name, window)
    where += " AND c.hijack = 0"  # marked when stored (store/tallies.py), as every supporters' figure reads it
    posts: dict[str | None, int] = {}
    people: dict[str | None, set[str]] = {}
    # Grouped by the stored tag first (a handful of distinct values), then folded into languages here.
    for tag, author, count in store.conn.execute(
            f"SELECT p.lang, c.author_uid, count(*) FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid "
            f"WHERE {where} GROUP BY p.lang, c.author_uid", args):
        code = language_code(tag)
        posts[code] = posts.get(code, 0) + count
        if author is not None:
            people.setdefault(code, set()).add(author)
    found = [LanguageCount(code, count, len(people.get(code, ()))) for code, count in posts.items()]
    return sorted(found, key=lambda c: (c.code is None, -c.posts, c.code or ""))


def languages_reached(counts: list[LanguageCount] | tuple[LanguageCount, ...]) -> int:
    """How many languages the posts were written in (those stated)."""
    return sum(count.code is not None for count in counts)
