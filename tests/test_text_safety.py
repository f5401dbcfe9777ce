"""Strangers' text on its way out: no control character reaches a terminal or a file, no CSV cell runs as a formula,
and no small account is named by a mention or a link in any form a platform writes them."""

from __future__ import annotations

import csv
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stormwatch.config import load_config
from stormwatch.models import Account, Batch, Post
from stormwatch.normalize.text import one_line, strip_controls
from stormwatch.privacy.cleaning import is_formula_start, safe_cell, safe_row
from stormwatch.privacy.naming import HIDDEN_ACCOUNT, HIDDEN_LINK, HIDDEN_MENTION, KnownAccount, Namer, NamingPolicy
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .cli_support import Ran, invoke
from .conftest import T0

# Control characters and reordering characters that must never come out (a line break may, in CSV cells).
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
ESCAPES = "\x1b[2J\x1b[H\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\\x07\x00\x9b31m"
SMALL = "tinyvoice"  # a supporter with a dozen followers: never named in a pseudonymized report


# --- the functions ------------------------------------------------------------------------------


def test_strip_controls_removes_escapes_nul_c1_and_bidi_overrides_and_keeps_the_rest() -> None:
    assert strip_controls("a" + ESCAPES + "b") == "a[2J[H]8;;https://evil.example/\\click]8;;\\31mb"
    assert strip_controls("evil\u202egnp.exe \u2066x\u2069") == "evilgnp.exe x"
    # Text in any script, direction marks, emoji sequences and non-breaking spaces are what people wrote.
    kept = "حرية لعيسى \u200f#StandWithIssa 👩\u200d👩\u200d👧 שלום\u00a0עולם"
    assert strip_controls(kept) == kept
    assert strip_controls("one\r\ntwo\rthree\u2028four\x85five\tsix") == "one\ntwo\nthree\nfour\nfive six"
    assert strip_controls("lone \udc80 surrogate") == "lone \ufffd surrogate"
    assert one_line("  a\n\nb\tc \x1b[1m ") == "a b c [1m"


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", " =1", "\u3000=1", "＝1", "＠x",
                                  "\n=1", '=HYPERLINK("https://evil.example","x")'])
def test_every_formula_start_gets_an_apostrophe(cell: str) -> None:
    safe = safe_cell(cell)
    assert safe.startswith("'") and not UNSAFE.search(safe)
    assert safe_row([cell]) == [safe]


def test_safe_rows_leave_numbers_plain_text_and_empty_cells_alone() -> None:
    assert safe_row([1, -5, 2.5, None, "", "ok", "a-b", "x\x1by"]) == [1, -5, 2.5, None, "", "ok", "a-b", "xy"]
    assert not is_formula_start("x=1") and is_formula_start("  -1")


# --- mentions and links, every way they are written ---------------------------------------------


@pytest.fixture
def namer() -> Namer:
    policy = NamingPolicy(mode="pseudonymized", threshold=5000, always_named=frozenset({"issaamro"}))
    known = [KnownAccount("x:1", "x", "TinyVoice", 12), KnownAccount("x:2", "x", "LoudOutlet", 90_000),
             KnownAccount("bluesky:did:plc:tiny", "bluesky", "tinyvoice.bsky.social", 3),
             KnownAccount("bluesky:did:plc:loud", "bluesky", "loud.bsky.social", 80_000),
             KnownAccount("mastodon:tinyvoice@kolektiva.social", "mastodon", "tinyvoice@kolektiva.social", 5),
             KnownAccount("mastodon:tinyvoice@mastodon.social", "mastodon", "tinyvoice@mastodon.social", 70_000)]
    labels = {"x:1": "participant-aaaa", "bluesky:did:plc:tiny": "participant-bbbb",
              "mastodon:tinyvoice@kolektiva.social": "participant-cccc"}
    return Namer(policy, known, labels)


