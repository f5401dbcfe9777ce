"""Config values that parse but make no sense are refused, each with one line `config.toml: key: reason` (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormwatch.config import load_config
from stormwatch.errors import ConfigError

from .cli_support import invoke
from .conftest import config_text


def write(directory: Path, text: str, *, bom: bool = False) -> Path:
    path = directory / "config.toml"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def base() -> str:
    return config_text("http://127.0.0.1:9")


@pytest.mark.parametrize(("old", "new", "key", "reason"), [
    ('interval = "5m"', 'interval = "5m"\ndaily_budget_usd = nan', "campaigns[0].daily_budget_usd", "finite"),
    ('interval = "5m"', 'interval = "5m"\ndaily_budget_usd = inf', "campaigns[0].daily_budget_usd", "finite"),
    ('timeout = "10s"', 'timeout = "10s"\npost_read_usd = -inf', "x.post_read_usd", "finite"),
    ('timeout = "10s"', 'timeout = "10s"\nuser_read_usd = nan', "x.user_read_usd", "finite"),
    ('interval = "5m"', 'interval = "500ms"', "campaigns[0].interval", "shorter than a second"),
    ('storm_interval = "1m"', 'storm_interval = "0.2s"', "campaigns[0].storm_interval", "shorter than a second"),
    ('interval = "5m"', 'interval = "400d"', "campaigns[0].interval", "longer than a year"),
    ('timeout = "10s"', 'timeout = "366d"', "x.timeout", "longer than a year"),
    ('max_backoff = "50ms"', 'max_backoff = "99999999999999999999d"', "x.max_backoff", "is not valid"),
    ('start = "', 'start = "1969-12-31T23:00:00+00:00"\nignored = "', "campaigns[0].start", "between 1970 and 2100"),
    ('end = "', 'end = "9999-01-01T00:00:00"\nignored = "', "campaigns[0].end", "between 1970 and 2100"),
    ('name = "standwithissa"', 'name = "standwithissa\\n"', "campaigns[0].name", "control character or line break"),
    ("'StandWithIssa'", '"StandWithIssa\\n"', "campaigns[0].hashtags[0]", "control character or line break"),
    ("'StandWithIssa'", '" StandWithIssa"', "campaigns[0].hashtags[0]", "blank space"),
    ('"Issaamro"', '"Issaamro\\n"', "campaigns[0].accounts[0]", "control character or line break"),
    ('bearer_token_env = "X_BEARER_TOKEN"', 'bearer_token_env = "X_BEARER_TOKEN\\n"', "x.bearer_token_env",
     "control character or line break"),
    ('database = "data/test.db"', 'database = "data/test\\u001b[2J.db"', "storage.database", "control character"),
])
def test_values_that_make_no_sense_are_refused_naming_the_key(tmp_path: Path, old: str, new: str, key: str,
                                                              reason: str) -> None:
    text = base()
    assert old in text
    text = text.replace(old, new, 1)
    if "ignored" in new:  # the replaced line's old value is parked in a key of its own, then removed
        text = "\n".join(line for line in text.splitlines() if not line.startswith("ignored"))
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ") and reason in message, message
    assert "\n" not in message


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, base(), bom=True))
    assert config.campaigns[0].name == "standwithissa"


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, base().replace('interval = "5m"', 'interval = "5m"\ndaily_budget_usd = nan'))
    result = invoke("status", "--config", path)
    assert result.returncode == 2
    assert result.stderr == (f"stormwatch: error: {path}: campaigns[0].daily_budget_usd: must be a finite number, "
                             "not nan\n")


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_since_and_until_far_outside_are_refused(tmp_path: Path, option: str) -> None:
    path = write(tmp_path, base())
    result = invoke("summary", "--config", path, option, "9999-01-01T00:00")
    assert result.returncode == 2
    assert result.stderr == f"stormwatch: error: {option}: '9999-01-01T00:00' is not between 1970 and 2100\n"
