"""How long the daily budget lasts: today's spend, the pace of the last minutes, and when it would run out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..config import CampaignConfig
from ..store import Store, utc_day

# The pace is the spend of the runs started in this span (a storm's spending changes within the hour).
SPEND_LOOKBACK = timedelta(minutes=15)


@dataclass(frozen=True)
class BudgetRunway:
    """A campaign's daily budget at one moment: spent, the current pace, and when it runs out at that pace."""

    budget_usd: float
    spent_today_usd: float
    usd_per_hour: float
    reached: bool
    runs_out_at: datetime | None  # None: reached already, or it lasts until the daily reset at this pace
    resets_at: datetime  # reads resume at 00:00 UTC

    @property
    def share_spent(self) -> float:
        """Today's spend as a share of the budget (1.0 and more: reached)."""
        return self.spent_today_usd / self.budget_usd if self.budget_usd else 1.0


def budget_runway(store: Store, campaign: CampaignConfig, now: datetime,
                  lookback: timedelta = SPEND_LOOKBACK) -> BudgetRunway | None:
    """The campaign's budget runway at `now` (None without a daily budget)."""
    if campaign.daily_budget_usd is None:
        return None
    budget = campaign.daily_budget_usd
    day_start = datetime.fromisoformat(utc_day(now)).replace(tzinfo=UTC)
    resets_at = day_start + timedelta(days=1)
    spent = store.spent(campaign.name, utc_day(now))
    # Only today's runs count towards the pace: yesterday's spending no longer draws on this budget.
    recent = store.spent_since(campaign.name, max(now - lookback, day_start))
    span_hours = min(lookback, now - day_start).total_seconds() / 3600
    per_hour = recent / span_hours if span_hours > 0 else 0.0
    reached = spent >= budget
    runs_out_at = None
    if not reached and per_hour > 0:
        moment = now + timedelta(hours=(budget - spent) / per_hour)
        runs_out_at = moment if moment < resets_at else None
    return BudgetRunway(budget_usd=budget, spent_today_usd=round(spent, 4), usd_per_hour=round(per_hour, 4),
                        reached=reached, runs_out_at=runs_out_at, resets_at=resets_at)