@pytest.mark.parametrize(("platform", "text", "shown"), [
    ("x", "thanks ＠TinyVoice and ﹫TinyVoice!", "thanks @participant-aaaa and @participant-aaaa!"),
    ("x", "see x.com/TinyVoice/status/1358000000000000000?s=20 now", f"see {HIDDEN_LINK} now"),
    ("x", "twitter.com/tinyvoice www.x.com/TinyVoice mobile.twitter.com/TinyVoice/likes",
     f"{HIDDEN_LINK} {HIDDEN_LINK} {HIDDEN_LINK}"),
    ("x", "x.com/i/web/status/1358000000000000000", HIDDEN_LINK),  # no author named: nobody known to be named
    ("x", "x.com/LoudOutlet/status/1 and @LoudOutlet and x.com/Issaamro",
     "x.com/LoudOutlet/status/1 and @LoudOutlet and x.com/Issaamro"),
    ("bluesky", "bsky.app/profile/tinyvoice.bsky.social/post/3kfx2 and tinyvoice.bsky.social.",
     f"{HIDDEN_LINK} and {HIDDEN_LINK}"),
    ("bluesky", "bsky.app/profile/did:plc:tiny and at://did:plc:tiny/app.bsky.feed.post/3kfx2",
     f"{HIDDEN_LINK} and {HIDDEN_LINK}"),
    ("bluesky", "@tinyvoice.bsky.social meets loud.bsky.social", "@participant-bbbb meets loud.bsky.social"),
    ("mastodon", "kolektiva.social/@tinyvoice https://kolektiva.social/users/tinyvoice/statuses/109",
     f"{HIDDEN_LINK} {HIDDEN_LINK}"),
    # The remote account shown on another instance is the small one, not the big namesake living there.
    ("mastodon", "mastodon.social/@tinyvoice@kolektiva.social vs mastodon.social/@tinyvoice",
     f"{HIDDEN_LINK} vs mastodon.social/@tinyvoice"),
    ("mastodon", "cc ＠tinyvoice@kolektiva.social", "cc @participant-cccc"),
    # An e-mail address goes whole: its name part can be the person's handle.
    ("x", "mail tinyvoice@example.org or @nobody", f"mail {HIDDEN_ACCOUNT} or {HIDDEN_MENTION}"),
    ("mastodon", "tinyvoice@kolektiva.social wrote", "participant-cccc wrote"),
])
def test_every_mention_and_link_form_of_a_small_account_is_hidden(namer: Namer, platform: str, text: str,
                                                                  shown: str) -> None:
    assert namer.text(text, platform) == shown


# Invisible characters a reader never sees, as people (and Mastodon's `@&#8203;name`) put them after the at-sign.
INVISIBLE = ("\u200b", "\u00ad", "\u2060", "\ufeff", "&#8203;", "&amp;#8203;", "\u200c", "\ufe0f", "\x1b")


@pytest.mark.parametrize("invisible", INVISIBLE)
@pytest.mark.parametrize(("platform", "form", "shown"), [
    ("x", "@{i}TinyVoice thanks", "@participant-aaaa thanks"),
    ("x", "@Tiny{i}Voice!", "@participant-aaaa!"),
    ("x", "x.com/{i}TinyVoice", HIDDEN_LINK),
    ("bluesky", "@{i}tinyvoice.bsky.social", "@participant-bbbb"),
    ("bluesky", "tiny{i}voice.bsky.social", HIDDEN_LINK),
    ("mastodon", "@{i}tinyvoice@kolektiva.social", "@participant-cccc"),
    ("x", "thanks tiny{i}voice", f"thanks {HIDDEN_ACCOUNT}"),  # no at-sign at all: the fail-closed rule
])
def test_a_mention_with_invisible_characters_inside_is_still_a_mention(namer: Namer, invisible: str, platform: str,
                                                                       form: str, shown: str) -> None:
    from stormwatch.console import screen_text

    text = form.format(i=invisible)
    assert namer.text(text, platform) == shown
    # What the dashboard would show of it names nobody either.
    assert SMALL not in screen_text(namer.text(text, platform)).casefold()


