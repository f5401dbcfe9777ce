"""`stormwatch report` on a storm collected by the real collector: every file, figures that match `summary
--json`, escaping of hostile data, and pseudonyms that hide every small account in every output, charts included."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from stormwatch import metrics
from stormwatch.config import Config, load_config
from stormwatch.errors import StormwatchError
from stormwatch.models import Account, Batch, Post
from stormwatch.privacy.naming import HIDDEN_ACCOUNT, HIDDEN_LINK, HIDDEN_MENTION, KnownAccount, Namer, NamingPolicy
from stormwatch.report import write_report
from stormwatch.report.charts import PLATFORM_COLOURS, draw_charts, figure_texts, platform_colour
from stormwatch.report.content import gather, name_accounts
from stormwatch.report.markdown import escape_markdown
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .cli_support import Ran, invoke
from .conftest import T0

PACKAGE = Path(__file__).resolve().parents[1] / "stormwatch"
NOW = datetime(2021, 2, 9, 12, 0, 0, tzinfo=UTC)
THRESHOLD = 5000
TEXT_FILES = ("report.html", "report.md", "summary.json", "posts.csv", "accounts.csv", "volume.csv")
CHARTS = ("volume.png", "top_accounts.png", "co_hashtags.png", "coverage.png")
HOSTILE_TEXT = "<script>alert(1)</script> *stars* [click](javascript:alert(1)) | pipe `code` @Issaamro"
HOSTILE_NAME = '<b>Loud</b> & Co <img src=x onerror="alert(2)">'
SIMULATED_HOSTILE_NAME = "<b>Bold</b> & Co"  # the busiest simulated supporter's display name


# --- helpers ------------------------------------------------------------------------------------


def copy_campaign(config: Config, directory: Path) -> Path:
    """The collected config and a consistent copy of its database in `directory` (reports write pseudonyms)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "config.toml"
    shutil.copyfile(config.path, target)
    (directory / "data").mkdir(exist_ok=True)
    with sqlite3.connect(config.storage.database) as source, sqlite3.connect(directory / "data" / "test.db") as copy:
        source.backup(copy)
    return target


def stormwatch(*args: str) -> Ran:
    result = invoke(*args)
    assert result.returncode == 0, result.stderr
    return result


def cli_report(config_path: Path, out: Path, *extra: str) -> Path:
    """Run `stormwatch report` and return the folder it prints."""
    result = stormwatch("report", "--config", str(config_path), "--out", str(out), *extra)
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert folder.is_dir() and folder.parent == out
    return folder


def cli_summary(config_path: Path, *extra: str) -> dict:
    return json.loads(stormwatch("summary", "--json", "--config", str(config_path), *extra).stdout)


def readable_text(path: Path) -> str:
    """A text file as a reader sees it; chart images embedded in the HTML are checked through their labels."""
    text = path.read_text(encoding="utf-8-sig")
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,", text)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def accounts_table(database: Path) -> list[tuple[str, str, str | None, int]]:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT uid, handle, name, coalesce(followers_count, 0) FROM accounts").fetchall()


def hidden_handles(database: Path, config: Config) -> list[str]:
    """Every handle the pseudonymized report must hide: below the threshold, not the campaign's own or targets."""
    campaign = config.campaigns[0]
    public = {h.casefold() for h in (*campaign.accounts, *campaign.targets)}
    return [handle for _, handle, _, followers in accounts_table(database)
            if followers < THRESHOLD and handle.casefold() not in public]


def whole_word(term: str) -> re.Pattern[str]:
    # `-` counts as part of a word so that `participant-3f9a` never reads as the handle `3f9a`.
    return re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.IGNORECASE)


def headline_from_html(html: str, key: str) -> str:
    match = re.search(rf'<tr data-key="{key}"><th scope="row">[^<]*</th><td class="num">([^<]*)</td>', html)
    assert match, f"no headline row {key}"
    return match.group(1)


def headline_from_markdown(markdown: str, label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)} \| ([^|]*) \|", markdown, re.MULTILINE)
    assert match, f"no headline row {label}"
    return match.group(1)


