"""Storm intelligence: did it trend, did the targets answer, is it being filtered or hijacked (read-only figures).

Four questions after "how many?", each a module over the store: `trends` (the campaign's tags in the trending
lists fetched for it), `targets` (the targets' own posts and whether they answered a campaign post), `copypaste`
(the share of posts identical or near-identical to another account's, which platforms may filter) and `counter`
(the campaign against its counter-hashtags: share of voice, posts carrying both). `summary` gathers them for
`summary --json`, the report and alerts; `live` for the dashboard, which asks every second (the copy-paste audit
is kept between refreshes, so a refresh reads only what is new).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import metrics
from ..config import CampaignConfig, Config
from ..metrics import Window
from ..privacy.naming import Namer, NamingPolicy
from ..store import MEMORY, Store
from .copypaste import (
    ADVICE,
    MAX_NEAR_TEXTS,
    WARN_SHARE,
    CopyAudit,
    CopyFigures,
    LiveAudit,
    RepeatedText,
    window_copies,
)
from .counter import CounterFigures, counter_figures
from .rises import HIJACK_SHARE, Rise, copy_rise, hijack_rise
from .targets import TargetPost, first_responses, target_posts
from .text import shown
from .trends import TrendHit, fetched, is_hit, trending

__all__ = ["ADVICE", "HIJACK_SHARE", "MAX_NEAR_TEXTS", "RECENT", "WARN_SHARE", "CopyAudit", "CopyFigures",
           "CounterFigures", "IntelSummary", "LiveIntel", "RepeatedText", "Rise", "TargetPost", "TrendHit", "copy_rise",
           "counter_figures", "fetched", "first_responses", "hijack_rise", "intel_summary", "is_hit", "live", "shown",
           "summary_fields", "target_posts", "trending", "window_copies"]

RECENT = timedelta(minutes=15)  # the dashboard's copy-paste share and share of voice are of the last 15 minutes


@dataclass(frozen=True)
class IntelSummary:
    """The four answers for one campaign window."""

    trending: tuple[TrendHit, ...]
    target_posts: tuple[TargetPost, ...]
    copies: CopyFigures
    counter: CounterFigures | None

    def to_json(self, text: Any = None) -> dict[str, Any]:
        """The fields `summary --json` adds; `text(raw, platform)` shows a repeated text (default: as posted)."""
        show = text or (lambda raw, platform: raw)
        return {
            "trending": [hit.to_json() for hit in self.trending],
            "target_posts": {"count": len(self.target_posts), "posts": [p.to_json() for p in self.target_posts]},
            "duplicate_share": round(self.copies.share, 4),
            "duplicate_share_basis": self.copies.basis,
            "top_duplicates": [{**repeated.to_json(), "text": shown(show(repeated.text, repeated.platform))}
                               for repeated in self.copies.top],
            "counter": self.counter.to_json() if self.counter is not None else None,
        }


def summary_fields(store: Store, config: Config, campaign: CampaignConfig, window: Window) -> dict[str, Any]:
    """The fields `summary --json` adds, repeated texts shown by the config's naming rules (`[report] names`):
    pseudonymized, a mention of anyone but the campaign's own accounts and targets is hidden, and links too."""
    policy = NamingPolicy.for_campaign(campaign, config.report.names, config.report.pseudonymize_below)
    return intel_summary(store, campaign, window).to_json(Namer(policy).text)


def intel_summary(store: Store, campaign: CampaignConfig, window: Window, *,
                  max_near_texts: int = MAX_NEAR_TEXTS) -> IntelSummary:
    """Trending, targets' posts, copy-paste (near-identical texts checked on a sample above `max_near_texts`
    distinct texts) and counter-hashtags over a window (read whole)."""
    return IntelSummary(
        trending=tuple(trending(store, campaign.name, campaign.hashtags, window.since, window.until)),
        target_posts=tuple(target_posts(store, campaign.name, window.since, window.until)),
        copies=window_copies(store, campaign.name, window.since, window.until, max_near_texts=max_near_texts),
        counter=counter_figures(store, campaign, window))


@dataclass(frozen=True)
class LiveIntel:
    """What the dashboard shows of storm intelligence at one moment."""

    trending_now: tuple[TrendHit, ...]  # hits in their place's latest list
    target_posts: tuple[TargetPost, ...]
    recent_copies: CopyFigures  # the last 15 minutes
    window_copies: CopyFigures  # the storm so far
    recent_counter: CounterFigures | None  # the last 15 minutes
    counter: CounterFigures | None  # the storm so far


# The audits the dashboard keeps between refreshes, per open store (stopped and forgotten with it) and window.
_AUDITS: weakref.WeakKeyDictionary[Store, dict[tuple[str, int, int], CopyAudit | LiveAudit]] = (
    weakref.WeakKeyDictionary())


def live(store: Store, campaign: CampaignConfig, now: datetime) -> LiveIntel:
    """Storm intelligence for the dashboard: the storm window up to `now` (a storm read again later shows what
    was known then, not its future), and its last 15 minutes.

    The copy-paste audit of a database file is kept by a thread of its own (`LiveAudit`): a refresh shows its
    latest figures without waiting; one in memory (tests) is read here, whole.
    """
    window = metrics.campaign_window(campaign)
    recent = Window(max(window.since, now - RECENT), max(window.since, min(now, window.until)))
    totals = metrics.totals(store, campaign.name, window).all
    expected = totals.posts - totals.reposts
    audits = _AUDITS.setdefault(store, {})
    key = (campaign.name, window.since_ts, window.until_ts)
    audit = audits.get(key)
    if audit is None:
        if str(store.path) == MEMORY:
            audit = CopyAudit(campaign.name, window.since, window.until)
        else:
            audit = LiveAudit(store.path, campaign.name, window.since, window.until)
            weakref.finalize(store, audit.close)
        audits[key] = audit
    if isinstance(audit, LiveAudit):
        recent_copies, window_copies_so_far = audit.figures(recent.since, recent.until, expected)
    else:
        audit.update(store, expected=expected)
        recent_copies, window_copies_so_far = audit.figures(recent.since, recent.until, top=0), audit.figures(top=0)
    hits = trending(store, campaign.name, campaign.hashtags, window.since, max(window.since, now))
    return LiveIntel(
        trending_now=tuple(hit for hit in hits if hit.rank_now is not None),
        target_posts=tuple(target_posts(store, campaign.name, window.since, recent.until)),
        recent_copies=recent_copies,
        window_copies=window_copies_so_far,
        recent_counter=counter_figures(store, campaign, recent, with_minutes=False, top=0)
        if recent.until > recent.since else None,
        counter=counter_figures(store, campaign, window, with_minutes=False, top=0))
