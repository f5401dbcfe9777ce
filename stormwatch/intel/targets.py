"""Did the targets answer? Their own posts during the window, and which of them answered a campaign post.

The collector keeps the targets' posts (X: a `from:` search; Mastodon and Bluesky: their public timelines) as
members of the campaign's `~targets` companion. A post **answers** the campaign when it replies to, quotes or
reposts a post that is a campaign member (its stored reference); it is a **response** when it answers, or carries
the campaign's hashtags itself (it is a campaign post). Targets are public officials: they are always named, and
what they posted is quoted as it is (on one line).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..config import TARGETS_SUFFIX
from ..store import Store
from ..times import iso_utc, parse_time


@dataclass(frozen=True)
class TargetPost:
    """One post by a target."""

    account: str  # its handle on its platform (`antonioguterres`, `user@instance`, `name.bsky.social`)
    platform: str
    kind: str
    created_at: datetime
    text: str
    url: str | None
    in_reply_to_campaign_post: bool  # replies to, quotes or reposts a campaign post
    campaign_post: bool = False  # carries the campaign's hashtags itself
    # The author of the post it replies to, quotes or reposts (None when not stored): a pseudonymized report links
    # the post only when that author is named too, since the link leads to them.
    ref_handle: str | None = None
    ref_followers: int | None = None

    @property
    def responds(self) -> bool:
        """Whether the post responds to the storm: answers a campaign post, or is one."""
        return self.in_reply_to_campaign_post or self.campaign_post

    def to_json(self) -> dict[str, object]:
        """The fields `summary --json` gives a target's post."""
        return {"account": self.account, "platform": self.platform, "kind": self.kind,
                "created_at": iso_utc(self.created_at), "in_reply_to_campaign_post": self.in_reply_to_campaign_post}


def target_posts(store: Store, campaign: str, since: datetime, until: datetime) -> list[TargetPost]:
    """The targets' posts created in [since, until), oldest first."""
    rows = store.conn.execute(
        "SELECT p.platform, coalesce(a.handle, p.author_uid), p.kind, p.created_at, p.text, p.url, "
        "EXISTS (SELECT 1 FROM campaign_posts m WHERE m.campaign = ? AND m.post_uid = p.ref_uid), "
        "EXISTS (SELECT 1 FROM campaign_posts m WHERE m.campaign = ? AND m.post_uid = p.uid), "
        "ra.handle, ra.followers_count "
        "FROM campaign_posts c JOIN posts p ON p.uid = c.post_uid LEFT JOIN accounts a ON a.uid = p.author_uid "
        "LEFT JOIN posts r ON r.uid = p.ref_uid LEFT JOIN accounts ra ON ra.uid = r.author_uid "
        "WHERE c.campaign = ? AND c.ts >= ? AND c.ts < ? ORDER BY c.ts, c.post_uid",
        (campaign, campaign, campaign + TARGETS_SUFFIX, int(since.timestamp()), int(until.timestamp()))).fetchall()
    return [TargetPost(account=(handle or "").split(":", 1)[-1], platform=platform, kind=kind,
                       created_at=parse_time(created_at), text=text or "", url=url,
                       in_reply_to_campaign_post=bool(answer), campaign_post=bool(member), ref_handle=ref_handle,
                       ref_followers=ref_followers)
            for platform, handle, kind, created_at, text, url, answer, member, ref_handle, ref_followers in rows]


def first_responses(posts: list[TargetPost]) -> list[TargetPost]:
    """Each target's first response to the storm (one per account and platform), oldest first."""
    seen: set[tuple[str, str]] = set()
    found = []
    for post in posts:
        key = (post.platform, post.account.casefold())
        if post.responds and key not in seen:
            seen.add(key)
            found.append(post)
    return found