class TagBalance(HTMLParser):
    """Checks that every opened element is closed in order (void elements aside)."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(tag)


def markdown_table_widths(markdown: str) -> list[set[int]]:
    """For each Markdown table, the set of cell counts of its rows (escaped pipes are not separators)."""
    tables: list[set[int]] = []
    previous = False
    for line in markdown.splitlines():
        row = line.startswith("|")
        if row:
            cells = len(re.split(r"(?<!\\)\|", line)) - 2
            if not previous:
                tables.append(set())
            tables[-1].add(cells)
        previous = row
    return tables


HEADLINES = (("posts", "Posts"), ("contributors", "Contributors"), ("potential_reach", "Potential reach"),
             ("potential_impressions", "Potential impressions"), ("impressions", "Impressions"),
             ("engagement", "Engagement"), ("peak_posts_per_minute", "Peak posts per minute"))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign_copy(collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the collected campaign plus a hand-made big account with a hostile name and top post."""
    config, _ = collected
    path = copy_campaign(config, tmp_path_factory.mktemp("report-campaign"))
    with Store.open(load_config(path).storage.database, create=False) as store:
        store.save_page(hostile_batch(), campaign="standwithissa", cursor=None, run_id=None, collected_at=NOW)
    return path


def hostile_batch() -> Batch:
    """A large account whose display name and top post carry markup, and a small one with markup in its name."""
    when = T0 + timedelta(hours=1, minutes=7)
    created = iso_utc(when)
    big = Account(uid="x:900000000000000001", platform="x", id="900000000000000001", handle="BoldAndCo",
                  name=HOSTILE_NAME, followers_count=90_000, following_count=10, posts_count=10, verified=False,
                  created_at=None, updated_at=created)
    small = replace(big, uid="x:900000000000000002", id="900000000000000002", handle="tinyhostile",
                    name="<i>Tiny</i> Hostile", followers_count=12)
    post = Post(uid="x:1358460000000000001", platform="x", id="1358460000000000001", author_uid=big.uid,
                created_at=created, ts=int(when.timestamp()), text=HOSTILE_TEXT + " #StandWithIssa", lang="en",
                kind="original", ref_uid=None, url="https://x.com/BoldAndCo/status/1358460000000000001",
                like_count=50_000, repost_count=10, reply_count=5, quote_count=1, bookmark_count=0,
                impression_count=900_000, metrics_at=created, tags=("standwithissa",), mentions=("issaamro",))
    reply = replace(post, uid="x:1358460000000000002", id="1358460000000000002", author_uid=small.uid,
                    text="@BoldAndCo @tinyhostile thank you #StandWithIssa", kind="reply", like_count=1,
                    repost_count=0, reply_count=0, quote_count=0, impression_count=10,
                    url="https://x.com/tinyhostile/status/1358460000000000002", mentions=("boldandco", "tinyhostile"))
    # Busy enough to be among the accounts with the most posts: its hostile name is in the top-accounts table.
    busy = tuple(replace(post, uid=f"x:13584600000000001{n:02d}", id=f"13584600000000001{n:02d}",
                         text=f"Hour {n} of solidarity with the defenders in Hebron #StandWithIssa", like_count=0,
                         repost_count=0, reply_count=0, quote_count=0, impression_count=5, mentions=(),
                         url=f"https://x.com/BoldAndCo/status/13584600000000001{n:02d}",
                         created_at=iso_utc(when + timedelta(minutes=n)),
                         ts=int((when + timedelta(minutes=n)).timestamp()))
                 for n in range(1, 41))
    return Batch(posts=(post, reply, *busy), accounts=(big, small))


