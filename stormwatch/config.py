"""Reading and validating `config.toml` into frozen dataclasses, with errors that name the key's path.

Values must make sense, not only parse: numbers are finite (no `nan` or `inf` budget), durations lie between a
millisecond (a second for polling intervals) and a year, times between 1970 and 2100, and no string holds a
control character or a line break (a name, tag or variable name with a trailing newline would never match).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .errors import ConfigError, CredentialsError
from .platforms import BLUESKY, MASTODON, PLATFORM_NAMES, is_valid_handle
from .times import Clock, parse_duration, window_time, zone_named

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "STORMWATCH_CONFIG"
KNOWN_SOURCES = PLATFORM_NAMES
# Matched whole (fullmatch): `$` alone would let a trailing newline through.
_CAMPAIGN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TAG = re.compile(r"\w{1,100}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SHORTEST_INTERVAL = timedelta(seconds=1)
SHORTEST_DURATION = timedelta(milliseconds=1)
LONGEST_DURATION = timedelta(days=365)
WORLDWIDE = 1  # X's trends are per WOEID (Yahoo's Where On Earth id)
# Companion collections of a campaign (no campaign name has a ~): its counter-hashtags, its targets' own posts.
COUNTER_SUFFIX, TARGETS_SUFFIX = "~counter", "~targets"
# How reports and the dashboard name accounts (privacy/naming.py applies it).
NAME_MODES = ("pseudonymized", "public")


@dataclass(frozen=True)
class StorageConfig:
    """Where the database, raw archive and log live (absolute paths)."""

    database: Path
    raw_archive: Path | None
    log_file: Path


@dataclass(frozen=True)
class RetryPolicy:
    """How a source's transient failures are retried: `retries` consecutive failures, waiting `backoff`
    seconds after the first and doubling up to `max_backoff`."""

    retries: int = 3
    backoff: float = 2.0
    max_backoff: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th consecutive failure."""
        return min(self.backoff * 2.0 ** (failures - 1), self.max_backoff)


@dataclass(frozen=True)
class XConfig:
    """How to reach X API v2 and what its reads cost."""

    bearer_token_env: str = "X_BEARER_TOKEN"
    api_base: str = "https://api.x.com"
    include_reposts: bool = True
    max_query_length: int = 512
    timeout: float = 30.0
    retry_policy: RetryPolicy = RetryPolicy()
    post_read_usd: float = 0.005
    user_read_usd: float = 0.010
    counts_request_usd: float = 0.005
    trends_request_usd: float = 0.010
    stream: bool = True  # during each storm window X is read from the filtered stream (reposts are only there)
    stream_lead: timedelta = timedelta(minutes=30)  # connected this long before the window's start
    reposts_per_original: float | None = None  # the plan's repost estimate; None: from a sample of recent search

    def read_cost(self, posts: int, users: int, counts_requests: int) -> float:
        """What reading this many posts and users and making this many counts requests costs (USD)."""
        return posts * self.post_read_usd + users * self.user_read_usd + counts_requests * self.counts_request_usd

    def bearer_token(self) -> str:
        """The bearer token from the environment variable the config names (never logged)."""
        token = os.environ.get(self.bearer_token_env, "").strip()
        if not token:
            raise CredentialsError(
                f"x: the environment variable {self.bearer_token_env} (x.bearer_token_env) is not set; "
                "export your X API bearer token under that name"
            )
        return token


@dataclass(frozen=True)
class MastodonConfig:
    """Which Mastodon instances to read hashtag timelines from (reads are free)."""

    instances: tuple[str, ...] = ()
    access_token_env: str | None = None
    timeout: float = 30.0
    page_size: int = 40
    retry_policy: RetryPolicy = RetryPolicy()

    def access_token(self) -> str | None:
        """The optional access token from the environment (some instances only serve tags to users)."""
        if not self.access_token_env:
            return None
        token = os.environ.get(self.access_token_env, "").strip()
        if not token:
            raise CredentialsError(f"mastodon: the environment variable {self.access_token_env} "
                                   "(mastodon.access_token_env) is not set")
        return token


