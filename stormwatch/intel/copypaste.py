"""The copy-paste audit: how many campaign posts say the same as another account's, which platforms may filter.

It audits the supporters' posts: hijack candidates (campaign posts carrying a counter-hashtag) are left out.

Platforms down-rank or hide identical posts sent by many accounts. A post is a **copy** when its words (links,
mentions and hashtags removed, case and whitespace folded: `text.clean_words`) are identical or near-identical to
those of a post by another account in the same window; reposts are left out (they are meant to be identical), and
texts of fewer than `MIN_WORDS` words are never copies (a bare hashtag is not a pasted text), though they count in
the share's denominator. Near-identical: Jaccard similarity of at least `NEAR` over word pairs (2-word shingles,
which one changed word moves by about two pairs out of twenty: a pasted text with a word changed or added stays
near, two people's own sentences on the same topic do not).

How (datasketch): identical texts are grouped by a 12-byte hash first, so a toolkit pasted a thousand times is one
text; per distinct text the audit keeps only its post count and its first author (and every author once a second
one posts it), so **identical copies are always counted exactly**. Near-identical texts are the expensive part: each
distinct text gets a MinHash signature (computed for a batch of texts at once with numpy, with datasketch's legacy
permutation scheme) and goes into an LSH index split in bands as datasketch's MinHashLSH would (threshold `NEAR`,
tuned to miss few pairs); the candidates are then checked with the exact Jaccard of their word pairs, so a near
pair is decided exactly. The index is bounded for a text varied by thousands (`BUCKET`, `NEAR_LINKS`): each new
text links to a few of its versions, which judges it (one other account's version suffices) and groups them.

**Bounded: a sample above `MAX_NEAR_TEXTS` distinct texts.** Only the distinct texts in a seeded uniform sample are
signed and indexed (their word pairs, signature and neighbours kept); the others keep no shingles. A text is in the
sample when a seeded hash of it is below a limit; the limit starts above every hash (the sample is every text:
exact) and halves whenever the sample would pass the bound, dropping the texts above it (distinct sampling: the
sample stays uniform at a rate of 1/2^level, whatever order posts arrive in). Then the share is an **estimate**:

    copies = identical copies (posts of texts that two or more accounts posted, exact)
           + near_sampled / single_sampled x single

where `single` counts the posts of texts that one account alone posted, `single_sampled` those of them whose text
is in the sample and `near_sampled` those among the latter with a near-identical text of another account among the
texts indexed (a span of the window uses its own posts, or the window's rate when none of its texts is sampled):
the sampled near-only copy rate, scaled to every one-account post. The texts indexed are the sample and, outside
it, the texts two accounts or more posted (at most `max_near_texts` of them too: their copies are already counted,
they link a pasted text's versions into one repeated text and find the one-account versions near them). A
one-account text whose only near neighbours are a few other one-account texts is missed unless one of them is
sampled (a slight underestimate); a text varied by many accounts has neighbours among the indexed and is found.
`CopyFigures.sampled` says how many texts the sample held (None: every text was checked, the share is exact).
Sampled, a repeated text (top) counts its identical versions and its sampled one-account versions only.

`CopyAudit` keeps what it has read, so reading the window again only reads and hashes the posts that are new (the
dashboard does it every second); `update` can be told to do at most so many posts per call. `window_copies` reads a
whole window once, in one pass (the report, `summary --json`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import zlib
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHashLSH

from ..store import Store
from ..store.sql import select_in_chunks
from .text import clean_text

NEAR = 0.8
MIN_WORDS = 3
NUM_PERM = 128
# LSH errs towards more candidates (checked exactly afterwards) rather than missed pairs.
LSH_WEIGHTS = (0.2, 0.8)
# Distinct texts checked for near-identical versions before the audit samples them (see the module's docstring;
# bench/README.md has the measurements behind it: time and memory grow with the texts indexed).
MAX_NEAR_TEXTS = 20_000
# A text varied by thousands of accounts puts them all in the same LSH buckets: a bucket keeps its first `BUCKET`
# texts and a new text links to at most `NEAR_LINKS` near-identical ones (one other account's is enough to judge
# it, a few group the versions), so each text costs a bounded number of exact checks, not one per version.
BUCKET = 50
NEAR_LINKS = 32
SAMPLE_SEED = 12
WARN_SHARE = 0.30  # the dashboard warns above this share of copies in the last 15 minutes
ADVICE = "vary the text: identical posts may be filtered"
TOP = 10
LATE = timedelta(minutes=30)  # how far before the newest post listed a refresh looks for new ones
LIVE_BATCH = 2000  # posts the live audit reads between two publications of its figures

log = logging.getLogger(__name__)
_BATCH = 512  # texts hashed per numpy pass (memory: shingles x NUM_PERM x 8 bytes)
_READ = 5000  # rows fetched at a time when a window is read whole
_RECENT_TEXTS = 20_000  # texts as posted remembered, to clean and hash a text pasted as it is only once in a while
_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
# datasketch's split of a signature into bands for `NEAR` and `LSH_WEIGHTS` (12 bands of 10 rows at 128).
_SPLIT = MinHashLSH(threshold=NEAR, num_perm=NUM_PERM, weights=LSH_WEIGHTS)
_BANDS, _ROWS = _SPLIT.b, _SPLIT.r
# Odd 64-bit multipliers, a row of them per band (the band keys' linear hash; fixed, like the permutations).
_BAND_MULTIPLIERS = np.random.RandomState(13).randint(1, 1 << 62, size=(_BANDS, _ROWS), dtype=np.uint64) | np.uint64(1)
# Fixed permutations: signatures made in different processes or refreshes compare.
_RANDOM = np.random.RandomState(12)
_A = _RANDOM.randint(1, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)
_B = _RANDOM.randint(0, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)
# A distinct text's flags: two accounts or more posted it; it is in the sample; it is in the sample, one account
# posted it and a near-identical text in the sample is another account's.
_MULTI, _SAMPLED, _NEAR = 1, 2, 4
_ALL = 1 << 64  # the sample's limit while it holds every text


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
    """Copies among a span's non-repost posts, and the texts repeated most; an estimate when `sampled` is set."""

    since: datetime
    until: datetime
    posts: int
    copies: int
    top: tuple[RepeatedText, ...]
    complete: bool = True  # False while the audit has not read every post of the window yet
    sampled: int | None = None  # distinct texts in the near-identical sample; None when every text was checked

    @property
    def share(self) -> float:
        """Copies over non-repost posts (0 without posts)."""
        return self.copies / self.posts if self.posts else 0.0

    @property
    def basis(self) -> str:
        """How the share was found: "exact", or "estimated from a sample of N distinct texts"."""
        return "exact" if self.sampled is None else f"estimated from a sample of {self.sampled} distinct texts"


