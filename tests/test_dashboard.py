"""The dashboard rendered to a fixed-size console: the figures shown are the metrics' figures."""

from __future__ import annotations

import io
import re
import shutil
import unicodedata
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.cells import cell_len
from rich.console import Console

from stormwatch import metrics
from stormwatch.dashboard import NEW_BLUESKY_ACCOUNT, PostLine, render, screen_text, take_snapshot
from stormwatch.models import Account, Batch, Post
from stormwatch.store import Store

from .cli_support import invoke
from .conftest import T0

ZONE = ZoneInfo("Asia/Hebron")

DURING = T0 + timedelta(minutes=40)
SIZES = ((80, 24), (100, 30), (120, 40), (200, 50))
# Texts whose drawn width terminals disagree on (emoji with a variation selector, a skin tone, a joined
# sequence) and right-to-left scripts with their marks.
AWKWARD_TEXTS = ("Nonviolence is courage 🕊️ #StandWithIssa", "✊🏽 solidarity ✊🏽 from Hebron",
                 "👩🏽‍⚕️ medics stand with defenders", "التضامن مع المدافعين عن حقوق الإنسان في الخليل واجب ✊",
                 "מִשְׁפָּט צֶדֶק לְעִיסָא עַמְרוֹ #StandWithIssa", "❤️‍🔥 🇵🇸 1️⃣ #DropTheCharges")


def draw(snapshot, width: int = 80, height: int = 24) -> str:
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None,
                      legacy_windows=False)
    console.print(render(snapshot))
    return console.export_text()


def terminal_width(text: str) -> int:
    """Cells a terminal such as tmux 3.3 gives a line, one code point at a time (wcwidth's rules): East Asian
    wide and full-width characters two, combining marks and format characters none, everything else one."""
    width = 0
    for char in text:
        if unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def assert_drawn_whole(text: str, width: int, height: int) -> list[str]:
    """No line over the width or below the screen, and every boxed line ends in its border at the same cell,
    measured as rich does and as a terminal does."""
    lines = text.rstrip("\n").split("\n")
    assert len(lines) <= height, f"{len(lines)} lines on a {height}-line screen"
    for line in lines:
        assert cell_len(line) <= width and terminal_width(line) <= width, line
        if line[:1] in "│╭╰":
            assert line.rstrip()[-1] in "│╮╯" and terminal_width(line.rstrip()) == width, line
    return lines


def three_sources(snapshot):
    """The snapshot as a storm on X, Mastodon and Bluesky looks: one partial run, one source failing."""
    x = snapshot.sources[0]
    mastodon = replace(x, name="mastodon", last_status="failed", failed_runs=4, failing_since=DURING - timedelta(
        minutes=12), reason=None, paused_until=None, last_error="mastodon: every instance failed", requests_today=720)
    bluesky = replace(x, name="bluesky", last_status="ok", reason=None, paused_until=None, requests_today=1184)
    return replace(snapshot, sources=(replace(x, last_status="partial", reason="1 deleted original"), mastodon,
                                      bluesky),
                   by_platform={"x": snapshot.by_platform["x"], "mastodon": 353, "bluesky": 208}, budget_usd=250.0,
                   alerts=(*snapshot.alerts, "mastodon is failing: mastodon: every instance failed"))


@pytest.fixture
def copy(collected, tmp_path: Path):
    """A writable copy of the collected database, and its config."""
    config, storm = collected
    target = tmp_path / "copy.db"
    shutil.copy(config.storage.database, target)
    from dataclasses import replace

    return replace(config, storage=replace(config.storage, database=target)), storm