@pytest.mark.parametrize(("platform", "text", "shown"), [
    # X front-ends, written without a scheme as the Bluesky app shortens links; `x.com//NAME`, `x.com/@NAME`.
    ("x", "fxtwitter.com/TinyVoice/status/1358000000000000000 vxtwitter.com/TinyVoice fixupx.com/TinyVoice",
     f"{HIDDEN_LINK} {HIDDEN_LINK} {HIDDEN_LINK}"),
    ("x", "nitter.net/TinyVoice nitter.poast.org/TinyVoice/status/1 xcancel.com/TinyVoice twstalker.com/tinyvoice",
     f"{HIDDEN_LINK} {HIDDEN_LINK} {HIDDEN_LINK} {HIDDEN_LINK}"),
    ("x", "x.com//TinyVoice and x.com/@TinyVoice", f"{HIDDEN_LINK} and {HIDDEN_LINK}"),
    ("x", "xcancel.com/LoudOutlet/status/1 nitter.net/Issaamro", "xcancel.com/LoudOutlet/status/1 nitter.net/Issaamro"),
    # ... but not what a named account's kept link carries after its handle.
    ("x", "x.com/LoudOutlet/status/1?ref=TinyVoice", HIDDEN_LINK),
    ("bluesky", "example.org/TinyVoice/loud.bsky.social", HIDDEN_LINK),
    # Bluesky handles inside other sites' paths and other hosts of the Bluesky app.
    ("bluesky", "clearsky.app/tinyvoice.bsky.social staging.bsky.app/profile/tinyvoice.bsky.social",
     f"{HIDDEN_LINK} {HIDDEN_LINK}"),
    ("bluesky", "https://staging.bsky.app/profile/loud.bsky.social clearsky.app/loud.bsky.social",
     "https://staging.bsky.app/profile/loud.bsky.social clearsky.app/loud.bsky.social"),
    # Bare DIDs: a known small account's becomes its label, an unknown one is hidden, a named one stays.
    ("bluesky", "did:plc:tiny, did:web:someone.example and did:plc:loud",
     f"participant-bbbb, {HIDDEN_ACCOUNT} and did:plc:loud"),
    # Fail closed: a hidden handle, its local part or its DID in any other wrapping.
    ("x", "example.org/people/TinyVoice?x=1 (tinyvoice) TINYVOICE's", f"{HIDDEN_LINK} ({HIDDEN_ACCOUNT}) "
     f"{HIDDEN_ACCOUNT}'s"),
    ("bluesky", "ask tinyvoice.bsky.social.", f"ask {HIDDEN_LINK}"),
    ("bluesky", "web.archive.org/web/2021/bsky.app/profile/did:plc:tiny", HIDDEN_LINK),
    # Full-width letters are the same letters (NFKC).
    ("x", "ｔｉｎｙｖｏｉｃｅ and ｘ．ｃｏｍ／TinyVoice", f"{HIDDEN_ACCOUNT} and {HIDDEN_LINK}"),
    # Words of other people stay as they were written, invisible characters and all.
    ("x", "می\u200cخواهم @LoudOutlet\u200b", "می\u200cخواهم @LoudOutlet\u200b"),
])
def test_more_link_forms_and_any_wrapping_of_a_hidden_handle_are_hidden(namer: Namer, platform: str, text: str,
                                                                         shown: str) -> None:
    assert namer.text(text, platform) == shown


def test_a_named_accounts_display_name_names_nobody_small(namer: Namer, tmp_path: Path) -> None:
    from stormwatch.metrics import AccountStat
    from stormwatch.report.content import named_account
    from stormwatch.report.tables import write_accounts_csv

    loud = AccountStat("x:2", "x", "LoudOutlet", "Loud (fan of @\u200bTinyVoice, x.com/TinyVoice)", 90_000, 3, 9)
    assert named_account(namer, loud).name == f"Loud (fan of @participant-aaaa, {HIDDEN_LINK}"
    write_accounts_csv(tmp_path / "accounts.csv", [loud], namer)
    written = (tmp_path / "accounts.csv").read_text(encoding="utf-8-sig")
    assert "LoudOutlet" in written and SMALL not in written.casefold()


