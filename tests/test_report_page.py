"""The report as people see it: report.html opened in headless Chromium (Playwright) at a desktop width, at a
phone's width and on A4 paper, on a storm with three platforms, long Mastodon handles, Arabic and emoji.

Skipped where no `chromium` binary is found (CI installs Debian's before the tests).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from matplotlib.text import Text

from stormwatch.metrics import campaign_window
from stormwatch.models import Account, Batch, Post
from stormwatch.report import write_report
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .conftest import T0

# Chromium, on a whole report.
pytestmark = pytest.mark.slow

DESKTOP, PHONE = 1280, 420
A4_CONTENT = 703  # CSS pixels across an A4 page inside the report's 12 mm margins (186 mm at 96 per inch)
# The whole report on A4: sections follow each other, tables of a few rows kept whole, a chart never split.
MAX_PAGES = 8
LEAST_FULL = 1 / 3  # every page but the last is at least this full
PHONE_PAGE = 12_000  # CSS px: the tallest the report may be on a phone
SMALLEST_CHART_TEXT = 9  # CSS px: chart text on a phone
NOW = datetime(2021, 2, 9, 12, 0, tzinfo=UTC)

# Every word of every table cell drawn on one line and inside its cell (a cell narrower than its longest word
# either breaks the word or lets it stick out), skipping what is hidden from the eye (a phone's card headers,
# text for screen readers only). Returns one line per problem.
WORDS_FIT = """
() => {
  const problems = [];
  for (const cell of document.querySelectorAll("td, th")) {
    const box = cell.getBoundingClientRect();
    const head = cell.closest("thead");
    if (box.width < 2 || box.height < 2 || (head && head.getBoundingClientRect().width <= 2)) continue;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest(".visually-hidden")) continue;
      // A post's text may break after a hyphen, like any prose; names and figures may not.
      const words = cell.matches("td.text") ? /[^\\s-]+-?/g : /\\S+/g;
      for (const match of node.textContent.matchAll(words)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const rects = [...range.getClientRects()].filter(r => r.width > 0);
        if (!rects.length) continue;
        const lines = new Set(rects.map(r => Math.round(r.bottom)));
        const left = Math.min(...rects.map(r => r.left)), right = Math.max(...rects.map(r => r.right));
        if (lines.size > 1 || left < box.left - 1 || right > box.right + 1) {
          problems.push(`${cell.closest("table").querySelector("caption").textContent}: "${match[0]}" ` +
                        `(cell ${Math.round(box.width)}px, word ${Math.round(right - left)}px, ${lines.size} lines)`);
        }
      }
    }
  }
  return problems;
}
"""
# Tables that need scrolling sideways inside their box, and how far the page itself is wider than the window.
OVERFLOW = """
() => ({
  page: document.documentElement.scrollWidth - window.innerWidth,
  tables: [...document.querySelectorAll(".table-wrap")]
    .filter(w => w.scrollWidth > w.clientWidth + 1)
    .map(w => `${w.querySelector("caption").textContent}: ${w.scrollWidth}px in ${w.clientWidth}px`),
})
"""


def _post(uid: str, platform: str, author: str, text: str, when: datetime, likes: int, **extra: Any) -> Post:
    native = uid.split(":", 1)[1]
    return Post(uid=uid, platform=platform, id=native, author_uid=author, created_at=iso_utc(when),
                ts=int(when.timestamp()), text=text, lang=None, kind="original", ref_uid=None, url=None,
                like_count=likes, repost_count=3, reply_count=1, quote_count=1, bookmark_count=None,
                impression_count=None, metrics_at=iso_utc(when), tags=("standwithissa",), **extra)


def awkward_batch() -> Batch:
    """Posts that are hard to lay out: long Mastodon handles, Arabic and Hebrew, emoji with selectors, a long
    link, from three platforms, engaging enough to be top posts, by accounts big enough to be named."""
    when = T0 + timedelta(hours=1, minutes=3)
    handles = (("mastodon", "KatrinBeckerSolidarity@kolektiva.social"), ("mastodon", "عيسى_عمرو@mastodon.social"),
               ("bluesky", "defenders-of-human-rights.bsky.social"))
    accounts = tuple(Account(uid=f"{platform}:{handle}", platform=platform, id=handle, handle=handle,
                             name="Katrin Becker 🕊️ ✊🏽", followers_count=40_000, following_count=1, posts_count=1,
                             verified=None, created_at=None, updated_at=iso_utc(when))
                     for platform, handle in handles)
    texts = ("التضامن مع المدافعين عن حقوق الإنسان في الخليل واجب ✊🏽 #StandWithIssa",
             "מִשְׁפָּט צֶדֶק לְעִיסָא עַמְרוֹ 🕊️ 👩🏽‍⚕️ https://example.org/a/very/long/path/that/keeps/going/and/going"
             "/without/any/break/at/all/index.html #StandWithIssa",
             "Nonviolence is courage. Drop all charges against peaceful defenders 🕊️ #StandWithIssa")
    posts = tuple(_post(f"{account.platform}:https://example.org/{index}", account.platform, account.uid, text,
                        when + timedelta(minutes=index), 40_000 + index)
                  for index, (account, text) in enumerate(zip(accounts, texts, strict=True)))
    return Batch(posts=posts, accounts=accounts)


@pytest.fixture(scope="module")
def report(collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of the collected storm with the awkward posts added (a copy of the database)."""
    config, _ = collected
    folder = tmp_path_factory.mktemp("report-page")
    target = folder / "report.db"
    with sqlite3.connect(config.storage.database) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    config = replace(config, storage=replace(config.storage, database=target))
    campaign = replace(config.campaigns[0], sources=("x", "mastodon", "bluesky"))
    with Store.open(target) as store:
        store.save_page(awkward_batch(), campaign=campaign.name, cursor=None, run_id=None, collected_at=NOW)
        written = write_report(store, config, campaign, campaign_window(campaign), out_dir=folder / "out", now=NOW)
    return written / "report.html"


