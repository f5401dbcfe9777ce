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
from ..privacy.naming import Namer, target_handles
from ..store import Store
from .content import TOP_SHORT, platform_name
from .document import Block, Heading, Lines, NotReported, Paragraph, Table

TRENDS_SHOWN = 8  # rows of the trending table: the best ranked (summary.json lists every one)
TEXTS_SHOWN = 3  # repeated texts and hijacking posts shown (summary.json lists ten repeated texts)


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
                                        ", with the campaign's hashtags" if p.campaign_post else ""),
                              # The link leads to the post it answers too: kept only when that author is named.
                              p.url if p.kind == "original" or namer.is_named(p.ref_handle, p.ref_followers) else None)
                    for p in summary.target_posts)
    repeated = tuple(replace(r, text=intel.shown(namer.text(r.text, r.platform)))
                     for r in summary.copies.top[:TEXTS_SHOWN])
    counter = intel.counter_figures(store, campaign, window, top=TOP_SHORT)
    hijacks = hijack_posts(store, campaign, window, TEXTS_SHOWN) if counter is not None else []
    accounts = tuple(ShownAccount(_label(namer, a.uid, a.handle, a.followers),
                                  namer.is_named(a.handle, a.followers), a.platform, a.followers, a.posts)
                     for a in (counter.top_accounts if counter else ()))
    shown_hijacks = tuple(ShownPost(h.created_at, h.platform, _label(namer, h.author_uid, h.handle, h.followers),
                                    intel.shown(namer.text(h.text, h.platform)), f"{h.engagement:,}")
                          for h in hijacks)
    fetched = intel.fetched(store, campaign.name, window.since, window.until)
    # summary.json says what `summary --json` says: repeated texts by its stricter rule (no directory of the
    # accounts the posts mention, so every mention but the campaign's own and its targets is hidden).
    fields = summary.to_json(Namer(namer.policy).text)
    return IntelContent(summary=summary, trending=summary.trending, target_posts=targets, fields=fields,
                        answered=sum(p.in_reply_to_campaign_post for p in summary.target_posts), repeated=repeated,
                        counter=counter, counter_accounts=accounts, hijacks=shown_hijacks, fetched=fetched)


def _label(namer: Namer, uid: str | None, handle: str, followers: int) -> str:
    shown = intel.shown(namer.label(uid, handle, followers))
    return f"@{shown}" if namer.is_named(handle, followers) else shown


def intel_blocks(content: IntelContent | None, campaign: CampaignConfig,
                 zone: ZoneInfo) -> list[Block]:
    """One section, "Did it work?", with the four answers in reading order (nothing when not gathered). One
    section, not four: on paper it starts one page, and the answers follow each other."""
    if content is None:
        return []
    return [Heading("Did it work?"), *_trending(content, zone), *_targets(content, campaign, zone),
            *_copies(content), *_counter(content, zone)]


def _trending(content: IntelContent, zone: ZoneInfo) -> list[Block]:
    blocks: list[Block] = [Heading("Did it trend?", 3)]
    if not content.fetched:
        blocks.append(Paragraph("No trending list was fetched in this window (trend_locations, X and Mastodon).",
                                note=True))
        return blocks
    if not content.trending:
        blocks.append(Paragraph("None of the campaign's hashtags was in the trending lists fetched in this window."))
        return blocks
    blocks.append(Paragraph("The campaign's hashtags (or hashtags containing one) in the trending lists fetched. "
                            "Best rank: its highest place in the list (#1 is the top); In the list: first and last "
                            "seen there; Volume: the platform's own figure for the trend when last seen (X: posts it "
                            "counted; Mastodon: the tag's uses that day; —: none given)."))
    rows = tuple((Lines((intel.shown(hit.tag), f"{intel.shown(hit.location)} · {platform_name(hit.platform)}")),
                  f"#{hit.best_rank}", _span(hit.first_seen, hit.last_seen, zone),
                  NotReported() if hit.volume is None else f"{hit.volume:,}")
                 for hit in sorted(content.trending, key=lambda h: (h.best_rank, h.platform != "x", h.location,
                                                                    h.tag))[:TRENDS_SHOWN])
    shown = (f"the {TRENDS_SHOWN} best ranked of {len(content.trending)}, all in summary.json"
             if len(content.trending) > TRENDS_SHOWN else "best ranked first") + "; "
    blocks.append(Table(caption=f"Where the campaign trended ({shown}first and last seen in the list, {zone.key})",
                        header=("Hashtag and place", "Best rank", "In the list", "Volume"), rows=rows,
                        numeric=(False, True, False, True)))
    return blocks


