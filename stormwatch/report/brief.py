""""The storm in brief": the report's first words, five to eight plain sentences with the figures a journalist
would quote (supporters' posts and people, reach, peak, languages, trending, the targets' answers, copy-paste,
cost), each taken from the report's own content so that the brief and the tables can never disagree.

A figure that is not there (no trending list fetched, no targets, a cost no run recorded) leaves its sentence
out; it never becomes a zero.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from .. import intel
from ..metrics import languages_reached
from ..platforms import not_reported
from .content import ReportContent, platform_name
from .languages import language_name

MOST_SENTENCES = 8
LANGUAGES_NAMED = 3


def brief(content: ReportContent) -> tuple[str, ...]:
    """The brief's sentences in reading order (at most eight)."""
    counter = _counter(content)
    sentences = [_who(content), _reach(content), _peak(content), _languages(content), _trending(content),
                 _targets(content), _copies(content), counter, _cost(content)]
    found = [sentence for sentence in sentences if sentence]
    if len(found) > MOST_SENTENCES and counter:  # the share of voice is the first to go: its section tells it
        found.remove(counter)
    return tuple(found[:MOST_SENTENCES])


def listed(items: list[str], last: str = "and") -> str:
    """Items in a sentence: `a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _clock(moment: datetime, zone: ZoneInfo, day: bool) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}" if day else f"{local:%H:%M}"


def _who(content: ReportContent) -> str:
    totals = content.summary.totals.all
    zone = content.timezone
    since, until = content.window.since, content.shown_until
    one_day = since.astimezone(zone).date() == until.astimezone(zone).date()
    if one_day:
        local = since.astimezone(zone)
        when = (f"On {local:%a} {local.day} {local:%B %Y}, from {_clock(since, zone, False)} to "
                f"{_clock(until, zone, False)} ({content.timezone_name})")
    else:
        when = f"From {_clock(since, zone, True)} to {_clock(until, zone, True)} ({content.timezone_name})"
    tags = listed([f"#{tag}" for tag in content.campaign.hashtags], "or")
    where = listed([platform_name(p) for p in content.summary.totals.by_platform])
    people = f"{totals.contributors:,} {'person' if totals.contributors == 1 else 'people'}"
    times = "once" if totals.posts == 1 else f"{totals.posts:,} times"
    return f"{when}, {people} posted {times} with {tags} on {where}" + (" so far." if content.interim else ".")


def _reach(content: ReportContent) -> str:
    totals = content.summary.totals.all
    sentence = (f"Their followers add up to a potential reach of {totals.potential_reach:,} accounts, and their "
                f"posts drew {totals.engagement:,} likes, reposts, replies and quotes")
    counted = [platform_name(p) for p, t in content.summary.totals.by_platform.items()
               if "impressions" not in not_reported(p) and t.impressions]
    if counted:
        sentence += f"; {listed(counted)} counted {totals.impressions:,} impressions"
    return sentence + "."


def _peak(content: ReportContent) -> str | None:
    peak = content.summary.peak
    if peak.minute is None:
        return None
    return (f"The busiest minute, from {_clock(peak.minute, content.timezone, False)}, brought "
            f"{peak.posts:,} post{'' if peak.posts == 1 else 's'}.")


def _languages(content: ReportContent) -> str | None:
    counts = content.summary.languages
    reached = languages_reached(counts)
    if not reached:
        return None
    stated = [c for c in counts if c.code is not None]
    named = [f"{language_name(c.code)} ({c.posts:,})" for c in stated[:LANGUAGES_NAMED]]
    if reached == 1:
        return f"It reached 1 language: every post that stated one was in {language_name(stated[0].code)}."
    rest = reached - len(named)
    more = f" and {rest} more" if rest else ""
    return f"It reached {reached} languages, most posts in {listed(named) if not rest else ', '.join(named)}{more}."


def _trending(content: ReportContent) -> str | None:
    found = content.intel
    if found is None or not found.fetched:
        return None
    if not found.trending:
        return "None of its hashtags made the trending lists fetched."
    best = min(found.trending, key=lambda h: (h.best_rank, h.first_seen))
    places = {(hit.platform, hit.location) for hit in found.trending}
    others = len(places) - 1
    sentence = (f"{intel.shown(best.tag)} trended in {intel.shown(best.location)} on {platform_name(best.platform)}, "
                f"at best #{best.best_rank}")
    if others:
        sentence += f"; the campaign's hashtags were in the trending lists of {others} more place" + (
            "" if others == 1 else "s")
    return sentence + "."


def _targets(content: ReportContent) -> str | None:
    campaign = content.campaign
    if not (campaign.targets or campaign.targets_mastodon or campaign.targets_bluesky) or content.intel is None:
        return None
    answers = [p for p in content.intel.summary.target_posts if p.in_reply_to_campaign_post]
    if not answers:
        posted = len(content.intel.summary.target_posts)
        return ("None of the targets answered a campaign post" + (
            f" (they posted {posted:,} time{'' if posted == 1 else 's'} in the window)." if posted else "."))
    who = list(dict.fromkeys(f"@{intel.shown(p.account)} on {platform_name(p.platform)}" for p in answers))
    return f"{listed(who)} answered campaign posts."


def _copies(content: ReportContent) -> str | None:
    if content.intel is None:
        return None
    copies = content.intel.summary.copies
    if not copies.posts:
        return None
    share = f"{'About ' if copies.sampled is not None else ''}{copies.share:.0%}"
    return (f"{share} of the posts (reposts aside) copied another account's text word for word or nearly"
            + (f" (above {intel.WARN_SHARE:.0%}: platforms may filter identical posts)."
               if copies.share > intel.WARN_SHARE else "."))


def _counter(content: ReportContent) -> str | None:
    counter = content.intel.counter if content.intel is not None else None
    if counter is None or counter.share_of_voice is None:
        return None
    return (f"Against {counter.posts:,} posts with the counter-hashtags, the campaign held "
            f"{counter.share_of_voice:.0%} of the voice.")


def _cost(content: ReportContent) -> str | None:
    cost = content.cost_usd
    if cost is None:
        return None
    if not cost:
        return "Collecting it cost nothing: no paid platform reads were made."
    return f"Collecting it cost an estimated ${cost:,.2f} in X API fees."