class CopyAudit:
    """The copies among one campaign's non-repost posts of a window, read incrementally.

    What is read is kept, compactly: per post its time and text number; per distinct text its post count, first
    author and flags; the word pairs, band keys and neighbours of the indexed texts only. `max_near_texts` bounds
    the texts checked for near-identical versions (a sample above it, plus as many repeated texts); `seed` chooses
    the sample.
    """

    def __init__(self, campaign: str, since: datetime, until: datetime, *, max_near_texts: int = MAX_NEAR_TEXTS,
                 seed: int = SAMPLE_SEED) -> None:
        if max_near_texts < 1:
            raise ValueError("max_near_texts must be at least 1")
        self.campaign = campaign
        self.since, self.until = since, until
        self.max_near_texts = max_near_texts
        self._seed = seed.to_bytes(8, "big", signed=True)
        self._seen: set[str] = set()
        self._queue: deque[str] | None = None  # posts of the window listed but not read yet, newest first
        self._queued: set[str] = set()
        self._newest = 0  # the newest post time listed
        self._read_whole = False
        # per post read, in reading order until sorted by time: its time and its text's number (-1: too short)
        self._times = array("q")
        self._text_of = array("i")
        self._sorted = True
        # per distinct text, by number
        self._numbers: dict[bytes, int] = {}
        self._posts = array("I")
        self._first_author = array("i")
        self._flags = bytearray()
        self._accounts: dict[int, set[int]] = {}  # texts with two accounts or more: every account
        self._versions: dict[int, tuple[str, str]] = {}  # a version as posted and its platform (repeated or sampled)
        self._authors: dict[str, int] = {}
        self._recent: dict[str, int] = {}  # texts as posted lately and their numbers (-1: too short): not cleaned again
        # the sample: texts whose seeded hash is below the limit, their word pairs and near neighbours
        self._limit = _ALL
        self._priority: dict[int, int] = {}
        self._shingles: dict[int, array[int]] = {}  # sorted (an array: a set each would cost ten times the memory)
        self._near: dict[int, set[int]] = {}
        # Texts two accounts posted are indexed too, outside the sample (at most max_near_texts of them): they link
        # a pasted text's versions into one repeated text, and a one-account text near one is found a copy.
        self._indexed_repeated: set[int] = set()
        self._pending: dict[int, str] = {}  # texts to index: their cleaned words (one string: less memory)
        # The LSH index: texts by 64-bit band key (at most BUCKET a key), and each indexed text's band keys.
        self._buckets: dict[int, list[int]] = {}
        self._bands: dict[int, bytes] = {}
        self.complete = True

    @property
    def read(self) -> int:
        """How many posts the audit has read."""
        return len(self._times)

    @property
    def texts(self) -> int:
        """How many distinct texts (of `MIN_WORDS` words or more) the audit has read."""
        return len(self._posts)

    @property
    def sampled(self) -> int | None:
        """How many distinct texts the near-identical sample holds; None while it holds every text (exact)."""
        return len(self._priority) if self._limit < _ALL else None

    def update(self, store: Store, limit: int | None = None, expected: int | None = None) -> bool:
        """Read the window's posts not read yet, newest first, at most `limit` of them; True when all are read.

        `expected` is how many non-repost posts the window holds, when the caller knows (the running tallies do):
        it tells whether anything is new without listing the window's posts, and new posts are then looked for
        among the latest (`LATE` before the newest listed) unless the count says one arrived later than that.
        """
        if self._read_whole:
            raise ValueError("an audit read whole (read_window) is not updated")
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
        self._seen.update(wanted)
        rows = select_in_chunks(store.conn, "SELECT author_uid, ts, text, platform, uid FROM posts WHERE uid IN ({})",
                                [], wanted)
        self._add(rows)
        self.complete = not self._queue
        return self.complete

    def read_window(self, store: Store) -> None:
        """Read every non-repost post of the window in one pass, remembering no post ids (a fresh audit read once:
        the report and `summary --json`; `update` refuses it afterwards)."""
        if self.read or self._queue is not None:
            raise ValueError("read_window reads a fresh audit")
        self._read_whole = True
        cursor = store.conn.execute(
            "SELECT c.author_uid, c.ts, p.text, c.platform, c.post_uid FROM campaign_posts c "
            "JOIN posts p ON p.uid = c.post_uid WHERE c.campaign = ? AND c.ts >= ? AND c.ts < ? AND c.kind != 'repost' "
            "AND c.hijack = 0",
            (self.campaign, int(self.since.timestamp()), int(self.until.timestamp())))
        while rows := cursor.fetchmany(_READ):
            self._add(rows)
        # Indexed once every post is counted: the sample's limit is then final, so no text is indexed for nothing.
        self._index_pending()
        self.complete = True

    def _list(self, store: Store, since: int) -> None:
        """Queue the window's posts from `since` that are neither read nor queued, newest first."""
        found = [(uid, ts) for uid, ts in store.conn.execute(
            "SELECT post_uid, ts FROM campaign_posts WHERE campaign = ? AND ts >= ? AND ts < ? AND kind != 'repost' "
            "AND hijack = 0 ORDER BY ts DESC", (self.campaign, since, int(self.until.timestamp())))
            if uid not in self._seen and uid not in self._queued]
        if self._queue is None:
            self._queue = deque()
        self._queue.extendleft(uid for uid, _ in reversed(found))
        self._queued.update(uid for uid, _ in found)
        self._newest = max([self._newest, *(ts for _, ts in found[:1])])

    def _add(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Count (author, ts, text, platform, uid) posts: exactly by text, and queue new sampled texts for indexing."""
        numbers, authors, flags, posts = self._numbers, self._authors, self._flags, self._posts
        first = self._first_author
        recent, add_time, add_text = self._recent, self._times.append, self._text_of.append
        for author_uid, ts, raw, platform, uid in rows:
            text = raw or ""
            add_time(ts)
            number = recent.get(text)
            if number is None:  # a text not seen lately as posted: cleaned and hashed
                cleaned = clean_text(text)
                if cleaned.count(" ") < MIN_WORDS - 1:
                    number = -1
                else:
                    key = hashlib.blake2b(cleaned.encode(), digest_size=12).digest()
                    number = numbers.get(key)
                    if number is None:
                        number = self._new_text(key, cleaned, text, platform)
                if len(recent) >= _RECENT_TEXTS:
                    recent.clear()
                recent[text] = number
            add_text(number)
            if number < 0:
                continue
            author = authors.setdefault(author_uid or f"?{uid}", len(authors))
            if not posts[number]:
                first[number] = author
            elif not flags[number] & _MULTI and first[number] != author:
                self._accounts[number] = {first[number], author}
                self._became_multi(number, text)
            elif flags[number] & _MULTI:
                self._accounts[number].add(author)
            posts[number] += 1
            if posts[number] == 2 and number not in self._versions:
                self._versions[number] = (text, platform)
        self._sorted = False
        if not self._read_whole:
            self._index_pending()

    def _new_text(self, key: bytes, cleaned: str, text: str, platform: str) -> int:
        number = len(self._posts)
        self._numbers[key] = number
        self._posts.append(0)
        self._first_author.append(-1)  # set by its first post
        self._flags.append(0)
        priority = int.from_bytes(hashlib.blake2b(key, digest_size=8, key=self._seed).digest(), "big")
        if priority < self._limit:
            self._priority[number] = priority
            self._pending[number] = cleaned
            self._versions[number] = (text, platform)
            if len(self._priority) > self.max_near_texts:
                self._halve()
        return number

    def _became_multi(self, number: int, text: str) -> None:
        """A second account posted a text: its posts are identical copies, and its one-account neighbours near ones;
        out of the sample, it is indexed among the repeated texts while they are fewer than the bound."""
        self._flags[number] = (self._flags[number] | _MULTI) & ~_NEAR
        if number not in self._priority and len(self._indexed_repeated) < self.max_near_texts:
            self._indexed_repeated.add(number)
            self._pending[number] = clean_text(text)
        for other in self._near.get(number, ()):
            if not self._flags[other] & _MULTI:
                self._flags[other] |= _NEAR

    def _index_pending(self) -> None:
        pending = list(self._pending)
        for start in range(0, len(pending), _BATCH):
            self._index(pending[start:start + _BATCH])
        self._pending.clear()

    def _index(self, numbers: list[int]) -> None:
        """Sign a batch of new texts, find their near neighbours among those indexed, and index them."""
        numbers = [number for number in numbers if number in self._pending]  # some may have left the sample
        if not numbers:
            return
        shingles = [frozenset(zlib.crc32(f"{a} {b}".encode())
                              for a, b in itertools.pairwise(self._pending[number].split())) for number in numbers]
        bands = _band_keys(_signatures(shingles))
        for number, pairs, band_keys in zip(numbers, shingles, bands, strict=True):
            keys = band_keys.tolist()
            near: set[int] = set()
            for other in dict.fromkeys(other for key in keys for other in self._buckets.get(key, ())):
                if _jaccard(pairs, frozenset(self._shingles[other])) >= NEAR:
                    near.add(other)
                    if len(near) == NEAR_LINKS:
                        break
            self._shingles[number] = array("I", sorted(pairs))
            self._near[number] = near
            self._bands[number] = band_keys.tobytes()
            for key in keys:
                bucket = self._buckets.setdefault(key, [])
                if len(bucket) < BUCKET:
                    bucket.append(number)
            if number in self._priority:
                self._flags[number] |= _SAMPLED
            for other in near:
                self._near[other].add(number)
            self._judge([number, *near])

    def _judge(self, numbers: Iterable[int]) -> None:
        """Decide afresh whether one-account sampled texts have a near-identical text of another account."""
        flags, first = self._flags, self._first_author
        for number in numbers:
            if flags[number] & _MULTI:
                continue
            near = any(flags[other] & _MULTI or first[other] != first[number] for other in self._near[number])
            flags[number] = flags[number] | _NEAR if near else flags[number] & ~_NEAR

    def _halve(self) -> None:
        """Halve the sample's limit until the sample fits: texts hashed above it leave (shingles, index, links)."""
        while len(self._priority) > self.max_near_texts:
            self._limit >>= 1
            leaving = [number for number, priority in self._priority.items() if priority >= self._limit]
            touched: set[int] = set()
            for number in leaving:
                del self._priority[number]
                self._flags[number] &= ~(_SAMPLED | _NEAR)
                if self._flags[number] & _MULTI and len(self._indexed_repeated) < self.max_near_texts:
                    self._indexed_repeated.add(number)  # stays indexed, as a repeated text
                    continue
                self._pending.pop(number, None)
                if self._posts[number] < 2:
                    self._versions.pop(number, None)
                self._shingles.pop(number, None)
                self._unindex(number)
                for other in self._near.pop(number, ()):
                    self._near[other].discard(number)  # neighbours are indexed texts: their links are kept
                    touched.add(other)
            self._judge(number for number in touched if number in self._near)

    def _unindex(self, number: int) -> None:
        """Take a text out of the LSH buckets it is in."""
        for key in np.frombuffer(self._bands.pop(number, b""), dtype=np.uint64).tolist():
            bucket = self._buckets.get(key)
            if bucket is not None and number in bucket:
                bucket.remove(number)
                if not bucket:
                    del self._buckets[key]

    def figures(self, since: datetime | None = None, until: datetime | None = None, top: int = TOP) -> CopyFigures:
        """Copies among the posts read with since <= time < until (default: the whole window); an estimate when
        the near-identical check ran on a sample."""
        flags = np.frombuffer(bytes(self._flags), dtype=np.uint8)
        counts = np.frombuffer(self._posts.tobytes(), dtype=np.uint32).astype(np.int64)
        window_rate = _near_rate(flags, counts)
        if since is None and until is None:
            posts, copies = len(self._times), self._copies(flags, counts, window_rate)
            used = {number: int(counts[number]) for number in self._repeatable(flags)} if top else {}
        else:
            numbers = self._span(since or self.since, until or self.until)
            posts = len(numbers)
            numbers = numbers[numbers >= 0]
            texts, per_text = np.unique(numbers, return_counts=True)
            copies = self._copies(flags[texts], per_text.astype(np.int64), window_rate)
            used = dict(zip(texts.tolist(), per_text.tolist(), strict=True)) if top else {}
        return CopyFigures(since=since or self.since, until=until or self.until, posts=posts, copies=copies,
                           top=self._repeated(used, top) if top else (), complete=self.complete, sampled=self.sampled)

    def _copies(self, flags: np.ndarray, counts: np.ndarray, window_rate: float | None) -> int:
        """Identical copies exactly, plus near-only copies: exact when every text is sampled, else estimated."""
        multi = (flags & _MULTI) != 0
        identical = int(counts[multi].sum())
        if self._limit == _ALL:
            return identical + int(counts[(flags & _NEAR) != 0].sum())
        single = int(counts[~multi].sum())
        rate = _near_rate(flags, counts)
        return identical + round(single * (rate if rate is not None else window_rate or 0.0))

    def _span(self, since: datetime, until: datetime) -> np.ndarray:
        """The text numbers of the posts read with since <= time < until (-1: too short)."""
        if not self._sorted:
            times = np.frombuffer(self._times.tobytes(), dtype=np.int64)
            order = np.argsort(times, kind="stable")
            self._times = array("q", times[order].tobytes())
            self._text_of = array("i", np.frombuffer(self._text_of.tobytes(), dtype=np.int32)[order].tobytes())
            self._sorted = True
        times = np.frombuffer(self._times.tobytes(), dtype=np.int64)
        first, last = np.searchsorted(times, [int(since.timestamp()), int(until.timestamp())])
        return np.frombuffer(self._text_of.tobytes(), dtype=np.int32)[first:last]

    def _repeatable(self, flags: np.ndarray) -> list[int]:
        """The texts that can be in a repeated group: two accounts' or with neighbours in the sample."""
        multi = np.flatnonzero(flags & _MULTI).tolist()
        return sorted({*multi, *(number for number, near in self._near.items() if near)})

    def _repeated(self, used: dict[int, int], top: int) -> tuple[RepeatedText, ...]:
        """The texts repeated by most posts in the span: identical and near-identical versions together (a group is
        a connected part of the near-identical links, walked once: a pasted text varied by thousands is one group)."""
        grouped: set[int] = set()
        groups: list[list[int]] = []
        for start in used:
            if start in grouped:
                continue
            grouped.add(start)
            numbers, walk = [start], [start]
            while walk:
                for other in self._near.get(walk.pop(), ()):
                    if other in used and other not in grouped:
                        grouped.add(other)
                        numbers.append(other)
                        walk.append(other)
            groups.append(numbers)
        found = []
        for numbers in groups:
            accounts = {author for number in numbers
                        for author in self._accounts.get(number, (self._first_author[number],))}
            if len(accounts) < 2:
                continue
            main = max(numbers, key=lambda n: (used[n], -n))
            text, platform = self._versions[main]
            found.append(RepeatedText(text, platform, sum(used[n] for n in numbers), len(accounts)))
        return tuple(sorted(found, key=lambda r: (-r.posts, -r.accounts, r.text))[:top])


def _near_rate(flags: np.ndarray, counts: np.ndarray) -> float | None:
    """Of the posts of one-account sampled texts, the share with a near-identical text of another account."""
    sampled = (flags & (_MULTI | _SAMPLED)) == _SAMPLED
    total = int(counts[sampled].sum())
    return int(counts[sampled & ((flags & _NEAR) != 0)].sum()) / total if total else None


class LiveAudit:
    """A window's audit kept up to date by a thread of its own, on a connection of its own: a dashboard refresh
    reads the latest figures and never waits for hashing (a big window fills over its first seconds)."""

    def __init__(self, path: Path, campaign: str, since: datetime, until: datetime, *,
                 max_near_texts: int = MAX_NEAR_TEXTS) -> None:
        self._audit = CopyAudit(campaign, since, until, max_near_texts=max_near_texts)
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


def _signatures(shingles: Sequence[frozenset[int]]) -> np.ndarray:
    """MinHash signatures of shingle sets in one numpy pass (datasketch's legacy permutation scheme), a row each."""
    lengths = [len(s) for s in shingles]
    flat = np.fromiter((h for s in shingles for h in s), dtype=np.uint64, count=sum(lengths))
    values = ((flat[:, None] * _A + _B) % _PRIME) & _MAX_HASH
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return np.minimum.reduceat(values, starts, axis=0)


def _band_keys(signatures: np.ndarray) -> np.ndarray:
    """Each signature's bands as 64-bit keys, a row each (a random linear hash of the band's rows, wrapping, with
    multipliers of the band's own: equal rows in different bands give different keys)."""
    bands = signatures[:, :_BANDS * _ROWS].reshape(len(signatures), _BANDS, _ROWS)
    keys: np.ndarray = (bands * _BAND_MULTIPLIERS).sum(axis=2, dtype=np.uint64)
    return keys


def _jaccard(first: frozenset[int], second: frozenset[int]) -> float:
    if not first and not second:
        return 1.0
    return len(first & second) / len(first | second)


def window_copies(store: Store, campaign: str, since: datetime, until: datetime, *,
                  max_near_texts: int = MAX_NEAR_TEXTS) -> CopyFigures:
    """The copy-paste audit of a window, read whole in one pass (the report and `summary --json`)."""
    audit = CopyAudit(campaign, since, until, max_near_texts=max_near_texts)
    audit.read_window(store)
    return audit.figures()
