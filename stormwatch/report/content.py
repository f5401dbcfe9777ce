"""What a report says, gathered once from `stormwatch.metrics` with the naming rules applied.

The HTML, Markdown, CSV and chart writers all read one `ReportContent`, so every output names the same
accounts the same way; nothing here runs SQL or touches files.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .. import __version__, metrics, platforms
from ..config import CampaignConfig, Config
from ..metrics import AccountStat, CoverageBucket, SourceRuns, Summary, Volume, VolumeBucket, Window
from ..privacy.naming import Namer, NamingPolicy
from ..store import Store
from .rows import mentioned_accounts

if TYPE_CHECKING:
    from .intel import IntelContent

TOP_N = 10
TOP_SHORT = 5  # rows of the tables of long texts (top posts, repeated texts, hijacks) and counter accounts
CONTEXT = timedelta(hours=1)  # the volume chart shows this much before and after the storm window
COVERAGE_GAPS_SHOWN = 10
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class NamedAccount:
    """One account as the report shows it."""

    label: str
    named: bool
    name: str | None
    platform: str
    followers: int
    posts: int
    engagement: int


@dataclass(frozen=True)
class NamedPost:
    """One post as the report shows it (text rewritten, link only for named authors)."""

    created_at: datetime
    local_time: str
    platform: str
    kind: str
    author: str
    author_named: bool
    text: str
    likes: int
    reposts: int
    replies: int
    quotes: int
    impressions: int | None
    engagement: int
    url: str | None


@dataclass(frozen=True)
class CoverageGap:
    """A bucket where the platform counted more posts than were collected."""

    start: datetime
    collected: int
    counted: int


@dataclass(frozen=True)
class SourceCoverage:
    """Collected posts against one platform's own counts over the window."""

    source: str
    buckets: tuple[CoverageBucket, ...]
    counted_buckets: int
    collected: int
    counted: int
    short_buckets: int
    largest_gaps: tuple[CoverageGap, ...]

    @property
    def has_counts(self) -> bool:
        """Whether the platform's counts were fetched for any bucket of the window."""
        return self.counted_buckets > 0

    @property
    def share(self) -> float | None:
        """Collected as a share of counted, over the buckets that have counts."""
        return self.collected / self.counted if self.counted else None


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows, read from metrics with the naming policy applied."""

    campaign: CampaignConfig
    window: Window
    timezone: ZoneInfo
    generated_at: datetime
    bucket_seconds: int
    summary: Summary
    platforms: tuple[str, ...]
    volume: Volume
    coverage: tuple[SourceCoverage, ...]
    top_by_posts: tuple[NamedAccount, ...]
    top_posts: tuple[NamedPost, ...]
    co_hashtags: tuple[tuple[str, int], ...]
    campaign_hashtags: tuple[tuple[str, int], ...]
    target_mentions: tuple[tuple[str, int], ...]
    runs: tuple[SourceRuns, ...]
    policy: NamingPolicy
    namer: Namer
    contributors: tuple[AccountStat, ...]
    version: str = __version__
    intel: IntelContent | None = None  # trending, targets' responses, copy-paste, counter-hashtags (intel.py)
    # Volume around the window (an hour each side, where collection covered it), for the volume chart only.
    before: tuple[VolumeBucket, ...] = ()
    after: tuple[VolumeBucket, ...] = ()
    cost_usd: float | None = None  # the runs' estimated cost over the window's UTC days (None: no run recorded)

    @property
    def interim(self) -> bool:
        """Whether the report was written before its window ended (its figures are the storm so far)."""
        return self.generated_at < self.window.until

    @property
    def shown_until(self) -> datetime:
        """Where the report's time axis ends: the window's end, or the writing time of an interim report."""
        return min(self.window.until, self.generated_at)

    @property
    def not_reported_note(self) -> str | None:
        """What the "—" cells mean for this report's platforms (None when every platform reports everything)."""
        return platforms.not_reported_note(self.summary.totals.by_platform or self.platforms)

    @property
    def has_posts(self) -> bool:
        """Whether the window holds any campaign post."""
        return self.summary.totals.all.posts > 0

    @property
    def hidden_contributors(self) -> int:
        """How many contributors the report shows under a pseudonym."""
        return sum(not self.policy.is_named(a.handle, a.followers) for a in self.contributors)

    @property
    def timezone_name(self) -> str:
        """The campaign's time zone name (`Asia/Hebron`)."""
        return self.timezone.key


def empty_window(store: Store, campaign: CampaignConfig, window: Window, now: datetime) -> str | None:
    """Why there is nothing to report, in one line (`no posts in the window yet: the storm starts Mon 7 Dec 23:00
    Asia/Hebron`), or None when the window holds posts."""
    if metrics.totals(store, campaign.name, window).all.posts:
        return None
    zone = campaign.timezone

    def when(moment: datetime) -> str:
        local = moment.astimezone(zone)
        return f"{local:%a} {local.day} {local:%b %H:%M}"

    if now < campaign.start and window.since <= campaign.start:
        return f"no posts in the window yet: the storm starts {when(campaign.start)} {zone.key}"
    if now < window.since:
        return f"no posts in the window yet: it starts {when(window.since)} {zone.key}"
    span = f"{when(window.since)} → {when(window.until)} {zone.key}"
    if now < window.until:
        return f"no posts in the window yet ({span}); `stormwatch status` shows what was collected and when"
    return f"no posts in the window {span}: nothing to report; `stormwatch status` shows what was collected and when"