def test_figures_on_screen_are_the_metrics(collected) -> None:
    config, _ = collected
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, campaign, now=DURING, names="public")
        # the storm so far: the whole window (while a storm runs, nothing exists after now)
        window = metrics.campaign_window(campaign)
        expected = metrics.totals(store, campaign.name, window).all
        peak = metrics.peak_minute(store, campaign.name, window)
        top = metrics.top_accounts(store, campaign.name, window, limit=3)
        targets = metrics.target_mentions(store, campaign, window)
    assert snapshot.totals == expected
    text = draw(snapshot)
    assert_drawn_whole(text, 80, 24)
    assert f"posts {expected.posts:,}" in text
    assert f"peak minute {peak.posts:,} at 18:" in text  # the peak minute in Hebron time (UTC+2)
    assert f"last full minute {snapshot.posts_last_minute:,}" in text
    assert f"5-min mean {snapshot.posts_per_minute_5m:,.1f}/min" in text
    assert f"people {expected.contributors:,}" in text
    assert "40m00s" in text and "2h20m" in text
    assert "names: public" in text
    for account in top:
        assert f"@{account.handle}" in text
    for target, count in targets:
        assert f"@{target} {count:,}" in text
    assert "x ok" in text or "x partial" in text
    assert "goal posts" in text and f" {expected.posts:,}/3,000 ({expected.posts / 3000:.0%})" in text
    assert f" {expected.contributors:,}/400 ({expected.contributors / 400:.0%})" in text


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_every_headline_figure_is_whole_at_every_size(collected, width: int, height: int) -> None:
    config, _ = collected
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING, list_size=20)
    for case in (snapshot, three_sources(snapshot)):
        text = draw(case, width, height)
        lines = assert_drawn_whole(text, width, height)
        figures = [f"posts {case.totals.posts:,}", f"last full minute {case.posts_last_minute:,}",
                   f"5-min mean {case.posts_per_minute_5m:,.1f}/min", f"peak minute {case.peak.posts:,} at ",
                   f"people {case.totals.contributors:,}", f"new in 5 min {case.new_contributors_5m:,}",
                   f"{case.totals.posts:,}/3,000 ({case.totals.posts / 3000:.0%})",
                   f"{case.totals.contributors:,}/400 ({case.totals.contributors / 400:.0%})",
                   f"spent today ${case.spent_today_usd:,.2f}", "names: pseudonymized"]
        if case.budget_usd is not None:
            figures.append(f"spent today ${case.spent_today_usd:,.2f} of ${case.budget_usd:,.2f}")
        for source in case.sources:
            figures.append(f"{source.name} " + {"partial": "partial", "failed": "failing since 18:28 (4 runs)",
                                                "ok": "ok"}[source.last_status or "ok"])
            figures.append(f"{source.requests_today:,} req")
        for figure in figures:
            assert any(figure in line for line in lines), f"{figure!r} not whole at {width}x{height}"
        if len(case.sources) == 3:
            assert re.search(r"x partial \d\d:\d\d \(1 deleted original\)", text)
            assert "mastodon failing since 18:28 (4 runs)" in text
            assert "⚠ mastodon is failing: mastodon: every instance failed" in text


def test_lower_priority_parts_give_way_whole_first(collected) -> None:
    config, _ = collected
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING, list_size=20)
    crowded = three_sources(replace(snapshot, alerts=(*snapshot.alerts, "first", "second", "third")))
    roomy, tight, tiny = draw(crowded, 120, 40), draw(crowded, 80, 24), draw(crowded, 80, 16)
    assert "co-hashtags" in roomy and "co-hashtags" not in tight  # first to go: only beside the accounts when wide
    assert "latest posts" in roomy and "top accounts" in roomy
    assert "latest posts" not in tiny and "top accounts" not in tiny
    assert_drawn_whole(tiny, 80, 16)
    for needed in ("posts ", "peak minute", "/3,000 (", "/400 (", "x partial", "mastodon failing", "bluesky ok",
                   "spent today", "⚠ third"):
        assert needed in tiny
    # a part is there whole or not at all: a list keeps its header with its rows
    for text in (roomy, tight, tiny):
        assert ("top accounts" in text) == ("followers" in text)


def test_emoji_and_right_to_left_texts_keep_the_border_where_terminals_draw_it(collected) -> None:
    config, _ = collected
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING, list_size=20)
    latest = tuple(PostLine(created_at=DURING, author=f"@{screen_text(author)}", text=screen_text(text),
                            platform="x")
                   for author, text in zip(("sara🕊️", "عيسى", "דנה", "👩🏽‍⚕️medic", "noor", "x"),
                                           AWKWARD_TEXTS, strict=True))
    for width, height in SIZES:
        text = draw(replace(snapshot, latest=latest), width, height)
        assert_drawn_whole(text, width, height)
        assert "\ufe0f" not in text and "\u200d" not in text and "🏽" not in text
    shown = draw(replace(snapshot, latest=latest), 200, 50)
    assert "🕊 #StandWithIssa" in shown and "✊ solidarity ✊" in shown and "👩⚕ medics" in shown
    assert "التضامن مع المدافعين" in shown and "מִשְׁפָּט צֶדֶק" in shown


def test_screen_text_is_one_line_without_controls_or_unstable_widths() -> None:
    assert screen_text("a\nb\tc\x1b[31mred\u202etxet") == "a b c[31mredtxet"
    assert screen_text("🕊️ ✊🏽 👩🏽‍⚕️") == "🕊 ✊ 👩⚕"
    assert screen_text("نقف مع عيسى") == "نقف مع عيسى"
    assert screen_text("می\u200cخواهم") == "می\u200cخواهم"  # the Persian non-joiner stays: it shapes, never widens