def _targets(content: IntelContent, campaign: CampaignConfig, zone: ZoneInfo) -> list[Block]:
    blocks: list[Block] = [Heading("Did the targets respond?", 3)]
    names = ", ".join(f"@{t}" for t in target_handles(campaign))
    if not names:
        return [*blocks, Paragraph("The campaign lists no target accounts.")]
    blocks.append(Paragraph(f"Posts by the accounts the campaign addresses ({names}) in this window, and whether "
                            "they answered a campaign post (a reply, quote or repost of one). "
                            f"{content.answered:,} of {len(content.target_posts):,} posts did."))
    rows = tuple((_time(p.created_at, zone), Lines((p.author, f"{platform_name(p.platform)} · {p.detail}")), p.text)
                 for p in content.target_posts)
    blocks.append(Table(caption=f"The targets' posts ({zone.key})", header=("Time", "Account", "Text"), rows=rows,
                        numeric=(False,) * 3, text_column=2, empty="No target posted in this window.", wide=True))
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
            Table(caption="The texts repeated most (one version of each; Posted: the posts with it, by how many "
                          "accounts)", header=("#", "Text", "Posted"), rows=rows,
                  numeric=(True, False, False), text_column=1, empty="No text was repeated by several accounts.")]


def _counter(content: IntelContent, zone: ZoneInfo) -> list[Block]:
    counter = content.counter
    if counter is None:
        return []
    share = counter.share_of_voice
    blocks: list[Block] = [Heading("Counter-hashtags", 3), Paragraph(
        f"{counter.posts:,} posts carried the counter-hashtags against {counter.campaign_posts:,} supporters' posts: "
        f"a share of voice of {'–' if share is None else f'{share:.0%}'} for the campaign. {counter.both:,} posts "
        "carried both (hijack candidates: counted here, never among the supporters' posts). The volume chart (The "
        "storm over time) draws them against each other.")]
    rows = tuple((_time(p.created_at, zone), Lines((p.author, platform_name(p.platform))), p.text, p.detail)
                 for p in content.hijacks)
    blocks.append(Table(caption=f"Posts carrying both, most engagement (likes, reposts, replies and quotes) first "
                                f"({zone.key})",
                        header=("Time", "Account", "Text", "Engagement"), rows=rows,
                        numeric=(False, False, False, True), text_column=2, wide=True))
    accounts = tuple((str(rank), Lines((a.label, platform_name(a.platform))), f"{a.followers:,}", f"{a.posts:,}")
                     for rank, a in enumerate(content.counter_accounts, 1))
    blocks.append(Table(caption="Accounts posting the counter-hashtags most (Posts: their counter-hashtag posts "
                                "in the window)", header=("#", "Account", "Followers", "Posts"),
                        rows=accounts, numeric=(True, False, True, True)))
    return blocks


def _time(moment: datetime, zone: ZoneInfo) -> str:
    """`Sun 7 Feb 18:30`: the day with the time (a window can span days), short enough for a narrow column."""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _span(first: datetime, last: datetime, zone: ZoneInfo) -> Lines:
    """`18:15–22:01` over its day (`Sun 7 Feb`) when both fall on one day, else both with their days."""
    start, end = first.astimezone(zone), last.astimezone(zone)
    if start.date() == end.date():
        return Lines((f"{start:%H:%M}–{end:%H:%M}", f"{start:%a} {start.day} {start:%b}"))
    return Lines((_time(first, zone), f"to {_time(last, zone)}"))
