"""The simulated X's wire format (`simulator/wire_x.py`) against real recorded X API v2 responses (conformance).

The simulator's pages (search with expansions, counts/recent, tweets and users lookups, error bodies) must have
the structure of what X really sent: the same keys, with the same JSON types, at the same places. Real pages come
from ../shared/samples (twarc2 archive lines and tweepy's decoded cassettes); the tests skip when it is absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest

from stormwatch.simulator import Faults, ManualClock, SimulatedPlatform, Storm, render_twarc_page
from stormwatch.simulator.wire_x import TWARC_EXPANSIONS, TWARC_TWEET_FIELDS, TWARC_USER_FIELDS

from .conftest import recorded_bodies, sample_lines
from .simulator_support import CAMPAIGN_QUERY, COUNTS, END, SEARCH, SEARCH_REPOSTS, SPEC, TOKEN, get, make_client

JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
              type(None): "null"}
TWARC_LOOKUPS = ("cashtags", "cotweet", "edited", "geo_tweets", "many_urls", "media_tweet", "mentions_tweet",
                 "quoted_edit", "verified_type")
# What the simulator sends that the recordings (2021-2022) predate: X added bookmark_count in 2023.
NEWER_THAN_RECORDINGS = {".data[].public_metrics.bookmark_count", ".includes.tweets[].public_metrics.bookmark_count"}
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# The recordings hold no error object, so those are checked against X's published API schema (its OpenAPI
# `Problem` family): partial errors are ResourceNotFoundProblem, 400s InvalidRequestProblem with the
# per-parameter entries X sends, other failures a plain Problem, and an unknown path the v1.1-style Error.
RESOURCE_NOT_FOUND = {"value": "string", "detail": "string", "title": "string", "resource_type": "string",
                      "parameter": "string", "resource_id": "string", "type": "string"}
INVALID_REQUEST = {"errors": "array", "title": "string", "detail": "string", "type": "string"}
INVALID_PARAMETER = {"parameters": "object", "message": "string"}
PROBLEM = {"title": "string", "detail": "string", "type": "string", "status": "integer"}
PAGE_ERROR = {"message": "string", "code": "integer"}


def shape(value: Any, path: str = "", into: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Every key path of a JSON value (``[]`` marks list items) with the JSON types found there."""
    into = {} if into is None else into
    into.setdefault(path, set()).add(JSON_TYPES[type(value)])
    if isinstance(value, dict):
        for key, item in value.items():
            shape(item, f"{path}.{key}", into)
    elif isinstance(value, list):
        for item in value:
            shape(item, f"{path}[]", into)
    return into


def union(values: Iterable[Any]) -> dict[str, set[str]]:
    """The shape of several JSON values together."""
    merged: dict[str, set[str]] = {}
    for value in values:
        shape(value, into=merged)
    return merged


def types_of(value: dict[str, Any]) -> dict[str, str]:
    """Each key of an object with the JSON type of its value."""
    return {key: JSON_TYPES[type(item)] for key, item in value.items()}


def kinds(objects: Iterable[dict[str, Any]]) -> set[tuple[tuple[str, str], ...]]:
    """The distinct (key, JSON type) layouts of some objects."""
    return {tuple(sorted(types_of(item).items())) for item in objects}


def always(objects: Iterable[dict[str, Any]]) -> set[str]:
    """The keys every one of these objects carries."""
    key_sets = [set(item) for item in objects]
    return set.intersection(*key_sets) if key_sets else set()


def objects_at(pages: Iterable[dict[str, Any]], *path: str) -> Iterator[dict[str, Any]]:
    """The objects of every page at `path` (lists are walked, missing steps yield nothing)."""
    for page in pages:
        level: list[Any] = [page]
        for step in path:
            level = [item for node in level if isinstance(node, dict) for item in _as_list(node.get(step))]
        yield from (node for node in level if isinstance(node, dict))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def recorded_pages(*names: str) -> list[dict[str, Any]]:
    """The response pages of twarc2 sample files, without twarc's `__twarc` stamp."""
    pages = []
    for name in names:
        for line in sample_lines("x-twarc2", f"{name}.jsonl"):
            pages.append({key: value for key, value in line.items() if key != "__twarc"})
    return pages