def test_a_larger_terminal_shows_more(collected) -> None:
    config, _ = collected
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING, list_size=20)
    small, large = draw(snapshot, 80, 24), draw(snapshot, 160, 48)
    assert len(large.splitlines()) > len(small.splitlines())
    assert large.count("RT @") + large.count("\n│ 1") > small.count("RT @") + small.count("\n│ 1")
    assert "engagement" in large


def test_names_are_pseudonymized_as_in_reports_unless_public(copy) -> None:
    config, _ = copy
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        hidden = take_snapshot(store, config, campaign, now=DURING, list_size=20)
        public = take_snapshot(store, config, campaign, now=DURING, list_size=20, names="public")
        window = metrics.campaign_window(campaign)
        top = metrics.top_accounts(store, campaign.name, window, limit=20)
        labels = dict(store.conn.execute("SELECT uid, label FROM pseudonyms WHERE campaign = ?", (campaign.name,)))
    assert hidden.names == "pseudonymized" and public.names == "public"  # [report] names, the default
    for account, pseudonymized, named in zip(top, hidden.top_accounts, public.top_accounts, strict=True):
        assert named.shown == f"@{account.handle}"
        if account.followers < 5000 and account.handle.casefold() not in ("issaamro", "yashebron"):
            assert pseudonymized.shown == labels[account.uid]  # the report's stable label, assigned now
        else:
            assert pseudonymized.shown == f"@{account.handle}"
    text = draw(hidden, 120, 40)
    assert "names: pseudonymized" in text and "names: public" in draw(public, 120, 40)
    small = [a.handle for a in top if a.followers < 5000 and a.handle.casefold() not in ("issaamro", "yashebron")]
    for handle in small:
        assert not re.search(rf"@{re.escape(handle)}(?!\w)", text), handle
    with Store.open(config.storage.database) as store:
        again = take_snapshot(store, config, campaign, now=DURING, list_size=20)
    assert again.top_accounts == hidden.top_accounts  # labels are stable between refreshes


def test_a_new_bluesky_author_shows_its_handle_once_known_never_its_did(copy) -> None:
    config, _ = copy
    campaign = config.campaigns[0]
    did = "did:plc:opcy45amtb7ynuk5aq2xxlnc"
    skeet = Post(uid=f"bluesky:at://{did}/app.bsky.feed.post/3kabc", platform="bluesky",
                 id=f"at://{did}/app.bsky.feed.post/3kabc", author_uid=f"bluesky:{did}",
                 created_at="2021-02-07T18:59:59.000Z", ts=int((T0 + timedelta(hours=3, seconds=-1)).timestamp()),
                 text="#StandWithIssa from the sky", lang="en", kind="original", ref_uid=None, url=None,
                 like_count=None, repost_count=None, reply_count=None, quote_count=None, bookmark_count=None,
                 impression_count=None, metrics_at="2021-02-07T18:59:59.000Z", tags=("standwithissa",))
    with Store.open(config.storage.database) as store:
        store.save_page(Batch(posts=(skeet,)), campaign=campaign.name, cursor=None, run_id=None,
                        collected_at=DURING)
        unknown = take_snapshot(store, config, campaign, now=DURING, names="public")
        profile = Account(uid=f"bluesky:{did}", platform="bluesky", id=did, handle="rima.bsky.social", name="Rima",
                          followers_count=12, following_count=3, posts_count=40, verified=None, created_at=None,
                          updated_at="2021-02-07T16:39:40.000Z")
        store.save_page(Batch(accounts=(profile,)), campaign=None, cursor=None, run_id=None, collected_at=DURING)
        known = take_snapshot(store, config, campaign, now=DURING, names="public")
    assert unknown.latest[0].author == NEW_BLUESKY_ACCOUNT
    assert "did:plc" not in draw(unknown, 120, 40)
    assert known.latest[0].author == "@rima.bsky.social"
    assert "Bluesky 1" in draw(known, 120, 40)


def test_before_the_storm_the_clock_counts_down(collected, memory_store: Store) -> None:
    config, _ = collected
    # half an hour before the start nothing is collected yet
    snapshot = take_snapshot(memory_store, config, config.campaigns[0], now=T0 - timedelta(minutes=29, seconds=30))
    text = draw(snapshot)
    assert "storm starts in 29m30s" in text
    assert "posts 0" in text and "no posts in the storm window yet" in text
    assert "x has not collected yet" in text


