"""Volume fading with hysteresis: once per drop, armed again when volume recovers; the dashboard says the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stormwatch import metrics
from stormwatch.dashboard import take_snapshot
from stormwatch.metrics.fading import FADE_MIN_PEAK, current_fading, fading_episodes
from stormwatch.store import Store

from .conftest import T0

FIRST = datetime(2021, 2, 7, 16, 0, tzinfo=UTC)


def minute(index: int) -> datetime:
    return FIRST + timedelta(minutes=index)


def test_a_steady_storm_never_fades() -> None:
    assert fading_episodes([50] * 60, FIRST) == []


def test_a_drop_below_thirty_percent_of_the_peak_is_one_episode() -> None:
    series = [100] * 10 + [20] * 30
    (episode,) = fading_episodes(series, FIRST)
    # the 5-minute mean first falls below 30 when four of its five minutes are at 20: (100 + 4 * 20) / 5 = 36,
    # then 20 at minute 14
    assert (episode.started_at, episode.rate, episode.peak) == (minute(14), 20.0, 100)
    assert episode.ongoing and current_fading(series, FIRST) == episode


def test_hovering_around_the_threshold_fades_once() -> None:
    series = [100] * 10 + [25, 35] * 30  # the mean swings around 30, never back to 60
    assert len(fading_episodes(series, FIRST)) == 1


def test_recovery_arms_the_rule_again() -> None:
    series = [100] * 10 + [10] * 10 + [80] * 10 + [10] * 10
    first, second = fading_episodes(series, FIRST)
    assert first.recovered_at is not None and first.started_at < first.recovered_at < second.started_at
    assert second.ongoing and current_fading(series, FIRST) == second
    assert current_fading([*series[:30]], FIRST) is None  # recovered by minute 30


def test_a_quiet_campaign_is_not_fading() -> None:
    assert fading_episodes([FADE_MIN_PEAK - 1] * 5 + [0] * 30, FIRST) == []
    assert fading_episodes([FADE_MIN_PEAK] * 5 + [0] * 30, FIRST)[0].started_at == minute(8)  # mean 2 < 3


def test_no_mean_before_five_minutes() -> None:
    assert fading_episodes([100, 0, 0, 0], FIRST) == []


def test_the_collected_storm_fades_when_its_truth_does(collected) -> None:
    config, storm = collected
    campaign = config.campaigns[0]
    late = T0 + timedelta(hours=2, minutes=50)
    truth = storm.truth(campaign.start, campaign.end)
    span = int((campaign.end - campaign.start).total_seconds() // 60)
    expected = fading_episodes([truth.per_minute.get(minute(i), 0) for i in range(span)], campaign.start)
    ongoing = [e for e in expected if e.started_at < late - timedelta(minutes=1)][-1]
    with Store.open(config.storage.database) as store:
        series = metrics.per_minute(store, campaign.name, campaign.start, campaign.end)
        snapshot = take_snapshot(store, config, campaign, now=late)
        # the dashboard says it out loud in the first minutes of the drop (then quietly, until it recovers)
        early = take_snapshot(store, config, campaign, now=ongoing.started_at + timedelta(minutes=2))
    assert expected and fading_episodes(series, campaign.start) == expected
    assert snapshot.fading is not None and snapshot.fading.started_at == ongoing.started_at
    line = next(a for a in early.alerts if a.startswith("Volume is fading"))
    assert line.endswith(metrics.FADING_ADVICE)
