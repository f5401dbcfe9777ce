"""The `stormwatch` command: parse, call one library function, print; our errors become one line and an exit code."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .config import Config, config_path, load_config
from .errors import StormwatchError
from .normalize.text import one_line

CONFIG_HELP = "Config file (default: $STORMWATCH_CONFIG or ./config.toml)."


def fail_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn StormwatchError into `stormwatch: error: <one line>` and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StormwatchError as exc:
            # Errors can quote what a platform or an archive said: one line, no control characters.
            click.echo(f"stormwatch: error: {one_line(str(exc))}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The `--config PATH` option every command takes (after the command; `stormwatch --config PATH` works too)."""
    return click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                        help=CONFIG_HELP)(command)


def _chosen_config(config_file: str | None) -> str | None:
    """The command's own --config, else the one given before the command (`stormwatch --config F status`)."""
    if config_file:
        return config_file
    context: click.Context | None = click.get_current_context(silent=True)
    # Given before the command (`stormwatch --config F status`) or before a group's command (`alerts --config F list`).
    while context is not None:
        if context.params.get("config_file"):
            return str(context.params["config_file"])
        context = context.parent
    return None


def _load(config_file: str | None) -> Config:
    return load_config(config_path(_chosen_config(config_file)))


def _logging(config: Config, *, verbose: bool = False, quiet: bool = False, console: bool = True,
             secrets: tuple[str, ...] = ()) -> None:
    from .console import setup_logging

    setup_logging(config.storage.log_file, secrets=(*config.secrets(), *secrets), verbose=verbose, quiet=quiet,
                  console=console)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stormwatch")
@config_option
def main(config_file: str | None) -> None:
    """Collect, watch and report coordinated solidarity storms on social media."""


