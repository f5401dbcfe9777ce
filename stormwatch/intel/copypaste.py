"""The copy-paste audit: how many campaign posts say the same as another account's, which platforms may filter.

Platforms down-rank or hide identical posts sent by many accounts. A post is a **copy** when its words (links,
mentions and hashtags removed, case and whitespace folded: `text.clean_words`) are identical or near-identical to
those of a post by another account in the same window; reposts are left out (they are meant to be identical), and
texts of fewer than `MIN_WORDS` words are never copies (a bare hashtag is not a pasted text), though they count in
the share's denominator. Near-identical: Jaccard similarity of at least `NEAR` over word pairs (2-word shingles,
which one changed word moves by about two pairs out of twenty: a pasted text with a word changed or added stays
near, two people's own sentences on the same topic do not).

How (datasketch): identical texts are grouped by a hash first, so a toolkit pasted a thousand times is one text.
Each distinct text gets a MinHash signature (computed for a batch of texts at once with numpy, with datasketch's
legacy permutation scheme) and goes into a MinHashLSH index (threshold `NEAR`, tuned to miss few pairs); the LSH
candidates are then checked with the exact Jaccard of their word pairs, so a near pair is decided exactly.

`CopyAudit` keeps the signatures of what it has read, so reading the window again only reads and hashes the posts
that are new (the dashboard does it every second); `update` can be told to do at most so many posts per call.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from datasketch import MinHash, MinHashLSH

from ..store import Store
from ..store.sql import select_in_chunks
from .text import clean_words

NEAR = 0.8
MIN_WORDS = 3
NUM_PERM = 128
# LSH errs towards more candidates (checked exactly afterwards) rather than missed pairs.
LSH_WEIGHTS = (0.2, 0.8)
WARN_SHARE = 0.30  # the dashboard warns above this share of copies in the last 15 minutes
ADVICE = "vary the text: identical posts may be filtered"
TOP = 10
_BATCH = 512  # texts hashed per numpy pass (memory: shingles x NUM_PERM x 8 bytes)
_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
# Fixed permutations: signatures made in different processes or refreshes compare.
_RANDOM = np.random.RandomState(12)
_A = _RANDOM.randint(1, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)
_B = _RANDOM.randint(0, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)


@dataclass(frozen=True)
class RepeatedText:
    """A text several accounts posted (identical or near-identical versions): one version, posts and accounts."""

    text: str
    platform: str
    posts: int
    accounts: int

    def to_json(self) -> dict[str, object]:
        """`{text, posts, accounts}` as `summary --json` gives them."""
        return {"text": self.text, "posts": self.posts, "accounts": self.accounts}


@dataclass(frozen=True)
class CopyFigures:
    """Copies among a span's non-repost posts, and the texts repeated most."""

    since: datetime
    until: datetime
    posts: int
    copies: int
    top: tuple[RepeatedText, ...]
    complete: bool = True  # False while the audit has not read every post of the window yet

    @property
    def share(self) -> float:
        """Copies over non-repost posts (0 without posts)."""
        return self.copies / self.posts if self.posts else 0.0


@dataclass
class _Text:
    """One distinct cleaned text: its word pairs, a version as posted, who posted it, and its near neighbours."""

    shingles: frozenset[int]
    sample: str
    platform: str
    authors: Counter[str] = field(default_factory=Counter)
    near: set[bytes] = field(default_factory=set)


