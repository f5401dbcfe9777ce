"""Storm intelligence as the dashboard's lines: each a list of (text, style) parts, the first essential and the
rest dropped from the end when the screen is narrow, with how readily the whole line gives way on a short screen.

The words and the order live here (copy-paste, trending, targets' responses, counter-hashtags); drawing them is
the dashboard's (it only turns parts into rich `Text`). Text written by strangers (trend names, places, accounts)
goes through `shown`: one line without control characters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .. import platforms
from .copypaste import ADVICE, WARN_SHARE
from .targets import first_responses
from .text import shown

if TYPE_CHECKING:
    from . import LiveIntel

Parts = list[tuple[str, str]]  # (text, rich style)
# How readily a line gives way on a short screen (the dashboard's scale: 0 never, higher first). A copy-paste
# share over the warning level is advice to act on now; trending and a target's answer are what organizers
# wait for; the rest is context that the top accounts outrank.
URGENT, NEWS, CONTEXT = 1, 4, 8


@dataclass(frozen=True)
class IntelLine:
    """One line of storm intelligence: its parts (the first essential) and how readily it gives way."""

    parts: Parts
    drop: int


def intel_lines(found: LiveIntel, local: Callable[[datetime], str]) -> list[IntelLine]:
    """The lines for the live figures, most pressing first (times shown through `local`); none without figures."""
    lines = [_copies_line(found), _trending_line(found, local), _targets_line(found, local), _counter_line(found)]
    return [line for line in lines if line is not None]


def _copies_line(found: LiveIntel) -> IntelLine | None:
    recent, whole = found.recent_copies, found.window_copies
    if not whole.posts:
        return None
    reading = "" if whole.complete else " (still reading the storm's posts)"
    about = "" if whole.sampled is None else "≈"  # near-identical texts checked on a sample: an estimate
    if recent.posts and recent.share > WARN_SHARE:
        return IntelLine([(f"⚠ {about}{recent.share:.0%} copy-pasted in 15 min — {ADVICE}", "bold white on red"),
                          (f"  ({about}{whole.share:.0%} of the storm){reading}", "dim")], URGENT)
    return IntelLine([("copy-paste ", "bold"), (f"{about}{recent.share:.0%} of the last 15 min", "green"),
                      (f" · {about}{whole.share:.0%} of the storm{reading}", "dim")], CONTEXT)


def _trending_line(found: LiveIntel, local: Callable[[datetime], str]) -> IntelLine | None:
    if not found.trending_now:
        return None
    parts: Parts = [("trending: ", "bold")]
    for hit in found.trending_now:
        since = f" since {local(hit.since)}" if hit.since else ""
        parts.append((f"{shown(hit.tag)} #{hit.rank_now} {shown(hit.location)}{since}  ", "bold green"))
    return IntelLine(parts, NEWS)


def _targets_line(found: LiveIntel, local: Callable[[datetime], str]) -> IntelLine | None:
    posts = found.target_posts
    if not posts:
        return None
    parts: Parts = [("targets: ", "bold")]
    for post in first_responses(list(posts)):
        verb = "answered" if post.in_reply_to_campaign_post else "posted the tags"
        parts.append((f"@{shown(post.account)} {verb} on {platforms.label(post.platform)} {local(post.created_at)}  ",
                      "bold green"))
    parts.append((f"{len(posts):,} post{'s' if len(posts) != 1 else ''} by targets in the storm", "dim"))
    return IntelLine(parts, NEWS)


def _counter_line(found: LiveIntel) -> IntelLine | None:
    whole, recent = found.counter, found.recent_counter
    if whole is None:
        return None
    share = recent.share_of_voice if recent is not None else None
    overall = whole.share_of_voice
    parts: Parts = [("counter-tags: ", "bold"),
                    (f"share of voice {share:.0%} last 15 min" if share is not None else "no posts last 15 min",
                     "yellow" if share is not None and share < 0.5 else "green")]
    if overall is not None:
        parts.append((f" ({overall:.0%} overall)", "dim"))
    parts.append((f" · {whole.posts:,} counter posts, {whole.both:,} carry both", "dim"))
    return IntelLine(parts, CONTEXT)
