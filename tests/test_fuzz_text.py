"""Property: strangers' text through the report's CSV and Markdown and the dashboard yields no formula-start cell, no
control character and no pseudonymized handle, in any form a platform writes a mention or a link, with invisible
characters anywhere in it (what a reader sees is checked: `visible_form` of every output)."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from rich.console import Console

from stormwatch import metrics
from stormwatch.console import screen_text
from stormwatch.dashboard import AccountLine, PostLine, Snapshot, SourceLine, render
from stormwatch.privacy.cleaning import is_formula_start
from stormwatch.privacy.hiding import visible_form
from stormwatch.privacy.naming import KnownAccount, Namer, NamingPolicy
from stormwatch.report.document import Document, Link, Paragraph, Table
from stormwatch.report.markdown import render_markdown
from stormwatch.report.tables import write_accounts_csv, write_posts_csv

from .test_fuzz_normalize import ANY_TEXT, FUZZ

UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
SMALL = "QvTinyQ"  # a supporter with a handful of followers, on every platform
FORMS = ("@{h}", "＠{h}", "﹫{h}", "x.com/{h}", "https://x.com/{h}/status/1358000000000000001", "twitter.com/{h}",
         "mobile.twitter.com/{h}", "www.x.com/{h}/likes", "http://www.twitter.com/{h}", "@{h}.bsky.social",
         "bsky.app/profile/{h}.bsky.social", "https://bsky.app/profile/{h}.bsky.social/post/3kabc", "{h}.bsky.social",
         "mastodon.social/@{h}", "https://kolektiva.social/@{h}/109876", "kolektiva.social/users/{h}",
         "@{h}@kolektiva.social", "mastodon.social/@{h}@kolektiva.social",
         # X's front-ends without a scheme, odd X paths, Bluesky handles in other sites' paths, bare DIDs, and the
         # handle alone in any wrapping (the fail-closed rule).
         "fxtwitter.com/{h}/status/1358000000000000001", "vxtwitter.com/{h}", "fixupx.com/{h}", "nitter.net/{h}",
         "nitter.poast.org/{h}/status/1", "xcancel.com/{h}", "twstalker.com/{h}", "x.com//{h}", "x.com/@{h}",
         "clearsky.app/{h}.bsky.social", "staging.bsky.app/profile/{h}.bsky.social", "did:plc:{h}",
         "at://did:plc:{h}/app.bsky.feed.post/3k", "{h}", "({h})", "example.org/u/{h}?ref=1", "{h}.bsky.social",
         "&#64;{h}")
# Characters nobody sees (format characters, HTML's zero-width space, variation selectors, a skin tone, ESC):
# put anywhere in a form, they must not hide the handle from the rules (the dashboard drops them for the screen).
INVISIBLE = st.sampled_from(["\u200b", "\u00ad", "\u2060", "\ufeff", "&#8203;", "&amp;#8203;", "\u200c", "\u200d",
                             "\u200e", "\ufe0f", "\u180e", "\u034f", "\U000e0041", "\U0001f3fd", "\x1b", "\x00"])
HOSTILE = st.sampled_from(["=HYPERLINK(\"https://evil.example\",\"x\")", "+1", "-2+3", "@SUM(1)", "\t=1", " =1",
                           "＝1", "\x1b[2J\x1b[H", "\x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\", "\x00",
                           "\x9b31m", "\u202eevil", "\r\n", "\ud800", "*x* [a](b) | `c`", "<script>"])
TEXT = st.lists(ANY_TEXT | HOSTILE, max_size=4).map("".join)
SEPARATORS = st.sampled_from([" ", "\n", " (", " \"", " «", ": ", "\t"])
AFTER = st.sampled_from([" ", "\n", ") ", ", ", "! ", "? ", "\" "])


def namer() -> Namer:
    policy = NamingPolicy(mode="pseudonymized", threshold=5000, always_named=frozenset({"issaamro"}))
    known = [KnownAccount("x:1", "x", SMALL, 3),
             KnownAccount(f"bluesky:did:plc:{SMALL.lower()}", "bluesky", f"{SMALL}.bsky.social", 3),
             KnownAccount("mastodon:q@kolektiva.social", "mastodon", f"{SMALL}@kolektiva.social", 3)]
    return Namer(policy, known, {"x:1": "participant-aaaa", f"bluesky:did:plc:{SMALL.lower()}": "participant-bbbb",
                                 "mastodon:q@kolektiva.social": "participant-cccc"})


@st.composite
def naming_text(draw: st.DrawFn) -> str:
    """A stranger's text that names the small account somewhere, in one of the ways platforms write it."""
    before, after = draw(TEXT), draw(TEXT)
    assume(SMALL.casefold() not in (before + after).casefold())
    form = draw(st.sampled_from(FORMS)).format(h=draw(st.sampled_from([SMALL, SMALL.lower(), SMALL.upper()])))
    # Invisible characters at random places of the form (after the at-sign, inside the handle, in the domain).
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(form)))
        form = form[:at] + draw(INVISIBLE) + form[at:]
    return before + draw(SEPARATORS) + form + draw(AFTER) + after