def name_accounts(store: Store, campaign: CampaignConfig, window: Window,
                  policy: NamingPolicy) -> tuple[Namer, tuple[AccountStat, ...]]:
    """The window's contributors, and a Namer holding a pseudonym for every hidden contributor and mention.

    The pseudonyms are assigned here, in one store call, before anything else of the report is read.
    """
    contributors = tuple(metrics.accounts(store, campaign.name, window))
    # The storm-intelligence section shows the accounts posting the counter-hashtags most (report/intel.py):
    # named by the same rules, so labelled in the same call.
    counter = campaign.counter()
    opponents = tuple(metrics.top_accounts(store, counter.name, window, limit=TOP_SHORT)) if counter else ()
    namer = Namer.for_report(store, campaign, policy,
                             ((a.uid, a.handle, a.followers) for a in (*contributors, *opponents)),
                             mentioned_accounts(store, campaign.name, window))
    return namer, contributors


def gather(store: Store, campaign: CampaignConfig, window: Window, namer: Namer,
           contributors: tuple[AccountStat, ...], *, generated_at: datetime, config: Config) -> ReportContent:
    """Read every figure, table and series the report shows, naming accounts through `namer` (the config says
    which queries' platform counts are the campaign's coverage)."""
    name = campaign.name
    summary = metrics.summary(store, campaign, window, config=config, now=generated_at)
    bucket_seconds = metrics.bucket_seconds_for(window)
    volume = metrics.volume(store, name, window, bucket_seconds)
    # An interim report: the buckets after the writing time are the future, not quiet minutes.
    volume = replace(volume, buckets=tuple(b for b in volume.buckets if b.start < generated_at))
    runs = tuple(metrics.run_history(store, name))
    before, after = _context(store, name, window, bucket_seconds, runs, generated_at)
    top_posts = tuple(named_post(namer, post, campaign.timezone)
                      for post in metrics.top_posts(store, name, window, TOP_SHORT))
    platforms = tuple(sorted(set(campaign.sources) | set(summary.totals.by_platform)))
    from .intel import gather_intel  # intel.py reads this module's helpers

    return ReportContent(
        campaign=campaign, window=window, timezone=campaign.timezone, generated_at=generated_at,
        bucket_seconds=bucket_seconds, summary=summary, platforms=platforms, volume=volume,
        coverage=tuple(source_coverage(store, name, window, bucket_seconds, source,
                                       metrics.counted_queries(config, campaign, source), until=generated_at)
                       for source in campaign.sources),
        # The top-10 table is an ordering of every contributor, with top_accounts' sort key.
        top_by_posts=_top(namer, contributors, lambda a: (-a.posts, -a.engagement, a.uid)),
        top_posts=top_posts,
        co_hashtags=tuple(metrics.co_hashtags(store, campaign, window, TOP_N)),
        campaign_hashtags=tuple(metrics.campaign_hashtags(store, campaign, window)),
        target_mentions=tuple(metrics.target_mentions(store, campaign, window)),
        runs=runs, policy=namer.policy, namer=namer, contributors=contributors, before=before, after=after,
        intel=gather_intel(store, campaign, window, namer),
        # the headline's cost (the window's billing days and the plan); None when no run is recorded (imported)
        cost_usd=summary.cost.total_usd if summary.cost is not None and summary.cost.runs else None)


def _context(store: Store, campaign: str, window: Window, bucket_seconds: int, runs: tuple[SourceRuns, ...],
             written_at: datetime) -> tuple[tuple[VolumeBucket, ...], tuple[VolumeBucket, ...]]:
    """Posts per bucket in the hour before the window and the hour after it, as far as collection covered them
    (the runs' first start and last finish; without runs, as far as posts exist), so that the storm window's
    shading stands out against the build-up and the tail. Nothing for windows not on whole buckets."""
    size = timedelta(seconds=bucket_seconds)
    if bucket_seconds >= 86400 or window.since_ts % bucket_seconds or window.until_ts % bucket_seconds:
        return (), ()
    first_run = min((r.first_started_at for r in runs if r.first_started_at), default=None)
    last_run = max((r.last_finished_at for r in runs if r.last_finished_at), default=None)

    def buckets(since: datetime, until: datetime) -> list[VolumeBucket]:
        if until <= since:
            return []
        part = Window(since, until, window.platform)
        return list(metrics.volume(store, campaign, part, bucket_seconds, reader="rows").buckets)

    lead = buckets(window.since - CONTEXT, window.since)
    if first_run is not None:
        lead = [b for b in lead if b.start + size > first_run]  # collected from then on
    else:
        lead = lead[next((i for i, b in enumerate(lead) if b.posts), len(lead)):]
    tail = buckets(window.until, min(window.until + CONTEXT, written_at))
    tail = [b for b in tail if b.start < written_at]
    if last_run is not None:
        tail = [b for b in tail if b.start < last_run]
    else:
        last = max((i for i, b in enumerate(tail) if b.posts), default=-1)
        tail = tail[:last + 1]
    return tuple(lead), tuple(tail)


