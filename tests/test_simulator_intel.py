"""The simulator's storm intelligence: off by default, the toolkit and own sentences, the counter wave, the
responding target, the trending lists, and the truths."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

import pytest
import requests

from stormwatch.simulator import Storm, StormSpec, iter_storm, texts
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.intel import HIJACK_SHARE, TARGET_TIMES, clean_words, copy_truth, target_truth
from stormwatch.simulator.spec import REPOST, Post
from stormwatch.simulator.trending import PLACES, TagSeconds, x_trends
from stormwatch.simulator.x import SimulatedPlatform

from .conftest import T0, TOKEN, storm_spec
from .intel_support import COUNTER, intel_spec
from .simulator_support import SEARCH_REPOSTS


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(intel_spec(1500))  # type: ignore[arg-type]


def test_without_the_fields_a_storm_is_the_storm_it_was() -> None:
    plain = storm_spec(400, seed=3)
    off = dataclasses.replace(plain, toolkit_share=0.0, personal_texts=False, trend_threshold=None,
                              target_responses=False, counter_hashtags=(), counter_posts=0)
    assert Storm.build(plain).posts == Storm.build(off).posts
    with pytest.raises(ValueError):
        dataclasses.replace(plain, counter_posts=10)  # a wave needs its hashtags
    with pytest.raises(ValueError):
        dataclasses.replace(plain, toolkit_share=1.5)


def test_every_toolkit_variation_stays_near_the_toolkit() -> None:
    for lang, text in texts.TOOLKIT_TEXTS.items():
        base = clean_words(_plain_post(text))
        pairs = set(itertools.pairwise(base))
        for _, before, swap, after in texts.TOOLKIT_VARIATIONS:
            varied = before + (text.replace(swap[0], swap[1], 1) if swap else text) + after
            words = clean_words(_plain_post(varied))
            other = set(itertools.pairwise(words))
            assert len(pairs & other) / len(pairs | other) >= 0.8, (lang, before, swap, after)


def _plain_post(text: str) -> Post:
    plain = text.replace("{tags}", "")
    return Post(id=1, ms=0, platform="x", author=0, kind="original", text=plain, lang="en", hashtags=(), mentions=(),
                urls=(), ref_id=None, conversation_id=1, in_reply_to=None, campaign=True, deleted=False, reposts=0,
                replies=0, likes=0, quotes=0, bookmarks=0, impressions=0, source="")


def test_supporters_paste_the_toolkit_and_otherwise_rarely_write_alike(storm: Storm) -> None:
    own = [p for p in storm.posts if p.campaign and not p.deleted and p.kind != REPOST
           and storm.users[p.author].role == "person"]
    pasted = [p for p in own if "Issa Amro" in p.text or "عيسى عمرو" in p.text]
    assert 0.25 < len(pasted) / len(own) < 0.45  # toolkit_share 0.35
    others = [p for p in own if p not in pasted]
    assert copy_truth(others).share < 0.05  # an own sentence before the template: few coincide
    assert copy_truth(pasted).share > 0.9


def test_the_counter_wave_is_the_opponents_and_some_of_it_hijacks_the_campaigns_tags(storm: Storm) -> None:
    spec = storm.spec
    wave = [p for p in storm.posts if any(t in COUNTER for _, _, t in p.hashtags)]
    assert abs(len(wave) - spec.counter_posts) <= spec.counter_posts * 0.05
    assert {storm.users[p.author].role for p in wave} == {"opponent"}
    assert all(spec.start <= p.created_at < spec.end for p in wave)
    originals = [p for p in wave if p.kind != REPOST]
    hijacks = [p for p in originals if p.campaign]
    assert all(any(t in spec.hashtags for _, _, t in p.hashtags) for p in hijacks)
    assert abs(len(hijacks) / len(originals) - HIJACK_SHARE) < 0.1
    for repost in (p for p in wave if p.kind == REPOST):
        original = storm.post_by_id(repost.ref_id)  # type: ignore[arg-type]
        assert original is not None and storm.users[original.author].role == "opponent"
        assert repost.campaign == original.campaign


def test_the_first_target_responds_on_each_platform_and_the_second_stays_silent(storm: Storm) -> None:
    spec = storm.spec
    said = target_truth(storm.posts, storm.users, spec.start, spec.end, frozenset(
        p.native_id for p in storm.posts if p.campaign and not p.deleted))
    assert [(p.platform, p.kind, p.in_reply_to_campaign_post) for p in said] == [
        ("x", "original", False), ("x", "reply", True), ("mastodon", "original", False), ("bluesky", "quote", True)]
    assert {p.handle for p in said} == {spec.targets[0]}
    span = spec.end - spec.start
    assert [p.created_at for p in said] == [spec.start + span * TARGET_TIMES[k]
                                            for k in ("unrelated", "reply", "mastodon", "quote")]
    reply = next(p for p in storm.posts if storm.users[p.author].role == "target" and p.kind == "reply")
    answered = storm.post_by_id(reply.ref_id)  # type: ignore[arg-type]
    assert answered is not None and answered.campaign and spec.start <= answered.created_at < reply.created_at
    # the X handle still names the X account, not its copies on the other platforms
    assert storm.user_by_handle(spec.targets[0]).platform == "x"  # type: ignore[union-attr]


def test_a_tag_trends_at_a_place_once_an_hour_brings_the_threshold_times_its_bar(storm: Storm) -> None:
    spec = storm.spec
    tags = TagSeconds((p for p in storm.posts if p.platform == "x" and p.campaign and not p.deleted), spec.hashtags)
    assert spec.trend_threshold is not None
    for woeid, (_, bar, _) in PLACES.items():
        for minutes in range(0, 180, 20):
            now = spec.start + timedelta(minutes=minutes)
            listed = {e.name: rank for rank, e in enumerate(x_trends(spec, tags, woeid, now), 1)}
            for tag in spec.hashtags:
                hourly = tags.count(tag, now.timestamp() - 3600, now.timestamp())
                assert (f"#{tag}" in listed) == (hourly >= spec.trend_threshold * bar), (woeid, now, tag)
    never = dataclasses.replace(spec, trend_threshold=None)
    assert not any(e.name.lstrip("#") in spec.hashtags for e in x_trends(never, tags, 44418, spec.start + timedelta(
        minutes=30)))


def test_the_simulated_x_serves_trends_as_x_documents_them(storm: Storm) -> None:
    clock = ManualClock(T0 + timedelta(minutes=30))
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        def get(path: str, **params: str) -> requests.Response:
            return requests.get(server.url + path, params=params, headers={"Authorization": f"Bearer {TOKEN}"},
                                timeout=10)

        default = get("/2/trends/by/woeid/44418")
        assert default.status_code == 200 and len(default.json()["data"]) == 20
        assert "x-rate-limit-limit" in default.headers and default.headers["x-rate-limit-limit"] == "75"
        names_only = get("/2/trends/by/woeid/1", max_trends="50", **{"trend.fields": "trend_name"})
        assert all(set(item) == {"trend_name"} for item in names_only.json()["data"])
        assert get("/2/trends/by/woeid/1", max_trends="51").status_code == 400
        assert get("/2/trends/by/woeid/1", **{"trend.fields": "volume"}).status_code == 400
        assert get("/2/trends/by/woeid/london").status_code == 400
        assert requests.get(server.url + "/2/trends/by/woeid/1", timeout=10).status_code == 401


def test_streaming_a_storm_with_intelligence_gives_the_materialized_one() -> None:
    spec: StormSpec = intel_spec(400)  # type: ignore[assignment]
    assert list(iter_storm(spec)) == list(Storm.build(spec).posts)
