"""X's filtered stream on the simulated platform, through tweepy's real StreamingClient over localhost HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
import tweepy

from stormwatch.simulator import Faults, ManualClock, SimClock, SimulatedPlatform, Storm
from stormwatch.simulator.spec import REPOST, Post
from stormwatch.simulator.stream_x import RULES_PATH, STREAM_PATH, TOO_MANY_CONNECTIONS_BODY

from .simulator_support import CAMPAIGN_QUERY, COUNTS, END, SEARCH, SPEC, START, TOKEN, RedirectSession, get

RULES = (("#StandWithIssa OR #DropTheCharges", "stormwatch:issa"), ("#FreePoliticalPrisoners", "stormwatch:prisoners"))
TWEET_FIELDS = ["created_at", "author_id", "public_metrics", "entities", "referenced_tweets"]
USER_FIELDS = ["public_metrics", "created_at"]
EXPANSIONS = ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"]
STORM_SPEED = 600.0  # ten storm minutes a wall second: a few hundred posts in two seconds


class Recorder(tweepy.StreamingClient):
    """tweepy's StreamingClient pointed at the simulator, keeping what arrives (and a read timeout of our own)."""

    def __init__(self, platform: SimulatedPlatform, *, read_timeout: float = 21.0, token: str = TOKEN) -> None:
        super().__init__(token, return_type=requests.Response)
        self.session = RedirectSession(platform.url)
        self.read_timeout = read_timeout
        self.lines: list[dict[str, Any]] = []
        self.keepalives = 0
        self.http_errors: list[int] = []
        self.connection_errors = 0
        self.thread: threading.Thread | None = None

    def _connect(self, method: str, endpoint: str, **kwargs: Any) -> None:
        super()._connect(method, endpoint, timeout=self.read_timeout, **kwargs)  # type: ignore[misc]

    def on_data(self, raw_data: bytes) -> None:
        self.lines.append(json.loads(raw_data))
        super().on_data(raw_data)

    def on_keep_alive(self) -> None:
        self.keepalives += 1

    def on_request_error(self, status_code: int) -> None:
        self.http_errors.append(status_code)
        self.disconnect()

    def on_connection_error(self) -> None:
        self.connection_errors += 1

    def start(self) -> Recorder:
        self.thread = self.filter(threaded=True, expansions=EXPANSIONS, tweet_fields=TWEET_FIELDS,
                                  user_fields=USER_FIELDS)
        return self

    def stop(self) -> None:
        self.disconnect()
        if self.thread is not None:
            self.thread.join(timeout=10)
            assert not self.thread.is_alive()

    def ids(self) -> list[str]:
        return [line["data"]["id"] for line in self.lines]


