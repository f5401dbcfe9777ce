"""The everyday background before a simulated storm: the storm itself unchanged, the history X's counts show."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta

import requests

from stormwatch.simulator import ManualClock, SimulatedPlatform, Storm, iter_storm

from .simulator_support import CAMPAIGN_QUERY, COUNTS, SEARCH_REPOSTS, SPEC, START, TOKEN

BACKGROUND = dataclasses.replace(SPEC, posts=800, background_days=8)


def test_the_storm_is_the_same_with_or_without_a_background() -> None:
    plain = Storm.build(dataclasses.replace(BACKGROUND, background_days=0))
    with_background = Storm.build(BACKGROUND)
    first = plain.posts[0].id
    assert [p for p in with_background.posts if p.id >= first] == list(plain.posts)
    assert with_background.users == plain.users
    background = [p for p in with_background.posts if p.id < first]
    assert len(background) == 8 * 24  # a fortieth of 800 is 20 a day: the floor of 24 a day applies
    assert all(p.platform == "x" and p.campaign and p.created_at < BACKGROUND.window_start for p in background)
    assert background[0].created_at >= BACKGROUND.window_start - timedelta(days=8, seconds=1)
    kinds = Counter(p.kind for p in background)
    assert 0.35 <= kinds["repost"] / len(background) <= 0.65
    for post in background:  # entities point at what they name, as on the storm's own posts
        assert all(post.text[s:e] == "#" + tag for s, e, tag in post.hashtags)
        assert all(post.text[s:e].lower() == "@" + with_background.users[who].username.lower()
                   for s, e, who in post.mentions)
    assert list(iter_storm(BACKGROUND, cache_size=20)) == list(with_background.posts)


def test_hourly_counts_of_the_last_seven_days_are_the_background() -> None:
    storm = Storm.build(BACKGROUND)
    now = START - timedelta(minutes=30)  # before the storm: a week of everyday use
    clock = ManualClock(now)
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as server:
        response = requests.get(server.url + COUNTS, params={"query": CAMPAIGN_QUERY, "granularity": "hour"},
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        originals = requests.get(server.url + COUNTS, params={"query": CAMPAIGN_QUERY + " -is:retweet",
                                                              "granularity": "hour"},
                                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and len(body["data"]) in (169, 170)  # 7 x 24 hours and the partial ends
    assert all(b["start"] < b["end"] for b in body["data"])
    truth = storm.truth(now - timedelta(days=7), now - timedelta(seconds=30))
    assert body["meta"]["total_tweet_count"] == truth.posts > 0
    assert originals.json()["meta"]["total_tweet_count"] == truth.posts - truth.reposts
