"""Rises: a share (copies among posts, the counter-hashtags' share of voice) above its threshold over the last 15
minutes, and since when it has been, for alerts told once per rise.

A rise is read at complete minutes only (the minutes the collection has finished, as every live figure), so the
minute it began never moves once told: that minute is the rise's name (`copy_paste:<minute>`), and a restarted
collector, or `collect --once` from cron, names the same rise the same way. The share at each minute is over the
`span` that ends there; a rise ends at the first minute the share is clearly below the threshold again (`FALL`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

from .. import metrics
from ..config import CampaignConfig
from ..store import Store
from .copypaste import WARN_SHARE, CopyAudit

HIJACK_SHARE = 0.25  # the counter-hashtags' share of voice over the last 15 minutes that is told as a hijack
MIN_POSTS = 20  # a share over fewer posts (the quiet before a storm) is no rise
FALL = 0.05  # a rise ends when the share falls this far below its threshold (a share wavering at it is one rise)
SPAN = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Rise:
    """A share above its threshold at every complete minute from `since` to `until`; the share and posts at `until`."""

    since: datetime
    until: datetime
    share: float
    posts: int


ShareAt = Callable[[datetime], tuple[float, int]]  # (share, posts) over the span ending at a minute


@dataclass
class _Memo:
    """The rise being followed: checked minutes need not be read again (they are complete)."""

    since: datetime
    until: datetime


# Per open store (forgotten with it): the copy-paste audits the alerts read, and the rises followed.
_AUDITS: weakref.WeakKeyDictionary[Store, dict[tuple[str, int, int], CopyAudit]] = weakref.WeakKeyDictionary()
_MEMOS: weakref.WeakKeyDictionary[Store, dict[tuple[str, str], _Memo]] = weakref.WeakKeyDictionary()


def copy_rise(store: Store, campaign: CampaignConfig, until: datetime, *, threshold: float = WARN_SHARE,
              span: timedelta = SPAN) -> Rise | None:
    """The rise of the copy-paste share (copies among the non-repost posts of the last `span`) going on at the
    complete minute `until`, if the share is above `threshold` there."""
    window = metrics.campaign_window(campaign)
    audits = _AUDITS.setdefault(store, {})
    key = (campaign.name, window.since_ts, window.until_ts)
    audit = audits.setdefault(key, CopyAudit(campaign.name, window.since, window.until))
    audit.update(store)

    def share_at(moment: datetime) -> tuple[float, int]:
        figures = audit.figures(max(window.since, moment - span), moment, top=0)
        return figures.share, figures.posts

    return _rise(store, ("copy_paste", campaign.name), share_at, until, window.since, threshold)


def hijack_rise(store: Store, campaign: CampaignConfig, until: datetime, *, threshold: float = HIJACK_SHARE,
                span: timedelta = SPAN) -> Rise | None:
    """The rise of the counter-hashtags' share of voice (counter posts over campaign and counter posts of the last
    `span`) going on at the complete minute `until`, if it is above `threshold` there; None without counter-tags."""
    counter = campaign.counter()
    window = metrics.campaign_window(campaign)
    if counter is None or until <= window.since:
        return None
    ours = [0, *accumulate(metrics.per_minute(store, campaign.name, window.since, until))]
    theirs = [0, *accumulate(metrics.per_minute(store, counter.name, window.since, until))]
    first = window.since.replace(second=0, microsecond=0)

    def share_at(moment: datetime) -> tuple[float, int]:
        end = round((moment - first) / MINUTE)
        start = max(0, end - round(span / MINUTE))
        own, other = ours[end] - ours[start], theirs[end] - theirs[start]
        return (other / (own + other) if own + other else 0.0), own + other

    return _rise(store, ("hijack", campaign.name), share_at, until, window.since, threshold)


def _rise(store: Store, key: tuple[str, str], share_at: ShareAt, until: datetime, earliest: datetime,
          threshold: float) -> Rise | None:
    """Walk back from `until`, minute by minute, while the share stays above `threshold` less `FALL` (reading again
    only the minutes not checked for the rise followed before)."""
    until = until.replace(second=0, microsecond=0)
    memos = _MEMOS.setdefault(store, {})
    share, posts = share_at(until)
    if share <= threshold or posts < MIN_POSTS:
        if share <= threshold - FALL or posts < MIN_POSTS:
            memos.pop(key, None)
        return None
    memo = memos.get(key)
    since = until
    while since - MINUTE > earliest:
        if memo is not None and memo.since <= since - MINUTE <= memo.until:
            since = memo.since  # checked before: above at every minute from there
            break
        before, counted = share_at(since - MINUTE)
        if before <= threshold - FALL or counted < MIN_POSTS:
            break
        since -= MINUTE
    memos[key] = _Memo(since, until)
    return Rise(since=since, until=until, share=share, posts=posts)