def eventually(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def answer(call: Any, *args: Any, **params: Any) -> requests.Response:
    """The HTTP response to a tweepy call, also when tweepy raises it as an error (400, 503)."""
    try:
        response = call(*args, **params)
    except tweepy.HTTPException as error:
        response = error.response
    assert isinstance(response, requests.Response)
    return response


def add_rules(client: Recorder, rules: tuple[tuple[str, str], ...] = RULES, **params: Any) -> requests.Response:
    return answer(client.add_rules, [tweepy.StreamRule(value, tag=tag) for value, tag in rules], **params)


def tags_of(post: Post) -> set[str]:
    """The rule tags a post should match (by its hashtags, read independently of the rule engine)."""
    tags = {tag.casefold() for _, _, tag in post.hashtags}
    return {tag for value, tag in RULES if any(word[1:].casefold() in tags for word in value.split(" ")
                                               if word.startswith("#"))}


def expected(storm: Storm, platform: SimulatedPlatform, client: Recorder) -> dict[str, set[str]]:
    """Every post published while a connection delivered, that matches a rule, with the tags it matches, up to
    the last one the client read (a line sent as it was leaving is the client's to lose)."""
    last = max(int(post_id) for post_id in client.ids())
    wanted: dict[str, set[str]] = {}
    for connection in platform.stream.connections():
        for post in storm.posts[connection.first:connection.next]:
            if post.platform == "x" and not post.deleted and tags_of(post) and post.id <= last:
                wanted[post.native_id] = tags_of(post)
    return wanted


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(SPEC)


@pytest.fixture
def still(storm: Storm) -> Iterator[SimulatedPlatform]:
    """A platform whose storm clock stands still after the storm (nothing new is published)."""
    with SimulatedPlatform(storm, ManualClock(END + timedelta(minutes=10)), token=TOKEN,
                           keepalive_seconds=0.1) as platform:
        yield platform


def playing(storm: Storm, faults: Faults | None = None) -> SimulatedPlatform:
    """A platform playing the storm from its second hour at `STORM_SPEED`."""
    clock = SimClock.starting_at(START + timedelta(hours=1), speed=STORM_SPEED)
    return SimulatedPlatform(storm, clock, token=TOKEN, faults=faults, keepalive_seconds=0.2)


# ---------------------------------------------------------------------------------------------- rules


def test_rules_are_added_listed_and_deleted_beside_a_foreign_rule(still: SimulatedPlatform) -> None:
    client = Recorder(still)
    foreign = add_rules(client, (("from:someone_else", "another-tool"),)).json()
    ours = add_rules(client)
    assert ours.status_code == 200
    body = ours.json()
    assert [(r["value"], r["tag"]) for r in body["data"]] == list(RULES)
    assert body["meta"]["summary"] == {"created": 2, "not_created": 0, "valid": 2, "invalid": 0}
    assert body["meta"]["sent"].endswith("Z")

    listed = client.get_rules()
    assert isinstance(listed, requests.Response)
    assert [r["tag"] for r in listed.json()["data"]] == ["another-tool", "stormwatch:issa", "stormwatch:prisoners"]
    assert listed.json()["meta"]["result_count"] == 3

    again = add_rules(client, (RULES[0], ("#Hebron", "stormwatch:new")), dry_run=True)
    assert again.status_code == 200
    assert again.json()["errors"] == [{"value": RULES[0][0], "id": body["data"][0]["id"], "title": "DuplicateRule",
                                       "type": "https://api.twitter.com/2/problems/duplicate-rules"}]
    assert again.json()["meta"]["summary"]["created"] == 1
    assert len(still.stream.rules(TOKEN)) == 3  # a dry run creates nothing

    invalid = add_rules(client, (("#ok", "fine"), ("has:images OR", "broken")))
    assert invalid.status_code == 400
    error = invalid.json()["errors"][0]
    assert error["type"] == "https://api.twitter.com/2/problems/invalid-rules" and error["value"] == "has:images OR"
    assert error["title"] == "UnprocessableEntity" and error["details"]
    too_long = add_rules(client, (("#" + "a" * 1024, "long"),))
    assert too_long.status_code == 400 and "1024" in too_long.json()["errors"][0]["details"][0]
    assert len(still.stream.rules(TOKEN)) == 3  # one invalid rule refuses the whole request

    deleted = client.delete_rules([rule["id"] for rule in body["data"]])
    assert isinstance(deleted, requests.Response)
    assert deleted.json()["meta"]["summary"] == {"deleted": 2, "not_deleted": 0}
    left = client.get_rules().json()  # type: ignore[union-attr]
    assert left["data"] == foreign["data"]
    missing = client.delete_rules(["1234567890123456789"]).json()  # type: ignore[union-attr]
    assert missing["meta"]["summary"] == {"deleted": 0, "not_deleted": 1}
    assert missing["errors"][0]["errors"][0]["message"] == "Rule does not exist"


def test_rule_errors_fault_and_other_apps(storm: Storm) -> None:
    with SimulatedPlatform(storm, ManualClock(END), faults=Faults(stream_rule_errors_every=1)) as platform:
        refused = add_rules(Recorder(platform, token="app-one"))
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["type"] == "https://api.twitter.com/2/problems/rule-cap"
        assert answer(Recorder(platform, token="app-one").delete_rules, ["1"]).status_code == 503
        platform.faults.update(stream_rule_errors_every=0)
        assert add_rules(Recorder(platform, token="app-one")).status_code == 200
        # Rules belong to an app (a bearer token): another app sees none of them.
        other = requests.get(platform.url + RULES_PATH, headers={"Authorization": "Bearer app-two"}, timeout=10)
        assert other.json() == {"meta": {"sent": other.json()["meta"]["sent"], "result_count": 0}}
        assert len(platform.stream.rules("app-one")) == 2


# --------------------------------------------------------------------------------------------- stream


def test_keep_alives_arrive_when_nothing_is_published(still: SimulatedPlatform) -> None:
    client = Recorder(still)
    add_rules(client)
    client.start()
    try:
        eventually(lambda: client.keepalives >= 3)
    finally:
        client.stop()
    assert client.lines == [] and client.http_errors == []
    assert still.stream.connections()[0].keepalives >= 3


def test_a_second_connection_gets_too_many_connections(still: SimulatedPlatform) -> None:
    first = Recorder(still)
    add_rules(first)
    first.start()
    try:
        eventually(lambda: still.stream.connected(TOKEN))
        raw = requests.get(still.url + STREAM_PATH, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert raw.status_code == 429 and raw.json() == TOO_MANY_CONNECTIONS_BODY
        assert raw.json()["connection_issue"] == "TooManyConnections"
        second = Recorder(still).start()
        eventually(lambda: second.http_errors == [429])
        second.stop()
    finally:
        first.stop()
    # Once the first has gone, the app may connect again.
    eventually(lambda: not still.stream.connected(TOKEN))
    third = Recorder(still).start()
    try:
        eventually(lambda: third.keepalives >= 1)
    finally:
        third.stop()
    assert third.http_errors == []


def test_backfill_is_refused_outside_its_range(still: SimulatedPlatform) -> None:
    answer = get(still, STREAM_PATH, backfill_minutes=9)
    assert answer.status_code == 400 and answer.json()["errors"][0]["parameters"] == {"backfill_minutes": ["9"]}
    assert get(still, STREAM_PATH, token="wrong-token").status_code == 401


@pytest.mark.slow
def test_every_post_published_while_connected_arrives_once_with_its_rules(storm: Storm) -> None:
    with playing(storm) as platform:
        client = Recorder(platform)
        add_rules(client)
        client.start()
        try:
            eventually(lambda: len(client.lines) >= 200, timeout=8)
        finally:
            client.stop()
        # the server's side sees the client leave a moment later (and may send a line meanwhile): the figures below
        # are read once it has
        eventually(lambda: not platform.stream.connected(), timeout=8)
        wanted = expected(storm, platform, client)
        got = {line["data"]["id"]: {rule["tag"] for rule in line["matching_rules"]} for line in client.lines}
        assert len(client.ids()) == len(set(client.ids()))  # once each
        assert got == wanted
        kinds = {storm.post_by_id(post_id).kind for post_id in got}  # type: ignore[union-attr]
        assert REPOST in kinds and len(kinds) > 2  # reposts come through the stream
        rule_ids = {rule.tag: rule.id for rule in platform.stream.rules(TOKEN)}
        for line in client.lines:
            assert {rule["id"] for rule in line["matching_rules"]} <= set(rule_ids.values())
            users = {user["id"] for user in line["includes"]["users"]}
            assert line["data"]["author_id"] in users and "public_metrics" in line["includes"]["users"][0]
            if line["data"].get("referenced_tweets", [{}])[0].get("type") == "retweeted":
                referenced = line["data"]["referenced_tweets"][0]["id"]
                if "tweets" in line["includes"]:
                    original = line["includes"]["tweets"][0]
                    assert original["id"] == referenced and original["author_id"] in users
                else:  # a deleted original: X's partial error, as search pages have it
                    assert line["errors"][0]["resource_id"] == referenced
        delivered = platform.stream.delivered_post_ids()
        assert set(delivered.values()) == {1} and set(got) <= set(delivered)
        window = storm.truth(START, END, platform="x")
        truth = platform.stream.truth(window)
        assert truth["posts"] == len(window.post_ids & set(delivered)) and truth["gaps"][0]["reason"] == "not connected"


@pytest.mark.slow
def test_a_dropped_stream_says_which_posts_it_missed(storm: Storm) -> None:
    with playing(storm, Faults(stream_drop_every=7)) as platform:
        client = Recorder(platform)
        add_rules(client)
        client.start()  # tweepy reconnects at once after each drop
        try:
            eventually(lambda: len(platform.stream.connections()) >= 6, timeout=8)
        finally:
            client.stop()
        closed = [c for c in platform.stream.connections() if not c.open]
        assert all(c.delivered == 7 and c.reason == "drop" for c in closed[:-1])
        assert client.connection_errors >= 5
        assert len(client.ids()) == len(set(client.ids()))
        wanted = expected(storm, platform, client)
        assert set(client.ids()) == set(wanted)
        window = storm.truth(START, END, platform="x")
        truth = platform.stream.truth(window)
        assert truth["missed_posts"] > 0 and truth["posts"] + truth["missed_posts"] == window.posts
        assert set(truth["missed_post_ids"]).isdisjoint(client.ids())
        assert {gap["reason"] for gap in truth["gaps"]} >= {"not connected", "drop"}


@pytest.mark.slow
def test_a_stalled_stream_is_silent_until_the_client_gives_up(storm: Storm) -> None:
    with playing(storm, Faults(stream_stall_every=5)) as platform:
        client = Recorder(platform, read_timeout=0.8)
        add_rules(client)
        client.start()
        try:
            eventually(lambda: len(platform.stream.connections()) >= 3, timeout=8)
        finally:
            client.stop()
        first, second = platform.stream.connections()[:2]
        assert first.reason == "stall" and first.delivered == 5 and first.stalled_at is not None
        assert first.keepalives == 0  # silence: no keep-alive either
        assert second.opened_at > first.stalled_at
        assert client.connection_errors >= 2  # tweepy's read timeout noticed each stall
        assert set(client.ids()) == set(expected(storm, platform, client))


# ---------------------------------------------------------------------------------------------- search


def test_search_and_counts_have_no_reposts_unless_asked(storm: Storm) -> None:
    query = f"{CAMPAIGN_QUERY} is:retweet"
    reposts = [p for p in storm.posts if p.platform == "x" and p.kind == REPOST and not p.deleted and tags_of(p)]
    assert reposts
    with SimulatedPlatform(storm, ManualClock(END + timedelta(minutes=10)), token=TOKEN) as today:
        assert get(today, SEARCH, query=query, max_results=100).json() == {"meta": {"result_count": 0}}
        counted = get(today, COUNTS, query=query, start_time=START.isoformat(), end_time=END.isoformat())
        assert counted.json()["meta"]["total_tweet_count"] == 0
    with SimulatedPlatform(storm, ManualClock(END + timedelta(minutes=10)), token=TOKEN,
                           search_reposts=True) as old:
        page = get(old, SEARCH, query=query, max_results=100).json()
        assert page["meta"]["result_count"] > 0
        counted = get(old, COUNTS, query=query, start_time=START.isoformat(), end_time=END.isoformat())
        assert counted.json()["meta"]["total_tweet_count"] > 0
