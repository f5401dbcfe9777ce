"""The pre-storm cost plan: what collecting the storm on X will cost, from X's own counts and the config's prices.

X bills every post and user read, so "will the budget last?" must be answered before the storm starts. The plan
asks X's counts endpoint (`GET /2/tweets/counts/recent`, hourly, the last 7 days) for the campaign's query
(one request per query, and one for the targets' and the counter-hashtags' queries) and, unless the config says
how often its posts are reposted, reads one page of recent search; all billed and recorded as a run of source
`plan`.

The rules (stated here because every figure depends on them):

* **reposts**: X's counts have counted no reposts since 2026-05-04 (they count what search returns), so the
  counts give the campaign's own posts (originals, quotes, replies) and the reposts are estimated: the own posts
  counted x **reposts per own post**, which is `[x] reposts_per_original` when set, else the mean
  `retweet_count` of a sample: one page of recent search (at most 100 of the campaign's newest own posts made
  at least `SAMPLE_SETTLED` before now, so that their reposts have mostly come), billed and recorded like the
  counts. No sample (no post old enough): the reposts are not estimated, and the plan says so.
* **posts per day** = (own posts counted + reposts estimated) over the last 7 days / the days counted;
  **repost share** = reposts estimated / that total.
* **expected posts** in the window = the larger of the everyday pace over the window (posts per day x window
  days) and `goal_posts`: the storm is planned to reach its goal, and will not bring less than an ordinary day.
  With `include_reposts = false` only the share that is not reposts is read.
* **expected authors** (each read once a day, as a user) = `goal_contributors` when set, else
  `AUTHORS_PER_POST` of the expected posts (most people post once or twice in a storm, a few post a lot).
* **counts requests**: the collector asks for per-minute counts once per query and run, a run every
  `storm_interval` through the window.
* **cost** = posts x post price + authors x user price + counts requests x counts price.
* **storm intelligence** (issue 12), added to the cost: the trends requests (each place in `trend_locations`, once
  every `trends_interval` through the window, at `trends_request_usd`); the targets' own posts, read by a `from:`
  search from the storm's start to a day after its end (their posts a day over the last 7 days, counted like the
  campaign's: one more counts request; each post read, each target read as a user once a day); and the
  counter-hashtags, collected like the campaign's own (their everyday pace over the window, one more counts
  request; `AUTHORS_PER_POST` authors a post). A counter wave on the day is not in any count: it costs more.
* **when the budget runs out**: spending at the goal's pace (the cost spread evenly over the window), the daily
  budget resetting at 00:00 UTC; null when it lasts.

Mastodon and Bluesky reads cost nothing, and the plan says so.
"""

from __future__ import annotations

import json
import logging
import math
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .archive.writer import RawArchive
from .collector import archived
from .config import DEFAULT_CONFIG, CampaignConfig, Config, XConfig, parse_config
from .errors import MalformedPage, RateLimited, SourceError, StormwatchError
from .metrics.spending import PLAN_SOURCE
from .platforms import x_search_queries
from .sources import registry
from .sources.capabilities import TARGETS_FOLLOW_UP, Counted, RepostSampled, Source, TargetWatching
from .store import Store, utc_day
from .times import Clock, format_duration, iso_utc

log = logging.getLogger(__name__)

COUNTED_SPAN = timedelta(days=7)
REACH_MARGIN = timedelta(minutes=2)  # X refuses a start_time exactly 7 days back
COUNTS_LAG = timedelta(seconds=30)  # X counts up to 30 seconds before now
AUTHORS_PER_POST = 0.3
PAID_PLATFORM = "x"
SAMPLE_SETTLED = timedelta(days=1)  # the repost sample's posts are this old at least: their reposts have come
FROM_SAMPLE, FROM_CONFIG = "sample", "config"