def test_blanks_and_line_breaks_between_words_are_kept(namer: Namer) -> None:
    assert namer.text("a  @TinyVoice\n\nb\tx.com/TinyVoice", "x") == f"a  @participant-aaaa\n\nb\t{HIDDEN_LINK}"


# --- the report and the dashboard, end to end ---------------------------------------------------


def hostile_rows() -> Batch:
    """Rows as an older release could have stored them: control characters, formulas, every way of naming a
    small account."""
    when = T0 + timedelta(hours=2, minutes=59, seconds=30)  # the newest posts of the window: on the dashboard
    created = iso_utc(when)
    loud = Account(uid="x:910000000000000001", platform="x", id="910000000000000001", handle="LoudOutlet",
                   name="=HYPERLINK(\"https://evil.example\",\"Loud\")" + ESCAPES + "\u202eOutlet ＠\u200b" + SMALL,
                   followers_count=95_000, following_count=1, posts_count=1, verified=False, created_at=None,
                   updated_at=created)
    tiny = Account(uid="x:910000000000000002", platform="x", id="910000000000000002", handle=SMALL,
                   name="-Tiny" + ESCAPES, followers_count=12, following_count=1, posts_count=1, verified=False,
                   created_at=None, updated_at=created)
    text = (f"=cmd|' /C calc'!A0 {ESCAPES} ＠{SMALL} ﹫{SMALL} x.com/{SMALL}/status/1358000000000000009 "
            f"bsky.app/profile/{SMALL}.bsky.social mastodon.social/@{SMALL} \u202eevil\u202c #StandWithIssa "
            f"@\u200b{SMALL} @&#8203;{SMALL} @\u2060{SMALL} fxtwitter.com/{SMALL}/status/1 "
            f"clearsky.app/{SMALL}.bsky.social")
    post = Post(uid="x:1358470000000000001", platform="x", id="1358470000000000001", author_uid=loud.uid,
                created_at=created, ts=int(when.timestamp()), text=text, lang="en\x1b[31m", kind="original",
                ref_uid=None, url="https://x.com/LoudOutlet/status/1358470000000000001", like_count=80_000,
                repost_count=9, reply_count=9, quote_count=9, bookmark_count=0, impression_count=1,
                metrics_at=created, tags=("standwithissa", "=hyperlink(\"https://evil.example\")", "\x1b[2jtag"),
                mentions=(SMALL,))
    own = Post(uid="x:1358470000000000002", platform="x", id="1358470000000000002", author_uid=tiny.uid,
               created_at=created, ts=int(when.timestamp()) + 1,
               text=f"@LoudOutlet @\u200b{SMALL} " + ESCAPES + " +1 #StandWithIssa",
               lang="en", kind="reply", ref_uid=post.uid, url=f"https://x.com/{SMALL}/status/1358470000000000002",
               like_count=70_000, repost_count=0, reply_count=0, quote_count=0, bookmark_count=0, impression_count=1,
               metrics_at=created, tags=("standwithissa", "-2+3"), mentions=("loudoutlet",))
    return Batch(posts=(post, own), accounts=(loud, tiny))


