"""The copy-paste audit above its bound: near-identical texts checked on a seeded sample of distinct texts, identical
copies still counted exactly, and every output (summary --json, the summary's lines, the report, the dashboard)
saying the share is an estimate. Storms are the simulator's, stored in a real SQLite file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bench.bench_copypaste import HOURS, START, storm_posts
from stormwatch import intel, metrics
from stormwatch.intel.copypaste import CopyAudit, CopyFigures, window_copies
from stormwatch.intel.lines import intel_lines
from stormwatch.models import Batch, Post
from stormwatch.privacy.naming import Namer, NamingPolicy
from stormwatch.report.intel import gather_intel, intel_blocks
from stormwatch.report.text import intel_lines as summary_lines
from stormwatch.simulator.texts import TOOLKIT_TEXTS
from stormwatch.store import Store

from .conftest import T0
from .intel_support import Collected, collected

END = START + timedelta(hours=HOURS)
# How far a sampled estimate may be from the exact audit: a share (0..1), absolute. The sample's error is that of
# a proportion over the sampled texts (about 0.03 for 250 texts); the bound is three times that.
TOLERANCE = 0.10


def stored(directory: Path, posts: list[Post]) -> Store:
    """The posts as the campaign "bench" of a database file in `directory` (as the importer stores them)."""
    store = Store.open(directory / "storm.db")
    store.register_campaign("bench", START, END)
    for start in range(0, len(posts), 2000):
        store.import_batches([(Batch(posts=tuple(posts[start:start + 2000])), posts[0].created_at)], "bench")
    return store


@pytest.fixture(scope="module")
def storm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A seeded simulator storm of 4,000 non-repost posts: a third paste the toolkit, the others write their own."""
    with stored(tmp_path_factory.mktemp("storm"), storm_posts(4000)) as store:
        yield store


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The same kind of storm where 600 accounts each paste the toolkit with a word of their own added: every
    version is one account's, so each of them is a copy only through near-identical versions."""
    posts = storm_posts(3000)
    toolkit = TOOLKIT_TEXTS["en"].replace("{tags}", "#StandWithIssa")
    pasted = [dataclasses.replace(post, text=f"{toolkit} signed{number}", author_uid=f"x:paster{number}")
              for number, post in enumerate(posts[:600])]
    with stored(tmp_path_factory.mktemp("varied"), pasted + posts[600:]) as store:
        yield store


def distinct_texts(store: Store) -> int:
    audit = CopyAudit("bench", START, END)
    audit.read_window(store)
    return audit.texts


@pytest.mark.slow
def test_the_exact_audit_runs_below_the_bound_and_a_sample_at_one_text_less(storm: Store) -> None:
    texts = distinct_texts(storm)
    exact = window_copies(storm, "bench", START, END)
    at_bound = window_copies(storm, "bench", START, END, max_near_texts=texts)
    assert exact.sampled is None and exact.basis == "exact" and at_bound == exact
    below = window_copies(storm, "bench", START, END, max_near_texts=texts - 1)
    assert below.sampled is not None and 0.4 * texts <= below.sampled < texts  # about half: the limit halved
    assert below.basis == f"estimated from a sample of {below.sampled} distinct texts"


def test_a_small_storm_above_a_small_bound_is_sampled_and_its_identical_copies_still_counted(tmp_path: Path) -> None:
    """The sampling of the slow tests below, on a storm small enough for the fast lane."""
    with stored(tmp_path, storm_posts(600)) as small:
        exact = window_copies(small, "bench", START, END)
        sampled = window_copies(small, "bench", START, END, max_near_texts=60)
        steps = CopyAudit("bench", START, END, max_near_texts=60)
        while not steps.update(small, limit=100):
            pass
    assert exact.sampled is None and exact.basis == "exact" and exact.share > 0.3
    assert sampled.sampled is not None and 20 <= sampled.sampled <= 60
    assert sampled.basis == f"estimated from a sample of {sampled.sampled} distinct texts"
    assert sampled.posts == exact.posts and exact.copies - 0.01 * exact.posts <= sampled.copies <= exact.copies
    assert (steps.figures().posts, steps.figures().sampled) == (sampled.posts, sampled.sampled)


@pytest.mark.slow  # a storm of thousands of posts
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_identical_copies_are_counted_exactly_and_the_estimate_is_near_the_exact_share(storm: Store,
                                                                                        seed: int) -> None:
    exact = window_copies(storm, "bench", START, END)
    audit = CopyAudit("bench", START, END, max_near_texts=300, seed=seed)
    audit.read_window(storm)
    sampled = audit.figures()
    assert sampled.sampled is not None and 100 <= sampled.sampled <= 300  # about half the bound or more
    assert sampled.posts == exact.posts and exact.share > 0.3
    assert abs(sampled.share - exact.share) <= TOLERANCE
    # this storm's copies are nearly all identical (the toolkit's few versions, each pasted by many): counted exactly
    assert exact.copies - 0.01 * exact.posts <= sampled.copies <= exact.copies
    assert sampled.top[0].text == exact.top[0].text and sampled.top[0].accounts >= 2


@pytest.mark.slow  # a storm of thousands of posts
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_near_identical_copies_are_estimated_from_the_sample_within_the_tolerance(varied: Store, seed: int) -> None:
    exact = window_copies(varied, "bench", START, END)
    assert exact.sampled is None and exact.copies >= 600 and exact.top[0].accounts >= 600
    audit = CopyAudit("bench", START, END, max_near_texts=400, seed=seed)
    audit.read_window(varied)
    estimate = audit.figures()
    assert estimate.sampled is not None and 130 <= estimate.sampled <= 400
    assert abs(estimate.share - exact.share) <= TOLERANCE
    # the varied toolkit's versions grouped as one repeated text through the texts two accounts posted (with the
    # sampled one-account versions only: it counts fewer posts than the exact audit's)
    assert "Issa Amro is a " in estimate.top[0].text and 300 < estimate.top[0].accounts <= exact.top[0].accounts


