"""Storm intelligence against the simulator's truth: a storm on X, Mastodon and Bluesky collected by the real collector
(tests/intel_support.py), each figure of `summary --json`'s intelligence compared with what the simulator knows."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from stormwatch import intel, metrics
from stormwatch.intel.copypaste import CopyAudit
from stormwatch.privacy.naming import NamingPolicy
from stormwatch.simulator.intel import carries
from stormwatch.simulator.trending import TagSeconds, instance_trends, x_trends
from stormwatch.simulator.wiring import MOUNTS, intel_truth
from stormwatch.store import Store
from stormwatch.store.tallies import contents, window_of

from .conftest import T0, assert_tallies_match_a_rebuild
from .intel_support import COUNTER, END, PLACES, Collected, collected

# Every test reads the storm-intelligence storm, played and collected every five storm minutes.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def found() -> Collected:
    return collected()


@pytest.fixture(scope="module")
def answers(found: Collected) -> dict[str, object]:
    campaign = found.config.campaigns[0]
    with Store.open(found.config.storage.database) as store:
        return intel.intel_summary(store, campaign, metrics.campaign_window(campaign)).to_json()


@pytest.fixture(scope="module")
def truth(found: Collected) -> dict[str, object]:
    return intel_truth(found.simulation, found.config, found.config.campaigns[0])


def test_the_copy_paste_share_and_the_most_repeated_text_are_the_truths(answers: dict, truth: dict) -> None:
    # exact Jaccard over every pair in the simulator; MinHash, LSH and an exact check in stormwatch
    assert answers["duplicate_share"] == truth["duplicate_share"] > 0.3
    top = answers["top_duplicates"][0]
    assert (top["posts"], top["accounts"]) == (truth["top_duplicate"]["posts"], truth["top_duplicate"]["accounts"])
    assert top["text"].startswith("Issa Amro is a ")  # the toolkit, pasted with small variations


def test_the_counter_hashtags_are_the_truth(answers: dict, truth: dict) -> None:
    assert answers["counter"] == {**truth["counter"]} and answers["counter"]["both"] > 0
    assert 0.5 < answers["counter"]["share_of_voice"] < 1


def test_the_targets_posts_are_the_truth_on_every_platform(answers: dict, truth: dict) -> None:
    posts = answers["target_posts"]["posts"]
    assert answers["target_posts"]["count"] == len(posts) == len(truth["target_posts"]) == 4
    for mine, expected in zip(posts, truth["target_posts"], strict=True):
        assert {**mine, "created_at": mine["created_at"].replace(".000Z", "Z")} == expected
    # the reply on X and the quote on Bluesky answer campaign posts; the others do not
    assert [p["in_reply_to_campaign_post"] for p in posts] == [False, True, False, True]
    assert {p["platform"] for p in posts} == {"x", "mastodon", "bluesky"}


def test_every_trending_list_stored_is_the_one_the_platform_served_then(found: Collected) -> None:
    campaign = found.config.campaigns[0]
    storm, spec = found.storm, found.storm.spec
    tags = TagSeconds((p for p in storm.posts if p.platform == "x" and p.campaign and not p.deleted), spec.hashtags)
    with Store.open(found.config.storage.database) as store:
        stored = store.trends(campaign.name, T0 - timedelta(hours=2), END)
    lists: dict[tuple[str, str, object], list[tuple[int, str, int | None]]] = {}
    for entry in stored:
        lists.setdefault((entry.platform, entry.location, entry.seen_at), []).append(
            (entry.rank, entry.name, entry.volume))
    places = {"Worldwide": 1, "United Kingdom": 23424975, "London": 44418}
    x_lists = [key for key in lists if key[0] == "x"]
    assert {key[1] for key in x_lists} == set(places) and len(x_lists) >= 3 * 30
    for platform, location, seen_at in lists:
        if platform == "x":
            served = x_trends(spec, tags, places[location], seen_at)  # type: ignore[arg-type]
            expected = [(rank, e.name, e.volume) for rank, e in enumerate(served, 1)]
        else:
            timeline = {p.id: p for tag in spec.hashtags
                        for p in found.simulation.mastodon.tag_timeline(location, tag, until=END)}  # type: ignore[union-attr]
            held = TagSeconds(sorted(timeline.values(), key=lambda p: p.id), spec.hashtags)
            served_tags = instance_trends(spec, location, held, seen_at)[:20]  # type: ignore[arg-type]
            expected = [(rank, f"#{t['name']}", int(t["history"][0]["uses"]))  # type: ignore[index]
                        for rank, t in enumerate(served_tags, 1)]
        assert sorted(lists[(platform, location, seen_at)]) == expected, (platform, location, seen_at)


def test_trends_are_fetched_every_trends_interval_inside_the_window_only(found: Collected) -> None:
    campaign = found.config.campaigns[0]
    with Store.open(found.config.storage.database) as store:
        stored = store.trends(campaign.name, T0 - timedelta(hours=2), END)
        spent = store.conn.execute("SELECT sum(cost_usd) FROM runs WHERE source = 'x'").fetchone()[0]
    times: dict[str, list] = {}
    for entry in stored:
        times.setdefault(entry.location, [])
        if entry.seen_at not in times[entry.location]:
            times[entry.location].append(entry.seen_at)
    for moments in times.values():
        assert all(campaign.start <= m < campaign.end for m in moments)
        assert all(b - a >= campaign.trends_interval for a, b in itertools.pairwise(moments))
    requests = [r for r in found.simulation.platform.requests() if r.path.startswith("/2/trends/by/woeid/")]
    assert len(requests) == sum(len(times[place]) for place in ("Worldwide", "United Kingdom", "London"))
    assert {r.params["max_trends"] for r in requests} == {"50"} and all(r.status == 200 for r in requests)
    assert spent > len(requests) * 0.01  # every trends request is in the spend, with the posts read


def test_the_hits_are_where_and_when_the_simulator_let_the_tags_trend(found: Collected, answers: dict) -> None:
    campaign = found.config.campaigns[0]
    storm, spec = found.storm, found.storm.spec
    tags = TagSeconds((p for p in storm.posts if p.platform == "x" and p.campaign and not p.deleted), spec.hashtags)
    with Store.open(found.config.storage.database) as store:
        hits = intel.trending(store, campaign.name, campaign.hashtags, campaign.start, campaign.end)
        fetched = sorted({(e.location, e.seen_at) for e in store.trends(campaign.name, campaign.start, campaign.end)
                          if e.platform == "x"})
    expected: dict[tuple[str, str], list[tuple[object, int]]] = {}
    for location, seen_at in fetched:
        woeid = {"Worldwide": 1, "United Kingdom": 23424975, "London": 44418}[location]
        for rank, entry in enumerate(x_trends(spec, tags, woeid, seen_at), 1):
            if entry.name.lstrip("#") in spec.hashtags:
                expected.setdefault((location, entry.name), []).append((seen_at, rank))
    x_hits = {(h.location, h.tag): h for h in hits if h.platform == "x"}
    assert set(x_hits) == set(expected) and len(x_hits) >= 6  # every tag trends in London and the UK at least
    for key, seen in expected.items():
        hit = x_hits[key]
        assert (hit.first_seen, hit.last_seen, hit.best_rank) == (seen[0][0], seen[-1][0], min(r for _, r in seen))
        assert [(m, r) for m, r in hit.series if r is not None] == seen
    assert {(h["platform"], h["location"], h["tag"]) for h in answers["trending"]} == {
        (h.platform, h.location, h.tag) for h in hits}
    woeids = {h["woeid"] for h in answers["trending"] if h["platform"] == "x"}
    assert {23424975, 44418} <= woeids <= set(PLACES)
    assert {h["woeid"] for h in answers["trending"] if h["platform"] == "mastodon"} == {None}


def test_companions_keep_their_own_membership_cursors_and_tallies(found: Collected) -> None:
    campaign = found.config.campaigns[0]
    counter = campaign.counter()
    assert counter is not None and counter.name == "standwithissa~counter" and counter.hashtags == COUNTER
    with Store.open(found.config.storage.database) as store:
        sources = {row[0] for row in store.conn.execute("SELECT DISTINCT source FROM cursors WHERE campaign = ?",
                                                        (counter.name,))}
        assert sources == {"x", "mastodon", "bluesky"}
        targets = store.count_campaign_posts("standwithissa~targets")
        assert targets == 4 and window_of(store.conn, "standwithissa~targets") is None  # no tallies: not a storm
        assert_tallies_match_a_rebuild(store, counter.name)
        assert contents(store.conn, counter.name)["tally_totals"]
        # the companions' runs are the campaign's: one run per source and step, spend on the campaign's budget
        assert store.conn.execute("SELECT count(*) FROM runs WHERE campaign LIKE '%~%'").fetchone()[0] == 0


def test_the_dashboards_incremental_audit_agrees_with_a_fresh_one(found: Collected) -> None:
    campaign = found.config.campaigns[0]
    window = metrics.campaign_window(campaign)
    with Store.open(found.config.storage.database) as store:
        fresh = intel.window_copies(store, campaign.name, window.since, window.until)
        audit = CopyAudit(campaign.name, window.since, window.until)
        steps = 0
        while not audit.update(store, limit=200):
            steps += 1
        assert steps >= 3 and audit.read == fresh.posts
        read = audit.read
        assert audit.update(store) and audit.read == read  # nothing new: nothing read again
        recent = audit.figures(T0 + timedelta(minutes=30), T0 + timedelta(minutes=45))
        alone = intel.window_copies(store, campaign.name, T0, campaign.end)
    assert (audit.figures().copies, audit.figures().posts) == (fresh.copies, fresh.posts) == (alone.copies, alone.posts)
    assert 0 < recent.posts < fresh.posts and recent.copies <= recent.posts


def test_hijack_candidates_are_counted_apart_from_the_supporters_on_every_platform(found: Collected) -> None:
    # Issue 17: a campaign post carrying a counter-hashtag is a hijack candidate, not a supporter's post; an account
    # is a contributor when it posted at least one campaign post without one. Checked against the simulator's truth.
    campaign, storm = found.config.campaigns[0], found.storm
    everything = {name: MOUNTS[name].truth(found.simulation, found.config, campaign) for name in campaign.sources}
    supporters = {name: storm.supporters(truth, COUNTER) for name, truth in everything.items()}
    hijacks = [post for truth in everything.values() for post in map(storm.post_by_id, truth.post_ids)
               if post is not None and carries(post, COUNTER)]
    with Store.open(found.config.storage.database) as store:
        window = metrics.campaign_window(campaign)
        figures = {reader: metrics.summary(store, campaign, window, reader=reader).to_json()
                   for reader in ("tallies", "rows")}
        stored = {row[0] for row in store.conn.execute(
            "SELECT c.post_uid FROM campaign_posts c WHERE c.campaign = ? AND c.hijack = 1 AND c.platform = 'x'",
            (campaign.name,))}
        counter = intel.counter_figures(store, campaign, window, with_minutes=False, top=0)
    assert figures["tallies"] == figures["rows"]  # the running tallies leave out what the rows leave out
    found_figures = figures["rows"]
    assert found_figures["hijack_posts"] == len(hijacks) == counter.both > 20  # type: ignore[union-attr]
    assert found_figures["hijack_accounts"] == len({(p.platform, p.author) for p in hijacks}) > 5
    assert stored == {f"x:{p.native_id}" for p in hijacks if p.platform == "x"}
    for name, truth in supporters.items():
        mine = found_figures["by_platform"][name]
        assert (mine["posts"], mine["contributors"], mine["potential_reach"]) == (
            truth.posts, truth.contributors, truth.potential_reach), name
        # counters are as they stood when last read (X's are read again for recent posts only); the truth's are the
        # final ones
        assert truth.engagement * 0.99 <= mine["engagement"] <= truth.engagement, name
        assert mine["posts"] < everything[name].posts or not any(p.platform == name for p in hijacks)
    assert found_figures["posts"] == sum(t.posts for t in supporters.values())
    assert found_figures["contributors"] == sum(t.contributors for t in supporters.values())
    assert counter.campaign_posts == found_figures["posts"]  # type: ignore[union-attr]
    # Mastodon's tag timelines carry no boosts: its reposts are not reported (null), never 0
    assert found_figures["by_platform"]["mastodon"]["reposts"] is None
    assert {"mastodon.reposts", "bluesky.reposts"} <= set(found_figures["not_reported"])


def test_the_targets_are_named_and_their_mentions_counted_on_every_platform(found: Collected) -> None:
    # Issue 17: a Mastodon or Bluesky target was pseudonymized under the follower threshold, and only X targets'
    # mentions were counted. Truth: the supporters' posts mentioning the target's account on its platform.
    campaign, storm = found.config.campaigns[0], found.storm
    listed = {"x": campaign.targets, "mastodon": campaign.targets_mastodon, "bluesky": campaign.targets_bluesky}
    expected = {}
    for platform, targets in listed.items():
        truth = storm.supporters(MOUNTS[platform].truth(found.simulation, found.config, campaign), COUNTER)
        for target in targets:
            name = target.split("@")[0].split(".")[0].casefold()
            expected[target] = sum(1 for post in map(storm.post_by_id, truth.post_ids) if post is not None and any(
                storm.users[who].username.casefold() == name for _, _, who in post.mentions))
    with Store.open(found.config.storage.database) as store:
        window = metrics.campaign_window(campaign)
        counted = {reader: metrics.target_mentions(store, campaign, window, reader=reader)
                   for reader in ("tallies", "rows")}
        accounts = {platform: store.conn.execute("SELECT handle FROM accounts WHERE platform = ? AND lower(handle) IN "
                                                 f"({', '.join('?' * len(targets))})",
                                                 (platform, *(t.casefold() for t in targets))).fetchall()
                    for platform, targets in listed.items()}
    assert counted["tallies"] == counted["rows"] == list(expected.items())
    assert len(expected) == 4 and all(count > 10 for count in expected.values())
    policy = NamingPolicy.for_campaign(campaign, "pseudonymized", 5000)
    for platform, handles in accounts.items():
        assert handles, platform  # a target's account as the platform spells it (stored: the collector read it)
        assert all(policy.is_named(handle, 12) for (handle,) in handles), platform  # named, however small
    assert not policy.is_named("someone.bsky.social", 12) and not policy.is_named("someone@mastodon.social", 12)