def assert_within(simulated: dict[str, set[str]], real: dict[str, set[str]],
                  allowed: Collection[str] = ()) -> None:
    """Every path the simulator sends is one real pages carry, with a JSON type they use there."""
    unknown = sorted(path for path in simulated if path not in real and path not in allowed)
    assert not unknown, f"the simulator sends what real pages never carry: {unknown}"
    wrong = {path: (sorted(types), sorted(real[path])) for path, types in simulated.items()
             if path in real and not types <= real[path]}
    assert not wrong, f"JSON types differ from real pages (simulated, real): {wrong}"


def assert_carries_what_real_objects_always_carry(simulated: list[dict[str, Any]], real: list[dict[str, Any]],
                                                   what: str) -> None:
    """The simulator's objects carry every key that every real object of the kind carries."""
    assert simulated and real, what
    missing = always(real) - always(simulated)
    assert not missing, f"{what}: real objects always carry {sorted(missing)}"


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(SPEC)


@pytest.fixture
def platform(storm: Storm) -> Iterator[SimulatedPlatform]:
    with SimulatedPlatform(storm, ManualClock(END + timedelta(minutes=10)), token=TOKEN,
                           search_reposts=SEARCH_REPOSTS) as served:
        yield served


def twarc_params() -> dict[str, str]:
    """The fields and expansions twarc2 asks for (the recordings were made with them)."""
    return {"tweet.fields": ",".join(TWARC_TWEET_FIELDS), "user.fields": ",".join(TWARC_USER_FIELDS),
            "expansions": ",".join(TWARC_EXPANSIONS)}


def simulated_search(platform: SimulatedPlatform, params: Mapping[str, str] | None = None, *, pages: int = 6
                     ) -> list[dict[str, Any]]:
    """The first `pages` pages of a campaign search (reposts, quotes, replies and deleted originals among them)."""
    found: list[dict[str, Any]] = []
    token = None
    while len(found) < pages:
        extra: dict[str, str] = {"next_token": token} if token else {}
        response = get(platform, SEARCH, query=CAMPAIGN_QUERY, max_results=100,
                       start_time=SPEC.window_start.isoformat(), **(params or {}), **extra)
        assert response.status_code == 200
        found.append(response.json())
        token = found[-1]["meta"].get("next_token")
        if token is None:
            break
    return found


# ------------------------------------------------------------------------------------------ search


