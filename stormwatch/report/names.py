"""Who a report names: the naming policy, stable pseudonyms, and post texts with hidden mentions and links.

Participant safety comes first here. In pseudonymized mode an account is named only when it is one of the
campaign's own accounts or targets, or has at least `threshold` followers; every other account is shown as its
stable `participant-xxxx` label, and its display name is never written. Labels are assigned before the report
reads anything, by one store call for every account it may show (`Namer.for_report`); afterwards a Namer only
reads, and an account that somehow has no label is shown hidden, never named. Post texts are rewritten
default-deny: a mentioned handle stays only when it is known to be named, a known smaller account becomes its
label, and a handle we know nothing about becomes `@[hidden]`. Every way a platform writes a mention (`@`, `＠`,
`﹫`) or a link to an account or post (with or without a scheme or `www.`: `x.com/NAME`, `bsky.app/profile/NAME`,
`NAME.bsky.social`, `INSTANCE/@NAME`, `INSTANCE/users/NAME`, `at://…`) counts, as `platforms.py` lists them; a
link stays only when it names an account the report names, and is otherwise replaced whole by `[link]`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import CampaignConfig
from ..errors import StormwatchError
from ..platforms import PLATFORMS
from ..store import Store
from ..store.pseudonyms import LABEL_SHAPE
from .rows import KnownAccount

PUBLIC = "public"
PSEUDONYMIZED = "pseudonymized"
NAME_MODES = (PUBLIC, PSEUDONYMIZED)
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
_LEADING_WORD = re.compile(r"\w+")
_GROUP_NAMES = re.compile(r"\(\?P<(handle|post|instance|remote)>")
# A word that may hold a mention or a link: an at-sign, a slash, or a bare Bluesky handle (`name.bsky.social`).
_MAY_NAME = re.compile(r"[@\uff20\ufe6b/]|bsky\.social", re.IGNORECASE)
_WORD_CACHE_LIMIT = 200_000
# Reposts repeat their original's text word for word: rewritten texts are remembered, up to this many at a time.
_TEXT_CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class NamingPolicy:
    """Which accounts a report names: everyone (public) or only large and campaign accounts (pseudonymized)."""

    mode: str
    threshold: int
    always_named: frozenset[str]

    @classmethod
    def for_campaign(cls, campaign: CampaignConfig, mode: str, threshold: int) -> NamingPolicy:
        """The policy for a campaign: its own accounts and targets are always named."""
        if mode not in NAME_MODES:
            raise StormwatchError(f"report names: {mode!r} must be \"pseudonymized\" or \"public\"")
        if threshold < 0:
            raise StormwatchError(f"report pseudonymize_below: must not be negative, not {threshold}")
        handles = frozenset(h.casefold() for h in (*campaign.accounts, *campaign.targets))
        return cls(mode=mode, threshold=threshold, always_named=handles)

    @property
    def pseudonymized(self) -> bool:
        """Whether smaller accounts are hidden behind pseudonyms."""
        return self.mode == PSEUDONYMIZED

    def is_named(self, handle: str | None, followers: int | None) -> bool:
        """Whether an account appears under its own handle (unknown follower counts count as zero)."""
        if not self.pseudonymized:
            return True
        if handle and handle.casefold() in self.always_named:
            return True
        return (followers or 0) >= self.threshold

    def statement(self) -> str:
        """One plain sentence saying how the report names accounts."""
        if not self.pseudonymized:
            return "Names: public — every account is shown with its handle and display name."
        return (f"Names: pseudonymized — accounts with fewer than {self.threshold:,} followers are shown as a stable "
                f"label ({LABEL_SHAPE}) and their display names are left out, except the campaign's own accounts "
                "and the accounts it addresses; in post texts, mentions of such accounts show the label, mentions "
                f"of accounts unknown to this report show {HIDDEN_MENTION}, and links show {HIDDEN_LINK}.")


class Namer:
    """Labels accounts and rewrites post texts for one report under a naming policy, from labels assigned before.

    `known` are the accounts mentions may refer to; `labels` the pseudonyms assigned to accounts (uid -> label).
    """

    def __init__(self, policy: NamingPolicy, known: Iterable[KnownAccount] = (),
                 labels: Mapping[str, str] | None = None) -> None:
        self.policy = policy
        self._labels: dict[str, str] = dict(labels or {})
        self._shown: dict[str, tuple[str, bool]] = {}
        self._mentions: dict[str, dict[str, str]] = {}
        self._texts: dict[tuple[str, str], str] = {}
        self._words: dict[str, dict[str, str]] = {}  # per platform: a word of a text -> as the report shows it
        # False when some labels could not be stored (a read-only database): they hold for this report only.
        self.labels_stable = True
        # (platform, case-folded handle) -> the account mentions of it refer to.
        self._directory: dict[tuple[str, str], KnownAccount] = {}
        self._by_uid: dict[str, KnownAccount] = {}  # links can name Bluesky accounts by DID
        for account in known:
            key = (account.platform, account.handle.casefold())
            held = self._directory.get(key)
            # Two accounts once held the same handle: the smaller one decides, so nobody is named by mistake.
            if held is None or account.followers < held.followers:
                self._directory[key] = account
            self._by_uid[account.uid] = account

    @classmethod
    def for_report(cls, store: Store, campaign: CampaignConfig, policy: NamingPolicy,
                   shown: Iterable[tuple[str, str | None, int | None]], known: Iterable[KnownAccount]) -> Namer:
        """A Namer for one report: every account it may show that the policy hides gets its pseudonym now.

        `shown` are the (uid, handle, followers) of the accounts the report shows (the window's contributors),
        `known` the accounts its posts mention; their labels are assigned (or fetched) in one store call.
        """
        namer = cls(policy, known)
        if policy.pseudonymized:
            hidden = [uid for uid, handle, followers in shown if not policy.is_named(handle, followers)]
            hidden.extend(a.uid for a in namer._directory.values() if not policy.is_named(a.handle, a.followers))
            if hidden:
                namer._labels.update(store.assign_pseudonyms(campaign.name, hidden))
                namer.labels_stable = store.labels_not_stored == 0
        return namer

    def state(self) -> dict[str, Any]:
        """What another process needs to rewrite post texts exactly as this Namer does: the directory of
        mentioned accounts and their labels (authors are handed over named already, see `named_authors`)."""
        known = list(self._directory.values())
        return {"labels": {a.uid: self._labels[a.uid] for a in known if a.uid in self._labels}, "known": known}

    def named_authors(self, authors: Iterable[tuple[str, str | None, int | None]]) -> dict[str, tuple[str, bool, int]]:
        """uid -> (label, named, followers) for the given (uid, handle, followers): how exports show authors."""
        return {uid: (self.label(uid, handle, followers), self.is_named(handle, followers), followers or 0)
                for uid, handle, followers in authors}

    @classmethod
    def from_state(cls, policy: NamingPolicy, state: dict[str, Any]) -> Namer:
        """A Namer in another process that names accounts as the one whose `state()` this is."""
        return cls(policy, state["known"], state["labels"])

    def is_named(self, handle: str | None, followers: int | None) -> bool:
        """Whether an account appears under its own handle."""
        return self.policy.is_named(handle, followers)

    def label(self, uid: str | None, handle: str | None, followers: int | None) -> str:
        """The account as the report shows it: its handle, or its pseudonym."""
        if self.is_named(handle, followers):
            return handle or (uid or "unknown").split(":", 1)[-1]
        if uid is None:
            return HIDDEN_ACCOUNT
        # An account without a label was not among those the report read first (collected since): hidden.
        return self._labels.get(uid, HIDDEN_ACCOUNT)

    def author(self, uid: str | None, handle: str | None, followers: int | None) -> tuple[str, bool]:
        """(label, named) for a post's author, remembered per account (a million posts ask again and again)."""
        key = uid or f"?{handle}"
        shown = self._shown.get(key)
        if shown is None:
            shown = self._shown[key] = (self.label(uid, handle, followers), self.is_named(handle, followers))
        return shown

    def display_name(self, name: str | None, handle: str | None, followers: int | None) -> str | None:
        """The display name, only for named accounts."""
        return name if self.is_named(handle, followers) else None

    def text(self, text: str, platform: str) -> str:
        """A post text as the report may show it: mentions of hidden accounts and (pseudonymized) links replaced."""
        if not self.policy.pseudonymized or not text:
            return text
        key = (platform, text)
        rewritten = self._texts.get(key)
        if rewritten is not None:
            return rewritten
        if len(self._texts) >= _TEXT_CACHE_LIMIT:
            self._texts.clear()
        known = self._mentions.setdefault(platform, {})

        pattern, forms = _text_forms()

        def replace(match: re.Match[str]) -> str:
            index = int(match.lastgroup[1:])  # type: ignore[index]  # the alternative that matched: `f<index>`
            kind, form_platform = forms[index]
            if kind == "url":
                return HIDDEN_LINK
            handle = match[f"handle_{index}"]
            if kind == "address":
                return self._address(handle)
            if kind == "link":
                groups = match.groupdict()
                instance = groups.get(f"remote_{index}") or groups.get(f"instance_{index}")
                return match[0] if self._names_link(form_platform, handle, instance) else HIDDEN_LINK
            replacement = known.get(handle)
            if replacement is None:
                replacement = known[handle] = self._mention(handle, platform)
            return replacement

        # The full pattern is slow (twenty alternatives, each tried at every character), but no form spans a
        # space: it runs once per distinct space-separated word (words repeat across a campaign's posts), and
        # not at all on a text without an at-sign, a slash or a Bluesky domain. Within a word, the leftmost
        # match wins, so an `@name` inside a URL goes with the URL.
        if _MAY_NAME.search(text) is None:
            rewritten = text
        else:
            words = self._words.setdefault(platform, {})
            if len(words) >= _WORD_CACHE_LIMIT:
                words.clear()
            parts = text.split(" ")
            for index, word in enumerate(parts):
                done = words.get(word)
                if done is None:
                    done = words[word] = pattern.sub(replace, word) if _MAY_NAME.search(word) else word
                parts[index] = done
            rewritten = " ".join(parts)
        self._texts[key] = rewritten
        return rewritten

    def _names_link(self, platform: str, handle: str, instance: str | None) -> bool:
        """Whether a link to `handle` (at `instance`, on Mastodon) on `platform` names an account the report names."""
        address = f"{handle}@{instance}" if platform == "mastodon" and instance else handle
        folded = address.casefold()
        if folded in self.policy.always_named or handle.casefold() in self.policy.always_named:
            return True
        account = self._directory.get((platform, folded))
        if account is None and folded.startswith("did:"):
            account = self._by_uid.get(f"{platform}:{address}")
        return account is not None and self.is_named(account.handle, account.followers)

    def _address(self, address: str) -> str:
        """The replacement for an address without its leading `@`: kept when it is a named account's (Mastodon's
        `user@server`), that account's label when a hidden one's, else hidden whole (an e-mail address)."""
        plain = address.replace("\uff20", "@").replace("\ufe6b", "@")
        account = self._directory.get(("mastodon", plain.casefold()))
        if plain.casefold() in self.policy.always_named or (
                account is not None and self.is_named(account.handle, account.followers)):
            return address
        return self.label(account.uid, account.handle, account.followers) if account is not None else HIDDEN_ACCOUNT

    def _mention(self, handle: str, platform: str) -> str:
        """The replacement for one `@handle` in a post text."""
        account = self._directory.get((platform, handle.casefold()))
        tail = ""
        if account is None and handle.casefold() not in self.policy.always_named:
            # `@Issaamro.` or `@Issaamro-led`: the handle is the leading word; `@user@server` is one handle.
            lead = _LEADING_WORD.match(handle)
            rest = handle[lead.end():] if lead else ""
            if lead and rest and not rest.startswith("@"):
                handle, tail = lead.group(0), rest
                account = self._directory.get((platform, handle.casefold()))
        if handle.casefold() in self.policy.always_named:
            return f"@{handle}{tail}"
        if account is None:
            return HIDDEN_MENTION + tail
        if self.is_named(account.handle, account.followers):
            return f"@{handle}{tail}"
        return f"@{self.label(account.uid, account.handle, account.followers)}{tail}"


@functools.cache
def _text_forms() -> tuple[re.Pattern[str], tuple[tuple[str, str], ...]]:
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