@dataclass(frozen=True)
class BlueskyConfig:
    """Where to read Bluesky: the public Jetstream feed live, and authenticated search for backfill."""

    jetstream_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    appview_url: str = "https://public.api.bsky.app"
    service_url: str = "https://bsky.social"
    handle_env: str = "BLUESKY_HANDLE"
    app_password_env: str = "BLUESKY_APP_PASSWORD"
    timeout: float = 30.0
    retry_policy: RetryPolicy = RetryPolicy()

    def credentials(self) -> tuple[str, str] | None:
        """(handle, app password) from the environment, or None when either is unset (no backfill then)."""
        handle = os.environ.get(self.handle_env, "").strip()
        password = os.environ.get(self.app_password_env, "").strip()
        return (handle, password) if handle and password else None


@dataclass(frozen=True)
class ReportConfig:
    """How reports (and the dashboard: `[dashboard] names`, None to follow `names`) name participants, and where
    reports go."""

    pseudonymize_below: int = 5000
    names: str = "pseudonymized"
    out_dir: Path = Path("reports")
    dashboard_names: str | None = None


# What alerts.py can tell the organizers (each kind can be chosen in `[alerts] kinds`).
ALERT_KINDS = ("storm_soon", "storm_started", "goal", "fading", "source_failing", "source_recovered", "budget_warning",
               "budget_reached", "new_target", "storm_ended", "trending", "target_response", "copy_paste", "hijack")
ALERT_URLS_ENV = "STORMWATCH_ALERT_URLS"


@dataclass(frozen=True)
class AlertsConfig:
    """Where alerts go (Apprise URLs, named by environment variable: they carry secrets) and which are sent.

    `enabled` is whether the config has an `[alerts]` table; without URLs in the environment, alerts are
    still decided, recorded and logged, just not delivered.
    """

    enabled: bool = False
    urls_env: str = ALERT_URLS_ENV
    timezone: ZoneInfo | None = None  # None: the campaign's
    min_gap: timedelta = timedelta(minutes=10)
    kinds: tuple[str, ...] = ALERT_KINDS
    timeout: float = 10.0

    def urls(self) -> tuple[str, ...]:
        """The Apprise URLs in the environment variable `urls_env` (separated by spaces), never logged."""
        return tuple(os.environ.get(self.urls_env, "").split())


@dataclass(frozen=True)
class SimulationConfig:
    """The simulated platform's storm (used by `stormwatch simulate` and the demo)."""

    seed: int = 2021
    posts: int = 4000
    port: int = 8787
    token: str = ""