@pytest.fixture(scope="module")
def pseudonymized(campaign_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default report (pseudonymized), written by the CLI."""
    return cli_report(campaign_copy, tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="module")
def public(campaign_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report naming everyone, written by the CLI."""
    return cli_report(campaign_copy, tmp_path_factory.mktemp("public"), "--names", "public")


@pytest.fixture
def store(campaign_copy: Path) -> Iterator[Store]:
    with Store.open(load_config(campaign_copy).storage.database, create=False) as opened:
        yield opened


# --- files --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_file_is_written_and_charts_are_real_images(pseudonymized: Path) -> None:
    assert re.fullmatch(r"standwithissa-\d{8}T\d{6}Z", pseudonymized.name)
    assert not list(pseudonymized.parent.glob(".*partial")), "no half-written folder is left behind"
    assert pseudonymized.stat().st_mode & 0o077 == 0, "only its owner can open the report folder"
    names = {p.name for p in pseudonymized.iterdir()}
    assert names == {*TEXT_FILES, *CHARTS}
    for name in TEXT_FILES:
        assert (pseudonymized / name).stat().st_size > 200, name
    for name in CHARTS:
        width, height = png_size(pseudonymized / name)
        assert 900 <= width <= 2400 and 450 <= height <= 1800, (name, width, height)
    summary = json.loads((pseudonymized / "summary.json").read_text(encoding="utf-8"))
    assert sorted(summary["report"]["files"]) == sorted(names)
    html = (pseudonymized / "report.html").read_text(encoding="utf-8")
    for chart in CHARTS:  # every chart is embedded in the HTML and referenced by the Markdown
        assert f"]({chart})" in (pseudonymized / "report.md").read_text(encoding="utf-8")
    assert html.count('<img src="data:image/png;base64,') == len(CHARTS)
    # One top-accounts table (posts, engagement received and followers are its columns), the co-hashtags drawn
    # and the target mentions tabled: nothing told twice.
    captions = re.findall(r"<caption[^>]*>([^<]*)</caption>", html)
    assert sum("accounts with the most posts" in c for c in captions) == 1
    assert not any("by engagement received" in c or "by followers" in c for c in captions if "ccounts" in c)
    assert "Hashtags used alongside the campaign's</caption>" not in html
    assert "Posts mentioning each target account</caption>" in html


@pytest.mark.slow
def test_html_is_self_contained_and_printable(pseudonymized: Path) -> None:
    html = (pseudonymized / "report.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', html))
    # The only hrefs are links to named authors' posts (followed only when clicked), never a resource.
    assert all(s.startswith("https://x.com/") for s in sources if not s.startswith("data:"))
    for external in ("<link", "<script", "@import", "url(", "@font-face"):
        assert external not in html.lower()
    assert "@page" in html and "size: A4" in html and "break-inside: avoid" in html
    balance = TagBalance()
    balance.feed(html)
    assert balance.errors == [] and balance.open == []


@pytest.mark.slow
def test_headline_figures_match_summary_json(campaign_copy: Path, pseudonymized: Path) -> None:
    expected = cli_summary(campaign_copy)
    summary = json.loads((pseudonymized / "summary.json").read_text(encoding="utf-8"))
    report = summary.pop("report")
    assert summary == expected
    assert report["names"] == "pseudonymized" and report["pseudonymize_below"] == THRESHOLD
    assert report["bucket_seconds"] == 60 and report["generated_at"].endswith("Z")
    html = (pseudonymized / "report.html").read_text(encoding="utf-8")
    markdown = (pseudonymized / "report.md").read_text(encoding="utf-8")
    for key, label in HEADLINES:
        assert headline_from_html(html, key) == f"{expected[key]:,}", key
        assert headline_from_markdown(markdown, label) == f"{expected[key]:,}", key
    # every figure the report shows carries its definition; hijack candidates and the cost are told in sentences
    # (the methods, the headline's cost row) rather than as table definitions
    told_in_prose = {"hijack_posts", "hijack_accounts", "cost_usd", "cost_by_kind"}
    for key, definition in metrics.DEFINITIONS.items():
        assert key in told_in_prose or definition.replace("'", "&#x27;") in html, key
    assert "#StandWithIssa #DropTheCharges #FreePoliticalPrisoners" in html
    assert "Sun 7 Feb 2021, 18:00 → Sun 7 Feb 2021, 21:00 (Asia/Hebron, UTC+02:00)" in html
    assert "Sun 7 Feb 2021, 16:00 → Sun 7 Feb 2021, 19:00 UTC" in html
    assert "produced by stormwatch" in html.lower() or "by stormwatch" in html


@pytest.mark.slow
def test_csv_files_hold_every_post_contributor_and_bucket(campaign_copy: Path, pseudonymized: Path) -> None:
    summary = json.loads((pseudonymized / "summary.json").read_text(encoding="utf-8"))
    posts = csv_rows(pseudonymized / "posts.csv")
    assert len(posts) == summary["posts"]
    assert [p["created_at_utc"] for p in posts] == sorted(p["created_at_utc"] for p in posts)
    assert all(p["created_at_local"].endswith("+02:00") for p in posts)
    assert posts[0]["created_at_local"][:19] == (datetime.fromisoformat(posts[0]["created_at_utc"])
                                                 + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    reposts = [p for p in posts if p["kind"] == "repost"]
    assert reposts and all(p["likes"] == "" and p["engagement"] == "0" for p in reposts)
    engagement = sum(int(p["engagement"]) for p in posts)
    assert engagement == summary["engagement"]
    accounts = csv_rows(pseudonymized / "accounts.csv")
    assert len(accounts) == summary["contributors"]
    assert sum(int(a["posts"]) for a in accounts) == summary["posts"]
    volume = csv_rows(pseudonymized / "volume.csv")
    assert len(volume) == 180
    assert int(volume[-1]["cumulative_posts"]) == summary["posts"]
    assert int(volume[-1]["cumulative_contributors"]) == summary["contributors"]
    assert volume[0]["bucket_start_local"] == "2021-02-07T18:00:00+02:00"
    # The platform's own count, from coverage: the hand-made posts were never counted by X.
    counted = sum(int(v["x_platform_count"]) for v in volume if v["x_platform_count"])
    assert counted == summary["posts"] - len(hostile_batch().posts)


@pytest.mark.slow
def test_a_failed_posts_export_is_one_line_and_leaves_no_folder(campaign_copy: Path, tmp_path: Path) -> None:
    copied = copy_campaign(load_config(campaign_copy), tmp_path / "campaign")
    config = load_config(copied)
    campaign = config.campaigns[0]
    copied.unlink()  # the posts.csv writers read the config again: without it they fail
    out = tmp_path / "out"
    with Store.open(config.storage.database, create=False) as store, pytest.raises(StormwatchError) as caught:
        write_report(store, config, campaign, metrics.campaign_window(campaign), out_dir=out, now=NOW)
    assert str(caught.value).startswith(f"writing posts.csv failed: {copied.absolute()}: no config file there (name "
                                        "yours with --config PATH or $STORMWATCH_CONFIG")
    assert list(out.iterdir()) == []  # neither a report nor its working folder (with the export's scratch files)


# --- escaping -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_text_and_names_are_escaped_in_html_and_neutral_in_markdown(public: Path) -> None:
    html = (public / "report.html").read_text(encoding="utf-8")
    markdown = (public / "report.md").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Loud&lt;/b&gt; &amp; Co &lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    # The busiest simulated supporter's own name, markup and all, is in the top-accounts table.
    assert '<span class="sub">X · &lt;b&gt;Bold&lt;/b&gt; &amp; Co</span>' in html
    for raw in ("<script", "<b>", "<img src=x"):
        assert raw not in html and raw not in markdown
    assert 'onerror="' not in html  # attribute quotes are escaped too
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in markdown
    # Markdown punctuation in data cannot make links, emphasis, code or extra table cells.
    assert r"\[click\](javascript:alert(1))" in markdown
    assert "[click](" not in markdown.replace(r"\[click\](", "")
    assert r"\*stars\*" in markdown and r"\| pipe \`code\`" in markdown
    tables = markdown_table_widths(markdown)
    assert len(tables) >= 8 and all(len(widths) == 1 for widths in tables), tables


def test_escape_markdown_neutralizes_markup() -> None:
    assert escape_markdown("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    assert escape_markdown("*a* _b_ [c](d) |e| `f` ~g~ @h $i$") == (
        r"\*a\* \_b\_ \[c\](d) \|e\| \`f\` \~g\~ \@h \$i\$")
    assert escape_markdown("two\nlines\r\tand tab") == "two lines  and tab"


def test_the_reports_steps_in_this_process_name_by_the_policy_and_escape_everything(campaign_copy: Path,
                                                                                      store: Store,
                                                                                      tmp_path: Path) -> None:
    """What a whole report (slow: charts, and posts.csv written by workers) does, step by step in this process:
    pseudonyms, posts.csv as a worker writes its part, the page and the Markdown."""
    from stormwatch.report.document import build_document
    from stormwatch.report.export import export_posts
    from stormwatch.report.html import render_html
    from stormwatch.report.markdown import render_markdown

    config = load_config(campaign_copy)
    campaign = config.campaigns[0]
    window = metrics.campaign_window(campaign)
    policy = NamingPolicy.for_campaign(campaign, "pseudonymized", config.report.pseudonymize_below)
    namer, contributors = name_accounts(store, campaign, window, policy)
    authors = namer.named_authors((a.uid, a.handle, a.followers) for a in contributors)
    rows = export_posts(namer, authors, store, campaign.name, window, campaign.timezone, tmp_path / "posts.csv")
    content = gather(store, campaign, window, namer, contributors, generated_at=T0 + timedelta(hours=4),
                     config=config)
    document = build_document(content, [])
    page, markdown = render_html(document, tmp_path), render_markdown(document)
    with (tmp_path / "posts.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert rows == len(list(csv.reader(handle))) - 1 > 0  # a row per post, after the header
    assert 'http-equiv="Content-Security-Policy"' in page and "<script" not in page
    texts = {"posts.csv": readable_text(tmp_path / "posts.csv"), "report.html": page, "report.md": markdown}
    hidden = hidden_handles(config.storage.database, config)
    assert "tinyhostile" in hidden
    for name, text in texts.items():  # as whole_word() finds them: a handle is a word of its own
        words = {word.casefold() for word in re.findall(r"[\w-]+", text)}
        assert not words & {handle.casefold() for handle in hidden}, name
        for handle in (h for h in hidden if not re.fullmatch(r"[\w-]+", h)):
            assert not whole_word(handle).search(text), f"{handle} appears in {name}"


# --- names --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pseudonymized_report_hides_every_small_account_everywhere(campaign_copy: Path, pseudonymized: Path) -> None:
    config = load_config(campaign_copy)
    hidden = hidden_handles(config.storage.database, config)
    assert len(hidden) > 100 and "tinyhostile" in hidden
    texts = {name: readable_text(pseudonymized / name) for name in TEXT_FILES}
    for handle in hidden:
        pattern = whole_word(handle)
        for name, text in texts.items():
            assert not pattern.search(text), f"{handle} appears in {name}"
    # Display names of hidden accounts are never written, however they are spelled.
    for text in texts.values():
        assert "Bold</b>" not in text and "Bold&lt;/b&gt;" not in text and "Bold&amp;lt;" not in text
        assert "Tiny" not in text
    assert "participant-" in texts["report.html"] and HIDDEN_LINK in texts["posts.csv"]


@pytest.mark.slow
def test_campaign_accounts_targets_and_large_accounts_stay_named(campaign_copy: Path, pseudonymized: Path) -> None:
    config = load_config(campaign_copy)
    html = (pseudonymized / "report.html").read_text(encoding="utf-8")
    for handle in ("Issaamro", "YASHebron", "antonioguterres", "vonderleyen", "BoldAndCo"):
        assert f"@{handle}" in html, handle
    accounts = csv_rows(pseudonymized / "accounts.csv")
    big = {handle for _, handle, _, followers in accounts_table(config.storage.database) if followers >= THRESHOLD}
    named = {a["account"] for a in accounts if a["named"] == "yes"}
    assert named and named <= big | {"Issaamro", "YASHebron"}
    assert all(a["account"].startswith("participant-") and a["name"] == "" for a in accounts if a["named"] == "no")
    assert all(a["followers"] and int(a["followers"]) >= THRESHOLD for a in accounts if a["named"] == "yes")
    # A post id or URL names its author: only named authors' posts keep them (and a repost, quote or reply only
    # when the post it references is a named account's: test_report_leaks.py).
    for post in csv_rows(pseudonymized / "posts.csv"):
        if post["author"].startswith("participant-"):
            assert post["url"] == "" and post["id"] == ""
        elif post["kind"] == "original" or post["id"]:
            assert post["id"] and post["url"].endswith(post["id"])
    # The reply by a hidden account mentions a large account (kept) and itself (hidden).
    reply = next(p for p in csv_rows(pseudonymized / "posts.csv") if "thank you" in p["text"])
    assert reply["text"].startswith("'@BoldAndCo @participant-")  # a leading @ would start a spreadsheet formula


@pytest.mark.slow
def test_naming_mode_and_threshold_are_stated(pseudonymized: Path, public: Path) -> None:
    for folder, mode in ((pseudonymized, "pseudonymized"), (public, "public")):
        html = (folder / "report.html").read_text(encoding="utf-8")
        markdown = (folder / "report.md").read_text(encoding="utf-8")
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        assert f"Names: {mode}" in html and f"Names: {mode}" in markdown
        assert summary["report"]["names"] == mode and summary["report"]["pseudonymize_below"] == THRESHOLD
    assert "fewer than 5,000 followers" in (pseudonymized / "report.html").read_text(encoding="utf-8")


def test_chart_labels_show_pseudonyms_never_small_handles(campaign_copy: Path, store: Store) -> None:
    config = load_config(campaign_copy)
    campaign = config.campaigns[0]
    window = metrics.campaign_window(campaign)
    namer, contributors = name_accounts(store, campaign, window, NamingPolicy.for_campaign(campaign,
                                                                                          "pseudonymized", THRESHOLD))
    content = gather(store, campaign, window, namer, contributors, generated_at=NOW, config=config)
    drawn = {chart.file: figure for chart, figure in draw_charts(content)}
    assert set(drawn) == set(CHARTS)
    labels = {file: figure_texts(figure) for file, figure in drawn.items()}
    hidden = [whole_word(h) for h in hidden_handles(config.storage.database, config)]
    for file, texts in labels.items():
        for text in texts:
            assert not any(p.search(text) for p in hidden), f"{file}: {text!r}"
    top = labels["top_accounts.png"]
    assert any(t.startswith("participant-") for t in top) and "@Issaamro" in top
    assert "time (Asia/Hebron)" in labels["volume.png"] and "posts per minute" in labels["volume.png"]
    assert any(t.startswith("#") for t in labels["co_hashtags.png"])
    # The top-accounts table is the ordering metrics.top_accounts gives (by posts).
    expected = metrics.top_accounts(store, campaign.name, window, by="posts")
    assert [a.followers for a in content.top_by_posts] == [a.followers for a in expected]
    assert [a.label for a in content.top_by_posts] == [namer.label(a.uid, a.handle, a.followers) for a in expected]
    for file, figure in drawn.items():
        assert_axes_read_forward(file, figure)


def assert_axes_read_forward(file: str, figure: Any) -> None:
    """No axis of a chart is reversed, and none shows only zeros (a count axis that says nothing)."""
    figure.canvas.draw()
    for ax in figure.get_axes():
        assert not ax.xaxis_inverted() and not ax.yaxis_inverted(), file
        for axis in (ax.xaxis, ax.yaxis):
            ticks = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
            assert not ticks or set(ticks) != {"0"}, (file, ticks)


def test_a_ranking_of_zeros_and_an_interim_chart_read_forward(store: Store, campaign_copy: Path) -> None:
    """Targets nobody mentioned, a chart from a window's first minutes: no reversed or all-zero axis."""
    config = load_config(campaign_copy)
    campaign = replace(config.campaigns[0], targets=("nobodymentionsme",))
    window = metrics.campaign_window(campaign)
    namer, contributors = name_accounts(store, campaign, window, NamingPolicy.for_campaign(campaign, "public", 0))
    content = gather(store, campaign, window, namer, contributors, generated_at=T0 + timedelta(minutes=2),
                     config=config)
    assert content.target_mentions == (("nobodymentionsme", 0),)
    for chart, figure in draw_charts(content):
        assert_axes_read_forward(chart.file, figure)


@pytest.mark.slow
def test_the_same_account_keeps_its_pseudonym_across_reports(campaign_copy: Path, pseudonymized: Path,
                                                             tmp_path: Path) -> None:
    config = load_config(campaign_copy)
    campaign = config.campaigns[0]
    narrow = metrics.campaign_window(campaign, T0 + timedelta(minutes=5), T0 + timedelta(minutes=50))
    with Store.open(config.storage.database, create=False) as store:
        second = write_report(store, config, campaign, narrow, out_dir=tmp_path, now=NOW)
        labels = dict(store.conn.execute("SELECT uid, label FROM pseudonyms WHERE campaign = ?", (campaign.name,)))
    first_rows = {a["account"]: a for a in csv_rows(pseudonymized / "accounts.csv")}
    second_rows = {a["account"]: a for a in csv_rows(second / "accounts.csv")}
    shared = [label for label in second_rows if label.startswith("participant-") and label in first_rows]
    assert len(shared) > 20
    assert all(first_rows[label]["followers"] == second_rows[label]["followers"] for label in shared)
    assert set(shared) <= set(labels.values())
    assert second.name == "standwithissa-20210209T120000Z"
    # A second report in the same second gets its own folder rather than overwriting the first.
    with Store.open(config.storage.database, create=False) as store:
        third = write_report(store, config, campaign, narrow, out_dir=tmp_path, now=NOW)
    assert third.name == "standwithissa-20210209T120000Z-2"
    assert csv_rows(third / "accounts.csv") == csv_rows(second / "accounts.csv")


@pytest.mark.slow
def test_public_mode_names_everyone(campaign_copy: Path, public: Path) -> None:
    config = load_config(campaign_copy)
    texts = {name: readable_text(public / name) for name in TEXT_FILES}
    assert not any("participant-" in text for text in texts.values())
    accounts = csv_rows(public / "accounts.csv")
    assert accounts and all(a["named"] == "yes" for a in accounts)
    small = [h for h in hidden_handles(config.storage.database, config)
             if any(a["account"] == h for a in accounts)]
    assert small and all(whole_word(h).search(texts["accounts.csv"]) for h in small)
    assert whole_word("thomasd87").search(texts["report.html"])
    posts = csv_rows(public / "posts.csv")
    assert all(p["id"] and p["url"] for p in posts)
    assert any("https://t.co/" in p["text"] for p in posts)


def test_namer_rewrites_mentions_default_deny(store: Store, collected) -> None:
    config, _ = collected
    campaign = config.campaigns[0]
    known = [KnownAccount("x:1", "x", "SmallVoice", 40), KnownAccount("x:2", "x", "BigOutlet", 250_000),
             KnownAccount("x:3", "x", "smallcaps_target", 10)]
    addressing = replace(campaign, targets=("smallcaps_target",))
    policy = NamingPolicy.for_campaign(addressing, "pseudonymized", THRESHOLD)
    namer = Namer.for_report(store, addressing, policy, [], known)
    small = namer.label("x:1", "SmallVoice", 40)
    assert small.startswith("participant-")
    text = ("RT @smallvoice: thanks @BigOutlet, @Issaamro. and @SMALLCAPS_TARGET; @nobody_we_know and "
            "me@example.org https://t.co/abc @SmallVoice@mastodon.social")
    assert namer.text(text, "x") == (
        f"RT @{small}: thanks @BigOutlet, @Issaamro. and @SMALLCAPS_TARGET; {HIDDEN_MENTION} and "
        f"{HIDDEN_ACCOUNT} {HIDDEN_LINK} {HIDDEN_MENTION}")  # an e-mail address goes whole, its name part too
    # A fediverse address written without its `@` is an address too; a named account's stays.
    assert namer.text("write to jane.doe@riseup.net or BigOutlet@mastodon.social", "mastodon") == (
        f"write to {HIDDEN_ACCOUNT} or {HIDDEN_ACCOUNT}")
    # The same handle on another platform is another person: unknown there, so hidden.
    assert namer.text("@BigOutlet", "mastodon") == HIDDEN_MENTION
    assert namer.label("x:1", "SmallVoice", 40) == small == store.assign_pseudonyms(campaign.name, ["x:1"])["x:1"]
    # another process rewrites texts alike from the Namer's state
    assert Namer.from_state(policy, namer.state()).text(text, "x") == namer.text(text, "x")
    public = Namer(NamingPolicy.for_campaign(campaign, "public", THRESHOLD), known)
    assert public.text(text, "x") == text and public.label("x:1", "SmallVoice", 40) == "SmallVoice"


def test_the_namer_only_reads_an_account_it_has_no_label_for_is_hidden(store: Store, collected) -> None:
    config, _ = collected
    campaign = config.campaigns[0]
    policy = NamingPolicy.for_campaign(campaign, "pseudonymized", THRESHOLD)
    namer = Namer.for_report(store, campaign, policy, [("x:1", "SmallVoice", 40), ("x:2", "BigOutlet", 250_000)],
                             [KnownAccount("x:3", "x", "Mentioned", 12)])
    labels = dict(store.conn.execute("SELECT uid, label FROM pseudonyms WHERE campaign = ?", (campaign.name,)))
    assert namer.label("x:1", "SmallVoice", 40) == labels["x:1"] and "x:2" not in labels
    assert namer.text("hi @mentioned", "x") == f"hi @{labels['x:3']}"
    # an account collected after the report read its accounts: hidden, and no label is written while reading
    assert namer.label("x:999", "LateComer", 3) == HIDDEN_ACCOUNT
    assert namer.author("x:999", "LateComer", 3) == (HIDDEN_ACCOUNT, False)
    assert dict(store.conn.execute("SELECT uid, label FROM pseudonyms WHERE campaign = ?", (campaign.name,))) == labels


# --- windows ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_since_and_until_narrow_the_figures(campaign_copy: Path, tmp_path: Path) -> None:
    window = ("--since", "2021-02-07T18:30", "--until", "2021-02-07T19:00")
    folder = cli_report(campaign_copy, tmp_path, *window)
    expected = cli_summary(campaign_copy, *window)
    full = cli_summary(campaign_copy)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary.pop("report")
    assert summary == expected and 0 < expected["posts"] < full["posts"]
    assert expected["window"]["since"] == "2021-02-07T16:30:00.000Z"
    assert len(csv_rows(folder / "posts.csv")) == expected["posts"]
    assert len(csv_rows(folder / "volume.csv")) == 30
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert headline_from_html(html, "posts") == f"{expected['posts']:,}"
    assert "Sun 7 Feb 2021, 18:30 → Sun 7 Feb 2021, 19:00" in html


@pytest.mark.slow
def test_a_window_without_posts_is_one_line_exit_1_and_nothing_written(campaign_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = subprocess.run([sys.executable, "-m", "stormwatch", "report", "--config", str(campaign_copy), "--out",
                             str(out), "--since", "2021-01-01T10:00", "--until", "2021-01-01T11:00"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == ["stormwatch: error: no posts in the window Fri 1 Jan 10:00 → Fri 1 Jan 11:00 "
                                          "Asia/Hebron: nothing to report; `stormwatch status` shows what was "
                                          "collected and when"]
    assert not out.exists()


def test_before_the_storm_a_report_says_when_it_starts_and_writes_nothing(campaign_copy: Path,
                                                                          tmp_path: Path) -> None:
    config = load_config(campaign_copy)
    campaign = config.campaigns[0]
    # A new campaign's database: nothing collected yet.
    with Store.open(tmp_path / "fresh.db") as store, pytest.raises(StormwatchError) as raised:
        write_report(store, config, campaign, metrics.campaign_window(campaign), out_dir=tmp_path / "out",
                     now=T0 - timedelta(hours=2))
    assert str(raised.value) == "no posts in the window yet: the storm starts Sun 7 Feb 18:00 Asia/Hebron"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_without_platform_counts_coverage_is_explained_not_drawn(campaign_copy: Path, tmp_path: Path) -> None:
    copied = copy_campaign(load_config(campaign_copy), tmp_path / "campaign")
    with sqlite3.connect(load_config(copied).storage.database) as conn:
        conn.execute("DELETE FROM volume_counts")
    folder = cli_report(copied, tmp_path / "out")
    assert not (folder / "coverage.png").exists()
    assert "No platform counts were fetched for this window" in (folder / "report.html").read_text(encoding="utf-8")
    assert all(v["x_platform_count"] == "" for v in csv_rows(folder / "volume.csv"))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert "coverage.png" not in summary["report"]["files"]


# --- charts and module boundaries ---------------------------------------------------------------


def test_platform_colours_are_fixed_with_a_fallback() -> None:
    assert set(PLATFORM_COLOURS) == {"x", "mastodon", "bluesky"}
    assert len(set(PLATFORM_COLOURS.values())) == 3
    assert platform_colour("x") == PLATFORM_COLOURS["x"]
    assert platform_colour("threads") not in PLATFORM_COLOURS.values()


def test_only_the_charts_module_imports_matplotlib() -> None:
    importers = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                       if re.search(r"^\s*(import|from)\s+matplotlib", path.read_text(encoding="utf-8"), re.MULTILINE))
    assert importers == ["report/charts.py"]
    source = (PACKAGE / "report" / "charts.py").read_text(encoding="utf-8")
    assert source.index('matplotlib.use("Agg")') < source.index("from matplotlib")


@pytest.mark.slow
def test_the_coverage_section_states_the_x_stream_its_gaps_and_the_estimate_as_an_estimate(tmp_path: Path) -> None:
    from .test_x_stream_figures import (
        AFTER,
        database,
        minutes,
        post_at,
        save,
        two_connections_and_a_kill,
        write_setup,
    )

    config = load_config(write_setup(tmp_path))
    campaign = config.campaign("standwithissa")
    with database(config) as store:
        two_connections_and_a_kill(store)
        save(store, None, minutes(200), post_at("o1", minutes(10), reposts=30, metrics_at=minutes(180)))
        folder = write_report(store, config, campaign, metrics.campaign_window(campaign), out_dir=tmp_path / "r",
                              now=AFTER)
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    coverage = markdown[markdown.index("## Coverage"):]
    assert "their coverage is the stream's connected time — 2 h 05 min of 3 h 00 min (69%)" in coverage
    assert "The stream stored 6 posts. X's counts below count what search returns" in coverage
    for row in ("| Sun 7 Feb 2021, 18:20 | Sun 7 Feb 2021, 18:25 | 5 min | dropped |",
                "| Sun 7 Feb 2021, 18:40 | Sun 7 Feb 2021, 19:00 | 20 min | collector stopped |",
                "| Sun 7 Feb 2021, 20:30 | Sun 7 Feb 2021, 21:00 | 30 min | budget |"):
        assert row in coverage
    assert "Reposts the gaps may have missed: about 30 — an estimate, not a count" in coverage
    assert json.loads((folder / "summary.json").read_text())["x_stream"]["reposts_missed_estimate"] == 30
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "Gaps in X&#x27;s filtered stream (times in Asia/Hebron)" in html or \
        "Gaps in X's filtered stream (times in Asia/Hebron)" in html


@pytest.mark.slow
def test_with_the_x_stream_off_the_report_says_x_reposts_are_not_in_the_figures(tmp_path: Path) -> None:
    from .test_x_stream_figures import AFTER, database, minutes, post_at, save, write_setup

    config = load_config(write_setup(tmp_path, x_extra="stream = false"))
    campaign = config.campaign("standwithissa")
    with database(config) as store:
        save(store, None, minutes(5), post_at("s1", minutes(4)))
        folder = write_report(store, config, campaign, metrics.campaign_window(campaign), out_dir=tmp_path / "r",
                              now=AFTER)
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "X's filtered stream was off for this campaign" in markdown and "Gaps in X's" not in markdown
    assert json.loads((folder / "summary.json").read_text())["x_stream"] is None