@dataclass(frozen=True)
class Plan:
    """The cost plan of one campaign's storm window (X), and the free platforms beside it."""

    campaign: str
    counted_since: datetime | None
    counted_until: datetime | None
    posts_last_7_days: int | None
    posts_without_reposts_last_7_days: int | None
    window_days: float
    include_reposts: bool
    goal_posts: int | None
    estimated_posts: int
    estimated_authors: int
    counts_requests: int
    estimated_cost_usd: float
    cost_without_reposts_usd: float
    daily_budget_usd: float | None
    budget_runs_out_at: datetime | None
    free_platforms: tuple[str, ...]
    requests_made: int
    plan_cost_usd: float
    intel: IntelCost | None = None  # trends, the targets' posts, the counter-hashtags (included in the costs above)
    reposts_per_original: float | None = None  # reposts per own post: None when not estimated
    reposts_from: str | None = None  # FROM_SAMPLE, FROM_CONFIG, or None (not estimated)
    sample_posts: int = 0  # own posts in the sample page

    @property
    def posts_per_day(self) -> float | None:
        """Posts a day on the campaign's hashtags over the last 7 days (X)."""
        if self.posts_last_7_days is None or self.counted_since is None or self.counted_until is None:
            return None
        return self.posts_last_7_days / ((self.counted_until - self.counted_since) / timedelta(days=1))

    @property
    def repost_share(self) -> float | None:
        """The share of reposts among those posts (estimated; None when it could not be)."""
        if not self.posts_last_7_days or self.posts_without_reposts_last_7_days is None or self.reposts_from is None:
            return None
        return 1 - self.posts_without_reposts_last_7_days / self.posts_last_7_days

    @property
    def budget_covers(self) -> bool:
        """Whether the daily budget lasts through the window (no budget: nothing stops the reads)."""
        return self.budget_runs_out_at is None

    def to_json(self) -> dict[str, Any]:
        """The fields `stormwatch plan --json` prints."""
        per_day, share = self.posts_per_day, self.repost_share
        return {
            "campaign": self.campaign,
            "posts_last_7_days": self.posts_last_7_days,
            "posts_per_day": round(per_day, 1) if per_day is not None else None,
            "repost_share": round(share, 4) if share is not None else None,
            "estimated_posts": self.estimated_posts,
            "estimated_cost_usd": round(self.estimated_cost_usd, 2),
            "daily_budget_usd": self.daily_budget_usd,
            "budget_covers": self.budget_covers,
            "budget_runs_out_at": iso_utc(self.budget_runs_out_at) if self.budget_runs_out_at else None,
            "cost_without_reposts_usd": round(self.cost_without_reposts_usd, 2),
            "trends_cost_usd": round(self.intel.trends_cost_usd, 2) if self.intel else 0.0,
            "targets_cost_usd": round(self.intel.targets_cost_usd, 2) if self.intel else 0.0,
            "counter_cost_usd": round(self.intel.counter_cost_usd, 2) if self.intel else 0.0,
            "reposts_per_original": (round(self.reposts_per_original, 3) if self.reposts_per_original is not None
                                     else None),
            "reposts_estimated_from": self.reposts_from,
            "sample_posts": self.sample_posts if self.reposts_from == FROM_SAMPLE else None,
        }


@dataclass(frozen=True)
class Estimate:
    """Posts, authors and requests to be read, and what they cost."""

    posts: int
    authors: int
    counts_requests: int
    cost_usd: float


