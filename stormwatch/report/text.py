"""The summary and the collection status as plain lines for the terminal (`stormwatch summary`, `status`, the
demo's closing figures): thousands separators, times in the campaign's zone, "—" for what a platform does not
report, and every server- or stranger-written string on one line without control characters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC as UTC_ZONE
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..config import Config
from ..metrics.stream import ESTIMATE_NOTE
from ..normalize.text import one_line
from ..platforms import find_platform, label, not_reported_note
from ..store import AlertRecord
from ..times import format_duration, local_span, local_stamps, local_time, parse_time
from .languages import language_name

MAX_ERROR_SHOWN = 160  # characters of an error `status` shows whole; a longer one is summarized


def summary_text(data: dict[str, Any], zone: Any) -> str:
    """The summary as a few readable lines: thousands separators, times in `zone`, "—" with a note for what a
    platform does not report, and a plain sentence for an empty window."""
    window = data["window"]
    since, until = parse_time(window["since"]), parse_time(window["until"])
    scope = "all platforms" if window["platform"] == "all" else f"{label(window['platform'])} only"
    lines = [f"{data['campaign']}: {local_span(since, until, zone)} ({zone.key}), {scope}"]
    if data.get("interim"):
        lines.append(f"  interim: the window runs until {local_time(until, zone, since)}; "
                     "these are the figures so far")
    if not data["posts"]:
        lines.append("  no posts in this window (see `stormwatch status` for what was collected and when)")
        return "\n".join(lines + cost_lines(data) + stream_lines(data, zone))

    def figure(value: int | None) -> str:
        return "—" if value is None else f"{value:,}"

    peak = parse_time(data["peak_minute"])
    reported = ", ".join(label(p) for p, f in data["by_platform"].items() if f["impressions"] is not None)
    lines += [
        f"  posts              {data['posts']:>11,}  {data['originals']:,} originals, {figure(data['reposts'])} "
        f"reposts, {data['quotes']:,} quotes, {data['replies']:,} replies",
        f"  contributors       {data['contributors']:>11,}  distinct accounts with a supporters' post",
        f"  potential reach    {data['potential_reach']:>11,}  followers of the contributors",
        f"  impressions        {figure(data['impressions']):>11}  reported" + (f" ({reported})" if reported else "")
        + f"; potential {data['potential_impressions']:,} (the author's followers, per post)",
        f"  engagement         {data['engagement']:>11,}  likes, reposts, replies and quotes received",
        f"  peak minute        {data['peak_posts_per_minute']:>11,}  posts in the minute from "
        f"{local_time(peak, zone, since)}",
    ]
    stated = [language for language in data.get("languages", ()) if language["language"] is not None]
    if stated:
        lines.append(f"  languages          {len(stated):>11,}  reached: " + ", ".join(
            f"{language_name(language['language'])} {language['posts']:,}" for language in stated[:4])
            + (f" and {len(stated) - 4:,} more" if len(stated) > 4 else ""))
    if len(data["by_platform"]) > 1 or data["not_reported"]:
        lines.append(f"  {'by platform':<17} {'posts':>11}  {'accounts':>9}  {'reposts':>9}  {'impressions':>13}")
        for platform, figures in data["by_platform"].items():
            lines.append(f"    {label(platform):<15} {figures['posts']:>11,}  {figures['contributors']:>9,}  "
                         f"{figure(figures['reposts']):>9}  {figure(figures['impressions']):>13}")
    note = not_reported_note(data["by_platform"])
    if note:
        lines.append(f"  — not reported: {note}")
    if data.get("hijack_posts"):
        lines.append(f"  hijack candidates  {data['hijack_posts']:>11,}  campaign posts also carrying a "
                     f"counter-hashtag, by {_count(data['hijack_accounts'], 'account')}: left out of the figures above")
    return "\n".join(lines + cost_lines(data) + stream_lines(data, zone) + intel_lines(data))


def cost_lines(data: dict[str, Any]) -> list[str]:
    """What the window's UTC days cost (when the summary has it), by kind and by source."""
    if "cost_usd" not in data:
        return []
    days = data["cost_days"]
    span = days["first"] if days["first"] == days["last"] else f"{days['first']} to {days['last']}"
    kinds = ", ".join(f"{kind} ${usd:,.2f}" for kind, usd in data["cost_by_kind"].items() if usd >= 0.005)
    sources = ", ".join(f"{source} ${sum(by_kind.values()):,.2f}" for source, by_kind in data["cost_by_source"].items()
                        if sum(by_kind.values()) >= 0.005)
    detail = "; ".join(part for part in (kinds, sources) if part)
    return [f"  cost         {'$' + format(data['cost_usd'], ',.2f'):>17}  estimated, X's billing days {span}"
            + (f": {detail}" if detail else "")]