@pytest.mark.slow  # a storm of thousands of posts
def test_the_dashboards_audit_read_in_steps_agrees_with_the_window_read_whole(varied: Store) -> None:
    whole = CopyAudit("bench", START, END, max_near_texts=400, seed=2)
    whole.read_window(varied)
    live = CopyAudit("bench", START, END, max_near_texts=400, seed=2)  # the dashboard's way: newest first, in steps
    steps = 0
    while not live.update(varied, limit=250):
        steps += 1
    assert steps >= 5 and live.read == whole.read
    # the sample is the texts hashed below a limit, whatever the order; the links found may differ a little
    # (an LSH bucket keeps the texts that came first), so the estimate may too
    mine, theirs = live.figures(), whole.figures()
    assert (mine.posts, mine.sampled) == (theirs.posts, theirs.sampled)
    assert abs(mine.copies - theirs.copies) <= 0.01 * mine.posts
    assert mine.top[0].accounts == theirs.top[0].accounts > 300  # the toolkit's versions, grouped as one
    span = (START + timedelta(hours=1), START + timedelta(hours=2))
    assert 0 < live.figures(*span).posts == whole.figures(*span).posts < whole.read
    assert abs(live.figures(*span).copies - whole.figures(*span).copies) <= 0.01 * live.figures(*span).posts + 1
    with pytest.raises(ValueError):
        whole.update(varied)  # read whole once, remembering no post ids: not updated


@pytest.fixture(scope="module")
def found() -> Collected:
    return collected()


@pytest.mark.slow  # reads the storm-intelligence storm, played and collected
def test_summary_json_says_the_share_is_estimated_from_a_sample(found: Collected) -> None:
    campaign = found.config.campaigns[0]
    window = metrics.campaign_window(campaign)
    with Store.open(found.config.storage.database) as store:
        exact = intel.intel_summary(store, campaign, window).to_json()
        sampled = intel.intel_summary(store, campaign, window, max_near_texts=50).to_json()
    assert exact["duplicate_share_basis"] == "exact"
    basis = sampled["duplicate_share_basis"]
    assert basis.startswith("estimated from a sample of ") and basis.endswith(" distinct texts")
    assert 25 <= int(basis.split()[5]) <= 50
    # the simulator's pasters paste identical versions of the toolkit: counted exactly, so the estimate is the share
    assert abs(sampled["duplicate_share"] - exact["duplicate_share"]) <= TOLERANCE
    assert "copy-paste         " in summary_lines(exact)[2] and "≈" not in summary_lines(exact)[2]
    line = summary_lines(sampled)[2]
    assert f"≈{sampled['duplicate_share']:.0%}" in line and f"({basis})" in line


@pytest.mark.slow  # reads the storm-intelligence storm, played and collected
def test_the_report_says_the_copy_paste_share_is_estimated_from_a_sample(found: Collected) -> None:
    campaign = found.config.campaigns[0]
    window = metrics.campaign_window(campaign)
    namer = Namer(NamingPolicy.for_campaign(campaign, found.config.report.names,
                                            found.config.report.pseudonymize_below))
    with Store.open(found.config.storage.database) as store:
        exact = gather_intel(store, campaign, window, namer)
        sampled = gather_intel(store, campaign, window, namer, max_near_texts=50)

    def copy_paste_paragraph(content: object) -> str:
        blocks = intel_blocks(content, campaign, campaign.timezone)  # type: ignore[arg-type]
        start = next(i for i, block in enumerate(blocks) if getattr(block, "text", None) == "Copy-paste")
        return str(blocks[start + 1].text)  # type: ignore[attr-defined]

    assert "estimated" not in copy_paste_paragraph(exact)
    copies = sampled.summary.copies
    assert copies.sampled is not None
    paragraph = copy_paste_paragraph(sampled)
    assert paragraph.startswith(f"About {copies.share:.0%} of {copies.posts:,} posts")
    assert f"estimated from a sample of {copies.sampled:,} texts" in paragraph


@pytest.mark.slow  # reads the storm-intelligence storm, played and collected
def test_the_dashboard_line_shows_an_estimated_share_with_a_sign(found: Collected) -> None:
    campaign = found.config.campaigns[0]
    window = metrics.campaign_window(campaign)
    recent = (T0 + timedelta(minutes=30), T0 + timedelta(minutes=45))
    audits = [CopyAudit(campaign.name, window.since, window.until, max_near_texts=bound) for bound in (10**6, 50)]
    with Store.open(found.config.storage.database) as store:
        for audit in audits:
            audit.update(store)
    exact, sampled = (intel.LiveIntel(trending_now=(), target_posts=(), recent_copies=audit.figures(*recent, top=0),
                                      window_copies=audit.figures(top=0), recent_counter=None, counter=None)
                      for audit in audits)
    assert exact.window_copies.sampled is None and sampled.window_copies.sampled is not None
    assert not any("≈" in text for text, _ in intel_lines(exact, str)[0].parts)
    parts = [text for text, _ in intel_lines(sampled, str)[0].parts]
    whole = sampled.window_copies.share
    assert any(f"≈{sampled.recent_copies.share:.0%}" in text for text in parts)
    assert any(f"≈{whole:.0%} of the storm" in text for text in parts)


def test_an_empty_sampled_audit_gives_no_share() -> None:
    figures = CopyFigures(T0, T0, 0, 0, (), sampled=10)
    assert figures.share == 0.0 and figures.basis == "estimated from a sample of 10 distinct texts"
