"""The simulated X API v2 (`simulator/x.py`, `wire_x.py`), driven over real HTTP by tweepy and requests."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import tweepy

from stormwatch.simulator import ManualClock, SimulatedPlatform, Storm, snowflake
from stormwatch.simulator.spec import REPOST, unescape_text

from .simulator_support import (
    CAMPAIGN_QUERY,
    COUNTS,
    END,
    SEARCH,
    SEARCH_REPOSTS,
    SPEC,
    START,
    TOKEN,
    get,
    ids_of,
    make_client,
    sweep,
)

ALL_TWEET_FIELDS = [
    "created_at", "author_id", "public_metrics", "entities", "referenced_tweets", "lang", "conversation_id",
    "in_reply_to_user_id", "source", "possibly_sensitive", "reply_settings",
]
ALL_USER_FIELDS = ["public_metrics", "created_at", "verified", "description", "protected", "profile_image_url"]
ALL_EXPANSIONS = ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"]


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(SPEC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(END + timedelta(minutes=10))


@pytest.fixture
def platform(storm: Storm, clock: ManualClock) -> Iterator[SimulatedPlatform]:
    with SimulatedPlatform(storm, clock, token=TOKEN, search_reposts=SEARCH_REPOSTS) as served:
        yield served


# --------------------------------------------------------------------------------- search + truth


def test_full_sweep_equals_truth_with_no_post_fetched_twice(
    storm: Storm, platform: SimulatedPlatform, clock: ManualClock
) -> None:
    pages = sweep(make_client(platform), start_time=SPEC.window_start)
    ids = ids_of(pages)
    truth = storm.truth(SPEC.window_start, clock.now() - timedelta(seconds=30))
    assert len(ids) == len(set(ids))
    assert set(ids) == truth.post_ids
    assert truth.posts > 2000
    served = platform.served_post_ids()
    assert set(served) == truth.post_ids and max(served.values()) == 1
    # Pages come newest first and meta describes them.
    previous = None
    for page in pages:
        page_ids = [int(t["id"]) for t in page["data"]]
        assert page_ids == sorted(page_ids, reverse=True)
        assert previous is None or page_ids[0] < previous
        previous = page_ids[-1]
        assert page["meta"]["newest_id"] == str(page_ids[0])
        assert page["meta"]["oldest_id"] == str(page_ids[-1])
        assert page["meta"]["result_count"] == len(page_ids)
    assert all(len(page["data"]) == 100 for page in pages[:-1])
    token = pages[0]["meta"]["next_token"]
    assert token.isalnum() and token == token.lower() and token not in {t["id"] for t in pages[0]["data"]}


def test_sweep_pages_do_not_shift_while_posts_arrive(storm: Storm, storm_clock_mid: ManualClock) -> None:
    with SimulatedPlatform(storm, storm_clock_mid, token=TOKEN, search_reposts=SEARCH_REPOSTS) as platform:
        client = make_client(platform)
        first_now = storm_clock_mid.now()
        ids: list[str] = []
        token = None
        while True:
            page = client.search_recent_tweets(
                CAMPAIGN_QUERY, max_results=100, next_token=token, start_time=SPEC.window_start
            ).json()
            ids += [t["id"] for t in page.get("data", [])]
            token = page["meta"].get("next_token")
            storm_clock_mid.advance(120)  # the storm goes on between pages
            if token is None:
                break
        truth = storm.truth(SPEC.window_start, first_now - timedelta(seconds=30))
        assert len(ids) == len(set(ids)) and set(ids) == truth.post_ids
        # A later sweep from the newest id collects exactly what arrived meanwhile.
        newest = max(ids, key=int)
        later = ids_of(sweep(client, since_id=newest))
        assert set(later) == storm.truth(first_now - timedelta(seconds=30), storm_clock_mid.now() - timedelta(
            seconds=30)).post_ids
        assert later and not set(later) & set(ids)


@pytest.fixture
def storm_clock_mid() -> ManualClock:
    return ManualClock(START + timedelta(minutes=20))


def test_since_id_until_id_start_time_end_time(storm: Storm, platform: SimulatedPlatform) -> None:
    client = make_client(platform)
    truth_ids = sorted(storm.truth(SPEC.window_start, END).post_ids, key=int)
    low, high = truth_ids[len(truth_ids) // 4], truth_ids[len(truth_ids) // 2]
    since = ids_of(sweep(client, since_id=low, start_time=SPEC.window_start))
    assert since and all(int(i) > int(low) for i in since)
    until = ids_of(sweep(client, until_id=high, start_time=SPEC.window_start))
    assert set(until) == {i for i in truth_ids if int(i) < int(high)}
    both = ids_of(sweep(client, since_id=low, until_id=high))
    assert set(both) == {i for i in truth_ids if int(low) < int(i) < int(high)}
    window_start, window_end = START + timedelta(minutes=10), START + timedelta(minutes=40)
    timed = ids_of(sweep(client, start_time=window_start, end_time=window_end))
    assert set(timed) == storm.truth(window_start, window_end).post_ids
    for post_id in timed:
        created = storm.post_by_id(post_id).created_at  # type: ignore[union-attr]
        assert window_start <= created < window_end


def test_default_end_time_is_thirty_seconds_ago_and_future_posts_do_not_exist(storm: Storm) -> None:
    moment = START + timedelta(minutes=5, seconds=7)
    with SimulatedPlatform(storm, ManualClock(moment), token=TOKEN, search_reposts=SEARCH_REPOSTS) as platform:
        ids = ids_of(sweep(make_client(platform), start_time=SPEC.window_start))
    assert set(ids) == storm.truth(SPEC.window_start, moment - timedelta(seconds=30)).post_ids
    assert max(storm.post_by_id(i).created_at for i in ids) < moment - timedelta(seconds=30)  # type: ignore[union-attr]


def test_excluding_reposts_matches_truth(storm: Storm, platform: SimulatedPlatform, clock: ManualClock) -> None:
    ids = ids_of(sweep(make_client(platform), CAMPAIGN_QUERY + " -is:retweet", start_time=SPEC.window_start))
    truth = storm.truth(SPEC.window_start, clock.now() - timedelta(seconds=30), include_reposts=False)
    assert set(ids) == truth.post_ids and truth.reposts == 0 and truth.originals > 0

# ----------------------------------------------------------------------------------------- counts


def test_counts_agree_with_search_per_bucket(storm: Storm, platform: SimulatedPlatform) -> None:
    client = make_client(platform)
    start_time = START + timedelta(seconds=95)  # deliberately not on a minute boundary
    end_time = START + timedelta(minutes=12, seconds=30)
    counts = client.get_recent_tweets_count(
        CAMPAIGN_QUERY, granularity="minute", start_time=start_time, end_time=end_time
    ).json()
    buckets = counts["data"]
    assert buckets[0]["start"] == "2021-02-24T15:01:35.000Z" and buckets[0]["end"] == "2021-02-24T15:02:00.000Z"
    assert buckets[-1]["end"] == "2021-02-24T15:12:30.000Z" and buckets[-1]["start"] == "2021-02-24T15:12:00.000Z"
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(buckets))
    found = ids_of(sweep(client, start_time=start_time, end_time=end_time))
    per_minute = Counter(storm.post_by_id(i).created_s // 60 for i in found)  # type: ignore[union-attr]
    for bucket in buckets:
        bucket_start = datetime.fromisoformat(bucket["start"])
        assert bucket["tweet_count"] == per_minute[int(bucket_start.timestamp()) // 60]
    assert counts["meta"]["total_tweet_count"] == len(found) > 100

    hourly = client.get_recent_tweets_count(CAMPAIGN_QUERY, start_time=SPEC.window_start).json()
    assert [b["start"][11:16] for b in hourly["data"][:4]] == ["14:00", "15:00", "16:00", "17:00"]
    everything = ids_of(sweep(client, start_time=SPEC.window_start))
    assert hourly["meta"]["total_tweet_count"] == len(everything)
    assert hourly["data"][1]["tweet_count"] > 3 * hourly["data"][0]["tweet_count"]  # the storm starts at 15:00


def test_counts_default_to_the_last_seven_days(platform: SimulatedPlatform, clock: ManualClock) -> None:
    body = get(platform, COUNTS, query=CAMPAIGN_QUERY, granularity="day").json()
    first = datetime.fromisoformat(body["data"][0]["start"])
    last = datetime.fromisoformat(body["data"][-1]["end"])
    assert first == clock.now() - timedelta(days=7)
    assert last == clock.now() - timedelta(seconds=30)
    assert len(body["data"]) == 8 and body["data"][1]["start"].endswith("T00:00:00.000Z")

# ----------------------------------------------------------------------------------------- fields


def test_only_default_fields_unless_requested(platform: SimulatedPlatform) -> None:
    page = make_client(platform).search_recent_tweets(CAMPAIGN_QUERY, start_time=SPEC.window_start).json()
    assert len(page["data"]) == 10
    assert all(set(tweet) == {"id", "text", "edit_history_tweet_ids"} for tweet in page["data"])
    assert "includes" not in page and page["data"][0]["edit_history_tweet_ids"] == [page["data"][0]["id"]]


@pytest.mark.slow  # sweeps the whole storm with every field
def test_requested_fields_and_expansions(storm: Storm, platform: SimulatedPlatform) -> None:
    pages = sweep(
        make_client(platform),
        start_time=SPEC.window_start,
        tweet_fields=ALL_TWEET_FIELDS,
        user_fields=ALL_USER_FIELDS,
        expansions=ALL_EXPANSIONS,
    )
    seen_repost = seen_reply = seen_quote = 0
    for page in pages:
        users = {user["id"]: user for user in page["includes"]["users"]}
        included = {tweet["id"]: tweet for tweet in page["includes"].get("tweets", [])}
        missing = {error["resource_id"] for error in page.get("errors", [])}
        for tweet in page["data"]:
            post = storm.post_by_id(tweet["id"])
            assert post is not None and tweet["text"] == post.text
            assert tweet["author_id"] in users
            assert set(tweet["public_metrics"]) == {
                "retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count", "impression_count",
            }
            assert tweet["created_at"].endswith(".000Z") and tweet["reply_settings"] == "everyone"
            for tag in tweet["entities"]["hashtags"]:
                assert tweet["text"][tag["start"] : tag["end"]] == "#" + tag["tag"]
            for mention in tweet["entities"].get("mentions", []):
                assert tweet["text"][mention["start"] : mention["end"]] == "@" + mention["username"]
                assert mention["id"].isdigit()
            for ref in tweet.get("referenced_tweets", []):
                assert ref["id"] in included or ref["id"] in missing
                if ref["id"] in included:
                    assert included[ref["id"]]["author_id"] in users
                if ref["type"] == "retweeted":
                    seen_repost += 1
                    assert tweet["text"].startswith("RT @")
                    if ref["id"] in included:
                        # X copies the original's counters onto the repost.
                        assert tweet["public_metrics"] == included[ref["id"]]["public_metrics"]
                elif ref["type"] == "replied_to":
                    seen_reply += 1
                    assert tweet["text"].startswith("@") and tweet["in_reply_to_user_id"] in {
                        u.id for u in storm.users
                    }
                else:
                    seen_quote += 1
                    assert tweet["entities"]["urls"][-1]["expanded_url"].endswith("/status/" + ref["id"])
        for user in users.values():
            assert set(user) == {
                "id", "name", "username", "public_metrics", "created_at", "verified", "description", "protected",
                "profile_image_url",
            }
    assert seen_repost > 1000 and seen_reply > 100 and seen_quote > 100


def test_deleted_posts_are_partial_errors(storm: Storm, platform: SimulatedPlatform) -> None:
    deleted = {post.id for post in storm.posts if post.deleted}
    repost = next(post for post in storm.posts if post.kind == REPOST and post.ref_id in deleted)
    page = make_client(platform).search_recent_tweets(
        CAMPAIGN_QUERY, since_id=repost.id - 1, until_id=repost.id + 1, expansions=["referenced_tweets.id"]
    ).json()
    assert [tweet["id"] for tweet in page["data"]] == [repost.native_id]
    gone = str(repost.ref_id)
    assert page["errors"] == [
        {
            "value": gone,
            "detail": f"Could not find tweet with referenced_tweets.id: [{gone}].",
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "referenced_tweets.id",
            "resource_id": gone,
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }
    ]
    assert gone not in storm.truth(SPEC.window_start, END).post_ids

    alive = storm.posts[0].native_id
    lookup = make_client(platform).get_tweets([alive, gone, "123"], tweet_fields=["created_at"]).json()
    assert [tweet["id"] for tweet in lookup["data"]] == [alive]
    assert [(e["resource_id"], e["parameter"], e["detail"]) for e in lookup["errors"]] == [
        (gone, "ids", f"Could not find tweet with ids: [{gone}]."),
        ("123", "ids", "Could not find tweet with ids: [123]."),
    ]
    assert get(platform, "/2/tweets", ids="abc").status_code == 400


def test_hostile_strings_travel_intact(storm: Storm, platform: SimulatedPlatform) -> None:
    hostile = next(p for p in storm.posts if "&lt;script&gt;" in p.text and p.kind != REPOST)
    assert "<script>" in unescape_text(hostile.text) and "&amp;" in hostile.text
    body = make_client(platform).get_tweets([hostile.native_id], expansions=["author_id"]).json()
    assert body["data"][0]["text"] == hostile.text  # served escaped, exactly like X
    named = next(u for u in storm.users if u.name == "<b>Bold</b> & Co")
    assert any(p.author == named.index for p in storm.posts)

# ------------------------------------------------------------------------------------- parameters


def test_invalid_queries_get_x_400_body(platform: SimulatedPlatform) -> None:
    response = get(platform, SEARCH, query="(#StandWithIssa OR #DropTheCharges")
    assert response.status_code == 400
    body = response.json()
    assert body["title"] == "Invalid Request"
    assert body["detail"] == "One or more parameters to your request was invalid."
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert body["errors"][0]["parameters"] == {"query": ["(#StandWithIssa OR #DropTheCharges"]}
    assert body["errors"][0]["message"].startswith("There were errors processing your request: ")
    too_long = get(platform, SEARCH, query="#StandWithIssa " + "x" * 500)
    assert too_long.status_code == 400 and "512" in too_long.json()["errors"][0]["message"]
    with pytest.raises(tweepy.BadRequest):
        make_client(platform).search_recent_tweets("is:retweet")


def test_parameter_validation_like_x(platform: SimulatedPlatform, clock: ManualClock) -> None:
    def message(**params: Any) -> str:
        response = get(platform, SEARCH, query=CAMPAIGN_QUERY, **params)
        assert response.status_code == 400
        return response.json()["errors"][0]["message"]

    assert message(max_results=5) == "The `max_results` query parameter value [5] is not between 10 and 100"
    old = (clock.now() - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert message(start_time=old).startswith(f"Invalid 'start_time':'{old}'. 'start_time' must be on or after ")
    recent = (clock.now() - timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "must be a minimum of 10 seconds prior to the request time" in message(end_time=recent)
    old_id = str(snowflake(int((clock.now() - timedelta(days=8)).timestamp() * 1000)))
    assert message(since_id=old_id).startswith("'since_id' must be a tweet id created after ")
    assert message(bogus="1").startswith("The query parameter [bogus] is not one of [")
    assert message(**{"tweet.fields": "nope"}).startswith("The `tweet.fields` query parameter value [nope]")

    first = get(platform, SEARCH, query=CAMPAIGN_QUERY, start_time=SPEC.window_start.isoformat()).json()
    token = first["meta"]["next_token"]
    garbled = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    response = get(platform, SEARCH, query=CAMPAIGN_QUERY, start_time=SPEC.window_start.isoformat(), next_token=garbled)
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "parameters": {"next_token": [garbled]},
        "message": f"The `next_token` query parameter value [{garbled}] is not a valid token.",
    }
    # A token only works with the request it came from.
    other = get(platform, SEARCH, query="#StandWithIssa", start_time=SPEC.window_start.isoformat(), next_token=token)
    assert other.status_code == 400
    start = SPEC.window_start.isoformat()
    again = get(platform, SEARCH, query=CAMPAIGN_QUERY, start_time=start, pagination_token=token)
    assert again.status_code == 200 and again.json()["data"][0]["id"] < first["data"][-1]["id"]


def test_auth_and_unknown_paths(platform: SimulatedPlatform) -> None:
    missing = get(platform, SEARCH, token=None, query=CAMPAIGN_QUERY)
    assert missing.status_code == 401
    assert missing.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
    assert get(platform, SEARCH, token="wrong", query=CAMPAIGN_QUERY).status_code == 401
    with pytest.raises(tweepy.Unauthorized):
        make_client(platform, token="wrong").search_recent_tweets(CAMPAIGN_QUERY)
    unknown = get(platform, "/2/users/me")
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == 34
    assert unknown.headers["content-type"] == "application/json; charset=utf-8"

# ----------------------------------------------------------------------------------------- limits


def test_rate_limit_headers_and_exhaustion(storm: Storm, clock: ManualClock) -> None:
    with SimulatedPlatform(storm, clock, token=TOKEN, rate_limits={"search": 3},
                           search_reposts=SEARCH_REPOSTS) as platform:
        client = make_client(platform)
        reset = int((clock.now() + timedelta(minutes=15)).timestamp())
        for remaining in (2, 1, 0):
            headers = client.search_recent_tweets(CAMPAIGN_QUERY).headers
            assert headers["x-rate-limit-limit"] == "3"
            assert headers["x-rate-limit-remaining"] == str(remaining)
            assert headers["x-rate-limit-reset"] == str(reset)
        with pytest.raises(tweepy.TooManyRequests) as limited:
            client.search_recent_tweets(CAMPAIGN_QUERY)
        assert limited.value.reset_time == reset
        assert limited.value.response.json() == {
            "title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429,
        }
        counts = get(platform, COUNTS, query=CAMPAIGN_QUERY)  # other endpoints have their own window
        assert counts.status_code == 200 and counts.headers["x-rate-limit-limit"] == "300"
        clock.advance(15 * 60 + 1)
        assert client.search_recent_tweets(CAMPAIGN_QUERY).headers["x-rate-limit-remaining"] == "2"