def estimate(config: Config, campaign: CampaignConfig, posts_per_day: float, repost_share: float, *,
             include_reposts: bool, queries: int) -> Estimate:
    """What reading the storm window costs at these rates (the rules are in the module's docstring)."""
    window_days = (campaign.end - campaign.start) / timedelta(days=1)
    every_post = max(posts_per_day * window_days, float(campaign.goal_posts or 0))
    kept = 1.0 if include_reposts else 1.0 - repost_share
    posts = round(every_post * kept)
    authors = round((campaign.goal_contributors or every_post * AUTHORS_PER_POST) * kept)
    runs = -(-(campaign.end - campaign.start) // campaign.storm_interval)  # ceiling: a run starts each interval
    requests = runs * queries
    return Estimate(posts=posts, authors=authors, counts_requests=requests,
                    cost_usd=config.x.read_cost(posts, authors, requests))


def goal_reads(config: Config, campaign: CampaignConfig) -> Estimate | None:
    """What reading `goal_posts` on X costs (the rules above, without everyday traffic): the posts, their
    authors, a counts request a run; None without a goal or X."""
    if PAID_PLATFORM not in campaign.sources or not campaign.goal_posts:
        return None
    try:
        queries = len(x_search_queries(campaign.hashtags, include_reposts=config.x.include_reposts,
                                       max_length=config.x.max_query_length))
    except ValueError:
        return None  # the collector says what is wrong with the hashtags
    return estimate(config, campaign, 0.0, 0.0, include_reposts=True, queries=queries)


def cost_arithmetic(config: Config, reads: Estimate) -> str:
    """An estimate's cost written out: `20,000 posts × $0.005 + 3,000 authors × $0.010 + ... = $130.90`."""
    prices = config.x
    return (f"{reads.posts:,} posts × ${prices.post_read_usd:.3f} + {reads.authors:,} authors × "
            f"${prices.user_read_usd:.3f} + {reads.counts_requests:,} counts requests × "
            f"${prices.counts_request_usd:.3f} = ${reads.cost_usd:,.2f}")


def goal_budget(config: Config, campaign: CampaignConfig) -> tuple[float, str]:
    """A daily budget that pays for the goal (its cost rounded up to the next $5), and the arithmetic."""
    reads = goal_reads(config, campaign)
    if reads is None:
        return 0.0, "no goal_posts on X: nothing to pay for"
    budget = float(math.ceil(reads.cost_usd / 5) * 5)
    return budget, f"{cost_arithmetic(config, reads)}, so ${budget:,.0f}"


def goal_budget_warning(config: Config, campaign: CampaignConfig) -> str | None:
    """A warning when the daily budget cannot pay for reading `goal_posts` on X, saying what it costs and when
    reads would pause; None when it can (or there is no budget, goal or X)."""
    reads = goal_reads(config, campaign)
    budget = campaign.daily_budget_usd
    if reads is None or budget is None:
        return None
    pauses_at = budget_runs_out(campaign, reads.cost_usd)
    if pauses_at is None:
        return None
    local = pauses_at.astimezone(campaign.timezone)
    return (f"daily_budget_usd ${budget:,.2f} cannot reach goal_posts {campaign.goal_posts:,} on X: "
            f"{cost_arithmetic(config, reads)}; post reads would pause at {local:%H:%M} {campaign.timezone.key}. "
            "Raise the budget or lower the goal.")


@dataclass(frozen=True)
class IntelCost:
    """What storm intelligence adds to reading the storm on X: trends requests, targets' posts, counter-hashtags."""

    trends_requests: int
    trends_cost_usd: float
    target_posts: int
    targets_cost_usd: float
    counter_posts: int
    counter_cost_usd: float

    @property
    def cost_usd(self) -> float:
        """All of it."""
        return self.trends_cost_usd + self.targets_cost_usd + self.counter_cost_usd


def intel_estimate(config: Config, campaign: CampaignConfig, target_posts_per_day: float,
                   counter_posts_per_day: float) -> IntelCost:
    """What trends, the targets' `from:` search and the counter-hashtags cost over the window (module docstring)."""
    window = campaign.end - campaign.start
    prices = config.x
    trends = len(campaign.trend_locations) * -(-window // campaign.trends_interval)
    followed = window + TARGETS_FOLLOW_UP
    target_posts = round(target_posts_per_day * (followed / timedelta(days=1)))
    target_days = -(-followed // timedelta(days=1))
    target_reads = min(len(campaign.targets), target_posts) * target_days  # each target read once a day it posts
    counter_posts = round(counter_posts_per_day * (window / timedelta(days=1)))
    return IntelCost(trends_requests=trends, trends_cost_usd=trends * prices.trends_request_usd,
                     target_posts=target_posts,
                     targets_cost_usd=target_posts * prices.post_read_usd + target_reads * prices.user_read_usd,
                     counter_posts=counter_posts,
                     counter_cost_usd=counter_posts * (prices.post_read_usd + AUTHORS_PER_POST * prices.user_read_usd))


def budget_runs_out(campaign: CampaignConfig, cost_usd: float) -> datetime | None:
    """When the daily budget runs out spending `cost_usd` evenly over the window (None: it lasts)."""
    budget = campaign.daily_budget_usd
    if budget is None or cost_usd <= 0:
        return None
    per_second = cost_usd / (campaign.end - campaign.start).total_seconds()
    moment = campaign.start
    while moment < campaign.end:  # one UTC day at a time: the budget is daily
        midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
        day_end = min(midnight, campaign.end)
        if (day_end - moment).total_seconds() * per_second > budget:
            return moment + timedelta(seconds=budget / per_second)
        moment = day_end
    return None


def make_plan(store: Store, config: Config, campaign: CampaignConfig, clock: Clock, *,
              source: Source | None = None) -> Plan:
    """Ask X for the last 7 days' hourly counts of the campaign's query (billed, recorded) and plan the window."""
    free = tuple(name for name in campaign.sources if name != PAID_PLATFORM)
    window_days = (campaign.end - campaign.start) / timedelta(days=1)
    include_reposts = config.x.include_reposts
    if PAID_PLATFORM not in campaign.sources:
        return Plan(campaign=campaign.name, counted_since=None, counted_until=None, posts_last_7_days=None,
                    posts_without_reposts_last_7_days=None, window_days=window_days, include_reposts=include_reposts,
                    goal_posts=campaign.goal_posts, estimated_posts=0, estimated_authors=0, counts_requests=0,
                    estimated_cost_usd=0.0, cost_without_reposts_usd=0.0, daily_budget_usd=campaign.daily_budget_usd,
                    budget_runs_out_at=None, free_platforms=free, requests_made=0, plan_cost_usd=0.0)
    owned = source is None
    x = source or registry.make_source(config, PAID_PLATFORM, clock)
    try:
        if not isinstance(x, Counted):
            raise StormwatchError(f"plan: the {x.name} source cannot count posts")
        now = clock.now()
        since, until = now - COUNTED_SPAN + REACH_MARGIN, now - COUNTS_LAG
        read = _read(store, config, campaign, x, since, until, now)
        queries = len(x.counted_queries(campaign, include_reposts=include_reposts))
    finally:
        if owned:
            x.close()
    days = (until - since) / timedelta(days=1)
    own = read.totals["own"]
    reposts = round(own * read.ratio) if read.ratio is not None else 0
    all_posts = own + reposts
    per_day = all_posts / days
    share = reposts / all_posts if all_posts else 0.0
    extra = intel_estimate(config, campaign, read.totals["targets"] / days, read.totals["counter"] / days)
    planned = estimate(config, campaign, per_day, share, include_reposts=include_reposts, queries=queries)
    originals = estimate(config, campaign, per_day, share, include_reposts=False,
                         queries=len(x.counted_queries(campaign, include_reposts=False)))
    return Plan(campaign=campaign.name, counted_since=since, counted_until=until, posts_last_7_days=all_posts,
                posts_without_reposts_last_7_days=own, window_days=window_days,
                include_reposts=include_reposts, goal_posts=campaign.goal_posts, estimated_posts=planned.posts,
                estimated_authors=planned.authors, counts_requests=planned.counts_requests,
                estimated_cost_usd=planned.cost_usd + extra.cost_usd,
                cost_without_reposts_usd=originals.cost_usd + extra.cost_usd,
                daily_budget_usd=campaign.daily_budget_usd,
                budget_runs_out_at=budget_runs_out(campaign, planned.cost_usd + extra.cost_usd), free_platforms=free,
                requests_made=read.requests, plan_cost_usd=read.cost_usd, intel=extra,
                reposts_per_original=read.ratio, reposts_from=read.ratio_from, sample_posts=read.sample_posts)


@dataclass(frozen=True)
class _Reads:
    """What the plan read from X: posts counted per label, the reposts-per-post ratio and where it came from."""

    totals: dict[str, int]
    ratio: float | None
    ratio_from: str | None
    sample_posts: int
    requests: int
    cost_usd: float


def _queries(source: Counted, campaign: CampaignConfig, include_reposts: bool) -> list[tuple[str, str]]:
    """What the plan counts: the campaign's own posts (its queries without reposts: X counts none since
    2026-05-04), the targets' `from:` queries and the counter-hashtags' queries, each labelled by what it counts."""
    counted = [("own", q) for q in source.counted_queries(campaign, include_reposts=False)]
    if isinstance(source, TargetWatching):
        counted += [("targets", q) for q in source.target_queries(campaign)]
    counter = campaign.counter()
    if counter is not None:
        counted += [("counter", q) for q in source.counted_queries(counter, include_reposts=include_reposts)]
    return counted


def _read(store: Store, config: Config, campaign: CampaignConfig, source: Counted, since: datetime,
          until: datetime, now: datetime) -> _Reads:
    """Count the queries over [since, until) and, without `reposts_per_original`, read the repost sample: each
    request billed in a `plan` run and each page archived as received."""
    archive = RawArchive(config.storage.raw_archive) if config.storage.raw_archive else None
    run_id = store.start_run(campaign.name, PLAN_SOURCE, now)
    totals = {"own": 0, "targets": 0, "counter": 0}
    requests, cost = 0, 0.0
    ratio, sampled = config.x.reposts_per_original, 0
    ratio_from: str | None = FROM_CONFIG
    error = None
    try:
        for label, query in _queries(source, campaign, config.x.include_reposts):
            for page in source.counts(campaign.name, query, since, until, granularity="hour"):
                requests, cost = requests + 1, cost + source.counts_cost
                store.add_requests(run_id, 1, source.counts_cost)
                totals[label] += sum(b.count for b in archived(archive, campaign.name, page,
                                                               registry.normalize_counts, "counts page"))
        if ratio is None and isinstance(source, RepostSampled):
            ratio, ratio_from = None, None
            if until - SAMPLE_SETTLED > since:
                page = source.repost_sample(campaign, since, until - SAMPLE_SETTLED)
                batch = archived(archive, campaign.name, page, registry.normalize_page, "repost sample page")
                requests += 1
                cost += store.bill_reads(run_id, batch, source.billing(utc_day(page.retrieved_at)))
                own = [post for post in batch.posts if post.kind != "repost"]
                if own:
                    ratio, ratio_from, sampled = sum(p.repost_count or 0 for p in own) / len(own), FROM_SAMPLE, len(own)
    except (RateLimited, SourceError, MalformedPage) as exc:
        error = str(exc)
        if getattr(exc, "request_made", False):
            store.add_requests(run_id, 1, source.counts_cost)
        raise StormwatchError(f"plan: X could not be read: {exc}") from None
    finally:
        store.finish_run(run_id, "failed" if error else "ok", now, error=error)
        log.info("plan for %s: %d requests, $%.3f", campaign.name, requests, cost)
    return _Reads(totals, ratio, ratio_from if ratio is not None else None, sampled, requests, cost)


def plan_text(plan: Plan, campaign: CampaignConfig, config: Config | None = None) -> str:
    """The plan as a few readable lines (times in the campaign's zone)."""
    def local(moment: datetime) -> str:
        return f"{moment.astimezone(campaign.timezone):%Y-%m-%d %H:%M} {campaign.timezone.key}"

    lines = [f"{plan.campaign}: storm window {local(campaign.start)} → {local(campaign.end)} "
             f"({plan.window_days * 24:.1f} h)"]
    if plan.posts_last_7_days is not None:
        share = plan.repost_share or 0.0
        reposts = "reposts included" if plan.include_reposts else "reposts left out (include_reposts = false)"
        own = plan.posts_without_reposts_last_7_days or 0
        counted = (f"{own:,} counted and {plan.posts_last_7_days - own:,} reposts estimated ({share:.0%})"
                   if plan.reposts_from else f"{own:,} counted, reposts not included")
        lines += [
            f"  x: {plan.posts_last_7_days:,} posts in the last 7 days ({plan.posts_per_day or 0:,.0f} a day): "
            + counted,
            "  x: " + _reposts_said(plan),
            f"  x: expect to read {plan.estimated_posts:,} posts ({reposts}; goal {plan.goal_posts or 0:,}) "
            f"and {plan.estimated_authors:,} authors, {plan.counts_requests:,} counts requests",
            f"  x: estimated cost ${plan.estimated_cost_usd:,.2f}; "
            f"without reposts ${plan.cost_without_reposts_usd:,.2f}",
        ]
        if plan.intel is not None:
            extra = plan.intel
            lines.append(f"  x: of which trends ${extra.trends_cost_usd:,.2f} ({extra.trends_requests:,} requests), "
                         f"the targets' posts ${extra.targets_cost_usd:,.2f} (~{extra.target_posts:,}), "
                         f"counter-hashtags ${extra.counter_cost_usd:,.2f} (~{extra.counter_posts:,} posts)")
        if plan.daily_budget_usd is None:
            lines.append("  x: no daily_budget_usd set: nothing stops the reads")
        elif plan.budget_runs_out_at is None:
            lines.append(f"  x: the daily budget ${plan.daily_budget_usd:,.2f} covers it")
        else:
            lines.append(f"  x: the daily budget ${plan.daily_budget_usd:,.2f} runs out at "
                         f"{local(plan.budget_runs_out_at)} at the goal's pace (post reads pause until 00:00 UTC)")
        sample = " and read one page of recent search" if plan.reposts_from == FROM_SAMPLE else ""
        counts = plan.requests_made - (1 if plan.reposts_from == FROM_SAMPLE else 0)
        lines.append(f"  (this plan made {counts} counts requests{sample}: ${plan.plan_cost_usd:.3f})")
    warning = goal_budget_warning(config, campaign) if config is not None else None
    if warning:
        lines.append(f"  ! {warning}")
    for name in plan.free_platforms:
        lines.append(f"  {name}: free (reads cost nothing)")
    return "\n".join(lines)


def _reposts_said(plan: Plan) -> str:
    """Where the repost estimate comes from, in a line (X's counts have counted no reposts since 2026-05-04)."""
    if plan.reposts_from == FROM_CONFIG:
        return f"reposts: {plan.reposts_per_original:,.2f} per post, from [x] reposts_per_original"
    if plan.reposts_from == FROM_SAMPLE:
        return (f"reposts: {plan.reposts_per_original:,.2f} per post, the mean retweet_count of a sample of "
                f"{plan.sample_posts:,} posts a day old or more (X's counts count no reposts)")
    return ("reposts not estimated: no post a day old or more to sample (X's counts count no reposts); "
            "set [x] reposts_per_original")


# --- the example config `stormwatch init` writes ---------------------------------------------------------------
# Its daily budget is this plan's rule for what the goals cost, so it lives beside `goal_budget`.

# The example campaign (config_example.toml): its zone and storm length (the committed config.toml has the 2021
# storm's start); a rehearsal's storm starts REHEARSAL_LEAD (wall clock) after writing.
EXAMPLE_ZONE = "Asia/Hebron"
EXAMPLE_START = datetime(2021, 2, 7, 18, 0, tzinfo=ZoneInfo(EXAMPLE_ZONE))
EXAMPLE_HOURS = timedelta(hours=3)
REHEARSAL_LEAD = timedelta(minutes=5)


def _template(name: str) -> str:
    """A config template shipped with the package (str.format placeholders in braces)."""
    return resources.files(__package__ or "stormwatch").joinpath(name).read_text(encoding="utf-8")


def example_config(*, start: datetime | None = None, simulated_port: int | None = None,
                   anchor_wall: float | None = None, speed: float = 30.0, posts: int = 4000) -> str:
    """The commented #StandWithIssa example: a storm window of EXAMPLE_HOURS from `start` (default: the 2021
    storm's) and a daily budget that pays for its goals (`stormwatch plan`'s rule, the arithmetic in a comment).
    With `simulated_port`, a rehearsal of all three platforms against the simulator, whose storm starts
    REHEARSAL_LEAD (wall clock) after `anchor_wall` (default: now), when the file is written."""
    start = (start or EXAMPLE_START).astimezone(ZoneInfo(EXAMPLE_ZONE))
    sources = ["x", "mastodon", "bluesky"] if simulated_port is not None else ["x"]
    api_base = f"http://127.0.0.1:{simulated_port}" if simulated_port is not None else XConfig.api_base

    def example(budget: float, arithmetic: str, sources: list[str]) -> str:
        return _template("config_example.toml").format(api_base=api_base, start=start.isoformat(),
                                                        end=(start + EXAMPLE_HOURS).isoformat(),
                                                        sources=json.dumps(sources), budget=budget,
                                                        arithmetic=arithmetic)

    drafted = parse_config(tomllib.loads(example(0.0, "", ["x"])), Path(DEFAULT_CONFIG))  # only X is paid for
    text = example(*goal_budget(drafted, drafted.campaigns[0]), sources)
    if simulated_port is None:
        return text
    wall = anchor_wall if anchor_wall is not None else time.time()
    rehearsal = _template("config_rehearsal.toml").format(
        speed=speed, anchor=(start - REHEARSAL_LEAD * speed).isoformat(), anchor_wall=wall, posts=posts,
        port=simulated_port, jetstream_port=simulated_port + 1, lead=format_duration(REHEARSAL_LEAD),
        wall_hours=format_duration(EXAMPLE_HOURS / speed))
    return text + "\n" + rehearsal
