"""Storm intelligence where organizers see it: `summary --json`, the report (sections, charts, naming), the
dashboard (lines that fit or go whole) and the alerts (a tag starts trending, a target responds)."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from stormwatch import intel
from stormwatch.alerts import AlertWatcher, conditions, read_figures
from stormwatch.config import Config
from stormwatch.dashboard import render, take_snapshot
from stormwatch.metrics import campaign_window, collection_status
from stormwatch.report import write_report
from stormwatch.store import Store

from .cli_support import invoke
from .conftest import T0
from .intel_support import Collected, collected, copy_of
from .test_report_page import DESKTOP, OVERFLOW, PHONE, WORDS_FIT, open_page

# Every test reads the storm-intelligence storm, played and collected every five storm minutes (and writes
# reports, and drives Chromium).
pytestmark = pytest.mark.slow

WAVE = T0 + timedelta(minutes=70)  # the counter wave is high, the target has not answered yet (17:12 UTC)
FIELDS = {"trending", "target_posts", "duplicate_share", "duplicate_share_basis", "top_duplicates", "counter"}


@pytest.fixture(scope="module")
def found() -> Collected:
    return collected()


@pytest.fixture
def config(found: Collected, tmp_path: Path) -> Config:
    return copy_of(found, tmp_path)


def draw(snapshot: object, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None)
    console.print(render(snapshot))  # type: ignore[arg-type]
    return console.export_text().splitlines()


def test_summary_json_has_the_five_fields_and_hides_participants_in_repeated_texts(config: Config) -> None:
    result = invoke("summary", "--json", "--config", config.path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= FIELDS
    assert {"platform", "location", "woeid", "tag", "first_seen", "last_seen", "best_rank"} == set(data["trending"][0])
    assert set(data["target_posts"]) == {"count", "posts"} and set(data["target_posts"]["posts"][0]) == {
        "account", "platform", "kind", "created_at", "in_reply_to_campaign_post"}
    assert 0 <= data["duplicate_share"] <= 1 and set(data["top_duplicates"][0]) == {"text", "posts", "accounts"}
    assert data["duplicate_share_basis"] == "exact"  # a storm under the bound: every text checked
    assert set(data["counter"]) == {"posts", "share_of_voice", "both"}
    # pseudonymized (the default): a mention in a repeated text names only the campaign's own accounts and targets
    named = {"@issaamro", "@yashebron", "@antonioguterres", "@vonderleyen"}
    for repeated in data["top_duplicates"]:
        for word in repeated["text"].split():
            if word.startswith("@") and word != "@[hidden]":
                assert word.split(".")[0].casefold().rstrip(":,") in named, word
    human = invoke("summary", "--config", config.path).stdout
    assert "trending" in human and "copy-paste" in human and "counter-tags" in human


def test_the_report_tells_the_four_answers_with_charts_and_names_strangers_by_its_rules(config: Config) -> None:
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        folder = write_report(store, config, campaign, campaign_window(campaign))
        small = [row[0] for row in store.conn.execute(
            "SELECT a.handle FROM campaign_posts c JOIN accounts a ON a.uid = c.author_uid WHERE c.campaign = ? "
            "AND coalesce(a.followers_count, 0) < 5000", ("standwithissa~counter",))]
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    for heading in ("## Did it work?", "### Did it trend?", "### Did the targets respond?", "### Copy-paste",
                    "### Counter-hashtags"):
        assert heading in markdown
    # The counter-hashtags are a line in the volume chart (not a second chart of the same posts); the trending
    # hits a table, best ranked first.
    assert not (folder / "share_of_voice.png").exists() and not (folder / "trends.png").exists()
    assert "orange line is the posts carrying the counter-hashtags" in markdown
    trending = markdown.split("### Did it trend?")[1].split("###")[0]
    ranks = [int(rank) for rank in re.findall(r"\| #(\d+) \|", trending)]
    assert ranks and ranks == sorted(ranks) and "Volume: the platform's own figure" in trending
    assert "We are following the case of Issa Amro closely" in markdown  # targets are quoted
    assert "participant-" in markdown.split("### Counter-hashtags")[1]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert small and not any(f"@{handle}" in html for handle in small)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert set(summary) >= FIELDS and summary["counter"]["posts"] > 0


def test_the_reports_intelligence_tables_fit_a_phone_and_a_desktop(config: Config, browser: Any) -> None:
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        page_file = write_report(store, config, campaign, campaign_window(campaign)) / "report.html"
    for width in (DESKTOP, PHONE):
        page = open_page(browser, page_file, width)
        try:
            overflow, squeezed = page.evaluate(OVERFLOW), page.evaluate(WORDS_FIT)
            captions = page.evaluate("() => [...document.querySelectorAll('caption')].map(c => c.textContent)")
        finally:
            page.close()
        assert any(caption.startswith("Where the campaign trended") for caption in captions)
        assert any(caption.startswith("Posts carrying both") for caption in captions)
        assert overflow["page"] <= 0 and overflow["tables"] == [], (width, overflow)
        assert squeezed == [], (width, squeezed)


def test_the_dashboard_shows_each_answer_on_a_line_that_fits_or_not_at_all(config: Config) -> None:
    campaign = config.campaigns[0]
    with Store.open(config.storage.database) as store:
        # the copy-paste audit fills in a thread of its own: a refresh shows what it has read so far
        first = take_snapshot(store, config, campaign, now=WAVE)
        assert first.intel is not None and not first.intel.window_copies.complete
        deadline = time.monotonic() + 60
        snapshot = first
        while not (snapshot.intel and snapshot.intel.window_copies.complete and snapshot.intel.recent_copies.posts):
            assert time.monotonic() < deadline, "the audit did not finish"
            time.sleep(0.1)
            snapshot = take_snapshot(store, config, campaign, now=WAVE)
    found = snapshot.intel
    assert found is not None and found.trending_now and found.counter is not None
    wide = draw(snapshot, 120, 50)
    assert any(line.startswith("trending: #") and "since" in line for line in wide)
    # the target has posted about something else, and not answered yet
    assert any(line.startswith("targets: 1 post by targets") for line in wide)
    assert any(line.startswith("counter-tags: share of voice") for line in wide)
    if found.recent_copies.share > intel.WARN_SHARE:
        assert any("copy-pasted in 15 min — vary the text: identical posts may be filtered" in line for line in wide)
    else:
        assert any(line.startswith("copy-paste ") for line in wide)
    # 80x24: the lines that are shown fit, none cut half-way (a line drops parts from its end, never its first)
    def intel_lines(lines: list[str]) -> list[str]:
        return [line for line in lines if line.startswith(("trending:", "targets:", "counter-tags:", "copy-paste"))
                or "copy-pasted in 15 min" in line]

    shown = intel_lines(draw(snapshot, 80, 24))
    assert shown and all(len(line) <= 80 and not line.endswith("…") for line in shown)
    assert any(line.startswith("trending: #") for line in shown)
    # a shorter terminal drops the context lines whole (counter-tags, a calm copy-paste share) before the news
    # (trending, a target's answer) and a copy-paste share over the warning level (advice to act on now)
    short = intel_lines(draw(snapshot, 80, 18))
    assert not any(line.startswith(("counter-tags:", "copy-paste ")) for line in short)
    assert all(len(line) <= 80 and not line.endswith("…") for line in short)
    assert [line for line in short if "copy-pasted" in line] == [line for line in shown if "copy-pasted" in line]


def test_alerts_tell_when_a_tag_starts_trending_and_when_a_target_responds_once_each(config: Config) -> None:
    campaign = config.campaigns[0]
    zone = campaign.timezone
    with Store.open(config.storage.database) as store:
        before = conditions(campaign, read_figures(store, config, campaign, WAVE), set(), zone)
        answered = T0 + timedelta(minutes=100)  # after the reply on X (17:12 UTC), before the quote on Bluesky
        after = conditions(campaign, read_figures(store, config, campaign, answered), set(), zone)
        trending = [a for a in before if a.kind == "trending"]
        assert {a.key for a in trending} == {f"trending:{tag.casefold()}" for tag in campaign.hashtags}
        assert all(" is trending: #" in a.headline and "London (X)" in a.headline for a in trending)
        assert not any(a.kind == "target_response" for a in before)  # the target has only posted about climate
        responses = [a for a in after if a.kind == "target_response"]
        assert [a.headline for a in responses] == ["@antonioguterres answered a campaign post on X"]
        assert "We are following the case" in responses[0].lines[0]
        watcher = AlertWatcher(config, (campaign,), config.clock)
        told = watcher.check(answered, store=store)
        again = watcher.check(T0 + timedelta(hours=3), store=store)
    kinds = [record.kind for record in told]
    assert kinds.count("trending") == 1 and kinds.count("target_response") == 1  # min_gap: one of a kind at a time
    # the next check tells the next of each kind (min_gap has passed), never one already told
    assert not {r.condition_key for r in again} & {r.condition_key for r in told}
    assert [r.kind for r in again].count("trending") == 1


def test_status_shows_where_the_counter_and_targets_collections_stand(config: Config) -> None:
    with Store.open(config.storage.database) as store:
        status = collection_status(store, config, config.campaigns)
    queries = [cursor.query for source in status.campaigns[0].sources for cursor in source.cursors]
    assert any(query.startswith("counter-hashtags: ") for query in queries), queries
    assert any(query.startswith("targets' posts: ") for query in queries), queries


def test_the_report_names_counter_accounts_before_it_reads_and_never_while(config: Config) -> None:
    from stormwatch.privacy.naming import NamingPolicy
    from stormwatch.report.content import gather, name_accounts

    campaign = config.campaigns[0]
    window = campaign_window(campaign)
    policy = NamingPolicy.for_campaign(campaign, "pseudonymized", config.report.pseudonymize_below)
    with Store.open(config.storage.database) as store:
        namer, contributors = name_accounts(store, campaign, window, policy)
        labelled = store.conn.execute("SELECT count(*) FROM pseudonyms").fetchone()[0]
        content = gather(store, campaign, window, namer, contributors, generated_at=window.until, config=config)
        assert store.conn.execute("SELECT count(*) FROM pseudonyms").fetchone()[0] == labelled
    assert content.intel is not None and content.intel.counter_accounts
    hidden = [account for account in content.intel.counter_accounts if not account.named]
    assert hidden and all(account.label.startswith("participant-") for account in hidden)