def names_small(output: str) -> bool:
    """Whether a reader could read the small account's handle in `output` (invisible characters unseen)."""
    return SMALL.casefold() in visible_form(output).casefold()


def check_cells(path: Path) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle):
            for cell in row:
                assert not is_formula_start(cell) and not UNSAFE.search(cell), cell


@FUZZ
@given(text=naming_text(), tags=st.lists(TEXT, max_size=3), name=TEXT, url=TEXT,
       platform=st.sampled_from(["x", "mastodon", "bluesky"]))
def test_report_csv_and_markdown_cells_are_inert_and_name_nobody_small(text: str, tags: list[str], name: str,
                                                                       url: str, platform: str) -> None:
    naming = namer()
    authors = {"x:1": ("participant-aaaa", False, 3), "x:2": (name or "LoudOutlet", True, 90_000)}
    rows = [(f"{platform}:1", platform, "2021-02-07T16:00:00.000Z", kind, author, text, url or None, "en", 1, 2, 3, 4,
             None, 10, " ".join(tags), None, None) for kind, author in (("original", "x:2"), ("reply", "x:1"),
                                                                   ("repost", None))]
    contributors = [metrics.AccountStat("x:1", "x", SMALL, name, 3, 1, 1),
                    metrics.AccountStat("x:2", "x", name or "LoudOutlet", name, 90_000, 1, 1),
                    # A named account whose display name carries the small account's handle or link.
                    metrics.AccountStat("x:3", "x", "BigNews", text, 80_000, 1, 1)]
    with tempfile.TemporaryDirectory() as folder:
        posts, accounts = Path(folder) / "posts.csv", Path(folder) / "accounts.csv"
        write_posts_csv(posts, rows, naming, ZoneInfo("Asia/Hebron"), authors)
        write_accounts_csv(accounts, contributors, naming)
        for path in (posts, accounts):
            check_cells(path)
        assert not names_small(posts.read_text(encoding="utf-8-sig"))
        assert not names_small(accounts.read_text(encoding="utf-8-sig")) or names_small(name)
    shown = naming.text(text, platform)
    markdown = render_markdown(Document(title=name, subtitle=(url,), blocks=(
        Paragraph(shown), Table(caption=name, header=("post", "link"), rows=((shown, Link(shown, url)),),
                                numeric=(False, False)))))
    assert not UNSAFE.search(markdown)
    assert not names_small(markdown) or names_small(name + url)
    assert not names_small(screen_text(shown))  # what the dashboard shows of it


@pytest.mark.slow  # a Hypothesis search (the fast lane keeps the quick ones)
@FUZZ
@given(texts=st.lists(TEXT, min_size=1, max_size=3), handles=st.lists(TEXT, min_size=1, max_size=3),
       tags=st.lists(TEXT, max_size=3), error=TEXT, width=st.sampled_from([80, 120]))
def test_the_dashboard_shows_strangers_text_without_a_control_character(
        texts: list[str], handles: list[str], tags: list[str], error: str, width: int) -> None:
    now = datetime(2021, 2, 7, 17, tzinfo=UTC)
    half_past = datetime(2021, 2, 7, 16, 30, tzinfo=UTC)
    # Lines as a snapshot holds them, stranger-written text raw: render must make it safe on its own too.
    latest = tuple(PostLine(half_past, f"@{handle}", text, "x")
                   for text, handle in zip(texts * 3, handles * 3, strict=False))
    accounts = tuple(AccountLine(f"@{handle}", "x", 1, 10, 1) for handle in handles)
    snapshot = Snapshot(
        campaign="c", hashtags=("StandWithIssa",), timezone="Asia/Hebron", now=now, start=now - timedelta(hours=1),
        end=now + timedelta(hours=1), totals=metrics.Totals(posts=3), by_platform={"x": 2, "mastodon": 1},
        per_minute=(1, 2, 3), per_minute_end=now, peak=metrics.Peak(half_past, 3), peak_so_far=3,
        new_contributors_5m=1, goal_posts=10, goal_contributors=None, top_accounts=accounts,
        co_hashtags=tuple((tag, 1) for tag in tags), targets=tuple((handle, 1) for handle in handles),
        latest=latest,
        sources=(SourceLine("x", now - timedelta(minutes=1), "failed", None, None, error, 0.0, 1),),
        budget_usd=None, spent_today_usd=0.0, alerts=(f"x is failing: {error}",))
    console = Console(width=width, height=30, file=io.StringIO(), record=True, color_system=None,
                      legacy_windows=False)
    console.print(render(snapshot))
    frame = console.export_text()
    assert not UNSAFE.search(frame), repr(UNSAFE.search(frame))
