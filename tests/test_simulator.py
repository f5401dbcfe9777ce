"""The simulated platform, driven over real HTTP by tweepy and requests (no internet, no mocks)."""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import tweepy

from stormwatch.simulator import (
    Faults,
    ManualClock,
    Post,
    QueryEngine,
    QueryError,
    SimClock,
    SimulatedPlatform,
    Storm,
    StormGenerator,
    StormSpec,
    User,
    iter_storm,
    parse_query,
    render_twarc_page,
    snowflake,
    snowflake_ms,
)
from stormwatch.simulator.query import And, Not, Or, Term
from stormwatch.simulator.spec import REPOST, unescape_text

TOKEN = "test-bearer-token"
START = datetime(2021, 2, 24, 15, 0, tzinfo=UTC)
END = datetime(2021, 2, 24, 18, 0, tzinfo=UTC)
SPEC = StormSpec(
    hashtags=("StandWithIssa", "DropTheCharges", "FreePoliticalPrisoners"),
    accounts=("Issaamro", "YASHebron"),
    targets=("antonioguterres", "vonderleyen"),
    start=START,
    end=END,
    posts=2500,
)
CAMPAIGN_QUERY = "(#StandWithIssa OR #DropTheCharges OR #FreePoliticalPrisoners)"
SEARCH = "/2/tweets/search/recent"
COUNTS = "/2/tweets/counts/recent"
ALL_TWEET_FIELDS = [
    "created_at", "author_id", "public_metrics", "entities", "referenced_tweets", "lang", "conversation_id",
    "in_reply_to_user_id", "source", "possibly_sensitive", "reply_settings",
]
ALL_USER_FIELDS = ["public_metrics", "created_at", "verified", "description", "protected", "profile_image_url"]
ALL_EXPANSIONS = ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"]


