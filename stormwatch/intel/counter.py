"""Is the tag being hijacked or drowned? The campaign against its counter-hashtags (the opponents' tags).

The collector gathers the counter-hashtags like the campaign's own into the `~counter` companion's membership (and
its running tallies). Campaign posts that carry a counter-hashtag too are **hijack candidates** (the store marks
them): the opponents writing into the campaign's tag, or the campaign answering under theirs; they are counted
here, never among the supporters' posts. **Share of voice** over a span = supporters' posts / (supporters' posts +
counter posts), the hijack candidates being counter posts. The top counter accounts are strangers too: reports
name them by the report's pseudonymization rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import metrics
from ..config import CampaignConfig
from ..metrics import AccountStat, Window
from ..store import Store
from ..times import parse_time


@dataclass(frozen=True)
class CounterFigures:
    """The campaign and its counter-hashtags over a span."""

    campaign_posts: int  # supporters' posts (the headline figure)
    posts: int  # counter posts
    both: int  # campaign posts carrying a counter-hashtag too (hijack candidates)
    minutes: tuple[tuple[datetime, int, int], ...]  # (minute, campaign posts, counter posts), every minute
    top_accounts: tuple[AccountStat, ...]

    @property
    def share_of_voice(self) -> float | None:
        """Campaign posts over campaign and counter posts (None when neither posted)."""
        total = self.campaign_posts + self.posts
        return self.campaign_posts / total if total else None

    def to_json(self) -> dict[str, object]:
        """`{posts, share_of_voice, both}` as `summary --json` gives them."""
        share = self.share_of_voice
        return {"posts": self.posts, "share_of_voice": round(share, 4) if share is not None else None,
                "both": self.both}


@dataclass(frozen=True)
class HijackPost:
    """A post carrying both the campaign's and the counter-hashtags."""

    created_at: datetime
    platform: str
    author_uid: str | None
    handle: str
    followers: int
    text: str
    engagement: int


def hijack_posts(store: Store, campaign: CampaignConfig, window: Window, limit: int = 10) -> list[HijackPost]:
    """The posts carrying both tag sets that drew most engagement (reposts left out: they repeat another's)."""
    counter = campaign.counter()
    if counter is None:
        return []
    rows = store.conn.execute(
        "SELECT p.created_at, p.platform, p.author_uid, a.handle, coalesce(a.followers_count, 0), p.text, "
        "coalesce(p.like_count, 0) + coalesce(p.repost_count, 0) + coalesce(p.reply_count, 0) "
        "+ coalesce(p.quote_count, 0) AS engagement "
        "FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid LEFT JOIN accounts a ON a.uid = p.author_uid "
        "WHERE c.campaign = ? AND c.ts >= ? AND c.ts < ? AND c.hijack = 1 AND c.kind != 'repost' "
        "ORDER BY engagement DESC, c.ts LIMIT ?",
        (campaign.name, window.since_ts, window.until_ts, limit)).fetchall()
    return [HijackPost(parse_time(created), platform, author, handle or (author or "?").split(":", 1)[-1],
                       followers, text or "", engagement)
            for created, platform, author, handle, followers, text, engagement in rows]


def counter_figures(store: Store, campaign: CampaignConfig, window: Window, *, with_minutes: bool = True,
                    top: int = 10) -> CounterFigures | None:
    """The counter-hashtags against the campaign in a window; None when the campaign names none."""
    counter = campaign.counter()
    if counter is None:
        return None
    posts = metrics.totals(store, counter.name, window).all.posts
    own = metrics.totals(store, campaign.name, window).all.posts
    both = metrics.hijacks(store, campaign.name, window)[0]
    minutes: tuple[tuple[datetime, int, int], ...] = ()
    if with_minutes:
        mine = metrics.per_minute(store, campaign.name, window.since, window.until, window.platform)
        theirs = metrics.per_minute(store, counter.name, window.since, window.until, window.platform)
        first = window.since.replace(second=0, microsecond=0)
        minutes = tuple((first + timedelta(minutes=i), m, t) for i, (m, t) in enumerate(zip(mine, theirs, strict=True)))
    accounts = tuple(metrics.top_accounts(store, counter.name, window, limit=top)) if top else ()
    return CounterFigures(campaign_posts=own, posts=posts, both=int(both), minutes=minutes, top_accounts=accounts)