def test_search_pages_with_expansions_have_the_recorded_structure(platform: SimulatedPlatform) -> None:
    real = recorded_pages("two_tweets", *TWARC_LOOKUPS)
    (tweepy_search,) = recorded_bodies("x-tweepy", "test_client_search_recent_tweets.decoded.json")
    simulated = simulated_search(platform, twarc_params())
    assert any(page.get("errors") for page in simulated)  # a deleted original among the references
    assert_within(union({k: v for k, v in page.items() if k != "errors"} for page in simulated),
                  union([*real, tweepy_search]), NEWER_THAN_RECORDINGS)

    def tweets(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [*objects_at(pages, "data"), *objects_at(pages, "includes", "tweets")]

    for what, path in (("tweets", None), ("users", ("includes", "users")),
                       ("users' public_metrics", ("includes", "users", "public_metrics")),
                       ("mentions", ("data", "entities", "mentions")), ("urls", ("data", "entities", "urls")),
                       ("referenced_tweets", ("data", "referenced_tweets"))):
        sim_objects = tweets(simulated) if path is None else list(objects_at(simulated, *path))
        real_objects = tweets(real) if path is None else list(objects_at(real, *path))
        assert_carries_what_real_objects_always_carry(sim_objects, real_objects, what)
    # Old names where real pages carry them: retweet_count (not repost_count), and impression_count since 2022.
    real_metrics = [t["public_metrics"] for t in tweets(real)]
    sim_metrics = [t["public_metrics"] for t in tweets(simulated)]
    assert_carries_what_real_objects_always_carry(sim_metrics, real_metrics, "public_metrics")
    assert {"impression_count"} <= always(sim_metrics) and not always(sim_metrics) & {"repost_count", "post_count"}
    assert {t["type"] for t in objects_at(simulated, "data", "referenced_tweets")} == {
        t["type"] for t in objects_at(real, "data", "referenced_tweets")}
    for tweet in tweets(simulated)[:50]:
        assert ISO_MILLIS.match(tweet["created_at"]) and tweet["id"].isdigit()


def test_search_meta_is_the_recorded_one(platform: SimulatedPlatform) -> None:
    (tweepy_search,) = recorded_bodies("x-tweepy", "test_client_search_recent_tweets.decoded.json")
    last_page = recorded_pages("two_tweets")[0]["meta"]
    simulated = simulated_search(platform, pages=100)
    assert types_of(simulated[0]["meta"]) == types_of(tweepy_search["meta"])  # a page with more to come
    assert types_of(simulated[-1]["meta"]) == types_of(last_page)  # the last page: no next_token
    empty = get(platform, SEARCH, query="#NoSuchTagAnywhere").json()
    assert empty == {"meta": {"result_count": 0}}


def test_search_with_default_fields_is_the_recorded_page(platform: SimulatedPlatform) -> None:
    (recorded,) = recorded_bodies("x-tweepy", "test_client_search_recent_tweets.decoded.json")
    page = make_client(platform).search_recent_tweets(CAMPAIGN_QUERY, start_time=SPEC.window_start).json()
    assert set(page) == set(recorded)
    assert kinds(page["data"]) == kinds(recorded["data"])


# ------------------------------------------------------------------------------------------ counts


def test_counts_have_the_recorded_structure(platform: SimulatedPlatform) -> None:
    real = [*recorded_pages("counts"), *recorded_bodies("x-tweepy", "test_client_get_recent_tweets_count.decoded.json")]
    hourly = make_client(platform).get_recent_tweets_count(CAMPAIGN_QUERY, start_time=SPEC.window_start).json()
    minutes = get(platform, COUNTS, query=CAMPAIGN_QUERY, granularity="minute",
                  start_time=(END - timedelta(minutes=20)).isoformat()).json()
    assert_within(union([hourly, minutes]), union(real))
    for page in (hourly, minutes):
        assert types_of(page["meta"]) == types_of(real[0]["meta"])
        for bucket in page["data"]:
            assert types_of(bucket) == types_of(real[0]["data"][0])
            assert ISO_MILLIS.match(bucket["start"]) and ISO_MILLIS.match(bucket["end"])


# ----------------------------------------------------------------------------------------- lookups


def test_tweets_lookup_has_the_recorded_structure(storm: Storm, platform: SimulatedPlatform) -> None:
    (default_fields,) = recorded_bodies("x-tweepy", "test_client_get_tweets.decoded.json")
    x_posts = [p for p in storm.posts if p.platform == "x" and p.campaign and not p.deleted]
    ids = [p.native_id for p in x_posts[:40:4]]
    plain = make_client(platform).get_tweets(ids).json()
    assert set(plain) == set(default_fields)
    assert kinds(plain["data"]) == kinds(default_fields["data"])
    full = get(platform, "/2/tweets", ids=",".join(p.native_id for p in x_posts[:100]), **twarc_params()).json()
    assert_within(union([{k: v for k, v in full.items() if k != "errors"}]), union(recorded_pages(*TWARC_LOOKUPS)),
                  NEWER_THAN_RECORDINGS)


def test_users_lookup_has_the_recorded_structure(storm: Storm, platform: SimulatedPlatform) -> None:
    (recorded,) = recorded_bodies("x-tweepy", "test_client_get_users.decoded.json")
    users = [u for u in storm.users if u.platform == "x"][:5]
    client = make_client(platform)
    by_name = client.get_users(usernames=[u.username for u in users]).json()
    by_id = client.get_users(ids=[u.id for u in users]).json()
    assert by_name == by_id and set(by_name) == set(recorded)
    assert [u["id"] for u in by_name["data"]] == [u.id for u in users]
    assert kinds(by_name["data"]) == kinds(recorded["data"])
    full = get(platform, "/2/users/by", usernames=",".join(u.username for u in users),
               **{"user.fields": ",".join(TWARC_USER_FIELDS)}).json()
    assert_within(shape(full["data"], ".includes.users"), union(recorded_pages("two_tweets", *TWARC_LOOKUPS)))


# ------------------------------------------------------------------------------------------ errors


def test_error_objects_have_the_documented_structure(storm: Storm, platform: SimulatedPlatform) -> None:
    deleted = {p.id for p in storm.posts if p.deleted}
    repost = next(p for p in storm.posts if p.kind == "repost" and p.ref_id in deleted)
    partial = get(platform, SEARCH, query=CAMPAIGN_QUERY, since_id=str(repost.id - 1), until_id=str(repost.id + 1),
                  expansions="referenced_tweets.id").json()["errors"]
    partial += get(platform, "/2/tweets", ids=f"{repost.ref_id},123").json()["errors"]
    partial += get(platform, "/2/users", ids="123").json()["errors"]
    partial += get(platform, "/2/users/by", usernames="nobody_here").json()["errors"]
    assert {e["resource_type"] for e in partial} == {"tweet", "user"}
    for error in partial:
        assert types_of(error) == RESOURCE_NOT_FOUND
    invalid = get(platform, SEARCH, query=CAMPAIGN_QUERY, max_results=5)
    assert invalid.status_code == 400 and types_of(invalid.json()) == INVALID_REQUEST
    assert all(types_of(entry) == INVALID_PARAMETER for entry in invalid.json()["errors"])
    unauthorized = get(platform, SEARCH, token="wrong", query=CAMPAIGN_QUERY)
    assert unauthorized.status_code == 401 and types_of(unauthorized.json()) == PROBLEM
    unknown = get(platform, "/2/users/me")
    assert unknown.status_code == 404 and [types_of(e) for e in unknown.json()["errors"]] == [PAGE_ERROR]


def test_fault_bodies_have_the_documented_structure(storm: Storm) -> None:
    faults = Faults(server_error_every=2)
    with SimulatedPlatform(storm, ManualClock(END), token=TOKEN, faults=faults,
                           rate_limits={"counts": 2}, search_reposts=SEARCH_REPOSTS) as platform:
        statuses = [get(platform, COUNTS, query=CAMPAIGN_QUERY) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 503, 200, 429]
    for response in (statuses[1], statuses[3]):
        assert types_of(response.json()) == PROBLEM
        assert response.headers["content-type"] == "application/json; charset=utf-8"


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


def test_twarc_archive_lines_have_the_recorded_structure(storm: Storm) -> None:
    real_line = next(sample_lines("x-twarc2", "two_tweets.jsonl"))
    posts = [p for p in storm.posts if p.platform == "x" and p.campaign and not p.deleted][:100]
    line = render_twarc_page(storm, posts, retrieved_at=END, query=CAMPAIGN_QUERY)
    assert types_of(line["__twarc"]) == types_of(real_line["__twarc"])
    assert_within(union([{k: v for k, v in line.items() if k not in ("errors", "__twarc")}]),
                  union(recorded_pages("two_tweets", *TWARC_LOOKUPS)), NEWER_THAN_RECORDINGS)