def open_page(browser: Any, report: Path, width: int, media: str = "screen") -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.emulate_media(media=media)
    page.goto(report.as_uri())
    return page


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_every_table_fits_its_screen_and_no_word_is_squeezed(browser: Any, report: Path, width: int) -> None:
    page = open_page(browser, report, width)
    try:
        overflow = page.evaluate(OVERFLOW)
        squeezed = page.evaluate(WORDS_FIT)
    finally:
        page.close()
    assert overflow["page"] <= 0, f"the page is {overflow['page']}px wider than a {width}px screen"
    assert overflow["tables"] == [], "tables that need scrolling sideways"
    assert squeezed == []


def test_on_a4_paper_no_word_is_squeezed_and_the_report_takes_a_few_pages(browser: Any, report: Path) -> None:
    page = open_page(browser, report, A4_CONTENT, media="print")
    try:
        squeezed = page.evaluate(WORDS_FIT)
        overflow = page.evaluate(OVERFLOW)
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.close()
    assert squeezed == [] and overflow["tables"] == []
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 4 <= pages <= MAX_PAGES, f"{pages} A4 pages"


def test_tables_and_charts_speak_to_screen_readers(browser: Any, report: Path) -> None:
    page = open_page(browser, report, PHONE)
    try:
        facts = page.evaluate("""() => ({
          tables: [...document.querySelectorAll("table")].map(t => ({
            caption: t.querySelector("caption")?.textContent || "",
            heads: [...t.querySelectorAll("thead th")].map(th => th.getAttribute("scope")),
            rows: [...t.querySelectorAll("tbody th")].map(th => th.getAttribute("scope")),
          })),
          images: [...document.querySelectorAll("img")].map(i => i.getAttribute("alt") || ""),
          dashes: [...document.querySelectorAll("td")].filter(td => td.textContent.includes("—"))
                    .map(td => [td.querySelector("[aria-hidden]")?.textContent,
                                td.querySelector(".visually-hidden")?.textContent]),
          sections: [...document.querySelectorAll("section")].map(s =>
                    document.getElementById(s.getAttribute("aria-labelledby"))?.textContent || ""),
        })""")
    finally:
        page.close()
    assert facts["tables"] and all(t["caption"] for t in facts["tables"])
    assert all(scope == "col" for t in facts["tables"] for scope in t["heads"])
    assert all(scope == "row" for t in facts["tables"] for scope in t["rows"])
    assert len(facts["images"]) == 4  # volume, top accounts, co-hashtags, coverage
    for alt in facts["images"]:  # what the chart shows, in words, with its key figures
        assert len(alt) > 60 and re.search(r"\d", alt), alt
    # "—" for the eye, "not reported" for the ear (Mastodon and Bluesky impressions, Bluesky reposts)
    assert len(facts["dashes"]) >= 3 and all(dash == ["—", "not reported"] for dash in facts["dashes"])
    assert facts["sections"][:3] == ["The storm in brief", "Headline figures", "The storm over time"]


# --- the demo storm on paper and on a phone ------------------------------------------------------

