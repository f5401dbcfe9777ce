"""The report's storm-intelligence sections: did it trend, did the targets respond, copy-paste, counter-hashtags.

Content is read once (`gather_intel`) with the report's naming rules applied: repeated texts and hijacking posts
are rewritten like every post text (mentions of hidden accounts and links replaced), the top counter accounts and
hijacking authors are strangers named by the same rules (pseudonyms from the campaign's table), and the targets,
public officials, are named and quoted. Control characters never reach the page (`intel.shown`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from .. import intel
from ..config import CampaignConfig
from ..intel.counter import CounterFigures, hijack_posts
from ..metrics import Window
from ..store import Store
from ..times import iso_utc
from .content import human_time, platform_name
from .document import Block, Chart, Heading, Paragraph, Table
from .names import Namer

TOP = 10


@dataclass(frozen=True)
class ShownAccount:
    """A counter account as the report shows it."""

    label: str
    named: bool
    platform: str
    followers: int
    posts: int


@dataclass(frozen=True)
class ShownPost:
    """A post (target's, repeated or hijacking) as the report shows it: author labelled, text rewritten."""

    created_at: datetime
    platform: str
    author: str
    text: str
    detail: str  # kind, posts and accounts, or engagement
    url: str | None = None


@dataclass(frozen=True)
class IntelContent:
    """What the report's storm-intelligence sections show."""

    summary: intel.IntelSummary
    trending: tuple[intel.TrendHit, ...]
    target_posts: tuple[ShownPost, ...]
    answered: int
    repeated: tuple[intel.RepeatedText, ...]  # texts as the report shows them
    counter: CounterFigures | None
    counter_accounts: tuple[ShownAccount, ...]
    hijacks: tuple[ShownPost, ...]
    fetched: bool  # whether any trending list was fetched for the window
    fields: dict[str, object]  # what `summary --json` adds, exactly as it gives it (intel.summary_fields)

    def to_json(self) -> dict[str, object]:
        """The fields `summary --json` adds, as it gives them (so summary.json is what `summary --json` prints)."""
        return self.fields


def gather_intel(store: Store, campaign: CampaignConfig, window: Window, namer: Namer, *,
                 max_near_texts: int = intel.MAX_NEAR_TEXTS) -> IntelContent:
    """Read the four answers for the window and name what they show by the report's rules (near-identical
    texts checked on a sample above `max_near_texts` distinct texts)."""
    summary = intel.intel_summary(store, campaign, window, max_near_texts=max_near_texts)
    targets = tuple(ShownPost(p.created_at, p.platform, f"@{intel.shown(p.account)}",
                              intel.shown(namer.text(p.text, p.platform)),
                              p.kind + (", answering a campaign post" if p.in_reply_to_campaign_post else
                                        ", with the campaign's hashtags" if p.campaign_post else ""), p.url)
                    for p in summary.target_posts)
    repeated = tuple(replace(r, text=intel.shown(namer.text(r.text, r.platform))) for r in summary.copies.top)
    counter = intel.counter_figures(store, campaign, window, top=TOP)
    hijacks = hijack_posts(store, campaign, window, TOP) if counter is not None else []
    strangers = Namer(namer.policy, (), _labels(store, campaign, namer, counter, hijacks))
    accounts = tuple(ShownAccount(_label(strangers, a.uid, a.handle, a.followers),
                                  namer.is_named(a.handle, a.followers), a.platform, a.followers, a.posts)
                     for a in (counter.top_accounts if counter else ()))
    shown_hijacks = tuple(ShownPost(h.created_at, h.platform, _label(strangers, h.author_uid, h.handle, h.followers),
                                    intel.shown(namer.text(h.text, h.platform)), f"{h.engagement:,}")
                          for h in hijacks)
    fetched = store.conn.execute("SELECT 1 FROM trends WHERE campaign = ? AND seen_at >= ? AND seen_at < ? LIMIT 1",
                                 (campaign.name, iso_utc(window.since), iso_utc(window.until))).fetchone() is not None
    # summary.json says what `summary --json` says: repeated texts by its stricter rule (no directory of the
    # accounts the posts mention, so every mention but the campaign's own and its targets is hidden).
    fields = summary.to_json(Namer(namer.policy).text)
    return IntelContent(summary=summary, trending=summary.trending, target_posts=targets, fields=fields,
                        answered=sum(p.in_reply_to_campaign_post for p in summary.target_posts), repeated=repeated,
                        counter=counter, counter_accounts=accounts, hijacks=shown_hijacks, fetched=fetched)


def _labels(store: Store, campaign: CampaignConfig, namer: Namer, counter: CounterFigures | None,
            hijacks: list[intel.counter.HijackPost]) -> dict[str, str]:
    """Pseudonyms (the campaign's, stable) for the counter accounts and hijacking authors the report hides."""
    if not namer.policy.pseudonymized:
        return {}
    hidden = [a.uid for a in (counter.top_accounts if counter else ()) if not namer.is_named(a.handle, a.followers)]
    hidden += [h.author_uid for h in hijacks if h.author_uid and not namer.is_named(h.handle, h.followers)]
    return store.assign_pseudonyms(campaign.name, hidden) if hidden else {}


def _label(namer: Namer, uid: str | None, handle: str, followers: int) -> str:
    shown = intel.shown(namer.label(uid, handle, followers))
    return f"@{shown}" if namer.is_named(handle, followers) else shown


def intel_blocks(content: IntelContent | None, drawn: dict[str, Chart], campaign: CampaignConfig,
                 zone: ZoneInfo) -> list[Block]:
    """One section, "Did it work?", with the four answers in reading order (nothing when not gathered). One
    section, not four: on paper it starts one page, and the answers follow each other."""
    if content is None:
        return []
    return [Heading("Did it work?"), *_trending(content, drawn, zone), *_targets(content, campaign, zone),
            *_copies(content), *_counter(content, drawn, zone)]


def _trending(content: IntelContent, drawn: dict[str, Chart], zone: ZoneInfo) -> list[Block]:
    blocks: list[Block] = [Heading("Did it trend?", 3)]
    if not content.fetched:
        blocks.append(Paragraph("No trending list was fetched in this window (trend_locations, X and Mastodon).",
                                note=True))
        return blocks
    if not content.trending:
        blocks.append(Paragraph("None of the campaign's hashtags was in the trending lists fetched in this window."))
        return blocks
    blocks.append(Paragraph(f"The campaign's hashtags (or hashtags containing one) in the trending lists fetched for "
                            f"it, by place; times in {zone.key}. A rank is the place in the platform's list."))
    if "trends.png" in drawn:
        blocks.append(drawn["trends.png"])
    rows = tuple((platform_name(hit.platform), intel.shown(hit.location), intel.shown(hit.tag), f"#{hit.best_rank}",
                  human_time(hit.first_seen, zone), human_time(hit.last_seen, zone),
                  "" if hit.volume is None else f"{hit.volume:,}") for hit in content.trending)
    blocks.append(Table(caption="Where the campaign trended", header=("Platform", "Place", "Hashtag", "Best rank",
                                                                      "First seen", "Last seen", "Volume"),
                        rows=rows, numeric=(False, False, False, True, False, False, True)))
    return blocks


def _targets(content: IntelContent, campaign: CampaignConfig, zone: ZoneInfo) -> list[Block]:
    blocks: list[Block] = [Heading("Did the targets respond?", 3)]
    names = ", ".join(f"@{t}" for t in (*campaign.targets, *campaign.targets_mastodon, *campaign.targets_bluesky))
    if not names:
        return [*blocks, Paragraph("The campaign lists no target accounts.")]
    blocks.append(Paragraph(f"Posts by the accounts the campaign addresses ({names}) in this window, and whether "
                            "they answered a campaign post (a reply, quote or repost of one). "
                            f"{content.answered:,} of {len(content.target_posts):,} posts did."))
    rows = tuple((human_time(p.created_at, zone), p.author, platform_name(p.platform), p.detail, p.text)
                 for p in content.target_posts)
    blocks.append(Table(caption="The targets' posts", header=("Time", "Account", "Platform", "What", "Text"), rows=rows,
                        numeric=(False,) * 5, text_column=4, empty="No target posted in this window."))
    return blocks


def _copies(content: IntelContent) -> list[Block]:
    copies = content.summary.copies
    warning = copies.share > intel.WARN_SHARE
    if copies.sampled is None:
        counted = f"{copies.copies:,} of {copies.posts:,} posts ({copies.share:.0%}, reposts left out)"
    else:  # identical copies are counted, near-identical ones estimated: a rounded share says enough
        counted = (f"About {copies.share:.0%} of {copies.posts:,} posts (reposts left out; estimated from a sample "
                   f"of {copies.sampled:,} texts for near-identical versions, identical ones counted)")
    text = (f"{counted} say the same as a post by another account, word for word or nearly (links, mentions and "
            "hashtags aside)"
            + (f". Above {intel.WARN_SHARE:.0%}: {intel.ADVICE}." if warning else "."))
    rows = tuple((str(rank), r.text, f"{r.posts:,} posts by {r.accounts:,} accounts")
                 for rank, r in enumerate(content.repeated, 1))
    return [Heading("Copy-paste", 3), Paragraph(text, note=warning),
            Table(caption="The texts repeated most (one version of each)", header=("#", "Text", "Posted"), rows=rows,
                  numeric=(True, False, False), text_column=1, empty="No text was repeated by several accounts.")]


def _counter(content: IntelContent, drawn: dict[str, Chart], zone: ZoneInfo) -> list[Block]:
    counter = content.counter
    if counter is None:
        return []
    share = counter.share_of_voice
    blocks: list[Block] = [Heading("Counter-hashtags", 3), Paragraph(
        f"{counter.posts:,} posts carried the counter-hashtags against {counter.campaign_posts:,} campaign posts: a "
        f"share of voice of {'–' if share is None else f'{share:.0%}'} for the campaign. {counter.both:,} posts "
        "carried both (hijack candidates).")]
    if "share_of_voice.png" in drawn:
        blocks.append(drawn["share_of_voice.png"])
    rows = tuple((human_time(p.created_at, zone), p.author, platform_name(p.platform), p.text, p.detail)
                 for p in content.hijacks)
    blocks.append(Table(caption="Posts carrying both, most engagement first", header=("Time", "Account", "Platform",
                                                                                     "Text", "Engagement"),
                        rows=rows, numeric=(False, False, False, False, True), text_column=3))
    accounts = tuple((str(rank), a.label, platform_name(a.platform), f"{a.followers:,}", f"{a.posts:,}")
                     for rank, a in enumerate(content.counter_accounts, 1))
    blocks.append(Table(caption="Accounts posting the counter-hashtags most", header=("#", "Account", "Platform",
                                                                                      "Followers", "Posts"),
                        rows=accounts, numeric=(True, False, False, True, True)))
    return blocks
