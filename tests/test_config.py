"""Config validation: every problem is one line naming the file and key path; the example always validates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stormwatch.config import RetryPolicy, load_config
from stormwatch.errors import ConfigError
from stormwatch.plan import example_config, goal_budget_warning
from stormwatch.times import next_full_hour

from .cli_support import invoke
from .conftest import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_committed_example_and_the_template_agree_and_validate() -> None:
    committed = REPO / "config.toml"
    assert committed.read_text(encoding="utf-8") == example_config()
    config = load_config(committed)
    (campaign,) = config.campaigns
    assert campaign.name == "standwithissa"
    assert campaign.hashtags == ("StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners")
    assert campaign.start.isoformat() == "2021-02-07T16:00:00+00:00"
    assert campaign.storm_interval == timedelta(minutes=1) and campaign.interval == timedelta(minutes=5)
    assert campaign.end - campaign.start == timedelta(hours=3)
    # the budget pays for the goals at the configured prices, and says how
    assert campaign.daily_budget_usd == 135.0 and goal_budget_warning(config, campaign) is None
    assert ("# 20,000 posts × $0.005 + 3,000 authors × $0.010 + 180 counts requests × $0.005 = $130.90, so $135"
            in committed.read_text(encoding="utf-8"))
    assert "# [mastodon]" in committed.read_text(encoding="utf-8") and "# [bluesky]" in committed.read_text(
        encoding="utf-8")
    assert config.x.bearer_token_env == "X_BEARER_TOKEN"
    assert config.storage.database == REPO / "data" / "stormwatch.db"
    assert not config.clock.simulated


def test_simulated_example_rehearses_three_platforms_from_five_minutes_after_writing(tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    config = load_config(write(tmp_path, example_config(start=start, simulated_port=9999, anchor_wall=1000.0)))
    assert config.x.api_base == "http://127.0.0.1:9999"
    assert config.clock.simulated and config.clock.speed == 30
    assert config.clock.anchor_wall == 1000.0
    # the storm starts five minutes (wall clock) after the file is written: time to read it and start things
    assert config.clock.wall_time(config.campaigns[0].start) == 1000.0 + 5 * 60
    assert config.simulation.port == 9999
    assert config.campaigns[0].sources == ("x", "mastodon", "bluesky")
    assert config.mastodon.instances == ("http://127.0.0.1:9999/i/mastodon.social",
                                         "http://127.0.0.1:9999/i/kolektiva.social")
    assert (config.bluesky.jetstream_url, config.bluesky.appview_url) == ("ws://127.0.0.1:10000/subscribe",
                                                                          "http://127.0.0.1:9999")


def test_init_writes_a_window_from_the_next_full_hour(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    result = invoke("init", "--config", tmp_path / "c.toml")
    assert result.returncode == 0, result.stderr
    campaign = load_config(tmp_path / "c.toml").campaigns[0]
    assert campaign.start.minute == campaign.start.second == 0
    assert timedelta(minutes=15) <= campaign.start - before <= timedelta(minutes=75)
    assert campaign.end - campaign.start == timedelta(hours=3)
    assert next_full_hour(datetime(2026, 3, 1, 15, 50, tzinfo=UTC), UTC) == datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    assert next_full_hour(datetime(2026, 3, 1, 15, 40, tzinfo=UTC), UTC) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_a_frozen_clock_reads_one_moment_and_takes_nothing_else(tmp_path: Path) -> None:
    frozen = load_config(write(tmp_path, example_config() + '\n[clock]\nfrozen_at = "2021-02-07T21:00:00Z"\n'))
    assert frozen.clock.frozen and frozen.clock.now() == datetime(2021, 2, 7, 21, 0, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"clock\.speed: a clock frozen_at one moment takes no speed"):
        load_config(write(tmp_path, example_config() + '\n[clock]\nfrozen_at = "2021-02-07T21:00:00Z"\nspeed = 2\n'))


def replace_in_example(old: str, new: str) -> str:
    text = example_config()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("old, new, message", [
    ('interval = "5m"', 'interval = "5x"', 'campaigns[0].interval: "5x" is not a duration like 90s, 5m, 1h'),
    ('storm_interval = "1m"', 'storm_intervall = "1m"',
     "campaigns[0].storm_intervall: unknown key (did you mean 'storm_interval'?)"),
    ('timezone = "Asia/Hebron"', 'timezone = "Asia/Hebronx"',
     "campaigns[0].timezone: 'Asia/Hebronx' is not a time zone"),
    ('end = "2021-02-07T21:00:00+02:00"', 'end = "2021-02-06T12:00:00+02:00"', "campaigns[0].end: must be after start"),
    ('start = "2021-02-07T18:00:00+02:00"', 'start = "tomorrow"', 'campaigns[0].start: "tomorrow" is not a time'),
    ('sources = ["x"]', 'sources = ["myspace"]', "campaigns[0].sources[0]: 'myspace' is not a known source"),
    ('daily_budget_usd = 135.0', 'daily_budget_usd = "lots"', "campaigns[0].daily_budget_usd: must be a number"),
    ('name = "standwithissa"', 'name = "Stand With Issa"', "campaigns[0].name: 'Stand With Issa' must be lower-case"),
    ('bearer_token_env = "X_BEARER_TOKEN"', 'bearer_token_env = "AAAA AAAA-secret"',
     "x.bearer_token_env: 'AAAA AAAA-secret' is not an environment variable name"),
    ('api_base = "https://api.x.com"', 'api_base = "api.x.com"', "x.api_base: 'api.x.com' is not an http(s) URL"),
    ('names = "pseudonymized"', 'names = "everyone"', 'report.names'),
    ('hashtags = ["StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners"]', 'hashtags = []',
     "campaigns[0].hashtags: must list at least one value"),
    ('accounts = ["Issaamro", "YASHebron"]', 'accounts = ["Issaamro", "two words"]',
     "campaigns[0].accounts[1]: 'two words' is not a valid account"),
    ("[report]", '[mastodon]\ninstances = ["mastodon.social"]\nretries = 50\n\n[report]',
     "mastodon.retries: must be between 0 and 20, not 50"),
    ("[report]", '[bluesky]\nretry_backoff = "soon"\n\n[report]', 'bluesky.retry_backoff: "soon" is not a duration'),
])
def test_each_problem_names_file_and_key_path(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = write(tmp_path, replace_in_example(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_each_platform_has_its_own_retry_policy(tmp_path: Path) -> None:
    text = replace_in_example("[report]", '[mastodon]\ninstances = ["mastodon.social"]\nretries = 0\n'
                                          'retry_backoff = "500ms"\n\n[report]')
    config = load_config(write(tmp_path, text.replace('# retries = 3 ', 'retries = 6 ')))
    assert config.x.retry_policy == RetryPolicy(retries=6, backoff=2.0, max_backoff=60.0)
    assert config.mastodon.retry_policy == RetryPolicy(retries=0, backoff=0.5, max_backoff=60.0)
    assert config.bluesky.retry_policy == RetryPolicy()  # the defaults: 3 retries from 2 s, doubling up to 1 min
    assert [RetryPolicy().delay(n) for n in (1, 2, 3, 7)] == [2.0, 4.0, 8.0, 60.0]


def test_accounts_may_be_written_as_any_platform_writes_them(tmp_path: Path) -> None:
    text = replace_in_example('accounts = ["Issaamro", "YASHebron"]',
                              'accounts = ["@Issaamro", "yas@kolektiva.social", "issa.bsky.social"]')
    (campaign,) = load_config(write(tmp_path, text)).campaigns
    assert campaign.accounts == ("Issaamro", "yas@kolektiva.social", "issa.bsky.social")


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[storage\n"))
    with pytest.raises(ConfigError, match=r"nope.toml: no config file there \(name yours with --config PATH"):
        load_config(tmp_path / "nope.toml")


def test_hashtags_lose_their_hash_and_repeats(tmp_path: Path) -> None:
    text = replace_in_example('hashtags = ["StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners"]',
                              'hashtags = ["#StandWithIssa", "standwithissa", "#الحرية_لعيسى"]')
    config = load_config(write(tmp_path, text))
    assert config.campaigns[0].hashtags == ("StandWithIssa", "الحرية_لعيسى")


def test_cli_reports_a_config_typo_in_one_line_and_touches_no_database(tmp_path: Path) -> None:
    path = write(tmp_path, replace_in_example('interval = "5m"', 'interval = "5x"'))
    for command in (["collect", "--once"], ["status"]):
        result = invoke(*command, "--config", path)
        assert result.returncode == 2
        assert result.stderr.strip() == (f'stormwatch: error: {path}: campaigns[0].interval: "5x" is not a duration '
                                         "like 90s, 5m, 1h")
        assert result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_config_from_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path, replace_in_example('interval = "5m"', 'interval = "7x"'))
    result = invoke("status", cwd=tmp_path, env={"STORMWATCH_CONFIG": str(path)})
    assert result.returncode == 2 and '"7x"' in result.stderr


def test_the_dashboard_names_accounts_as_reports_do_unless_told_otherwise(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, example_config())).dashboard_names == "pseudonymized"
    public = load_config(write(tmp_path, example_config() + '\n[dashboard]\nnames = "public"\n'))
    assert public.dashboard_names == "public" and public.report.names == "pseudonymized"
    with pytest.raises(ConfigError, match=r"dashboard\.names: 'everyone' must be"):
        load_config(write(tmp_path, example_config() + '\n[dashboard]\nnames = "everyone"\n'))