def _top(namer: Namer, contributors: tuple[AccountStat, ...],
         key: Callable[[AccountStat], tuple[Any, ...]]) -> tuple[NamedAccount, ...]:
    """The first TOP_N contributors by a sort key, as the report shows them."""
    ranked = heapq.nsmallest(TOP_N, contributors, key=key)  # one pass, not a sort of every contributor
    return tuple(named_account(namer, stat) for stat in ranked)


def named_account(namer: Namer, stat: AccountStat) -> NamedAccount:
    """An account as the report shows it: handle and name, or pseudonym and no name."""
    return NamedAccount(label=namer.label(stat.uid, stat.handle, stat.followers),
                        named=namer.is_named(stat.handle, stat.followers),
                        name=namer.display_name(stat.name, stat.handle, stat.followers, stat.platform),
                        platform=stat.platform,
                        followers=stat.followers, posts=stat.posts, engagement=stat.engagement)


def named_post(namer: Namer, post: metrics.PostStat, timezone: ZoneInfo) -> NamedPost:
    """A post as the report shows it: author labelled, text rewritten, link kept only for a named author (and, for
    a repost, quote or reply, only when the post it references is known and its author named too)."""
    named = namer.is_named(post.handle, post.followers)
    linked = named and (post.kind == "original" or namer.is_named(post.ref_handle, post.ref_followers))
    return NamedPost(
        created_at=post.created_at, local_time=local_iso(post.created_at, timezone),
        platform=post.platform, kind=post.kind, author=namer.label(post.author_uid, post.handle, post.followers),
        author_named=named, text=namer.text(post.text, post.platform), likes=post.likes, reposts=post.reposts,
        replies=post.replies, quotes=post.quotes, impressions=post.impressions, engagement=post.engagement,
        url=post.url if linked else None)


def source_coverage(store: Store, campaign: str, window: Window, bucket_seconds: int, source: str,
                    queries: tuple[str, ...], *, until: datetime | None = None) -> SourceCoverage:
    """Collected vs the platform's counts of the campaign's own `queries` for one source, largest shortfalls too
    (buckets from `until` on, the future of an interim report, left out)."""
    buckets = tuple(b for b in metrics.coverage(store, campaign, window, bucket_seconds, source, queries=queries)
                    if until is None or b.start < until)
    counted = [(b, b.counted) for b in buckets if b.counted is not None]
    gaps = sorted((CoverageGap(b.start, b.collected, count) for b, count in counted if count > b.collected),
                  key=lambda g: (g.collected - g.counted, g.start))
    return SourceCoverage(source=source, buckets=buckets, counted_buckets=len(counted),
                          collected=sum(b.collected for b, _ in counted), counted=sum(count for _, count in counted),
                          short_buckets=len(gaps), largest_gaps=tuple(gaps[:COVERAGE_GAPS_SHOWN]))


def platform_name(platform: str) -> str:
    """A platform's display name (`X`, `Mastodon`)."""
    return platforms.label(platform)


def account_label(account: NamedAccount) -> str:
    """An account as tables and charts show it: `@handle` when named, its pseudonym otherwise."""
    return f"@{account.label}" if account.named else account.label


# --- times as the report shows them -------------------------------------------------------------


def local_iso(moment: datetime, timezone: ZoneInfo) -> str:
    """A moment in the campaign's zone, ISO-8601 to the second with its offset (`2021-02-07T18:00:00+02:00`)."""
    return moment.astimezone(timezone).isoformat(timespec="seconds")


def utc_offset(moment: datetime, timezone: ZoneInfo) -> str:
    """The zone's offset at a moment, as `UTC+02:00`."""
    offset = moment.astimezone(timezone).utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def human_time(moment: datetime, timezone: ZoneInfo) -> str:
    """`Sun 7 Feb 2021, 18:00` in the given zone."""
    local = moment.astimezone(timezone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def describe_window(window: Window, timezone: ZoneInfo) -> tuple[str, str]:
    """The window in the campaign's zone (`… (Asia/Hebron, UTC+02:00)`) and in UTC."""
    local = (f"{human_time(window.since, timezone)} → {human_time(window.until, timezone)} "
             f"({timezone.key}, {utc_offset(window.since, timezone)})")
    utc = f"{human_time(window.since, UTC_ZONE)} → {human_time(window.until, UTC_ZONE)} UTC"
    return local, utc


def bucket_phrase(seconds: int) -> str:
    """A bucket size in words: `minute`, `5 minutes`, `hour`, `day`."""
    named = {60: "minute", 3600: "hour", 86400: "day"}
    if seconds in named:
        return named[seconds]
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
