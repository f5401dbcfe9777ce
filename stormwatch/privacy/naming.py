"""Who an output names: the naming policy, stable pseudonyms, and post texts with hidden mentions and links.

Every output that shows accounts or post texts (the report, the dashboard, the live page, alerts, storm
intelligence) names them through this module; what a text can name a person by is in `hiding.py`.

Participant safety comes first here. In pseudonymized mode an account is named only when it is one of the
campaign's own accounts or targets, or has at least `threshold` followers; every other account is shown as its
stable `participant-xxxx` label, and its display name is never written. Labels are assigned before the report
reads anything, by one store call for every account it may show (`Namer.for_report`); afterwards a Namer only
reads, and an account that somehow has no label is shown hidden, never named. Post texts are rewritten
default-deny: a mentioned handle stays only when it is known to be named, a known smaller account becomes its
label, and a handle we know nothing about becomes `@[hidden]`. Every way a platform writes a mention (`@`, `＠`,
`﹫`) or a link to an account or post (with or without a scheme or `www.`: `x.com/NAME`, `bsky.app/profile/NAME`,
`NAME.bsky.social`, `INSTANCE/@NAME`, `INSTANCE/users/NAME`, `at://…`, X's front-ends) counts, as `platforms.py`
lists them; a link stays only when it names an account the report names, and is otherwise replaced whole by
`[link]`; a bare DID is a mention. Texts are read as a reader sees them (`visible_form`: invisible characters gone,
HTML entities decoded, NFKC), so `@\u200bname` is a mention. And the rule fails closed: a word that, so read, holds
the handle of an account the report hides, its local part (`name` of `name.bsky.social` or `name@server`) or its
DID, however it is wrapped, is hidden even when no form above recognized it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import CampaignConfig
from ..errors import StormwatchError
from ..store import Store
from ..store.pseudonyms import LABEL_SHAPE
from .hiding import (
    HIDDEN_ACCOUNT,
    HIDDEN_LINK,
    HIDDEN_MENTION,
    LEADING_WORD,
    MAY_NAME,
    RUN,
    WORD,
    hidden_keys,
    text_forms,
    visible_form,
)

PUBLIC = "public"
PSEUDONYMIZED = "pseudonymized"
NAME_MODES = (PUBLIC, PSEUDONYMIZED)
_WORD_CACHE_LIMIT = 200_000
# Reposts repeat their original's text word for word: rewritten texts are remembered, up to this many at a time.
_TEXT_CACHE_LIMIT = 20_000


@dataclass(frozen=True, slots=True)  # a report holds one per mentioned account: a hundred thousand at scale
class KnownAccount:
    """An account the accounts table knows, as the naming rules need it."""

    uid: str
    platform: str
    handle: str
    followers: int


def target_handles(campaign: CampaignConfig) -> tuple[str, ...]:
    """Every account the campaign addresses, on every platform, as mentions name them: X handles (`targets`),
    Mastodon addresses (`targets_mastodon`, `name@instance`) and Bluesky handles (`targets_bluesky`)."""
    return (*campaign.targets, *campaign.targets_mastodon, *campaign.targets_bluesky)


@dataclass(frozen=True)
class NamingPolicy:
    """Which accounts a report names: everyone (public) or only large and campaign accounts (pseudonymized)."""

    mode: str
    threshold: int
    always_named: frozenset[str]

    @classmethod
    def for_campaign(cls, campaign: CampaignConfig, mode: str, threshold: int) -> NamingPolicy:
        """The policy for a campaign: its own accounts and its targets on every platform are always named."""
        if mode not in NAME_MODES:
            raise StormwatchError(f"report names: {mode!r} must be \"pseudonymized\" or \"public\"")
        if threshold < 0:
            raise StormwatchError(f"report pseudonymize_below: must not be negative, not {threshold}")
        handles = frozenset(h.casefold() for h in (*campaign.accounts, *target_handles(campaign)))
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
                 labels: Mapping[str, str] | None = None, hidden: Iterable[str] = ()) -> None:
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
        # The fail-closed check: every hidden account's handle, its local part and its DID (`hidden` are the
        # handles of hidden authors, who need not be mentioned to be written into a path).
        self._hidden_authors = list(hidden)
        hidden_known = [a for a in self._by_uid.values() if not self.is_named(a.handle, a.followers)]
        self._keys, self._compound = hidden_keys(
            [*self._hidden_authors, *(a.handle for a in hidden_known),
             *(a.uid.split(":", 1)[1] for a in hidden_known if a.uid.startswith("bluesky:did:"))],
            policy.always_named)
        self._quick = self._keys | frozenset(self._compound)  # the first word of every key

    @classmethod
    def for_report(cls, store: Store, campaign: CampaignConfig, policy: NamingPolicy,
                   shown: Iterable[tuple[str, str | None, int | None]], known: Iterable[KnownAccount]) -> Namer:
        """A Namer for one report: every account it may show that the policy hides gets its pseudonym now.

        `shown` are the (uid, handle, followers) of the accounts the report shows (the window's contributors),
        `known` the accounts its posts mention; their labels are assigned (or fetched) in one store call.
        """
        shown = list(shown)
        namer = cls(policy, known, hidden=[handle for _, handle, followers in shown
                                           if handle and not policy.is_named(handle, followers)])
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
        return {"labels": {a.uid: self._labels[a.uid] for a in known if a.uid in self._labels}, "known": known,
                "hidden": self._hidden_authors}

    def named_authors(self, authors: Iterable[tuple[str, str | None, int | None]]) -> dict[str, tuple[str, bool, int]]:
        """uid -> (label, named, followers) for the given (uid, handle, followers): how exports show authors."""
        return {uid: (self.label(uid, handle, followers), self.is_named(handle, followers), followers or 0)
                for uid, handle, followers in authors}

    @classmethod
    def from_state(cls, policy: NamingPolicy, state: dict[str, Any]) -> Namer:
        """A Namer in another process that names accounts as the one whose `state()` this is."""
        return cls(policy, state["known"], state["labels"], state.get("hidden", ()))

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

    def display_name(self, name: str | None, handle: str | None, followers: int | None,
                     platform: str = "") -> str | None:
        """The display name, only for named accounts, and with the mentions and links in it named as in texts."""
        if not name or not self.is_named(handle, followers):
            return None
        return self.text(name, platform)

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
        # The full pattern is slow (twenty alternatives, each tried at every character), but no form spans a
        # space: each distinct space-separated word is judged once (words repeat across a campaign's posts), and
        # most words are judged at a glance (nothing in them can name anyone).
        words = self._words.setdefault(platform, {})
        if len(words) >= _WORD_CACHE_LIMIT:
            words.clear()
        parts = text.split(" ")
        changed = False
        for index, word in enumerate(parts):
            done = words.get(word)
            if done is None:
                done = words[word] = self._word(word, platform)
            if done is not word:
                parts[index] = done
                changed = True
        rewritten = " ".join(parts) if changed else text
        self._texts[key] = rewritten
        return rewritten

    def _word(self, word: str, platform: str) -> str:
        """One space-separated word of a text as the report shows it, judged as a reader sees it."""
        seen = visible_form(word)
        if MAY_NAME.search(seen) is None and (not self._quick or self._quick.isdisjoint(WORD.findall(
                seen.casefold()))):
            return word  # most words: nothing in them names anyone
        done = self._rewrite(seen, platform)
        if seen != word and done == seen:
            # Nothing to hide in what a reader sees: the word as written (its joiners, its full-width letters).
            return self._rewrite(word, platform)
        return done

    def _rewrite(self, word: str, platform: str) -> str:
        """`word` with every mention, link and address the patterns recognize named by the policy, and whatever
        else in it is a hidden handle hidden (`_hide_keys`). What a form recognized as naming a named account
        stays (`mastodon.social/@name` beside a small `name@kolektiva.social`), but not a hidden handle elsewhere
        in a kept link."""
        if MAY_NAME.search(word) is None:
            return self._hide_keys(word)
        known = self._mentions.setdefault(platform, {})
        pattern, forms = text_forms()
        pieces: list[str] = []
        done = 0
        # Within a word, the leftmost match wins, so an `@name` inside a URL goes with the URL.
        for match in pattern.finditer(word):
            index = int(match.lastgroup[1:])  # type: ignore[index]  # the alternative that matched: `f<index>`
            kind, form_platform = forms[index]
            handle = match[f"handle_{index}"] if kind != "url" else ""
            if kind == "url":
                replacement = HIDDEN_LINK
            elif kind == "address":
                replacement = self._address(handle)
            elif kind == "link":
                groups = match.groupdict()
                instance = groups.get(f"remote_{index}") or groups.get(f"instance_{index}")
                replacement = match[0] if self._names_link(form_platform, handle, instance) else HIDDEN_LINK
            elif kind == "did":
                replacement = self._did(handle)
            else:
                replacement = known.get(handle) or known.setdefault(handle, self._mention(handle, platform))
            if replacement == match[0]:
                # Kept for its handle; the rest of it (a path before the handle, a query after) is checked too.
                start, end = match.span(f"handle_{index}")
                rest = f"{word[match.start():start]} {word[end:match.end()]}"
                if self._hide_keys(rest) != rest:
                    replacement = HIDDEN_LINK
            pieces += [self._hide_keys(word[done:match.start()]), replacement]
            done = match.end()
        return "".join([*pieces, self._hide_keys(word[done:])])

    def _hide_keys(self, word: str) -> str:
        """The fail-closed rule: `word` (as a reader sees it, rewritten) with every hidden handle, local part or DID
        that is still in it hidden; a blank-free run holding one that has a slash in it (a link) goes whole."""
        if not self._quick:
            return word
        hits: list[tuple[int, int]] = []
        for run in RUN.finditer(word):
            token = run[0].casefold()
            if token not in self._quick:
                continue
            if token in self._keys:
                hits.append(run.span())
            for compound in self._compound.get(token, ()):
                end = run.start() + len(compound)
                after = word[end:end + 1]
                if word[run.start():end].casefold() == compound and not (after.isalnum() or after == "_"):
                    hits.append((run.start(), end))
        if not hits:
            return word
        pieces: list[str] = []
        done = 0
        for blank_free in re.finditer(r"\S+", word):
            inside = sorted(hit for hit in hits if blank_free.start() <= hit[0] < blank_free.end())
            if not inside:
                continue
            if "/" in blank_free[0]:
                pieces += [word[done:blank_free.start()], HIDDEN_LINK]
                done = blank_free.end()
                continue
            for start, end in inside:
                if start >= done:
                    pieces += [word[done:start], HIDDEN_ACCOUNT]
                    done = end
                elif end > done:
                    done = end  # overlapping hits (`name` and `name.bsky.social`): one replacement
        return "".join([*pieces, word[done:]])

    def _did(self, did: str) -> str:
        """The replacement for a bare DID: kept for a named account, its label for a hidden one, else hidden."""
        account = self._by_uid.get(f"bluesky:{did}") or self._by_uid.get(f"bluesky:{did.lower()}")
        if did.casefold() in self.policy.always_named or (
                account is not None and self.is_named(account.handle, account.followers)):
            return did
        return self.label(account.uid, account.handle, account.followers) if account is not None else HIDDEN_ACCOUNT

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
            lead = LEADING_WORD.match(handle)
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
