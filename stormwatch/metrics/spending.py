"""What a campaign cost: the estimated spend of its runs over UTC days, by source and by kind.

X bills per post read (once per UTC day), per account read, per counts request and per trends request; the store
records each run's cost split that way (`runs.cost_*_usd`). A storm's cost is the sum over every UTC day its window
touches, plus the plan's own counts requests whenever the plan was made (they were spent for this storm). Runs
stored before the split was recorded have only their total: that part is told as `unsplit`, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import CampaignConfig
from ..store import Store, utc_day

PLAN_SOURCE = "plan"  # the runs the plan's own counts requests are recorded and billed under
# The kinds a cost is told by, in this order; `unsplit` only appears for runs stored before the split.
COST_KINDS = ("posts", "users", "counts", "trends", "plan")
UNSPLIT = "unsplit"
_CENT = 0.005  # below half a cent a kind or source is not worth a line


@dataclass(frozen=True)
class Spending:
    """The estimated spend (USD) of a campaign's runs from `first_day` to `last_day` (UTC days, inclusive)."""

    first_day: str
    last_day: str
    by_source: dict[str, dict[str, float]]  # source -> kind -> USD (only kinds with a cost)
    runs: int = 0  # how many runs it adds up (none: nothing was collected on those days, e.g. imported data)

    @property
    def total_usd(self) -> float:
        """Everything spent."""
        return sum(sum(kinds.values()) for kinds in self.by_source.values())

    @property
    def by_kind(self) -> dict[str, float]:
        """USD per kind (every kind of COST_KINDS, and `unsplit` when some runs have only a total)."""
        found = dict.fromkeys(COST_KINDS, 0.0)
        for kinds in self.by_source.values():
            for kind, usd in kinds.items():
                found[kind] = found.get(kind, 0.0) + usd
        return found

    def source_totals(self) -> dict[str, float]:
        """USD per source (`x`, `x-stream`, `plan`, ...), the largest first."""
        totals = {source: sum(kinds.values()) for source, kinds in self.by_source.items()}
        return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))

    def to_json(self) -> dict[str, object]:
        """`cost_usd`, `cost_by_kind`, `cost_by_source` and the days they cover, rounded to tenths of a cent."""
        return {"cost_usd": round(self.total_usd, 3),
                "cost_by_kind": {kind: round(usd, 3) for kind, usd in self.by_kind.items()},
                "cost_by_source": {source: {kind: round(usd, 3) for kind, usd in kinds.items()}
                                   for source, kinds in sorted(self.by_source.items())},
                "cost_days": {"first": self.first_day, "last": self.last_day}}

    def detail(self) -> str:
        """`posts $120.00, users $10.00, counts $1.20; x $125.00, x-stream $6.20`: the kinds and sources that cost
        something ("" when none did)."""
        kinds = [f"{kind} ${usd:,.2f}" for kind, usd in self.by_kind.items() if usd >= _CENT]
        sources = [f"{source} ${usd:,.2f}" for source, usd in self.source_totals().items() if usd >= _CENT]
        return "; ".join(part for part in (", ".join(kinds), ", ".join(sources)) if part)

    def line(self) -> str:
        """`$131.20 (posts $120.00, …; x $125.00, …)`: the total and its detail."""
        detail = self.detail()
        return f"${self.total_usd:,.2f}" + (f" ({detail})" if detail else "")


def spending(store: Store, campaign: str, first_day: str, last_day: str, *, plan: bool = True) -> Spending:
    """The campaign's runs started on UTC days `first_day`..`last_day`, and (with `plan`) its plan runs of any day."""
    rows = store.conn.execute(
        "SELECT source, count(*), sum(cost_usd), sum(cost_posts_usd), sum(cost_users_usd), sum(cost_counts_usd), "
        "sum(cost_trends_usd) FROM runs WHERE campaign = ? AND ((started_at >= ? AND started_at < ?)"
        + (" OR source = ?" if plan else "") + ") GROUP BY source",
        (campaign, first_day, f"{last_day}U", *((PLAN_SOURCE,) if plan else ()))).fetchall()
    by_source: dict[str, dict[str, float]] = {}
    runs = 0
    for source, count, total, posts, users, counts, trends in rows:
        runs += count
        if source == PLAN_SOURCE:
            kinds = {"plan": float(total)}
        else:
            kinds = {"posts": posts, "users": users, "counts": counts, "trends": trends}
            kinds[UNSPLIT] = total - sum(kinds.values())  # runs from before the split: their total only
        kinds = {kind: float(usd) for kind, usd in kinds.items() if usd > 1e-9}
        if kinds:
            by_source[source] = kinds
    return Spending(first_day=first_day, last_day=last_day, by_source=by_source, runs=runs)


def storm_spending(store: Store, campaign: CampaignConfig, since: datetime | None = None,
                   until: datetime | None = None) -> Spending:
    """The storm's cost: every UTC day of its window (or of [since, until)), and the plan made for it (when the
    whole window is asked for)."""
    start, end = since or campaign.start, until or campaign.end
    whole = start <= campaign.start and end >= campaign.end
    return spending(store, campaign.name, utc_day(start), utc_day(max(start, end - timedelta(microseconds=1))),
                    plan=whole)


def day_spending(store: Store, campaign: str, moment: datetime) -> Spending:
    """What the campaign's runs of `moment`'s UTC day cost (the plan's only when made that day)."""
    day = utc_day(moment)
    return spending(store, campaign, day, day, plan=False)


def window_cost(store: Store, campaign: str, since: datetime, until: datetime) -> float | None:
    """What collecting the campaign cost over every UTC day the span [since, until) touches (X bills per UTC day),
    the plan left out; None when no run is recorded on them (imported data: not reported, never $0)."""
    last = max(since, until - timedelta(microseconds=1))
    spent = spending(store, campaign, utc_day(since), utc_day(last), plan=False)
    return round(spent.total_usd, 4) if spent.runs else None
