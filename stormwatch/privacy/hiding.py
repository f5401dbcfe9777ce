"""What in a text can name a person, and how it is hidden: the forms of mentions and links, the fail-closed keys.

A pseudonymized output rewrites every text default-deny (see `naming.Namer.text`). This module holds what that
rewriting recognizes: every way a platform writes a mention (`@`, `＠`, `﹫`) or a link to an account or post, as
`platforms.py` lists them, any other web link, e-mail and fediverse addresses, bare DIDs; the keys the
fail-closed rule looks for (`hidden_keys`); and `visible_form`, a text as a reader sees it (invisible characters
inside `@tiny\u200bvoice` hide a handle from a pattern, not from a reader, nor from a screen that drops them).
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterable

from ..platforms import PLATFORMS
from ..store.pseudonyms import LABEL_PREFIX

HIDDEN_MENTION = "@[hidden]"
HIDDEN_LINK = "[link]"
# How an account is shown when it has no handle to show, or should be hidden and has no label.
HIDDEN_ACCOUNT = HIDDEN_MENTION.lstrip("@")

# Any other web link goes in pseudonymized texts: a short link can expand to `x.com/<handle>/status/...`.
_LINK = r"(?:https?://|www\.)\S+"
# The last resort for mentions: any at-sign before a word, even inside a word (`me@example.org`). \w (not just
# ASCII) so a handle in any script is caught: hiding a word too many is safe, naming a person is not.
_ANY_MENTION = r"[@\uff20\ufe6b](?P<handle>\w+(?:[.\-]\w+)*(?:@\w+(?:[.\-]\w+)*)?)"
# An e-mail address, or a fediverse address written without its leading `@` (`jane.doe@riseup.net`): the part
# before the at-sign names a person as surely as a handle does, so the address goes whole.
_ADDRESS = r"(?<![\w@\uff20\ufe6b.+\-])(?P<handle>[\w.+\-]*\w[@\uff20\ufe6b]\w[\w\-]*(?:\.[\w\-]+)+)"
LEADING_WORD = re.compile(r"\w+")
_GROUP_NAMES = re.compile(r"\(\?P<(handle|post|instance|remote)>")
# A word that may hold a mention or a link: an at-sign, a slash, or a bare Bluesky handle (`name.bsky.social`).
MAY_NAME = re.compile(r"[@\uff20\ufe6b/]|bsky\.social|did:", re.IGNORECASE)
# A Bluesky account named by its DID alone, outside any link (`did:plc:…`, `did:web:example.org`).
_BARE_DID = r"(?<![\w.@/:-])(?P<handle>did:[a-z0-9]+:[\w.:%-]*\w)"
# The words a fail-closed check compares with hidden handles (labels are words of their own, never compared).
RUN = re.compile(LABEL_PREFIX + r"\w+|\w+")
WORD = re.compile(r"\w+")
# Words of the report's own making that a handle must not hide (`[link]`, `@[hidden]`).
_MARKER_WORDS = frozenset({"hidden", "link"})
_LOCAL_PART_LEAST = 4  # characters


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


@functools.cache
def text_forms() -> tuple[re.Pattern[str], tuple[tuple[str, str], ...]]:
    """One pattern for everything a pseudonymized text hides, and what each of its alternatives is.

    Alternative `f<i>` is (kind, platform): `link` (a platform's post, profile and loose link forms: kept only
    when they name a named account), `url` (any other web link: always hidden), `address` (an e-mail or
    fediverse address without its leading at-sign: hidden whole), `mention` (the platforms' mention forms, then
    any at-sign before a word). Links run to the next blank, so a hidden one goes whole.
    Order matters where alternatives start at the same place: the more specific first.
    """
    forms: list[tuple[str, str, str]] = []
    for platform in PLATFORMS:
        forms.extend(("link", platform.name, p + r"\S*") for p in platform.handles.post_links
                     + platform.handles.profile_links)
    for platform in PLATFORMS:
        forms.extend(("link", platform.name, p + r"\S*") for p in platform.handles.loose_links)
    forms.append(("did", "bluesky", _BARE_DID))
    forms.append(("url", "", _LINK))
    forms.append(("address", "", _ADDRESS))
    # Mastodon's form first: `@user@server` is one handle, not `@user` and then `@server`.
    for platform in sorted(PLATFORMS, key=lambda p: p.name != "mastodon"):
        forms.extend(("mention", platform.name, p) for p in platform.handles.mentions)
    forms.append(("mention", "", _ANY_MENTION))
    alternatives = [f"(?P<f{index}>{_numbered_groups(pattern, index)})" for index, (_, _, pattern) in enumerate(forms)]
    return re.compile("|".join(alternatives), re.IGNORECASE), tuple((kind, name) for kind, name, _ in forms)


def _numbered_groups(pattern: str, index: int) -> str:
    """`pattern` with its named groups renamed `<name>_<index>` (one regular expression cannot name a group twice)."""
    return _GROUP_NAMES.sub(lambda found: f"(?P<{found[1]}_{index}>", pattern)


def hidden_keys(handles: Iterable[str], named: frozenset[str]) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
    """What the fail-closed rule looks for, case-folded: single words (`tinyvoice`, a DID's `plc` id), and keys of
    several words (`tiny-voice.bsky.social`, `jane.doe`) by their first word. Handles of accounts the policy
    always names are never looked for (a small Bluesky `issaamro.example` must not hide the campaign's `@Issaamro`)."""
    keys: set[str] = set()
    add = keys.add
    # A hundred thousand handles in a big report: plain string methods, regular expressions only where needed.
    for handle in handles:
        folded = visible_form(handle).casefold() if not handle.isascii() or "&" in handle else handle.lower()
        if folded[:1] in "@\uff20\ufe6b":
            folded = folded.lstrip("@\uff20\ufe6b")
        if folded.startswith("did:"):
            add(folded.split(":", 2)[-1])  # `did:plc:<id>`: the id alone names the account
            continue
        add(folded)
        # The local part alone (`name` of `name.bsky.social`, `name@server`), when it is more than a short word
        # (`me.example.org` must not hide every "me"; a whole handle is looked for however short).
        local = folded.partition("@")[0] if "@" in folded else folded.partition(".")[0]
        if len(local) >= _LOCAL_PART_LEAST:
            add(local)
    keys -= named | _MARKER_WORDS
    single: set[str] = set()
    compound: dict[str, list[str]] = {}
    for key in keys:
        if key.replace("_", "a").isalnum():  # one word (`\w+`)
            single.add(key)
        elif (first := WORD.match(key)) is not None:
            compound.setdefault(first[0], []).append(key)
    return frozenset(single), {first: tuple(found) for first, found in compound.items()}