@pytest.fixture(scope="module")
def hostile_campaign(collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the collected campaign with hostile rows stored in it (bypassing today's normalizers)."""
    config, _ = collected
    directory = tmp_path_factory.mktemp("hostile")
    target = directory / "config.toml"
    target.write_text(config.path.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "data").mkdir()
    with sqlite3.connect(config.storage.database) as source, sqlite3.connect(directory / "data" / "test.db") as copy:
        source.backup(copy)
    with Store.open(load_config(target).storage.database, create=False) as store:
        store.save_page(hostile_rows(), campaign="standwithissa", cursor=None, run_id=None,
                        collected_at=T0 + timedelta(hours=3))
    return target


def run(*args: str) -> Ran:
    result = invoke(*args)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow  # a whole report
def test_no_formula_control_character_or_small_handle_leaves_in_a_report(hostile_campaign: Path,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "reports"
    folder = Path(run("report", "--config", str(hostile_campaign), "--out", str(out)).stdout.strip())
    for name in ("posts.csv", "accounts.csv", "volume.csv"):
        with (folder / name).open(encoding="utf-8-sig", newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        assert cells, name
        for cell in cells:
            assert not is_formula_start(cell), (name, cell)
            assert not UNSAFE.search(cell), (name, cell)
    texts = {name: (folder / name).read_text(encoding="utf-8") for name in
             ("posts.csv", "accounts.csv", "report.md", "report.html", "summary.json")}
    posts = texts["posts.csv"]
    assert ",'=cmd|" in posts and ",'-2+3 standwithissa," in posts  # a text and a tags cell, shown but inert
    for name, text in texts.items():
        assert SMALL not in text.casefold(), name
        assert not UNSAFE.search(text.replace("\r\n", "\n")), name
    assert "@participant-" in posts and HIDDEN_LINK in posts


def test_the_dashboard_frame_carries_no_control_character(hostile_campaign: Path) -> None:
    frame = run("dashboard", "--config", str(hostile_campaign)).stdout
    assert "LoudOutlet" in frame and "[2J" in frame  # the hostile post is on screen, its escapes disarmed
    assert not UNSAFE.search(frame), repr(UNSAFE.search(frame))
    # The screen drops invisible characters: `@\u200btinyvoice` must have been recognized as a mention before.
    assert SMALL not in frame.casefold()


def test_a_hidden_author_is_hidden_in_other_texts_in_any_form_also_in_the_export_processes(
        memory_store: Store) -> None:
    """An author the report hides need not be mentioned anywhere to be written into a link or a sentence; the
    processes that write posts.csv get the same rule from the hand-over (`state`)."""
    from stormwatch.config import CampaignConfig

    campaign = CampaignConfig(name="c", hashtags=("StandWithIssa",), accounts=("Issaamro",), targets=(),
                              sources=("x",), start=T0, end=T0 + timedelta(hours=3), timezone=ZoneInfo("UTC"),
                              interval=timedelta(minutes=5), storm_interval=timedelta(minutes=1),
                              daily_budget_usd=None)
    policy = NamingPolicy.for_campaign(campaign, "pseudonymized", 5000)
    shown = [("x:7", "QuietAuthor", 30), ("x:8", "LoudOutlet", 90_000)]
    namer = Namer.for_report(memory_store, campaign, policy, shown, known=[KnownAccount("x:8", "x", "LoudOutlet",
                                                                                        90_000)])
    text = "nitter.net/QuietAuthor said it, as quietauthor does; x.com/LoudOutlet and x.com/Issaamro too"
    shown_text = f"{HIDDEN_LINK} said it, as {HIDDEN_ACCOUNT} does; x.com/LoudOutlet and x.com/Issaamro too"
    assert namer.text(text, "x") == shown_text
    assert Namer.from_state(policy, namer.state()).text(text, "x") == shown_text
    # `summary --json` names by the same rules without any directory: every mention and link but the campaign's.
    # (A word naming nobody hidden stays as it was written.)
    assert Namer(policy).text("@\u200bQuietAuthor @&#8203;Issaamro fixupx.com/QuietAuthor", "x") == (
        f"{HIDDEN_MENTION} @&#8203;Issaamro {HIDDEN_LINK}")


def test_a_short_local_part_alone_is_not_looked_for_but_the_whole_handle_is() -> None:
    policy = NamingPolicy(mode="pseudonymized", threshold=5000, always_named=frozenset())
    namer = Namer(policy, [KnownAccount("bluesky:did:plc:z72i7hdynmk6r22z27h6tvur", "bluesky", "me.example.org", 7)],
                  {"bluesky:did:plc:z72i7hdynmk6r22z27h6tvur": "participant-dddd"})
    assert namer.text("tell me: example.com/me.example.org or me.example.org", "bluesky") == (
        f"tell me: {HIDDEN_LINK} or {HIDDEN_ACCOUNT}")