def stream_lines(data: dict[str, Any], zone: Any) -> list[str]:
    """X's filtered stream over the window (when the summary has it): connected time, posts, every gap with its
    reason in `zone`; then the reposts the gaps may have missed, said to be an estimate."""
    if "x_stream" not in data:
        return []
    stream = data["x_stream"]
    if stream is None:
        return ["  x stream                   —  off: X read by search only, which returns no reposts"]
    gaps = stream["gaps"]
    span = stream["connected_seconds"] + sum(
        (parse_time(g["to"]) - parse_time(g["from"])).total_seconds() for g in gaps)
    connected = format_duration(timedelta(seconds=stream["connected_seconds"]))
    line = (f"  x stream    {connected:>18}  connected of {format_duration(timedelta(seconds=span))}, "
            f"{stream['posts']:,} posts stored; ")
    line += (f"{_count(len(gaps), 'gap')}: " + ", ".join(
        f"{local_span(parse_time(g['from']), parse_time(g['to']), zone, arrow='–')} ({one_line(g['reason'])})"
        for g in gaps)
        if gaps else "no gaps")
    lines = [line]
    if gaps and stream["reposts_missed_estimate"] is not None:
        estimate = f"≈{stream['reposts_missed_estimate']:,}"
        lines.append(f"  reposts missed     {estimate:>11}  in the gaps: {ESTIMATE_NOTE}")
    return lines


def intel_lines(data: dict[str, Any]) -> list[str]:
    """Storm intelligence in a few lines (when the summary has it): trending, targets, copy-paste, counter."""
    if "trending" not in data:
        return []
    hits = data["trending"]
    # Trend names, places and accounts come from the platforms: shown on one line, control characters gone.
    lines = ["  trending           " + ("; ".join(one_line(f"{h['tag']} best #{h['best_rank']} in {h['location']}")
                                              for h in hits[:4]) if hits else "not in the trending lists fetched")]
    targets = data["target_posts"]
    answered = [p for p in targets["posts"] if p["in_reply_to_campaign_post"]]
    lines.append(f"  targets            {targets['count']:>11,}  posts by targets, {len(answered):,} answering a "
                 "campaign post" + "".join(one_line(f"; @{p['account']} on {label(p['platform'])}")
                                           for p in answered[:3]))
    basis = data.get("duplicate_share_basis", "exact")
    share = f"{'' if basis == 'exact' else '≈'}{data['duplicate_share']:.0%}"  # ≈: estimated from a sample
    lines.append(f"  copy-paste         {share:>11}  of posts copy another account's text"
                 + ("" if basis == "exact" else f" ({basis})")
                 + (f" (top text: {data['top_duplicates'][0]['posts']:,} posts by "
                    f"{data['top_duplicates'][0]['accounts']:,} accounts)" if data["top_duplicates"] else ""))
    counter = data["counter"]
    if counter is not None:
        share = counter["share_of_voice"]
        lines.append(f"  counter-tags       {counter['posts']:>11,}  posts; share of voice "
                     f"{'—' if share is None else f'{share:.0%}'}, {counter['both']:,} carrying both")
    return lines