# What each page's last line could be that must not end a page: headings, table captions, header rows.
PAGE_ENDS = """
() => ({
  headings: [...document.querySelectorAll("h1, h2, h3")].map(h => h.textContent),
  captions: [...document.querySelectorAll("caption")].map(c => c.textContent),
  headers: [...document.querySelectorAll("thead tr")].map(r => r.textContent),
})
"""
# Each chart as the page shows it: its title, its drawn and natural widths.
CHART_SIZES = """
() => [...document.querySelectorAll("figure")].map(f => ({
  title: f.querySelector("figcaption strong").textContent.replace(/\\.$/, ""),
  shown: f.querySelector("img").getBoundingClientRect().width,
  natural: f.querySelector("img").naturalWidth,
}))
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`stormwatch demo --headless` (its storm, played in 20 seconds): the folder it ran in."""
    folder = tmp_path_factory.mktemp("demo")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("X_BEARER", "STORMWATCH"))}
    result = subprocess.run([sys.executable, "-m", "stormwatch", "demo", "--headless", "--duration", "20"],
                            cwd=folder, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr
    return folder


def demo_report(demo: Path) -> Path:
    return next((demo / "reports").glob("*/report.html"))


def page_lines(pdf: bytes) -> list[tuple[float, str]]:
    """Each A4 page's fill (the share of the space inside the margins down to its lowest text or image) and the
    text of its last line."""
    pdfium = pytest.importorskip("pypdfium2")
    document = pdfium.PdfDocument(pdf)
    pages = []
    for page in document:
        width, height = page.get_size()
        margin = height * 14 / 297  # the report's @page margin: 14 mm of 297
        drawn = [item.get_bounds() for item in page.get_objects(max_depth=4) if item.type in (1, 3)]  # text, image
        lowest = min((bottom for _, bottom, _, _ in drawn), default=height - margin)
        text = page.get_textpage()
        last = text.get_text_bounded(0, lowest - 1, width, lowest + 7).split()
        pages.append(((height - margin - lowest) / (height - 2 * margin), " ".join(last)))
    return pages


@pytest.mark.slow
def test_the_demo_storm_prints_on_a_few_full_pages_and_no_heading_or_header_ends_one(browser: Any,
                                                                                      demo: Path) -> None:
    page = open_page(browser, demo_report(demo), A4_CONTENT, media="print")
    try:
        ends = page.evaluate(PAGE_ENDS)
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.close()
    pages = page_lines(pdf)
    assert len(pages) <= MAX_PAGES, f"{len(pages)} A4 pages"
    assert all(fill >= LEAST_FULL for fill, _ in pages[:-1]), [round(fill, 2) for fill, _ in pages]

    def words(text: str) -> set[str]:
        return set(text.split())

    heads = [words(row) for row in ends["headers"]]
    for number, (_, last) in enumerate(pages[:-1], 1):
        assert last and all(last != " ".join(h.split()) for h in ends["headings"]), (number, last)
        assert not any(len(last) > 8 and last in " ".join(c.split()) for c in ends["captions"]), (number, last)
        assert not any(words(last) <= head for head in heads), f"page {number} ends with a table's header: {last}"


@pytest.mark.slow
def test_on_a_phone_the_demo_report_is_short_and_its_chart_text_readable(browser: Any, demo: Path) -> None:
    from stormwatch.config import load_config
    from stormwatch.privacy.naming import NamingPolicy
    from stormwatch.report.charts import DPI, draw_charts
    from stormwatch.report.content import gather, name_accounts

    page = open_page(browser, demo_report(demo), PHONE)
    try:
        height = page.evaluate("document.documentElement.scrollHeight")
        shown = {chart["title"]: chart for chart in page.evaluate(CHART_SIZES)}
    finally:
        page.close()
    assert height <= PHONE_PAGE, f"{height}px tall on a {PHONE}px phone"
    # The charts as the report drew them, from the demo's database at the demo's frozen clock.
    config = load_config(demo / "data" / "demo" / "config.toml")
    campaign = config.campaigns[0]
    window = campaign_window(campaign)
    with Store.open(config.storage.database) as store:
        policy = NamingPolicy.for_campaign(campaign, config.report.names, config.report.pseudonymize_below)
        namer, contributors = name_accounts(store, campaign, window, policy)
        content = gather(store, campaign, window, namer, contributors, generated_at=config.clock.now(),
                         config=config)
        drawn = draw_charts(content)
    assert {chart.title for chart, _ in drawn} == set(shown)
    for chart, figure in drawn:
        figure.canvas.draw()
        sizes = [text.get_fontsize() for text in figure.findobj(Text) if text.get_text() and text.get_visible()]
        scale = shown[chart.title]["shown"] / shown[chart.title]["natural"]
        smallest = min(sizes) * DPI / 72 * scale  # points -> the PNG's pixels -> CSS pixels on the phone
        assert smallest >= SMALLEST_CHART_TEXT, f"{chart.file}: {smallest:.1f}px"