class CopyAudit:
    """The copies among one campaign's non-repost posts of a window, read incrementally."""

    def __init__(self, campaign: str, since: datetime, until: datetime) -> None:
        self.campaign = campaign
        self.since, self.until = since, until
        self._seen: set[str] = set()
        self._posts: list[tuple[int, str, bytes | None]] = []  # (ts, author, text key or None when too short)
        self._sorted = True
        self._texts: dict[bytes, _Text] = {}
        self._lsh = MinHashLSH(threshold=NEAR, num_perm=NUM_PERM, weights=LSH_WEIGHTS)
        self.complete = True

    @property
    def read(self) -> int:
        """How many posts the audit has read."""
        return len(self._seen)

    def update(self, store: Store, limit: int | None = None, expected: int | None = None) -> bool:
        """Read the window's posts not read yet, newest first, at most `limit` of them; True when all are read.

        `expected` is how many non-repost posts the window holds, when the caller knows (the running tallies do):
        equal to what was read, there is nothing to look for.
        """
        if expected is not None and expected == len(self._seen):
            self.complete = True
            return True
        uids = [row[0] for row in store.conn.execute(
            "SELECT post_uid FROM campaign_posts WHERE campaign = ? AND ts >= ? AND ts < ? AND kind != 'repost' "
            "ORDER BY ts DESC", (self.campaign, int(self.since.timestamp()), int(self.until.timestamp())))
            if row[0] not in self._seen]
        wanted = uids if limit is None else uids[:limit]
        rows = select_in_chunks(store.conn, "SELECT uid, author_uid, ts, text, platform FROM posts WHERE uid IN ({})",
                                [], wanted)
        self._add(rows)
        self.complete = len(wanted) == len(uids)
        return self.complete

    def _add(self, rows: Sequence[tuple[str, str | None, int, str | None, str]]) -> None:
        fresh: dict[bytes, tuple[list[str], str, str]] = {}
        authors: dict[bytes, Counter[str]] = {}
        for uid, author_uid, ts, text, platform in rows:
            self._seen.add(uid)
            author = author_uid or f"?{uid}"
            words = clean_words(text or "")
            if len(words) < MIN_WORDS:
                self._posts.append((ts, author, None))
                continue
            key = hashlib.blake2b(" ".join(words).encode(), digest_size=12).digest()
            self._posts.append((ts, author, key))
            held = self._texts.get(key)
            if held is not None:
                held.authors[author] += 1
            else:
                fresh.setdefault(key, (words, text or "", platform))
                authors.setdefault(key, Counter())[author] += 1
        self._sorted = False
        keys = list(fresh)
        for start in range(0, len(keys), _BATCH):
            self._index(keys[start:start + _BATCH], fresh, authors)

    def _index(self, keys: list[bytes], fresh: dict[bytes, tuple[list[str], str, str]],
               authors: dict[bytes, Counter[str]]) -> None:
        """Sign a batch of new texts, find their near neighbours among every text read, and index them."""
        shingles = [frozenset(zlib.crc32(f"{a} {b}".encode()) for a, b in itertools.pairwise(words))
                    for words, _, _ in (fresh[key] for key in keys)]
        for key, pairs, signature in zip(keys, shingles, _signatures(shingles), strict=True):
            _, sample, platform = fresh[key]
            text = _Text(pairs, sample, platform, authors[key])
            minhash = MinHash(num_perm=NUM_PERM, hashvalues=signature, permutations=(_A, _B), scheme="legacy")
            for other in self._lsh.query(minhash):
                neighbour = self._texts[other]
                if _jaccard(pairs, neighbour.shingles) >= NEAR:
                    text.near.add(other)
                    neighbour.near.add(key)
            self._texts[key] = text
            self._lsh.insert(key, minhash)

    def figures(self, since: datetime | None = None, until: datetime | None = None, top: int = TOP) -> CopyFigures:
        """Copies among the posts read with since <= time < until (default: the whole window)."""
        low = int((since or self.since).timestamp())
        high = int((until or self.until).timestamp())
        if not self._sorted:
            self._posts.sort(key=lambda post: post[0])
            self._sorted = True
        first = bisect.bisect_left(self._posts, low, key=lambda post: post[0])
        last = bisect.bisect_left(self._posts, high, key=lambda post: post[0])
        span = self._posts[first:last]
        copies = sum(1 for _, author, key in span if key is not None and self._is_copy(key, author))
        used: Counter[bytes] = Counter(key for _, _, key in span if key is not None)
        return CopyFigures(since=since or self.since, until=until or self.until, posts=len(span), copies=copies,
                           top=self._repeated(used, top), complete=self.complete)

    def _is_copy(self, key: bytes, author: str) -> bool:
        """Whether another account posted this text, or one near-identical to it."""
        text = self._texts[key]
        return any(other != author for each in (key, *text.near) for other in self._texts[each].authors)

    def _repeated(self, used: Counter[bytes], top: int) -> tuple[RepeatedText, ...]:
        """The texts repeated by most posts in the span: identical and near-identical versions together."""
        parent: dict[bytes, bytes] = {}

        def find(key: bytes) -> bytes:
            while parent.get(key, key) != key:
                key = parent[key]
            return key

        for key in used:
            for other in self._texts[key].near:
                if other in used:
                    parent[find(key)] = find(other)
        groups: dict[bytes, list[bytes]] = {}
        for key in used:
            groups.setdefault(find(key), []).append(key)
        found = []
        for keys in groups.values():
            accounts = {author for key in keys for author in self._texts[key].authors}
            if len(accounts) < 2:
                continue
            main = max(keys, key=lambda k: (used[k], k))
            found.append(RepeatedText(self._texts[main].sample, self._texts[main].platform,
                                      sum(used[k] for k in keys), len(accounts)))
        return tuple(sorted(found, key=lambda r: (-r.posts, -r.accounts, r.text))[:top])


def _signatures(shingles: Sequence[frozenset[int]]) -> Iterable[np.ndarray]:
    """MinHash signatures of many shingle sets in one numpy pass (datasketch's legacy permutation scheme)."""
    lengths = [len(s) for s in shingles]
    flat = np.fromiter((h for s in shingles for h in s), dtype=np.uint64, count=sum(lengths))
    values = ((flat[:, None] * _A + _B) % _PRIME) & _MAX_HASH
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return list(np.minimum.reduceat(values, starts, axis=0))


def _jaccard(first: frozenset[int], second: frozenset[int]) -> float:
    if not first and not second:
        return 1.0
    return len(first & second) / len(first | second)


def window_copies(store: Store, campaign: str, since: datetime, until: datetime) -> CopyFigures:
    """The copy-paste audit of a window, read whole (the report and `summary --json`)."""
    audit = CopyAudit(campaign, since, until)
    audit.update(store)
    return audit.figures()