def status_text(report: Any, config: Config) -> str:
    """The collection status as lines for people: each source's state in words, every time in the campaign's zone,
    named once (in the header, or beside a campaign whose zone differs), identical errors collapsed with a count."""
    from ..metrics import run_reason
    from ..plan import goal_budget_warning

    zones = [config.campaign(c.name).timezone for c in report.campaigns] or [ZoneInfo("UTC")]
    lines = [f"database {report.database} (storm clock {local_time(report.now, zones[0])}; "
             f"times in {zones[0].key})"]
    for campaign in report.campaigns:
        chosen = config.campaign(campaign.name)
        zone = chosen.timezone
        when = functools.partial(local_time, zone=zone, today=report.now)
        in_window = (f"{campaign.posts_in_window:,} supporters' posts in the storm window, "
                     if campaign.posts_in_window is not None else "")
        lines.append(f"\n{campaign.name}: {in_window}{campaign.posts:,} collected (all time, hijack candidates "
                     "left out)")
        named = f" (times in {zone.key})" if zone.key != zones[0].key else ""
        lines.append(f"  storm window {local_span(campaign.window_start, campaign.window_end, zone)}{named}")
        budget = f" of ${campaign.daily_budget_usd:,.2f}" if campaign.daily_budget_usd is not None else ""
        paused = campaign.daily_budget_usd is not None and campaign.spent_today_usd >= campaign.daily_budget_usd
        lines.append(f"  spent today ${campaign.spent_today_usd:,.2f}{budget} (X reads; X's day ends at "
                     f"{when(_next_utc_midnight(report.now))})" + (" — reached: X post reads paused" if paused else ""))
        lines.append(f"  storm total ${campaign.storm_spent_usd:,.2f} (X's billing days of the window, and the plan); "
                     f"campaign total ${campaign.spent_total_usd:,.2f} (every run, any day)")
        warning = goal_budget_warning(config, chosen)
        if warning:
            lines.append(f"  ! {warning}")
        if campaign.budget_runs_out_at:
            lines.append("  at the pace of the last 15 minutes the budget runs out at "
                         f"{when(campaign.budget_runs_out_at)}")
        if campaign.last_alert:
            lines.append(f"  last alert {when(campaign.last_alert.sent_at)}: {one_line(campaign.last_alert.headline)}")
        for source in campaign.sources:
            quiet_after = 3 * chosen.interval_at(report.now) + timedelta(minutes=1)
            # The state can quote a server's error text: one line, control characters gone.
            lines.append(f"  {source.source}: "
                         + one_line(_source_state(source, report.now, paused, quiet_after, when, run_reason)))
            last = source.last_run
            if last is not None:
                lines.append(f"    last run {when(last.started_at)} {last.status.replace('_', '-')} "
                             f"({_count(last.posts_new, 'new post')}, {_count(last.requests, 'request')}); today "
                             f"{_count(source.runs_today, 'run')}, {_count(source.requests_today, 'request')}, "
                             f"${source.spent_today_usd:,.2f}")
            for cursor in source.cursors:
                state = "sweep in progress" if cursor.pending else "sweep complete"
                newest = local_stamps(cursor.position, zone, report.now) if cursor.position else "-"
                lines.append(f"    {cursor.query}: newest {newest} "
                             f"({state}, moved {when(cursor.updated_at)})")
            errors = errors_in_zone(source.recent_errors, zone, report.now, run_reason)
            lines.extend(f"    ! {error}" for error in errors)
            if source.source == "x" and (stream := _stream_state(campaign, chosen, config, report.now, when)):
                lines.append(f"  x stream: {stream}")
                if campaign.x_stream is not None and campaign.x_stream.foreign_rules:
                    lines.append(f"  x stream: {_foreign_rules(campaign.x_stream.foreign_rules)}")
    return "\n".join(lines)


def _next_utc_midnight(now: Any) -> Any:
    """The end of X's billing day (UTC) that `now` falls in."""
    day = now.astimezone(UTC_ZONE)
    return day.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def errors_in_zone(errors: Any, zone: Any, now: Any, reason: Callable[[str | None], str | None]) -> list[str]:
    """Recent errors (`<ISO time>: <what was said>`, newest first) for people: times in `zone`, a long error
    summarized by `reason` ("14 deleted originals"), identical ones collapsed into one line with a count."""
    seen: dict[str, list[str]] = {}
    for error in errors:
        stamp, found, said = error.partition(": ")
        try:
            moment = local_time(parse_time(stamp), zone, now) if found else ""
        except ValueError:
            moment, said = "", error
        said = one_line(local_stamps(said, zone, now))
        if len(said) > MAX_ERROR_SHOWN:
            said = reason(said) or said[:MAX_ERROR_SHOWN - 1] + "…"
        seen.setdefault(said, []).append(moment)
    shown = []
    for said, moments in seen.items():
        times = [m for m in moments if m]
        when = (f"{times[0]} (and {len(moments) - 1:,} times before, first {times[-1]})" if len(moments) > 1 and times
                else times[0] if times else "")
        shown.append(f"{when}: {said}" if when else said)
    return shown


