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
import logging
import threading
import zlib
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

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
LATE = timedelta(minutes=30)  # how far before the newest post listed a refresh looks for new ones
LIVE_BATCH = 2000  # posts the live audit reads between two publications of its figures

log = logging.getLogger(__name__)
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
    """One distinct cleaned text: its word pairs, a version as posted, who posted it, its near neighbours, and
    whether its posts are copies (a text's posts all are, once its posts and its neighbours' have two authors)."""

    shingles: array[int]  # the word pairs' hashes, sorted (an array: a set each would cost ten times the memory)
    sample: str
    platform: str
    authors: Counter[str] = field(default_factory=Counter)
    near: set[bytes] = field(default_factory=set)
    copy: bool = False
    solo: str | None = None  # while not a copy: the one author of it and its neighbours

    @property
    def posts(self) -> int:
        """How many posts carry this text."""
        return sum(self.authors.values())


class CopyAudit:
    """The copies among one campaign's non-repost posts of a window, read incrementally.

    What is read is kept: a text's signature, its neighbours and whether it is copied. Copies can only become
    more (a later post makes an earlier one a copy), so the window's count of copies is kept as posts arrive.
    """

    def __init__(self, campaign: str, since: datetime, until: datetime) -> None:
        self.campaign = campaign
        self.since, self.until = since, until
        self._seen: set[str] = set()
        self._queue: deque[str] | None = None  # posts of the window listed but not read yet, newest first
        self._queued: set[str] = set()
        self._newest = 0  # the newest post time listed
        self._posts: list[tuple[int, str, bytes | None]] = []  # (ts, author, text key or None when too short)
        self._sorted = True
        self._texts: dict[bytes, _Text] = {}
        self._copies = 0  # posts of the window that are copies
        # Band keys compressed to 8 bytes: the index is most of the audit's memory.
        self._lsh = MinHashLSH(threshold=NEAR, num_perm=NUM_PERM, weights=LSH_WEIGHTS, hashfunc=_band_key)
        self.complete = True

    @property
    def read(self) -> int:
        """How many posts the audit has read."""
        return len(self._seen)

    def update(self, store: Store, limit: int | None = None, expected: int | None = None) -> bool:
        """Read the window's posts not read yet, newest first, at most `limit` of them; True when all are read.

        `expected` is how many non-repost posts the window holds, when the caller knows (the running tallies do):
        it tells whether anything is new without listing the window's posts, and new posts are then looked for
        among the latest (`LATE` before the newest listed) unless the count says one arrived later than that.
        """
        since = int(self.since.timestamp())
        listed = len(self._seen) + len(self._queued)
        if self._queue is None or expected is None:
            self._list(store, since)
        elif expected != listed:
            self._list(store, max(since, self._newest - int(LATE.total_seconds())))
            if expected > len(self._seen) + len(self._queued):
                self._list(store, since)  # a post arrived later than that: list the whole window again
        assert self._queue is not None
        count = len(self._queue) if limit is None else min(limit, len(self._queue))
        wanted = [self._queue.popleft() for _ in range(count)]
        self._queued.difference_update(wanted)
        rows = select_in_chunks(store.conn, "SELECT uid, author_uid, ts, text, platform FROM posts WHERE uid IN ({})",
                                [], wanted)
        self._add(rows)
        self.complete = not self._queue
        return self.complete

    def _list(self, store: Store, since: int) -> None:
        """Queue the window's posts from `since` that are neither read nor queued, newest first."""
        found = [(uid, ts) for uid, ts in store.conn.execute(
            "SELECT post_uid, ts FROM campaign_posts WHERE campaign = ? AND ts >= ? AND ts < ? AND kind != 'repost' "
            "ORDER BY ts DESC", (self.campaign, since, int(self.until.timestamp())))
            if uid not in self._seen and uid not in self._queued]
        if self._queue is None:
            self._queue = deque()
        self._queue.extendleft(uid for uid, _ in reversed(found))
        self._queued.update(uid for uid, _ in found)
        self._newest = max([self._newest, *(ts for _, ts in found[:1])])

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
                self._copies += held.copy
                self._hear(held, (author,))
                for other in held.near:
                    self._hear(self._texts[other], (author,))
            else:
                fresh.setdefault(key, (words, text or "", platform))
                authors.setdefault(key, Counter())[author] += 1
        self._sorted = False
        keys = list(fresh)
        for start in range(0, len(keys), _BATCH):
            self._index(keys[start:start + _BATCH], fresh, authors)

    def _hear(self, text: _Text, authors: Iterable[str]) -> None:
        """Authors joined a text or its neighbours: its posts become copies once two accounts are among them."""
        if text.copy:
            return
        for author in authors:
            if text.solo is None:
                text.solo = author
            elif author != text.solo:
                text.copy = True
                self._copies += text.posts
                return

    def _index(self, keys: list[bytes], fresh: dict[bytes, tuple[list[str], str, str]],
               authors: dict[bytes, Counter[str]]) -> None:
        """Sign a batch of new texts, find their near neighbours among every text read, and index them."""
        shingles = [frozenset(zlib.crc32(f"{a} {b}".encode()) for a, b in itertools.pairwise(words))
                    for words, _, _ in (fresh[key] for key in keys)]
        for key, pairs, signature in zip(keys, shingles, _signatures(shingles), strict=True):
            _, sample, platform = fresh[key]
            text = _Text(array("I", sorted(pairs)), sample, platform, authors[key])
            minhash = MinHash(num_perm=NUM_PERM, hashvalues=signature, permutations=(_A, _B), scheme="legacy")
            for other in self._lsh.query(minhash):
                if _jaccard(pairs, frozenset(self._texts[other].shingles)) >= NEAR:
                    text.near.add(other)
            self._texts[key] = text
            self._lsh.insert(key, minhash)
            self._hear(text, text.authors)
            for other in text.near:
                neighbour = self._texts[other]
                neighbour.near.add(key)
                self._hear(text, neighbour.authors)
                self._hear(neighbour, text.authors)

    def figures(self, since: datetime | None = None, until: datetime | None = None, top: int = TOP) -> CopyFigures:
        """Copies among the posts read with since <= time < until (default: the whole window)."""
        if since is None and until is None and not top:  # the whole window: counted as posts arrived
            return CopyFigures(since=self.since, until=self.until, posts=len(self._posts), copies=self._copies,
                               top=(), complete=self.complete)
        low = int((since or self.since).timestamp())
        high = int((until or self.until).timestamp())
        if not self._sorted:
            self._posts.sort(key=lambda post: post[0])
            self._sorted = True
        first = bisect.bisect_left(self._posts, low, key=lambda post: post[0])
        last = bisect.bisect_left(self._posts, high, key=lambda post: post[0])
        span = self._posts[first:last]
        copies = sum(1 for _, _, key in span if key is not None and self._texts[key].copy)
        used: Counter[bytes] = Counter(key for _, _, key in span if key is not None)
        return CopyFigures(since=since or self.since, until=until or self.until, posts=len(span), copies=copies,
                           top=self._repeated(used, top) if top else (), complete=self.complete)

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


