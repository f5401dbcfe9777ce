"""The ground-truth oracle (`simulator/truth.py`) on a hand-built storm, and the server agreeing with it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from stormwatch.simulator import ManualClock, Post, SimulatedPlatform, Storm, StormSpec, User, snowflake
from stormwatch.simulator.spec import REPOST

from .simulator_support import SEARCH, SEARCH_REPOSTS, START, TOKEN, get


def _user(index: int, handle: str, followers: int) -> User:
    return User(
        index=index, id=str(1000 + index), platform="x", username=handle, name=handle.title(), created_ms=0,
        followers=followers, following=1, tweet_count=1, listed=0, verified=False, verified_type="none",
        description="", location="", protected=False, profile_image_url="", lang="en", role="person",
    )


def _post(
    at: str, author: int, kind: str, text: str, *, ref: Post | None = None, campaign: bool = True,
    deleted: bool = False, metrics: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0),
) -> Post:
    ms = int(datetime.fromisoformat(at).timestamp() * 1000)
    post_id = snowflake(ms)
    tags = tuple((m.start(), m.end(), m.group()[1:]) for m in re.finditer(r"#\w+", text))
    if kind == REPOST and ref is not None:
        metrics = (ref.likes, ref.reposts, ref.replies, ref.quotes, ref.impressions)
    likes, reposts, replies, quotes, impressions = metrics
    return Post(
        id=post_id, ms=ms, platform="x", author=author, kind=kind, text=text, lang="en", hashtags=tags,
        mentions=(), urls=(), ref_id=ref.id if ref else None, conversation_id=post_id, in_reply_to=None,
        campaign=campaign, deleted=deleted, reposts=reposts, replies=replies, likes=likes, quotes=quotes,
        bookmarks=0, impressions=impressions, source="Twitter Web App",
    )


def test_truth_arithmetic_on_a_hand_built_storm() -> None:
    alice, bob, carol = _user(0, "alice", 100), _user(1, "bob", 1000), _user(2, "carol", 10)
    p1 = _post("2021-02-24T15:00:10+00:00", 0, "original", "Free him #StandWithIssa", metrics=(5, 1, 1, 1, 100))
    p2 = _post("2021-02-24T15:01:00+00:00", 1, "repost", "RT @alice: Free him #StandWithIssa", ref=p1)
    p3 = _post("2021-02-24T15:02:30+00:00", 2, "reply", "@alice yes #StandWithIssa", ref=p1, metrics=(2, 0, 0, 0, 10))
    p4 = _post("2021-02-24T15:03:00+00:00", 1, "quote", "This #DropTheCharges", ref=p1, metrics=(1, 0, 0, 0, 50))
    p5 = _post("2021-02-24T15:04:00+00:00", 2, "original", "Gone #StandWithIssa", deleted=True,
               metrics=(9, 1, 0, 0, 999))
    p6 = _post("2021-02-24T15:04:30+00:00", 1, "repost", "RT @carol: Gone #StandWithIssa", ref=p5)
    p7 = _post("2021-02-24T15:05:00+00:00", 2, "original", "Market photos #Hebron", campaign=False,
               metrics=(3, 0, 0, 0, 30))
    p8 = _post("2021-02-24T16:00:00+00:00", 0, "original", "Later #StandWithIssa", metrics=(1, 0, 0, 0, 1))
    spec = StormSpec(hashtags=("StandWithIssa", "DropTheCharges"), start=START, end=START + timedelta(hours=1))
    storm = Storm(spec, [alice, bob, carol], [p1, p2, p3, p4, p5, p6, p7, p8])

    truth = storm.truth(START, START + timedelta(hours=1))
    assert truth.post_ids == {p.native_id for p in (p1, p2, p3, p4, p6)}
    assert (truth.posts, truth.originals, truth.reposts, truth.quotes, truth.replies) == (5, 1, 2, 1, 1)
    assert truth.contributors == 3
    assert truth.potential_reach == 100 + 1000 + 10
    assert truth.potential_impressions == 100 + 1000 + 10 + 1000 + 1000  # each repost counts again
    assert truth.impressions == 100 + 10 + 50  # reposts' copied impressions never count
    assert truth.engagement == (5 + 1 + 1 + 1) + 2 + 1
    assert truth.first_post_at == datetime(2021, 2, 24, 15, 0, 10, tzinfo=UTC)
    assert truth.last_post_at == datetime(2021, 2, 24, 15, 4, 30, tzinfo=UTC)
    assert truth.per_minute == {datetime(2021, 2, 24, 15, m, tzinfo=UTC): 1 for m in range(5)}
    assert truth.by_kind == {"original": 1, "repost": 2, "quote": 1, "reply": 1}

    no_reposts = storm.truth(START, START + timedelta(hours=1), include_reposts=False)
    assert (no_reposts.posts, no_reposts.potential_impressions, no_reposts.engagement) == (3, 1110, 11)
    later = storm.truth(datetime(2021, 2, 24, 15, 1, tzinfo=UTC), START + timedelta(hours=2))
    assert later.post_ids == {p.native_id for p in (p2, p3, p4, p6, p8)}  # since is inclusive, until exclusive
    as_json = json.loads(json.dumps(truth.to_json()))
    assert as_json["first_post_at"] == "2021-02-24T15:00:10Z" and as_json["posts"] == 5
    assert as_json["per_minute"]["2021-02-24T15:02:00Z"] == 1

    # The server agrees with the truth on the same hand-built storm.
    with SimulatedPlatform(storm, ManualClock(START + timedelta(hours=2)), token=TOKEN,
                           search_reposts=SEARCH_REPOSTS) as platform:
        page = get(platform, SEARCH, query="#StandWithIssa OR #DropTheCharges", max_results=10,
                   start_time=START.isoformat(), end_time=(START + timedelta(hours=1)).isoformat(),
                   expansions="referenced_tweets.id").json()
    assert [t["id"] for t in page["data"]] == [p.native_id for p in (p6, p4, p3, p2, p1)]
    assert [e["resource_id"] for e in page["errors"]] == [p5.native_id]
    assert [t["id"] for t in page["includes"]["tweets"]] == [p1.native_id]