def _stream_state(campaign: Any, chosen: Any, config: Config, now: Any, when: Callable[[Any], str]) -> str | None:
    """X's filtered stream in a few words: connected since when, the gap going on, when it connects, or how the
    window went; "off" when the config keeps X to search (which returns no reposts)."""
    stream = campaign.x_stream
    if stream is None:
        return "off — X is read by search only, which returns no reposts" if not config.x.stream else None
    duty = chosen.start - config.x.stream_lead
    if now < duty:
        return f"connects at {when(duty)} ({config.x.stream_lead.total_seconds() / 60:,.0f} min before the storm)"
    if stream.connected_since is not None:
        return f"connected since {when(stream.connected_since)}, {stream.posts:,} posts stored"
    if now < chosen.end:
        gap = stream.current_gap
        if gap is None:  # in the lead, before the window's figures begin
            return f"not connected (due since {when(duty)})"
        return f"disconnected since {when(gap.start)} ({one_line(gap.reason)}), {stream.posts:,} posts stored"
    connected = format_duration(timedelta(seconds=stream.connected_seconds))
    return (f"storm over: connected {connected} of the window, {_count(len(stream.gaps), 'gap')}, "
            f"{stream.posts:,} posts (`stormwatch summary` lists the gaps)")


FOREIGN_RULES_SHOWN = 3
RULE_CHARS = 80


def _foreign_rules(rules: tuple[tuple[str, str], ...]) -> str:
    """The rules other programs keep on the app's stream (never touched), a few of them quoted, cleaned."""
    def quoted(value: str, tag: str) -> str:
        value = one_line(value)
        value = value if len(value) <= RULE_CHARS else value[:RULE_CHARS - 1] + "…"
        return f"{value!r} ({one_line(tag) or 'no tag'})"

    shown = ", ".join(quoted(value, tag) for value, tag in rules[:FOREIGN_RULES_SHOWN])
    more = f" and {len(rules) - FOREIGN_RULES_SHOWN:,} more" if len(rules) > FOREIGN_RULES_SHOWN else ""
    return (f"{_count(len(rules), 'rule')} of another program on this app, left alone (its posts are not "
            f"stored): {shown}{more}")


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}" + ("" if number == 1 else "s")


def _source_state(source: Any, now: Any, paused: bool, quiet_after: timedelta, when: Callable[[Any], str],
                  reason: Callable[[str | None], str | None]) -> str:
    """One source's state in words: never "up to date" unless it is (ran lately, caught up, not failing)."""
    last = source.last_run
    billed = (platform := find_platform(source.source)) is not None and platform.reports.billed
    if last is None:
        return "not run yet"
    if last.status == "failed":
        runs = f" ({source.failed_runs:,} runs)" if source.failed_runs > 1 else ""
        return f"failing since {when(source.failing_since or last.started_at)}{runs} — {reason(last.error)}"
    if source.backoff_until and source.backoff_until > now:
        return f"rate-limited until {when(source.backoff_until)}"
    if billed and paused:
        return f"paused by the budget until {when(_next_utc_midnight(now))} (X's day ends)"
    if last.status == "running":
        return f"running since {when(last.started_at)}"
    if now - last.started_at > quiet_after:
        return f"no run since {when(last.started_at)} — is the collector running?"
    if any(cursor.pending for cursor in source.cursors):
        return "catching up (a sweep is in progress)"
    why = reason(last.error) if last.status == "partial" else None
    return "up to date" + (f" (last run partial: {why})" if why else "")


def alert_text(record: AlertRecord, zone: ZoneInfo, today: Any = None) -> str:
    """An alert as the terminal shows it: local time (the day too, when not `today`'s) and headline, its figures
    indented below."""
    headline, *lines = record.text.split("\n")
    return "\n".join([f"  alert {local_time(record.sent_at, zone, today)}: {headline}",
                      *(f"           {line}" for line in lines)])


def history_text(told: Sequence[dict[str, Any]], config: Config) -> str:
    """`alerts list` for people: newest first, each with how its delivery went, times in the alerts' zone
    (named once, at the top)."""
    zones = {config.alerts.timezone or config.campaign(alert["campaign"]).timezone for alert in told
             if any(c.name == alert["campaign"] for c in config.campaigns)}
    zone = config.alerts.timezone or (zones.pop() if len(zones) == 1 else ZoneInfo("UTC"))
    lines = [f"times in {zone.key}"]
    for alert in told:
        tried = alert["services_tried"]
        delivery = ("being delivered" if tried is None else "not sent (no services)" if tried == 0
                    else f"reached {alert['services_ok']} of {tried} services")
        text = alert["text"].split("\n")
        sent = local_time(parse_time(alert["sent_at"]), zone)
        lines.append(f"{sent} {alert['campaign']} {alert['kind']}: {one_line(text[0])} [{delivery}]")
        lines.extend(f"    {one_line(line)}" for line in text[1:])
        if alert["error"]:
            lines.append(f"    ! {one_line(alert['error'])}")
    return "\n".join(lines)