class RedirectSession(requests.Session):
    """tweepy hard-codes https://api.twitter.com; send its requests to the local server instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith("https://api.twitter.com"):
            url = self.base_url + url[len("https://api.twitter.com") :]
        return super().request(method, url, *args, **kwargs)


def make_client(platform: SimulatedPlatform, token: str = TOKEN) -> tweepy.Client:
    client = tweepy.Client(bearer_token=token, return_type=requests.Response)
    client.session = RedirectSession(platform.url)
    return client


def get(platform: SimulatedPlatform, path: str, token: str | None = TOKEN, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(platform.url + path, params=params, headers=headers, timeout=10)


def sweep(client: tweepy.Client, query: str = CAMPAIGN_QUERY, **params: Any) -> list[dict[str, Any]]:
    """Every page of a search, following next_token."""
    pages = []
    token = None
    while True:
        response = client.search_recent_tweets(query, max_results=100, next_token=token, **params)
        page = response.json()
        pages.append(page)
        token = page["meta"].get("next_token")
        if token is None:
            return pages


def ids_of(pages: list[dict[str, Any]]) -> list[str]:
    return [tweet["id"] for page in pages for tweet in page.get("data", [])]


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(SPEC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(END + timedelta(minutes=10))


@pytest.fixture
def platform(storm: Storm, clock: ManualClock) -> Iterator[SimulatedPlatform]:
    with SimulatedPlatform(storm, clock, token=TOKEN) as served:
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
    with SimulatedPlatform(storm, storm_clock_mid, token=TOKEN) as platform:
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
    with SimulatedPlatform(storm, ManualClock(moment), token=TOKEN) as platform:
        ids = ids_of(sweep(make_client(platform), start_time=SPEC.window_start))
    assert set(ids) == storm.truth(SPEC.window_start, moment - timedelta(seconds=30)).post_ids
    assert max(storm.post_by_id(i).created_at for i in ids) < moment - timedelta(seconds=30)  # type: ignore[union-attr]


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


# ------------------------------------------------------------------------------------------ query


def test_query_grammar_parses_x_syntax() -> None:
    node = parse_query("(#StandWithIssa OR #DropTheCharges) -is:retweet hebron")
    assert isinstance(node, And) and len(node.children) == 3
    group, negation, keyword = node.children
    assert isinstance(group, Or) and [t.value for t in group.children] == ["standwithissa", "dropthecharges"]  # type: ignore[union-attr]
    assert isinstance(negation, Not) and negation.child == Term("is", "repost", 38)
    assert keyword == Term("keyword", "hebron", 49)
    assert parse_query('"drop the charges"') == Term("phrase", "drop the charges", 1)
    for bad in ("(#a OR #b", "#a OR", "is:retweet", "-#a", "#a or #b", "has:media #a", "$AAPL", "#a )", "x" * 513):
        with pytest.raises(QueryError):
            parse_query(bad)


def test_query_engine_semantics(storm: Storm) -> None:
    engine = QueryEngine(storm)
    visible = [p for p in storm.posts if p.platform == "x" and not p.deleted]

    def matching(predicate: Any) -> list[int]:
        return [storm.position_of(p.id) for p in visible if predicate(p)]  # type: ignore[misc]

    def tags(post: Post) -> set[str]:
        return {tag.lower() for _, _, tag in post.hashtags}

    assert list(engine.positions("#STANDWITHISSA")) == matching(lambda p: "standwithissa" in tags(p))
    assert list(engine.positions("#standwithissa -is:retweet")) == matching(
        lambda p: "standwithissa" in tags(p) and p.kind != REPOST
    )
    assert list(engine.positions("#Hebron -#StandWithIssa -#DropTheCharges -#FreePoliticalPrisoners")) == matching(
        lambda p: "hebron" in tags(p) and not tags(p) & {"standwithissa", "dropthecharges", "freepoliticalprisoners"}
    )
    noise = matching(lambda p: not p.campaign)
    assert noise and not set(noise) & set(engine.positions(CAMPAIGN_QUERY))
    assert list(engine.positions("DEFENDERS")) == matching(
        lambda p: "defenders" in re.findall(r"\w+", unescape_text(p.text).lower())
    )
    arabic = engine.positions("#الخليل")
    assert arabic and all("الخليل" in {t for _, _, t in storm.posts[i].hashtags} for i in arabic)
    account = storm.user_by_handle("Issaamro")
    assert account is not None
    from_account = engine.positions("from:issaamro #StandWithIssa OR from:issaamro")
    assert from_account and all(storm.posts[i].author == account.index for i in from_account)
    assert engine.positions(CAMPAIGN_QUERY) is engine.positions(CAMPAIGN_QUERY)  # cached


def test_excluding_reposts_matches_truth(storm: Storm, platform: SimulatedPlatform, clock: ManualClock) -> None:
    ids = ids_of(sweep(make_client(platform), CAMPAIGN_QUERY + " -is:retweet", start_time=SPEC.window_start))
    truth = storm.truth(SPEC.window_start, clock.now() - timedelta(seconds=30), include_reposts=False)
    assert set(ids) == truth.post_ids and truth.reposts == 0 and truth.originals > 0


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


# ------------------------------------------------------------------------------------- parameters


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


# -------------------------------------------------------------------------------- limits + faults


def test_rate_limit_headers_and_exhaustion(storm: Storm, clock: ManualClock) -> None:
    with SimulatedPlatform(storm, clock, token=TOKEN, rate_limits={"search": 3}) as platform:
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


def test_faults_as_clients_see_them(storm: Storm, clock: ManualClock) -> None:
    faults = Faults(rate_limit_every=3, rate_limit_reset_seconds=60)
    with SimulatedPlatform(storm, clock, token=TOKEN, faults=faults) as platform:
        client = make_client(platform)
        client.search_recent_tweets(CAMPAIGN_QUERY)
        client.search_recent_tweets(CAMPAIGN_QUERY)
        with pytest.raises(tweepy.TooManyRequests) as limited:
            client.search_recent_tweets(CAMPAIGN_QUERY)
        assert limited.value.reset_time == int(clock.now().timestamp()) + 60
        with pytest.raises(tweepy.TooManyRequests):  # the window stays closed until the reset
            client.search_recent_tweets(CAMPAIGN_QUERY)
        clock.advance(61)
        client.search_recent_tweets(CAMPAIGN_QUERY)

        faults.update(rate_limit_every=0, server_error_every=2)
        platform.reset_observations()
        statuses = []
        for _ in range(4):
            try:
                statuses.append(client.search_recent_tweets(CAMPAIGN_QUERY).status_code)
            except tweepy.TwitterServerError as error:
                statuses.append(error.response.status_code)
                assert error.response.json() == {
                    "title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank",
                    "status": 503,
                }
        assert sorted(statuses) == [200, 200, 503, 503]
        served = platform.served_post_ids()  # the same newest page twice; failed responses not counted
        assert len(served) == 10 and set(served.values()) == {2}

        faults.update(server_error_every=0, drop_every=2, malformed_every=3)
        platform.reset_observations()
        outcomes = []
        for _ in range(6):
            try:
                response = client.search_recent_tweets(CAMPAIGN_QUERY)
                outcomes.append("ok" if response.json() else "empty")
            except requests.exceptions.JSONDecodeError:
                outcomes.append("malformed")
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
                outcomes.append("dropped")
        # The counter keeps running across setting changes; whatever the phase, the mix is exact.
        assert Counter(outcomes) == Counter({"ok": 2, "dropped": 3, "malformed": 1})
        assert sum(platform.served_post_ids().values()) == 20  # only intact pages count as delivered
        assert Counter(r.fault for r in platform.requests()) == Counter({None: 2, "drop": 3, "malformed": 1})

        faults.update(drop_every=0, malformed_every=0, slow_every=1, slow_seconds=0.3)
        started = time.perf_counter()
        assert client.search_recent_tweets(CAMPAIGN_QUERY).status_code == 200
        assert time.perf_counter() - started >= 0.3

        faults.update(slow_every=0, server_error_every=1, only_paths=(SEARCH,))
        assert get(platform, COUNTS, query=CAMPAIGN_QUERY).status_code == 200
        assert get(platform, SEARCH, query=CAMPAIGN_QUERY).status_code == 503


def test_faults_parse_from_cli_text() -> None:
    faults = Faults.parse("rate_limit_every=7, slow_every=3,slow_seconds=0.5,only_paths=/2/tweets/search/recent")
    assert (faults.rate_limit_every, faults.slow_every, faults.slow_seconds) == (7, 3, 0.5)
    assert faults.only_paths == ("/2/tweets/search/recent",)
    with pytest.raises(ValueError):
        Faults.parse("explode_every=2")


# ------------------------------------------------------------------------------------- generator


def test_generator_realism(storm: Storm) -> None:
    truth = storm.truth(SPEC.window_start, END)
    assert abs(truth.reposts / truth.posts - 0.6) <= 0.05
    assert 0.05 <= truth.quotes / truth.posts <= 0.15 and 0.05 <= truth.replies / truth.posts <= 0.15
    peak = max(truth.per_minute, key=truth.per_minute.__getitem__)
    assert START <= peak < START + timedelta(minutes=15)
    lead_rate = sum(n for m, n in truth.per_minute.items() if m < START) / 60
    assert truth.per_minute[peak] > 10 * lead_rate  # quiet baseline, sharp storm
    followers = [u.followers for u in storm.users]
    assert max(followers) > 100 * statistics.median(followers)
    per_author = Counter(p.author for p in storm.posts if p.campaign)
    assert max(per_author.values()) > 10 * statistics.median(per_author.values())
    assert statistics.median(per_author.values()) <= 3  # most people post once or twice
    noise = sum(not p.campaign for p in storm.posts) / len(storm.posts)
    assert 0.10 <= noise <= 0.20
    deleted = sum(p.deleted for p in storm.posts) / len(storm.posts)
    assert 0.003 <= deleted <= 0.02
    langs = Counter(p.lang for p in storm.posts)
    assert langs["en"] > langs["ar"] > langs["fr"] > 0
    arabic = next(p for p in storm.posts if p.lang == "ar" and p.kind != REPOST)
    assert any("\u0600" <= ch <= "\u06ff" for ch in arabic.text)
    accounts = {storm.user_by_handle(h).index for h in SPEC.accounts}  # type: ignore[union-attr]
    targets = {storm.user_by_handle(h).index for h in SPEC.targets}  # type: ignore[union-attr]
    assert any(p.author in accounts and p.created_at < START for p in storm.posts)
    assert not any(p.author in targets for p in storm.posts)
    originals = [p for p in storm.posts if p.campaign and p.kind != REPOST]
    addressing = sum(any(who in targets for _, _, who in p.mentions) for p in originals) / len(originals)
    assert 0.15 <= addressing <= 0.35
    assert all(1 <= sum(t.lower() in {h.lower() for h in SPEC.hashtags} for _, _, t in p.hashtags) <= 3
               for p in storm.posts if p.campaign)
    assert {t for p in storm.posts for _, _, t in p.hashtags} >= {"StandWithIssa", "standwithissa"}


def test_ids_are_snowflakes_increasing_with_time(storm: Storm) -> None:
    ids = [p.id for p in storm.posts]
    assert ids == sorted(set(ids))
    for post in storm.posts[::97]:
        assert snowflake_ms(post.id) == post.ms and post.created_s == post.ms // 1000
        assert len(post.native_id) == 19
    assert all(len(u.id) >= 7 and u.id.isdigit() for u in storm.users)
    repost = next(p for p in storm.posts if p.kind == REPOST)
    original = storm.post_by_id(repost.ref_id)  # type: ignore[arg-type]
    assert original is not None and original.id < repost.id
    assert repost.text.startswith(f"RT @{storm.users[original.author].username}: ")
    assert (repost.likes, repost.reposts, repost.impressions) == (
        original.likes, original.reposts, original.impressions,
    )
    counted = Counter(p.ref_id for p in storm.posts if p.kind == REPOST)
    assert original.reposts == counted[original.id]


_DIGEST_SCRIPT = """
import hashlib, sys
from datetime import datetime, timezone
from stormwatch.simulator import Storm, StormSpec
start = datetime(2021, 2, 24, 15, tzinfo=timezone.utc)
spec = StormSpec(hashtags=("StandWithIssa", "DropTheCharges"), accounts=("Issaamro",), targets=("vonderleyen",),
                 start=start, end=start.replace(hour=16), posts=400, seed=int(sys.argv[1]))