def test_post_text_is_shown_literally_never_as_markup(copy) -> None:
    config, _ = copy
    hostile = Post(uid="x:1358439000000000001", platform="x", id="1358439000000000001", author_uid="x:424242",
                   created_at="2021-02-07T18:59:59.000Z", ts=int((T0 + timedelta(hours=2, minutes=59,
                                                                                 seconds=59)).timestamp()),
                   text="[bold red]pwned[/] <script>alert(1)</script>\nsecond line", lang="en", kind="original",
                   ref_uid=None, url=None, like_count=0, repost_count=0, reply_count=0, quote_count=0,
                   bookmark_count=None, impression_count=None, metrics_at="2021-02-07T16:40:00.000Z")
    with Store.open(config.storage.database) as store:
        store.save_page(Batch(posts=(hostile,)), campaign="standwithissa", cursor=None, run_id=None,
                        collected_at=T0 + timedelta(minutes=40))
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING)
    text = draw(snapshot, 160, 48)
    assert "[bold red]pwned[/] <script>alert(1)</script> second line" in text


def test_fading_is_said_loudly_once_then_quietly_until_volume_recovers(copy) -> None:
    config, _ = copy
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        calm = take_snapshot(store, config, campaign, now=T0 + timedelta(minutes=6))
        episode = metrics.current_fading(metrics.per_minute(store, campaign.name, T0, T0 + timedelta(hours=3)), T0)
        assert episode is not None
        loud = take_snapshot(store, config, campaign, now=episode.started_at + timedelta(minutes=2))
        quiet = take_snapshot(store, config, campaign, now=episode.started_at + timedelta(minutes=40))
        after = take_snapshot(store, config, campaign, now=campaign.end + timedelta(minutes=10))
    assert not any("fading" in a for a in calm.alerts)
    alert = next(a for a in loud.alerts if a.startswith("Volume is fading"))
    assert "(5-min mean)" in alert and "in the peak minute" in alert and metrics.FADING_ADVICE in alert
    assert "⚠ Volume is fading" in draw(loud, 120, 40)
    assert not any("fading" in a for a in quiet.alerts)  # told once, not for hours
    assert f"fading since {episode.started_at.astimezone(ZONE):%H:%M}" in draw(quiet, 120, 40)
    assert "fading" not in draw(after, 120, 40)  # the storm is over: nothing to push


def test_a_failing_source_says_since_when_and_how_many_runs(copy) -> None:
    config, _ = copy
    campaign = config.campaigns[0]
    late = T0 + timedelta(hours=2, minutes=50)
    with Store.open(config.storage.database) as store:
        for minute in range(3):
            run_id = store.start_run(campaign.name, "x", late + timedelta(minutes=minute))
            store.finish_run(run_id, "failed", late + timedelta(minutes=minute, seconds=5),
                             error="x: cannot reach http://127.0.0.1:1: connection refused")
        failing = take_snapshot(store, config, campaign, now=late + timedelta(minutes=3))
    alert = next(a for a in failing.alerts if "failing" in a)
    assert alert == "x is failing: x: cannot reach http://127.0.0.1:1: connection refused"
    assert "x failing since 20:50 (3 runs)" in draw(failing, 120, 30)


def test_partial_runs_say_why_and_a_spent_budget_says_until_when(copy) -> None:
    config, _ = copy
    campaign = replace(config.campaigns[0], daily_budget_usd=1.0)
    late = T0 + timedelta(hours=2, minutes=50)
    with Store.open(config.storage.database) as store:
        run_id = store.start_run(campaign.name, "x", late)
        store.finish_run(run_id, "partial", late + timedelta(seconds=5), error=(
            "x: Not Found Error: Could not find tweet with referenced_tweets.id: [1358447073349550085].; "
            "daily budget $1.00 reached ($10.60 spent on 2021-02-07 UTC): post reads paused until 00:00 UTC, "
            "counts continue"))
        snapshot = take_snapshot(store, config, campaign, now=late + timedelta(seconds=30))
    assert snapshot.sources[0].reason == "1 deleted original, budget reached"
    text = draw(snapshot, 120, 40)
    assert "x paused by the budget until 02:00" in text  # 00:00 UTC in Hebron
    assert "⚠ Daily budget $1.00 reached: X post reads are paused until 02:00 (00:00 UTC)" in text
    assert "spent today $10.60 of $1.00" in text


def test_without_a_terminal_it_prints_one_frame_and_exits(collected) -> None:
    config, _ = collected
    result = invoke("dashboard", "--config", config.path)
    assert result.returncode == 0, result.stderr
    assert "#StandWithIssa" in result.stdout and "storm over" in result.stdout
    assert "top accounts" in result.stdout and "names: pseudonymized" in result.stdout
    public = invoke("--config", config.path, "dashboard", "--names", "public")
    assert public.returncode == 0, public.stderr
    assert "names: public" in public.stdout


