"""Seeded draws the population and the post generator share: seed mixing, weighted choices, base-62 tokens.

Determinism: only integer arithmetic and `random.Random` seeded with integers (no `hash()`), so a storm
spec draws the same values in every process.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable

from stormwatch.simulator import texts

_SHORT_URL_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def mix_seed(seed: int, salt: int) -> int:
    """A 64-bit integer seed for stream `salt` of storm `seed` (splitmix64 finalizer; no hash())."""
    z = (seed * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def cumulative(weights: Iterable[float]) -> list[float]:
    """The running sums of `weights` (the table a bisect-based weighted choice searches)."""
    total = 0.0
    out: list[float] = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


class Weighted:
    """A fixed weighted choice over names, with its cumulative table computed once."""

    __slots__ = ("cumulative", "names", "total")

    def __init__(self, items: tuple[tuple[str, float], ...]) -> None:
        self.names = tuple(name for name, _ in items)
        self.cumulative = cumulative(weight for _, weight in items)
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random) -> str:
        """A random name, by weight."""
        return self.at(rng.random())

    def at(self, fraction: float) -> str:
        """The name at `fraction` (0 <= fraction < 1) of the cumulative weight."""
        return self.names[bisect.bisect_right(self.cumulative, fraction * self.total)]


# The languages people write in (those the name lists cover), by weight.
PERSON_LANG_CHOICE = Weighted(tuple((lang, w) for lang, w in texts.LANGUAGE_WEIGHTS if lang in texts.FIRST_NAMES))


def base62(value: int, width: int) -> str:
    """`value` as `width` base-62 characters (t.co codes and image tokens)."""
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        digits.append(_SHORT_URL_ALPHABET[digit])
    return "".join(digits)