class LiveAudit:
    """A window's audit kept up to date by a thread of its own, on a connection of its own: a dashboard refresh
    reads the latest figures and never waits for hashing (a big window fills over its first seconds)."""

    def __init__(self, path: Path, campaign: str, since: datetime, until: datetime) -> None:
        self._audit = CopyAudit(campaign, since, until)
        self._path = path
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._asked: tuple[datetime, datetime, int | None] | None = None  # the span of the recent share, the count
        self._figures: tuple[CopyFigures, CopyFigures] | None = None
        self._thread = threading.Thread(target=self._run, name=f"copy-audit-{campaign}", daemon=True)
        self._thread.start()

    def figures(self, since: datetime, until: datetime, expected: int | None) -> tuple[CopyFigures, CopyFigures]:
        """The latest (recent span, whole window) figures; asks for the span [since, until) and `expected` posts
        to be read next (the figures are those of the last span asked until the thread catches up)."""
        with self._lock:
            self._asked = (since, until, expected)
            published = self._figures
        self._wake.set()
        if published is None:  # nothing read yet
            audit = self._audit
            return (CopyFigures(since, until, 0, 0, (), complete=False),
                    CopyFigures(audit.since, audit.until, 0, 0, (), complete=False))
        return published

    def close(self) -> None:
        """Stop the thread (it finishes the batch in hand)."""
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        try:
            with Store.open(self._path) as store:
                while not self._stop.is_set():
                    self._wake.wait(1.0)
                    self._wake.clear()
                    self._catch_up(store)
        except Exception:  # the dashboard goes on without the audit; say why once
            log.exception("copy-paste audit stopped")

    def _catch_up(self, store: Store) -> None:
        while not self._stop.is_set():
            with self._lock:
                asked = self._asked
            if asked is None:
                return
            since, until, expected = asked
            done = self._audit.update(store, limit=LIVE_BATCH, expected=expected)
            published = (self._audit.figures(since, until, top=0), self._audit.figures(top=0))
            with self._lock:
                self._figures = published
            if done:
                return


def _signatures(shingles: Sequence[frozenset[int]]) -> Iterable[np.ndarray]:
    """MinHash signatures of many shingle sets in one numpy pass (datasketch's legacy permutation scheme)."""
    lengths = [len(s) for s in shingles]
    flat = np.fromiter((h for s in shingles for h in s), dtype=np.uint64, count=sum(lengths))
    values = ((flat[:, None] * _A + _B) % _PRIME) & _MAX_HASH
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return list(np.minimum.reduceat(values, starts, axis=0))


def _band_key(band: bytes) -> bytes:
    """A band of a signature as an 8-byte key."""
    return hashlib.blake2b(band, digest_size=8).digest()


def _jaccard(first: frozenset[int], second: frozenset[int]) -> float:
    if not first and not second:
        return 1.0
    return len(first & second) / len(first | second)


def window_copies(store: Store, campaign: str, since: datetime, until: datetime) -> CopyFigures:
    """The copy-paste audit of a window, read whole (the report and `summary --json`)."""
    audit = CopyAudit(campaign, since, until)
    audit.update(store)
    return audit.figures()