@main.command()
@config_option
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--simulated", is_flag=True, help="A rehearsal config pointed at `stormwatch simulate`.")
@click.option("--port", type=int, default=8787, show_default=True, help="The simulated platform's port.")
@fail_cleanly
def init(config_file: str | None, force: bool, simulated: bool, port: int) -> None:
    """Write a commented config.toml for the #StandWithIssa example."""
    path = config_path(_chosen_config(config_file))
    if path.exists() and not force:
        raise StormwatchError(f"{path}: already exists (use --force to overwrite)")
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from .plan import EXAMPLE_ZONE, REHEARSAL_LEAD, example_config
    from .times import next_full_hour

    start = next_full_hour(datetime.now(UTC), ZoneInfo(EXAMPLE_ZONE))
    text = example_config(start=start, simulated_port=port if simulated else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    config = load_config(path)  # the template must always validate
    campaign = config.campaigns[0]
    click.echo(f"wrote {path}: the #{campaign.hashtags[0]} example, storm window "
               f"{campaign.start.astimezone(campaign.timezone):%a %d %b %H:%M} → "
               f"{campaign.end.astimezone(campaign.timezone):%H:%M} {campaign.timezone.key}, "
               f"daily budget ${campaign.daily_budget_usd or 0:,.2f}; edit it for your campaign")
    if simulated:
        click.echo(f"rehearsal on X, Mastodon and Bluesky; the simulated storm starts in "
                   f"{REHEARSAL_LEAD.seconds // 60} minutes (storm time runs {config.clock.speed:g}x faster)")
        click.echo(f"next: `stormwatch simulate --config {path}` in one terminal, then "
                   f"`X_BEARER_TOKEN=simulated stormwatch dashboard --collect --config {path}` in another")
    else:
        click.echo("next: export X_BEARER_TOKEN=<your token>, `stormwatch plan` for the cost, "
                   "then `stormwatch collect --once`")


@main.command()
@config_option
@click.option("--once", is_flag=True, help="One run for every campaign and source, then the alerts due; then exit "
                                           "(the cron way).")
@click.option("--campaign", default=None, help="Only this campaign.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@fail_cleanly
def collect(config_file: str | None, once: bool, campaign: str | None, verbose: bool) -> None:
    """Collect posts and tell the alerts: once, or on the schedule until Ctrl-C / SIGTERM.

    A platform whose credentials are missing (X without X_BEARER_TOKEN) is skipped, said in one line, and the
    others are collected; the exit code is then 1. One collector per database: a second is refused.
    """
    from .alerts import check_once
    from .collector import Collector
    from .plan import goal_budget_warning
    from .report.text import alert_text
    from .store import collector_lock

    config = _load(config_file)
    _logging(config, verbose=verbose)
    _refuse_a_frozen_clock(config)
    for chosen in config.selected(campaign):
        warning = goal_budget_warning(config, chosen)
        if warning:
            click.echo(f"stormwatch: warning: {chosen.name}: {warning}", err=True)
    stop = threading.Event()
    collector = Collector(config, clock=config.clock, stop=stop)
    skipped = collector.skip_missing_credentials()
    for line in skipped:
        click.echo(f"stormwatch: {line}", err=True)
    _stop_on_signals(stop)
    failed = False
    try:
        with collector_lock(config.storage.database, "stormwatch collect" + (" --once" if once else "")):
            if once:
                records = collector.run_once(campaign)
                for record in records:
                    click.echo(_run_line(record))
                for name, told in check_once(collector.config, collector.config.selected(campaign), config.clock):
                    zone = config.alerts.timezone or config.campaign(name).timezone
                    click.echo(alert_text(told, zone, config.clock.now()))
                failed = any(r.status == "failed" for r in records)
            else:
                from .scheduler import run_until_stopped

                run_until_stopped(collector, campaign)
    finally:
        collector.close()
    if stop.is_set():
        click.echo(_stopped(config, campaign))
    if failed or skipped:
        sys.exit(1)


def _stopped(config: Config, campaign: str | None) -> str:
    """The one line said when Ctrl-C or SIGTERM stopped collecting: what is stored, and how to go on."""
    from .store import Store

    with Store.open(config.storage.database) as store:
        posts = sum(store.count_campaign_posts(chosen.name) for chosen in config.selected(campaign))
    return f"stopped: {posts:,} posts stored; `stormwatch collect` resumes"


def _refuse_a_frozen_clock(config: Config) -> None:
    if config.clock.frozen and config.clock.anchor is not None:
        raise StormwatchError(f"{config.path}: clock.frozen_at: this config's clock stands still at "
                              f"{config.clock.anchor:%Y-%m-%d %H:%M} UTC (a finished demo): nothing to collect")


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM ask the collector to finish the page in flight and stop."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _run_line(record: Any) -> str:
    text = (f"{record.campaign}/{record.source}: {record.status} — {record.posts_new} new posts, "
            f"{record.requests} requests, ${record.cost_usd:.2f}")
    return text + (f" — {one_line(record.error)}" if record.error else "")


@main.command()
@config_option
@click.option("--campaign", default=None, help="Only this campaign.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@fail_cleanly
def status(config_file: str | None, campaign: str | None, as_json: bool) -> None:
    """Campaigns, sources, cursors, last runs, errors, requests and spend."""
    from .metrics import collection_status
    from .report.text import status_text
    from .store import Store

    config = _load(config_file)
    selected = config.selected(campaign)
    with Store.open_for_reading(config.storage.database) as store:
        _note_access(store)
        report = collection_status(store, config, selected)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(status_text(report, config))


def _note_access(store: Any) -> None:
    """Say on stderr what opening the database read-only limits, if it was."""
    note = store.access_note()
    if note:
        click.echo(note, err=True)


def _window(config: Config, campaign_name: str | None, since: str | None, until: str | None) -> tuple[Any, Any]:
    """The chosen campaign and its metrics window from --since/--until (naive times in the campaign's zone)."""
    from .errors import UsageError
    from .metrics import campaign_window
    from .times import window_time

    campaign = config.campaign(campaign_name)

    def moment(text: str | None, option: str) -> Any:
        if text is None:
            return None
        try:
            return window_time(text, campaign.timezone)
        except ValueError as exc:
            if "between" in str(exc):
                raise UsageError(f"{option}: {exc}") from None
            raise StormwatchError(f"{option}: {text!r} is not a time like 2021-02-07T18:00 or "
                                  "2021-02-07T16:00:00Z") from None

    window = campaign_window(campaign, moment(since, "--since"), moment(until, "--until"))
    if window.until <= window.since:
        raise StormwatchError("--until must be after --since")
    return campaign, window


def window_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--campaign, --since and --until."""
    times = ("an ISO 8601 time: 2021-02-07T18:00 in the campaign's time zone, or with its offset, "
             "2021-02-07T16:00:00Z")
    command = click.option("--until", default=None, metavar="TIME",
                           help=f"Window end, {times} (default: the campaign's end).")(command)
    command = click.option("--since", default=None, metavar="TIME",
                           help=f"Window start, {times} (default: the campaign's start).")(command)
    return click.option("--campaign", default=None, help="The campaign (needed when there are several).")(command)


@main.command()
@config_option
@window_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@fail_cleanly
def summary(config_file: str | None, campaign: str | None, since: str | None, until: str | None,
            as_json: bool) -> None:
    """Headline figures for a campaign window."""
    from .intel import summary_fields
    from .metrics import summary as campaign_summary
    from .report.text import summary_text
    from .store import Store

    config = _load(config_file)
    chosen, window = _window(config, campaign, since, until)
    with Store.open_for_reading(config.storage.database) as store:
        _note_access(store)
        data = {**campaign_summary(store, chosen, window, config=config).to_json(),
                **summary_fields(store, config, chosen, window)}
    # A window still running: the figures are the storm so far.
    data["interim"] = config.clock.now() < window.until
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(summary_text(data, chosen.timezone))


@main.command()
@config_option
@window_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Parent folder for the report (default: report.out_dir, ./reports).")
@click.option("--names", type=click.Choice(["public", "pseudonymized"]), default=None,
              help="Name every account, or pseudonymize small accounts (default: report.names).")
@fail_cleanly
def report(config_file: str | None, campaign: str | None, since: str | None, until: str | None,
           out_dir: str | None, names: str | None) -> None:
    """Write the post-event report (HTML, Markdown, CSV, JSON and charts) and print its folder."""
    from pathlib import Path

    from .report import write_report
    from .store import Store

    config = _load(config_file)
    chosen, window = _window(config, campaign, since, until)
    with Store.open_for_reading(config.storage.database) as store:
        _note_access(store)
        folder = write_report(store, config, chosen, window, out_dir=Path(out_dir) if out_dir else None,
                              names=names, now=config.clock.now())
        if store.labels_not_stored:
            click.echo(f"note: {store.labels_not_stored:,} pseudonyms were made for this report only (the database "
                       "is read-only): their labels will differ in the next report", err=True)
    click.echo(str(folder))


@main.command()
@config_option
@click.option("--campaign", default=None, help="The campaign (needed when there are several).")
@click.option("--collect", "with_collector", is_flag=True, help="Also run the scheduled collector in this process.")
@click.option("--names", type=click.Choice(["pseudonymized", "public"]), default=None,
              help="Pseudonymize small accounts, or name every account (default: dashboard.names, else report.names; "
                   "think of who can see the screen).")
@fail_cleanly
def dashboard(config_file: str | None, campaign: str | None, with_collector: bool, names: str | None) -> None:
    """The live storm dashboard (one still frame when not on a terminal)."""
    from .console import is_terminal
    from .dashboard import print_once, take_snapshot

    config = _load(config_file)
    chosen = config.campaign(campaign)
    interactive = is_terminal()
    _logging(config, quiet=True, console=not interactive)
    from .store import Store, collector_lock

    if not with_collector:
        with Store.open_for_reading(config.storage.database) as store:
            _note_access(store)
            if not interactive:
                print_once(take_snapshot(store, config, chosen, names=names))
                return
            _watch(config, chosen, store, None, threading.Event(), names)
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    with collector_lock(config.storage.database, "stormwatch dashboard --collect"):
        scheduled = _start_collector(config, chosen.name, stop)
        _watch_collecting(config, chosen, scheduled, stop, interactive, names)


def _watch_collecting(config: Config, chosen: Any, scheduled: Any, stop: threading.Event, interactive: bool,
                      names: str | None) -> None:
    """The dashboard beside the scheduled collector in this process, until Ctrl-C or `stop`."""
    from .dashboard import print_once, take_snapshot
    from .store import Store

    try:
        with Store.open(config.storage.database) as store:
            if interactive:
                _watch(config, chosen, store, scheduled, stop, names)
            else:
                stop.wait(2.0)  # let the first run land, then show one frame
                print_once(take_snapshot(store, config, chosen, next_runs=scheduled.next_runs(), names=names))
    finally:
        scheduled.stop()
        scheduled.collector.close()


def _watch(config: Config, campaign: Any, store: Any, scheduled: Any, stop: threading.Event,
           names: str | None = None, notes: tuple[str, ...] = ()) -> None:
    """Run the live dashboard for a campaign until Ctrl-C or `stop`, with `notes` below it."""
    from dataclasses import replace

    from .dashboard import run_live, take_snapshot

    def read() -> Any:
        snapshot = take_snapshot(store, config, campaign, next_runs=scheduled.next_runs() if scheduled else None,
                                 list_size=20, names=names)
        return replace(snapshot, notes=(*snapshot.notes, *notes))

    run_live(read, stop)


@main.command()
@config_option
@click.option("--campaign", default=None, help="The campaign (needed when there are several).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but this computer's lets everyone on that network with the link in.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on.")
@click.option("--names", type=click.Choice(["pseudonymized", "public"]), default="pseudonymized", show_default=True,
              help="Pseudonymize small accounts as reports do, or name every account (a red banner says so).")
@click.option("--collect", "with_collector", is_flag=True, help="Also run the scheduled collector in this process.")
@click.option("--new-link", is_flag=True, help="Make a new secret link: every link given out before stops working.")
@fail_cleanly
def serve(config_file: str | None, campaign: str | None, host: str, port: int, names: str, with_collector: bool,
          new_link: bool) -> None:
    """The team's live page: a private, read-only web view of the storm for phones (Ctrl-C stops it)."""
    from .web import link_file, link_secret

    config = _load(config_file)
    chosen = config.campaign(campaign)
    secret = link_secret(link_file(config), new=new_link)
    # The secret is in the link: redacted from every log line like the platforms' credentials.
    _logging(config, quiet=True, secrets=(secret,))
    stop = threading.Event()
    scheduled = None
    with contextlib.ExitStack() as held:
        if with_collector:
            from .store import Store, collector_lock

            held.enter_context(collector_lock(config.storage.database, "stormwatch serve --collect"))
            Store.open(config.storage.database).close()  # made (or upgraded) before the page opens it read-only
            scheduled = _start_collector(config, chosen.name, stop)
        _serve_page(config, chosen, secret, host, port, names, scheduled, stop)


def _serve_page(config: Config, chosen: Any, secret: str, host: str, port: int, names: str, scheduled: Any,
                stop: threading.Event) -> None:
    """Serve the live page until Ctrl-C, then stop the collector beside it (if any)."""
    try:
        from .web import prepare

        page = prepare(config, chosen, secret, host=host, port=port, names=names,
                       next_runs=scheduled.next_runs if scheduled else None)
        _tell_page(page.url, host, names, page.live.access_note())
        page.run()
    finally:
        stop.set()
        if scheduled is not None:
            scheduled.stop()
            scheduled.collector.close()


def _start_collector(config: Config, campaign: str, stop: threading.Event) -> Any:
    """The scheduled collector of one campaign, started in this process (`dashboard --collect`, `serve --collect`);
    `stop` ends its runs early."""
    from .collector import Collector
    from .scheduler import ScheduledCollector

    _refuse_a_frozen_clock(config)
    collector = Collector(config, clock=config.clock, stop=stop)
    collector.check_credentials()
    scheduled = ScheduledCollector(collector, campaign)
    scheduled.start()
    return scheduled


def _tell_page(url: str, host: str, names: str, note: str | None) -> None:
    """Print the page's link and its QR code, and what it shows to whom."""
    from .web import page_notice

    for line, to_stderr in page_notice(url, host, names, note):
        click.echo(line, err=to_stderr)


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="The demo's folder is this file's folder (default: data/demo/config.toml): its config.toml, "
                   "database and log go there; an empty folder or an earlier demo's.")
@click.option("--duration", type=float, default=60.0, show_default=True,
              help="Wall-clock seconds the storm takes to play out.")
@click.option("--headless", is_flag=True,
              help="No dashboard: progress lines and the summary (automatic without a TTY).")
@click.option("--posts", type=click.IntRange(100, 500_000), default=5000, show_default=True,
              help="About how many campaign posts the storm has.")
@click.option("--seed", type=int, default=2021, show_default=True, help="Storm seed.")
@click.option("--serve", "serve_page", is_flag=True, help="Also show the team's live page (`stormwatch serve`).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="The live page's port (with --serve).")
@fail_cleanly
def demo(config_file: str | None, duration: float, headless: bool, posts: int, seed: int, serve_page: bool,
         port: int) -> None:
    """A #StandWithIssa storm on the simulated platform: collected live, then reported (no account needed)."""
    import secrets
    from pathlib import Path

    from .console import is_terminal, setup_logging
    from .demo import fresh_demo_folder, run_demo, serve_during_demo
    from .report.text import summary_text

    if duration < 5:
        raise StormwatchError("--duration: at least 5 seconds")
    interactive = is_terminal() and not headless
    base = Path.cwd()
    token = secrets.token_urlsafe(24)  # the simulated platform's bearer token for this run only
    chosen = _chosen_config(config_file)
    folder = fresh_demo_folder(base, Path(chosen).absolute().parent if chosen else None)
    from .config import ALERT_URLS_ENV

    alert_secrets = tuple(os.environ.get(ALERT_URLS_ENV, "").split())  # redacted with their secret parts
    setup_logging(folder / "stormwatch.log", secrets=(token, *alert_secrets), quiet=True, console=not interactive)
    live_view = None
    if interactive:
        def live_view(collector: Any, scheduled: Any, stop: threading.Event) -> None:
            from .store import Store

            with Store.open(collector.config.storage.database) as store:
                _watch(collector.config, collector.config.campaigns[0], store, scheduled, stop,
                       notes=tuple(f"live page: {link}" for link in links))

    links: list[str] = []  # the live page's, shown on the dashboard too: it takes the whole screen

    def tell(url: str) -> None:
        _tell_page(url, "127.0.0.1", "pseudonymized", None)
        links.append(url)

    page_view = serve_during_demo(port, tell) if serve_page else None
    result = run_demo(base=base, duration=duration, posts=posts, seed=seed, token=token, live_view=live_view,
                      progress=click.echo, folder=folder, page_view=page_view)
    click.echo(summary_text({**result.summary.to_json(), **result.intel}, result.timezone))
    if interactive and result.alerts:  # headless, they were printed as they came
        click.echo("alerts told during the storm:")
        for alert in result.alerts:
            click.echo(alert)
    click.echo(f"report: {result.report / 'report.html' if result.report else '(not written)'}")


@main.command(name="import")
@config_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=None))
@click.option("--campaign", default=None, help="The campaign the posts belong to (needed when there are several).")
@click.option("--max-line-mb", type=click.IntRange(min=1), default=64, show_default=True,
              help="Skip (and report) a line or array element longer than this many MB, never holding it.")
@fail_cleanly
def import_command(config_file: str | None, files: tuple[str, ...], campaign: str | None, max_line_mb: int) -> None:
    """Import archives (twarc2 JSONL, saved API responses, Mastodon and Bluesky arrays; .gz too).

    Formats are detected by content: twarc2 lines and saved X API v2 responses, stormwatch's own raw archive
    (X, Mastodon, Bluesky), Mastodon status arrays and Bluesky postView arrays or searchPosts pages. Broken
    lines and records are reported as FILE:LINE: reason (FILE:LINE:[ITEM]: reason for an element of an array)
    and skipped, the rest kept; the exit code is 1 when any was skipped. A line longer than --max-line-mb is
    skipped as FILE:LINE: line longer than 64 MB, without being held in memory.
    """
    from pathlib import Path

    from .archive.reader import not_a_file
    from .console import progress_bar
    from .importer import import_archives
    from .store import Store

    config = _load(config_file)
    chosen = config.campaign(campaign)
    paths = [Path(f) for f in files]
    for path in paths:
        if (reason := not_a_file(path)) is not None:  # a FIFO or a device: said before anything opens it
            raise StormwatchError(reason)
    with Store.open(config.storage.database) as store, progress_bar(paths) as advance:
        store.check_integrity()  # never write into a damaged file: it would make recovering it harder
        report = import_archives(store, chosen, paths, on_progress=advance, max_line=max_line_mb << 20)
    for problem in report.problems:
        click.echo(one_line(problem), err=True)
    rate = report.posts_read / report.seconds if report.seconds else 0
    click.echo(f"{chosen.name}: {report.posts_new:,} new posts, {report.posts_updated:,} updated, "
               f"{report.posts_read:,} read from {report.records:,} records in {report.files} file(s) "
               f"({report.seconds:.1f}s, {rate:,.0f} posts/s); {report.skipped} skipped")
    if report.skipped:
        sys.exit(1)


@main.command()
@config_option
@click.option("--port", type=int, default=None, help="Port (default: simulation.port, 8787).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--campaign", default=None, help="The campaign whose storm to simulate.")
@click.option("--seed", type=int, default=None, help="Storm seed (default: simulation.seed).")
@click.option("--posts", type=int, default=None, help="About how many campaign posts (default: simulation.posts).")
@click.option("--truth", is_flag=True, help="Print the storm's ground truth for the campaign window and exit.")
@click.option("--rate-limit-every", type=int, default=0, help="Fault: a 429 every N requests.")
@click.option("--server-error-every", type=int, default=0, help="Fault: a 503 every N requests.")
@click.option("--malformed-every", type=int, default=0, help="Fault: a malformed page every N requests.")
@click.option("--drop-every", type=int, default=0, help="Fault: a dropped connection every N requests.")
@click.option("--slow-every", type=int, default=0, help="Fault: a slow response every N requests.")
@click.option("--slow-seconds", type=float, default=2.0, show_default=True, help="How slow a slow response is.")
@click.option("--x-search-reposts", is_flag=True,
              help="X search and counts as before 2026-05-04, with reposts (default: today's, without).")
@click.option("--stream-keepalive", type=float, default=20.0, show_default=True,
              help="Seconds of silence before the X stream sends a keep-alive.")
@click.option("--stream-drop-every", type=int, default=0, help="Fault: close an X stream after N posts sent.")
@click.option("--stream-stall-every", type=int, default=0,
              help="Fault: an X stream goes silent after N posts (no keep-alives) until the client leaves.")
@click.option("--stream-rule-errors-every", type=int, default=0,
              help="Fault: every Nth change to the X stream rules is refused (over the rule cap, or a 503).")
@fail_cleanly
def simulate(config_file: str | None, port: int | None, host: str, campaign: str | None, seed: int | None,
             posts: int | None, truth: bool, x_search_reposts: bool, stream_keepalive: float,
             **faults: Any) -> None:
    """Serve a simulated storm over the X API v2 wire format (for rehearsals, the demo and tests)."""
    from .simulator.wiring import build_simulation, storm_truth

    config = _load(config_file)
    chosen = config.campaign(campaign)
    if truth:
        click.echo(json.dumps(storm_truth(config, chosen, seed=seed, posts=posts), indent=2))
        return
    simulation = build_simulation(config, chosen, host=host, port=port, seed=seed, posts=posts, faults=faults,
                                  search_reposts=x_search_reposts, keepalive_seconds=stream_keepalive)
    simulation.start()
    clock_now = config.clock.now().isoformat(timespec="seconds")
    click.echo(f"simulated X API v2 for #{' #'.join(chosen.hashtags)} on {simulation.url} "
               f"(storm clock {clock_now}, {config.clock.speed:g}x); Ctrl-C stops")
    click.echo("X search and counts: " + ("the old index, with reposts" if x_search_reposts else
                                          "today's index, without reposts (the filtered stream has them)"))
    for url in simulation.instance_urls():
        click.echo(f"simulated Mastodon instance {url}")
    if simulation.jetstream is not None:
        click.echo(f"simulated Bluesky: AppView {simulation.url}, Jetstream {simulation.jetstream.url}")
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        simulation.stop()


@main.command()
@config_option
@click.option("--campaign", default=None, help="The campaign (needed when there are several).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@fail_cleanly
def plan(config_file: str | None, campaign: str | None, as_json: bool) -> None:
    """Before the storm: what collecting it on X will cost, and whether the daily budget covers it."""
    from .plan import make_plan, plan_text
    from .store import Store

    config = _load(config_file)
    chosen = config.campaign(campaign)
    _logging(config, quiet=True)
    with Store.open(config.storage.database) as store:
        result = make_plan(store, config, chosen, config.clock)
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else plan_text(result, chosen, config))


@main.group()
@config_option
def alerts(config_file: str | None) -> None:
    """Alerts to the organizers' group: send a test message, list what was told."""


@alerts.command(name="test")
@config_option
@click.option("--campaign", default=None, help="The campaign (needed when there are several).")
@fail_cleanly
def alerts_test(config_file: str | None, campaign: str | None) -> None:
    """Send a test message through each configured service and say whether it arrived."""
    from .alerts import send_test
    from .store import Store

    config = _load(config_file)
    chosen = config.campaign(campaign)
    _logging(config, quiet=True)
    urls = config.alerts.urls()
    if not urls:
        raise StormwatchError(f"alerts: the environment variable {config.alerts.urls_env} (alerts.urls_env) holds no "
                              "Apprise URLs; export them there, separated by spaces")
    with Store.open(config.storage.database) as store:
        outcome = send_test(store, config, chosen, config.clock.now())
    for number, result in enumerate(outcome.results, 1):
        click.echo(f"{number}. {result.service}: " + ("arrived" if result.ok else f"FAILED — {result.error}"))
    if not all(result.ok for result in outcome.results):
        sys.exit(1)


@alerts.command(name="list")
@config_option
@click.option("--campaign", default=None, help="Only this campaign.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@fail_cleanly
def alerts_list(config_file: str | None, campaign: str | None, limit: int, as_json: bool) -> None:
    """The alerts told so far, newest first (times in the alerts' time zone; JSON: ISO 8601 UTC)."""
    from .alerts import history
    from .report.text import history_text
    from .store import Store

    config = _load(config_file)
    name = config.campaign(campaign).name if campaign else None
    with Store.open(config.storage.database, create=False) as store:
        told = history(store, name, limit)
    if as_json:
        click.echo(json.dumps(told, indent=2, ensure_ascii=False))
        return
    if not told:
        click.echo("no alerts yet")
        return
    click.echo(history_text(told, config))


def run() -> None:
    """Entry point for `python -m stormwatch`."""
    main(prog_name="stormwatch")


if __name__ == "__main__":  # pragma: no cover
    run()
