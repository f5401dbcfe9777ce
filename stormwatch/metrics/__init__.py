"""Read-only figures as plain dataclasses: campaign figures and collector health.

The dashboard, the report and `summary --json` read the store through these functions, never SQL of their
own. Campaign figures (campaign.py) come through one reader interface (reader.py), the running tallies
(from_tallies.py) or the rows (from_rows.py), chosen by a `reader` parameter; collector health is health.py,
the budget's runway and a span's cost budget.py, what the storm cost spending.py, languages languages.py, X's
filtered stream (connected time, gaps) stream.py, volume fading (with hysteresis, pure) fading.py; rows for the
report's exports are exports.py.
"""

from __future__ import annotations

from .budget import BudgetRunway, budget_runway
from .campaign import (
    DEFINITIONS,
    CoverageBucket,
    Summary,
    accounts,
    campaign_hashtags,
    campaign_size,
    co_hashtags,
    contributor_directory,
    counted_queries,
    coverage,
    hijacks,
    latest_posts,
    mention_counts,
    new_contributors,
    peak_minute,
    per_minute,
    split_by_posts,
    summary,
    tag_counts,
    target_mentions,
    top_accounts,
    top_posts,
    totals,
    volume,
)
from .exports import POST_ROW_FIELDS, PostRowTuple, mentioned_account_rows, post_rows
from .fading import ADVICE as FADING_ADVICE
from .fading import FadingEpisode, current_fading, fading_episodes
from .figures import AccountStat, CampaignTotals, Peak, PostStat, Totals, Volume, VolumeBucket
from .health import (
    CampaignHealth,
    CollectionStatus,
    CursorState,
    SourceHealth,
    SourceRuns,
    campaign_health,
    collection_status,
    complete_until,
    run_history,
    run_reason,
)
from .languages import LanguageCount, language_code, languages, languages_reached
from .reader import READER_CHOICES, FigureReader, ReaderChoice, figure_reader
from .spending import COST_KINDS, Spending, day_spending, spending, storm_spending, window_cost
from .stream import ESTIMATE_NOTE, StreamCoverage, StreamGap, stream_coverage
from .windows import Window, bucket_seconds_for, campaign_window

__all__ = [
    "COST_KINDS", "DEFINITIONS", "ESTIMATE_NOTE", "FADING_ADVICE", "POST_ROW_FIELDS", "READER_CHOICES", "AccountStat",
    "BudgetRunway", "CampaignHealth", "CampaignTotals", "CollectionStatus", "CoverageBucket", "CursorState",
    "FadingEpisode", "FigureReader", "LanguageCount", "Peak", "PostRowTuple", "PostStat", "ReaderChoice",
    "SourceHealth", "SourceRuns", "Spending", "StreamCoverage", "StreamGap", "Summary", "Totals", "Volume",
    "VolumeBucket", "Window", "accounts", "bucket_seconds_for", "budget_runway", "campaign_hashtags",
    "campaign_health", "campaign_size", "campaign_window", "co_hashtags", "collection_status", "complete_until",
    "contributor_directory", "counted_queries", "coverage", "current_fading", "day_spending", "fading_episodes",
    "figure_reader", "hijacks", "language_code", "languages", "languages_reached", "latest_posts", "mention_counts",
    "mentioned_account_rows", "new_contributors", "peak_minute", "per_minute", "post_rows", "run_history",
    "run_reason", "spending", "split_by_posts", "storm_spending", "stream_coverage", "summary", "tag_counts",
    "target_mentions", "top_accounts", "top_posts", "totals", "volume", "window_cost",
]