@dataclass(frozen=True)
class CampaignConfig:
    """One campaign: what to collect, when the storm is, how often to poll, what it may cost."""

    name: str
    hashtags: tuple[str, ...]
    accounts: tuple[str, ...]
    targets: tuple[str, ...]
    sources: tuple[str, ...]
    start: datetime
    end: datetime
    timezone: ZoneInfo
    interval: timedelta
    storm_interval: timedelta
    daily_budget_usd: float | None
    goal_posts: int | None = None
    goal_contributors: int | None = None
    trend_locations: tuple[int, ...] = (WORLDWIDE,)
    trends_interval: timedelta = timedelta(minutes=5)
    targets_mastodon: tuple[str, ...] = ()
    targets_bluesky: tuple[str, ...] = ()
    counter_hashtags: tuple[str, ...] = ()

    @property
    def owner(self) -> str:
        """The campaign a collection belongs to: itself, or the campaign a `~` companion serves."""
        return self.name.split("~", 1)[0]

    def counter(self) -> CampaignConfig | None:
        """The companion collecting the counter-hashtags like the campaign's own, under its own name; or None."""
        if not self.counter_hashtags or self.owner != self.name:
            return None
        return replace(self, name=self.name + COUNTER_SUFFIX, hashtags=self.counter_hashtags, accounts=(), targets=(),
                       targets_mastodon=(), targets_bluesky=(), trend_locations=(), counter_hashtags=())

    def in_window(self, moment: datetime) -> bool:
        """Whether `moment` falls inside the announced storm window."""
        return self.start <= moment < self.end

    def interval_at(self, moment: datetime) -> timedelta:
        """The polling interval that applies at `moment`."""
        return self.storm_interval if self.in_window(moment) else self.interval


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    path: Path
    storage: StorageConfig
    x: XConfig
    report: ReportConfig
    simulation: SimulationConfig
    clock: Clock
    campaigns: tuple[CampaignConfig, ...] = field(default_factory=tuple)
    mastodon: MastodonConfig = field(default_factory=MastodonConfig)
    bluesky: BlueskyConfig = field(default_factory=BlueskyConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    @property
    def dashboard_names(self) -> str:
        """How the dashboard names accounts: `[dashboard] names`, else `[report] names` (pseudonymized by default)."""
        return self.report.dashboard_names or self.report.names

    def campaign(self, name: str | None) -> CampaignConfig:
        """The campaign called `name`, or the only one when `name` is None."""
        if name is None:
            if len(self.campaigns) == 1:
                return self.campaigns[0]
            names = ", ".join(c.name for c in self.campaigns)
            raise ConfigError(f"{self.path.name}: several campaigns ({names}); choose one with --campaign")
        for campaign in self.campaigns:
            if campaign.name == name:
                return campaign
        known = ", ".join(c.name for c in self.campaigns) or "none"
        raise ConfigError(f"{self.path.name}: no campaign named {name!r} (campaigns: {known})")

    def selected(self, name: str | None) -> tuple[CampaignConfig, ...]:
        """The campaign called `name`, or every campaign when `name` is None."""
        return self.campaigns if name is None else (self.campaign(name),)

    def secrets(self) -> tuple[str, ...]:
        """Values of every secret the config names that are set, so logs can redact them."""
        names = [self.x.bearer_token_env, self.bluesky.app_password_env, self.mastodon.access_token_env or ""]
        values = tuple(v for v in (os.environ.get(n, "").strip() for n in names) if len(v) >= 4)
        return values + self.alerts.urls()  # whole URLs: console.secret_parts finds what in them is secret


def config_path(option: str | os.PathLike[str] | None) -> Path:
    """The config file to use: the option, else $STORMWATCH_CONFIG, else ./config.toml."""
    return Path(option) if option else Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise ConfigError naming the file and key path on any problem."""
    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark that some editors put at the start is not an error.
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{path.absolute()}: no config file there (name yours with --config PATH or ${CONFIG_ENV}; "
                          "`stormwatch init` writes a new one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> Config:
    """Validate an already-parsed TOML document (paths resolve against the file's folder)."""
    base = path.resolve().parent
    top = _Table(raw, str(path), "")
    storage = _storage(top.table("storage"), base)
    x = _x(top.table("x"))
    report = _report(top.table("report"), base, top.table("dashboard"))
    simulation = _simulation(top.table("simulation"))
    clock = _clock(top.table("clock"))
    mastodon = _mastodon(top.table("mastodon"))
    bluesky = _bluesky(top.table("bluesky"))
    alerts = _alerts(top.table("alerts"), "alerts" in raw)
    campaign_tables = top.array_of_tables("campaigns")
    campaigns = tuple(_campaign(t) for t in campaign_tables)
    if not campaigns:
        raise ConfigError(f"{path}: campaigns: no [[campaigns]] defined")
    seen: set[str] = set()
    for index, campaign in enumerate(campaigns):
        if campaign.name in seen:
            raise ConfigError(f"{path}: campaigns[{index}].name: {campaign.name!r} is used twice")
        seen.add(campaign.name)
        if "mastodon" in campaign.sources and not mastodon.instances:
            raise ConfigError(f"{path}: campaigns[{index}].sources: \"mastodon\" needs mastodon.instances, "
                              'e.g. instances = ["mastodon.social"]')
    top.finish()
    return Config(path=path, storage=storage, x=x, report=report, simulation=simulation, clock=clock,
                  campaigns=campaigns, mastodon=mastodon, bluesky=bluesky, alerts=alerts)


class _Table:
    """A TOML table being read: tracks its key path and rejects keys nobody read (typos)."""

    def __init__(self, data: Any, file: str, where: str) -> None:
        self.file = file
        self.where = where
        if not isinstance(data, dict):
            self.fail("", f"must be a table, not {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.read: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str) -> None:
        where = self.key_path(key) if key else self.where
        raise ConfigError(f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}")

    def table(self, key: str) -> _Table:
        self.read.add(key)
        return _Table(self.data.get(key, {}), self.file, self.key_path(key))

    def array_of_tables(self, key: str) -> list[_Table]:
        self.read.add(key)
        items = self.data.get(key, [])
        if not isinstance(items, list):
            self.fail(key, "must be an array of tables ([[campaigns]])")
        return [_Table(item, self.file, f"{self.key_path(key)}[{i}]") for i, item in enumerate(items)]

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        self.read.add(key)
        if key not in self.data:
            if required:
                self.fail(key, "is required")
            return default
        value = self.data[key]
        # TOML integers are acceptable where a float is expected; booleans are not numbers here.
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.fail(key, f"must be {_kind_name(kind)}, not a boolean")
        if not isinstance(value, kind):
            self.fail(key, f"must be {_kind_name(kind)}, not {_type_name(value)} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"must be a finite number, not {value!r}")
        if isinstance(value, str):
            self.check_text(key, value)
        return value

    def check_text(self, key: str, value: str) -> None:
        """A string value holds no control character and no line break."""
        found = _CONTROL.search(value)
        if found:
            self.fail(key, f"{value!r} contains a control character or line break ({found.group()!r})")

    def converted(self, key: str, convert: Callable[[str], Any], default: Any = None, *,
                  required: bool = False) -> Any:
        text = self.get(key, str, None, required=required)
        if text is None:
            return default
        try:
            return convert(text)
        except (ValueError, KeyError, OverflowError) as exc:
            self.fail(key, str(exc) if str(exc) and not isinstance(exc, OverflowError) else f"{text!r} is not valid")

    def strings(self, key: str, valid: Callable[[str], object], strip: str, *, required: bool = False,
                shape: str | None = None) -> tuple[str, ...]:
        values = self.get(key, list, [], required=required)
        cleaned: list[str] = []
        lowered: set[str] = set()
        for index, value in enumerate(values):
            if not isinstance(value, str):
                self.fail(f"{key}[{index}]", f"must be a string, not {_type_name(value)}")
            self.check_text(f"{key}[{index}]", value)
            if value != value.strip():
                self.fail(f"{key}[{index}]", f"{value!r} has blank space at its start or end")
            text = value.lstrip(strip)
            if not valid(text):
                self.fail(f"{key}[{index}]", f"{value!r} is not {shape or 'a valid ' + key[:-1]}")
            if text.lower() not in lowered:
                lowered.add(text.lower())
                cleaned.append(text)
        if required and not cleaned:
            self.fail(key, "must list at least one value")
        return tuple(cleaned)

    def finish(self) -> None:
        for key in self.data:
            if key not in self.read:
                close = difflib.get_close_matches(key, sorted(self.read), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(key, f"unknown key{hint}")


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
               dict: "a table"}


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {**_TYPE_NAMES, bool: "true or false"}
    return " or ".join(names.get(k, k.__name__) for k in (kind if isinstance(kind, tuple) else (kind,)))


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _path(table: _Table, key: str, default: str, base: Path) -> Path:
    text = table.get(key, str, default)
    if not text.strip():
        table.fail(key, "must not be empty")
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path


def _storage(table: _Table, base: Path) -> StorageConfig:
    database = _path(table, "database", "data/stormwatch.db", base)
    raw_text = table.get("raw_archive", str, "data/raw")
    raw_archive = None if not raw_text.strip() else _path(table, "raw_archive", raw_text, base)
    log_file = _path(table, "log_file", str(database.parent / "stormwatch.log"), base)
    table.finish()
    return StorageConfig(database=database, raw_archive=raw_archive, log_file=log_file)


def _positive(table: _Table, key: str, kind: type, default: Any) -> Any:
    value = table.get(key, kind, default)
    if value is not None and value <= 0:
        table.fail(key, f"must be positive, not {value!r}")
    return value


def _duration(table: _Table, key: str, default: timedelta, shortest: timedelta = SHORTEST_DURATION) -> timedelta:
    """A duration like `90s` between `shortest` and a year."""
    value: timedelta = table.converted(key, parse_duration, default)
    if value < shortest:
        table.fail(key, f"{table.data[key]!r} is shorter than {_plain_duration(shortest)}")
    if value > LONGEST_DURATION:
        table.fail(key, f"{table.data[key]!r} is longer than a year")
    return value


def _plain_duration(delta: timedelta) -> str:
    return "a second" if delta == timedelta(seconds=1) else f"{delta.total_seconds() * 1000:g} ms"


def _seconds(table: _Table, key: str, default: float) -> float:
    return _duration(table, key, timedelta(seconds=default)).total_seconds()


def _x(table: _Table) -> XConfig:
    env = table.get("bearer_token_env", str, XConfig.bearer_token_env)
    if not _ENV_NAME.fullmatch(env):
        table.fail("bearer_token_env", f"{env!r} is not an environment variable name (put the token itself "
                   "in the environment, never in this file)")
    api_base = _url(table, "api_base", XConfig.api_base, ("https", "http"))
    max_query = table.get("max_query_length", int, XConfig.max_query_length)
    if max_query < 64:
        table.fail("max_query_length", f"must be at least 64, not {max_query}")
    config = XConfig(
        bearer_token_env=env,
        api_base=api_base,
        include_reposts=table.get("include_reposts", bool, True),
        max_query_length=max_query,
        timeout=_seconds(table, "timeout", XConfig.timeout),
        retry_policy=_retry_policy(table),
        post_read_usd=_nonnegative(table, "post_read_usd", XConfig.post_read_usd),
        user_read_usd=_nonnegative(table, "user_read_usd", XConfig.user_read_usd),
        counts_request_usd=_nonnegative(table, "counts_request_usd", XConfig.counts_request_usd),
        trends_request_usd=_nonnegative(table, "trends_request_usd", XConfig.trends_request_usd),
        stream=table.get("stream", bool, True),
        stream_lead=_duration(table, "stream_lead", XConfig.stream_lead, timedelta(0)),
        reposts_per_original=_nonnegative(table, "reposts_per_original", None),
    )
    table.finish()
    return config


def _retry_policy(table: _Table) -> RetryPolicy:
    """`retries`, `retry_backoff` and `max_backoff` of a platform's table (each platform has its own)."""
    retries = table.get("retries", int, RetryPolicy.retries)
    if not 0 <= retries <= 20:
        table.fail("retries", f"must be between 0 and 20, not {retries}")
    return RetryPolicy(retries=retries, backoff=_seconds(table, "retry_backoff", RetryPolicy.backoff),
                       max_backoff=_seconds(table, "max_backoff", RetryPolicy.max_backoff))


def _nonnegative(table: _Table, key: str, default: Any) -> Any:
    value = table.get(key, float, default)
    if value is not None and value < 0:
        table.fail(key, f"must not be negative, not {value!r}")
    return value


def _env_name(table: _Table, key: str, default: str | None) -> str | None:
    name = table.get(key, str, default)
    if name is not None and name != "" and not _ENV_NAME.fullmatch(name):
        table.fail(key, f"{name!r} is not an environment variable name (put the secret itself in the "
                   "environment, never in this file)")
    return name or None


def _url(table: _Table, key: str, default: str, schemes: tuple[str, ...]) -> str:
    value: str = table.get(key, str, default).rstrip("/")
    if not any(value.startswith(f"{scheme}://") for scheme in schemes) or len(value) <= len(schemes[0]) + 3:
        table.fail(key, f"{value!r} is not {'an http(s)' if schemes[-1] == 'http' else 'a ' + '/'.join(schemes)} URL")
    return value


def _mastodon(table: _Table) -> MastodonConfig:
    instances = table.get("instances", list, [])
    cleaned = []
    for index, instance in enumerate(instances):
        if not isinstance(instance, str) or not re.fullmatch(r"(https?://)?[\w.-]+(:\d+)?(/[\w./-]*)?", instance):
            table.fail(f"instances[{index}]", f"{instance!r} is not an instance name like mastodon.social")
        cleaned.append(instance.rstrip("/"))
    page_size = table.get("page_size", int, MastodonConfig.page_size)
    if not 1 <= page_size <= 40:
        table.fail("page_size", f"must be between 1 and 40 (Mastodon's limit), not {page_size}")
    config = MastodonConfig(instances=tuple(dict.fromkeys(cleaned)),
                            access_token_env=_env_name(table, "access_token_env", None),
                            timeout=_seconds(table, "timeout", MastodonConfig.timeout), page_size=page_size,
                            retry_policy=_retry_policy(table))
    table.finish()
    return config


def _bluesky(table: _Table) -> BlueskyConfig:
    config = BlueskyConfig(
        jetstream_url=_url(table, "jetstream_url", BlueskyConfig.jetstream_url, ("wss", "ws")),
        appview_url=_url(table, "appview_url", BlueskyConfig.appview_url, ("https", "http")),
        service_url=_url(table, "service_url", BlueskyConfig.service_url, ("https", "http")),
        handle_env=_env_name(table, "handle_env", BlueskyConfig.handle_env) or BlueskyConfig.handle_env,
        app_password_env=(_env_name(table, "app_password_env", BlueskyConfig.app_password_env)
                          or BlueskyConfig.app_password_env),
        timeout=_seconds(table, "timeout", BlueskyConfig.timeout),
        retry_policy=_retry_policy(table),
    )
    table.finish()
    return config


def _alerts(table: _Table, present: bool) -> AlertsConfig:
    kinds = table.strings("kinds", lambda kind: kind in ALERT_KINDS, "")
    if "kinds" in table.data and not kinds:
        table.fail("kinds", f"must list at least one of {', '.join(ALERT_KINDS)} (or leave [alerts] out)")
    config = AlertsConfig(
        enabled=present,
        urls_env=_env_name(table, "urls_env", ALERT_URLS_ENV) or ALERT_URLS_ENV,
        timezone=table.converted("timezone", zone_named, None),
        min_gap=table.converted("min_gap", parse_duration, AlertsConfig.min_gap),
        kinds=kinds or ALERT_KINDS,
        timeout=_seconds(table, "timeout", AlertsConfig.timeout),
    )
    table.finish()
    return config


def _names(table: _Table, default: str | None) -> str | None:
    names: str | None = table.get("names", str, default)
    if names is not None and names not in NAME_MODES:
        table.fail("names", f"{names!r} must be \"pseudonymized\" or \"public\"")
    return names


def _report(table: _Table, base: Path, dashboard: _Table) -> ReportConfig:
    threshold = table.get("pseudonymize_below", int, ReportConfig.pseudonymize_below)
    if threshold < 0:
        table.fail("pseudonymize_below", f"must not be negative, not {threshold}")
    names = _names(table, ReportConfig.names) or ReportConfig.names
    out_dir = _path(table, "out_dir", "reports", base)
    dashboard_names = _names(dashboard, None)
    table.finish()
    dashboard.finish()
    return ReportConfig(pseudonymize_below=threshold, names=names, out_dir=out_dir, dashboard_names=dashboard_names)


def _simulation(table: _Table) -> SimulationConfig:
    port = table.get("port", int, SimulationConfig.port)
    if not 0 <= port <= 65535:
        table.fail("port", f"{port} is not a TCP port")
    config = SimulationConfig(
        seed=table.get("seed", int, SimulationConfig.seed),
        posts=_positive(table, "posts", int, SimulationConfig.posts),
        port=port,
        token=table.get("token", str, ""),
    )
    table.finish()
    return config


def _clock(table: _Table) -> Clock:
    frozen_at = table.converted("frozen_at", lambda t: window_time(t, ZoneInfo("UTC")), None)
    if frozen_at is not None:
        extra = [key for key in ("speed", "anchor", "anchor_wall") if key in table.data]
        if extra:
            table.fail(extra[0], "a clock frozen_at one moment takes no speed, anchor or anchor_wall")
        table.finish()
        return Clock(anchor=frozen_at, frozen=True)
    speed = _positive(table, "speed", float, 1.0)
    anchor = table.converted("anchor", lambda t: window_time(t, ZoneInfo("UTC")), None)
    anchor_wall = table.get("anchor_wall", float, None)
    if (anchor is None) != (anchor_wall is None):
        table.fail("anchor" if anchor is None else "anchor_wall",
                   "is required with clock.anchor_wall / clock.anchor (a simulated clock needs both)")
    if anchor is None and speed != 1.0:
        table.fail("speed", "a faster clock needs clock.anchor and clock.anchor_wall")
    table.finish()
    return Clock(speed=speed, anchor=anchor, anchor_wall=anchor_wall or 0.0)


def _campaign(table: _Table) -> CampaignConfig:
    name = table.get("name", str, required=True)
    if not _CAMPAIGN_NAME.fullmatch(name):
        table.fail("name", f"{name!r} must be lower-case letters, digits, - or _ (it names files)")
    hashtags = table.strings("hashtags", _TAG.fullmatch, "#", required=True)
    accounts = table.strings("accounts", is_valid_handle, "@")
    targets = table.strings("targets", is_valid_handle, "@")
    sources = table.get("sources", list, ["x"])
    for index, source in enumerate(sources):
        if source not in KNOWN_SOURCES:
            table.fail(f"sources[{index}]", f"{source!r} is not a known source ({', '.join(KNOWN_SOURCES)})")
    if not sources:
        table.fail("sources", "must list at least one source")
    timezone = table.converted("timezone", zone_named, ZoneInfo("UTC"))
    start = table.converted("start", lambda t: window_time(t, timezone), required=True)
    end = table.converted("end", lambda t: window_time(t, timezone), required=True)
    if end <= start:
        table.fail("end", "must be after start")
    interval = _duration(table, "interval", timedelta(minutes=5), SHORTEST_INTERVAL)
    storm_interval = _duration(table, "storm_interval", timedelta(minutes=1), SHORTEST_INTERVAL)
    budget = table.get("daily_budget_usd", float, None)
    if budget is not None and budget < 0:
        table.fail("daily_budget_usd", f"must not be negative, not {budget}")
    campaign = CampaignConfig(
        name=name,
        hashtags=hashtags,
        accounts=accounts,
        targets=targets,
        sources=tuple(dict.fromkeys(sources)),
        start=start,
        end=end,
        timezone=timezone,
        interval=interval,
        storm_interval=storm_interval,
        daily_budget_usd=budget,
        goal_posts=_positive(table, "goal_posts", int, None),
        goal_contributors=_positive(table, "goal_contributors", int, None),
        **_intel_keys(table, hashtags),
    )
    table.finish()
    return campaign


def _intel_keys(table: _Table, hashtags: tuple[str, ...]) -> dict[str, Any]:
    """A campaign's trend_locations, trends_interval, targets_mastodon, targets_bluesky and counter_hashtags."""
    locations = table.get("trend_locations", list, [WORLDWIDE])
    for index, woeid in enumerate(locations):
        if isinstance(woeid, bool) or not isinstance(woeid, int) or woeid <= 0:
            table.fail(f"trend_locations[{index}]", f"{woeid!r} is not a WOEID like 1 (worldwide) or 44418 (London)")
    interval = table.converted("trends_interval", parse_duration, CampaignConfig.trends_interval)
    if interval < timedelta(minutes=1):  # X charges for every trends request
        table.fail("trends_interval", "must be at least 1m")
    counter = table.strings("counter_hashtags", _TAG.fullmatch, "#")
    for tag in (t for t in counter if t.casefold() in {own.casefold() for own in hashtags}):
        table.fail("counter_hashtags", f"#{tag} is one of the campaign's own hashtags")
    return {
        "trend_locations": tuple(dict.fromkeys(locations)),
        "trends_interval": interval,
        # A Mastodon account needs its instance (`user@instance`): that is where its public timeline is.
        "targets_mastodon": table.strings("targets_mastodon", lambda h: "@" in h and MASTODON.handles.is_valid(h), "@",
                                          shape="an account like user@instance"),
        "targets_bluesky": table.strings("targets_bluesky", BLUESKY.handles.is_valid, "@",
                                         shape="a handle like x.bsky.social"),
        "counter_hashtags": counter,
    }