storm = Storm.build(spec)
digest = hashlib.sha256()
for post in storm.posts:
    digest.update(f"{post.id}|{post.text}|{post.likes}|{storm.users[post.author].username}\\n".encode())
print(digest.hexdigest())
"""


def test_same_seed_same_storm_across_processes() -> None:
    def digest(seed: int, hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT, str(seed)], env=env, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    assert digest(7, "1") == digest(7, "4242")
    assert digest(7, "1") != digest(8, "1")


def test_same_seed_same_ids_different_seed_different() -> None:
    spec = StormSpec(hashtags=("StandWithIssa",), start=START, end=START + timedelta(hours=1), posts=300)
    first, second = Storm.build(spec), Storm.build(spec)
    assert [p.id for p in first.posts] == [p.id for p in second.posts]
    assert [u.id for u in first.users] == [u.id for u in second.users]
    other = Storm.build(StormSpec(**{**spec.__dict__, "seed": 99}))
    assert {p.id for p in other.posts}.isdisjoint({p.id for p in first.posts})


def test_streaming_yields_the_built_storm() -> None:
    spec = StormSpec(hashtags=("StandWithIssa", "DropTheCharges"), start=START, end=START + timedelta(hours=2),
                     posts=1500, seed=11)
    built = Storm.build(spec)
    streamed = list(iter_storm(spec, cache_size=50))  # a tiny cache forces rebuilds of evicted originals
    assert streamed == list(built.posts)
    generator = StormGenerator(spec)
    assert generator.post(700) == built.posts[700]  # random access rebuilds the same post
    assert generator.post_by_id(built.posts[1200].id) == built.posts[1200]


def test_platform_shares_keep_posts_and_users_on_one_platform() -> None:
    spec = StormSpec(hashtags=("StandWithIssa",), start=START, end=START + timedelta(hours=1), posts=800,
                     platforms=(("x", 0.6), ("mastodon", 0.4)))
    storm = Storm.build(spec)
    by_platform = Counter(p.platform for p in storm.posts)
    assert 0.45 <= by_platform["x"] / len(storm.posts) <= 0.75 and by_platform["mastodon"] > 0
    for post in storm.posts:
        assert storm.users[post.author].platform == post.platform
        if post.ref_id is not None:
            assert storm.post_by_id(post.ref_id).platform == post.platform  # type: ignore[union-attr]
    assert storm.truth(spec.window_start, spec.end, platform="mastodon").by_platform == {
        "mastodon": storm.truth(spec.window_start, spec.end, platform="mastodon").posts
    }


# ------------------------------------------------------------------------------------------ truth


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
    with SimulatedPlatform(storm, ManualClock(START + timedelta(hours=2)), token=TOKEN) as platform:
        page = get(platform, SEARCH, query="#StandWithIssa OR #DropTheCharges", max_results=10,
                   start_time=START.isoformat(), end_time=(START + timedelta(hours=1)).isoformat(),
                   expansions="referenced_tweets.id").json()
    assert [t["id"] for t in page["data"]] == [p.native_id for p in (p6, p4, p3, p2, p1)]
    assert [e["resource_id"] for e in page["errors"]] == [p5.native_id]
    assert [t["id"] for t in page["includes"]["tweets"]] == [p1.native_id]


# ------------------------------------------------------------------------------------ wire extras


def test_twarc_page_for_archives(storm: Storm) -> None:
    posts = [p for p in storm.posts if p.campaign and not p.deleted][:100]
    page = render_twarc_page(storm, posts, retrieved_at=END, query=CAMPAIGN_QUERY)
    decoded = json.loads(json.dumps(page, ensure_ascii=False))
    assert decoded["__twarc"]["retrieved_at"] == "2021-02-24T18:00:00+00:00"
    assert decoded["__twarc"]["url"].startswith("https://api.twitter.com/2/tweets/search/recent?expansions=")
    assert [t["id"] for t in decoded["data"]] == sorted((p.native_id for p in posts), key=int, reverse=True)
    assert decoded["meta"]["result_count"] == 100 and "next_token" not in decoded["meta"]
    assert {"users", "tweets"} <= set(decoded["includes"])
    assert "created_at" in decoded["data"][0] and "public_metrics" in decoded["includes"]["users"][0]


def test_clocks() -> None:
    wall = time.time()
    fast = SimClock(START, wall, speed=60)
    assert abs(fast.now() - (START + timedelta(seconds=(time.time() - wall) * 60))) < timedelta(seconds=1)
    assert fast.wall_seconds(120) == 2
    manual = ManualClock(START)
    manual.advance(90)
    assert manual.now() == START + timedelta(seconds=90)
    manual.set(END)
    assert manual.now() == END
    with pytest.raises(ValueError):
        ManualClock(datetime(2021, 1, 1))