def test_each_platform_is_shown_when_a_storm_runs_on_several(copy) -> None:
    config, _ = copy
    toot = Post(uid="mastodon:https://kolektiva.social/users/rima/statuses/1", platform="mastodon",
                id="https://kolektiva.social/users/rima/statuses/1", author_uid="mastodon:rima@kolektiva.social",
                created_at="2021-02-07T17:00:00.000Z", ts=int((T0 + timedelta(hours=1)).timestamp()),
                text="#StandWithIssa from the fediverse", lang="en", kind="original", ref_uid=None, url=None,
                like_count=3, repost_count=1, reply_count=0, quote_count=None, bookmark_count=None,
                impression_count=None, metrics_at="2021-02-07T17:01:00.000Z", tags=("standwithissa",))
    with Store.open(config.storage.database) as store:
        store.save_page(Batch(posts=(toot,)), campaign="standwithissa", cursor=None, run_id=None,
                        collected_at=T0 + timedelta(hours=1))
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING)
    text = draw(snapshot, 100, 30)
    assert f"by platform X {snapshot.by_platform['x']:,} · Mastodon 1" in text
    assert snapshot.totals.posts == snapshot.by_platform["x"] + 1
    assert re.search(r"impressions [\d.,]+[kM]? \(X only\)", text)  # Mastodon reports none


def test_impressions_are_a_dash_where_no_platform_reports_them(collected) -> None:
    config, _ = collected
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING)
    only_mastodon = replace(snapshot, by_platform={"mastodon": snapshot.totals.posts}, impressions_from=())
    assert "impressions — (not reported by Mastodon)" in draw(only_mastodon, 120, 40)


@pytest.mark.parametrize(("width", "height"), ((80, 24), (120, 40)))
def test_the_x_stream_line_is_whole_connected_or_in_a_gap(copy, width: int, height: int) -> None:
    config, _ = copy
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        dropped = store.open_stream_connection("x", T0 - timedelta(minutes=30))
        store.close_stream_connection(dropped, T0 + timedelta(minutes=20), "dropped")
        gap = take_snapshot(store, config, campaign, now=DURING, list_size=20)
        store.open_stream_connection("x", T0 + timedelta(minutes=25))
        connected = take_snapshot(store, config, campaign, now=DURING, list_size=20)
    for snapshot, line in ((gap, "x stream disconnected since 18:20 (dropped) — reposts are being missed"),
                           (connected, "x stream connected since 18:25 · 0 posts")):
        for case in (snapshot, three_sources(snapshot)):
            lines = assert_drawn_whole(draw(case, width, height), width, height)
            assert any(line in drawn for drawn in lines), f"{line!r} not whole at {width}x{height}"
            assert any("x partial" in drawn or "x ok" in drawn for drawn in lines)  # the sources' state stays


def test_with_the_stream_off_the_dashboard_says_reposts_are_not_collected(copy) -> None:
    config, _ = copy
    config = replace(config, x=replace(config.x, stream=False))
    with Store.open(config.storage.database) as store:
        snapshot = take_snapshot(store, config, config.campaigns[0], now=DURING)
    assert snapshot.x_stream is None
    assert "x stream off — search only: reposts not collected" in draw(snapshot, 120, 40)


def test_after_midnight_utc_the_spend_says_today_s_and_the_storm_s(copy) -> None:
    # Issue 17: the storm's runs of the day before cost too; today's spend alone would hide them.
    config, _ = copy
    campaign = config.campaigns[0]
    next_day = T0.replace(hour=0) + timedelta(days=1, minutes=30)  # 00:30 UTC the day after the storm
    with Store.open(config.storage.database) as store:
        before = take_snapshot(store, config, campaign, now=next_day).storm_spent_usd
        storm_days = metrics.storm_spending(store, campaign)
        run_id = store.start_run(campaign.name, "x", next_day)
        store.add_requests(run_id, 16, 0.08)
        store.finish_run(run_id, "ok", next_day + timedelta(seconds=5))
        snapshot = take_snapshot(store, config, campaign, now=next_day + timedelta(minutes=1))
    assert before == round(storm_days.total_usd, 4) > 1  # the collected storm read X on its day
    assert snapshot.spent_today_usd == pytest.approx(0.08)
    assert snapshot.storm_spent_usd == before  # the day after is not a day of the storm
    assert f"spent today $0.08 (storm total ${before:,.2f})" in draw(snapshot, 120, 40)
