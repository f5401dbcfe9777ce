"""X API v2 pages (search, lookup, twarc2 archive lines) to rows; counts pages to buckets; trends to entries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import MalformedPage
from ..models import Account, Batch, CountBucket, Post, Trend
from ..platforms import X, snowflake_ms
from .common import (
    MAX_LANG,
    MAX_NAME,
    MAX_TAG,
    MAX_TEXT,
    RecordKind,
    clean_tag,
    counter,
    epoch_stamp,
    numeric_id,
    optional_dict,
    optional_list,
    optional_text,
    unique,
    utc_moment,
    utc_stamp,
    wrong_type,
)
from .text import strip_controls

PLATFORM = "x"
# Reposts outrank replies, which outrank quotes: a reply that quotes is a reply.
# Keyed by whatever a reference's `type` holds (hostile JSON: not always a string).
_KIND_OF_REFERENCE: dict[object, str] = {"retweeted": "repost", "replied_to": "reply", "quoted": "quote"}
_KIND_RANK = {"repost": 0, "reply": 1, "quote": 2}
# Places X names trends for, by WOEID (Yahoo's Where On Earth id, which X still uses): the ones X's documentation
# lists. Others are shown by number.
PLACES = {1: "Worldwide", 23424977: "United States", 23424975: "United Kingdom", 23424856: "Japan",
          2459115: "New York", 2442047: "Los Angeles", 44418: "London", 1118370: "Tokyo"}


def place_name(woeid: int) -> str:
    """How people name the place a WOEID stands for (`London`), or `WOEID 12345` when it is not a known one."""
    return PLACES.get(woeid, f"WOEID {woeid}")


def uid(native_id: str) -> str:
    """The platform-qualified key of an X post or user id."""
    return f"x:{native_id}"


def normalize_page(body: Mapping[str, Any], retrieved_at: str) -> Batch:
    """Rows from one X API v2 tweets page (search, lookup or a twarc2 line).

    Posts in `data` matched the query; posts only in `includes.tweets` are context. Items that
    cannot be read are skipped and named in `Batch.errors`; a page of the wrong shape raises
    MalformedPage. The input is never modified.
    """
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    data = body.get("data")
    if isinstance(data, Mapping):  # single-post lookups return one object
        data = [data]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise MalformedPage(f"data is {type(data).__name__}, not a list")
    includes = body.get("includes")
    if includes is None:
        includes = {}
    if not isinstance(includes, Mapping):
        raise MalformedPage(f"includes is {type(includes).__name__}, not an object")
    included_users = optional_list(includes.get("users"), "includes.users")
    included_tweets = optional_list(includes.get("tweets"), "includes.tweets")

    api_errors = body.get("errors")
    errors: list[str] = [_api_error_text(e) for e in api_errors] if type(api_errors) is list else []
    accounts: list[Account] = []
    handles: dict[str, str] = {}
    for index, user in enumerate(included_users):
        account = _account(user, retrieved_at, errors, f"includes.users[{index}]")
        if account is not None:
            accounts.append(account)
            handles[account.id] = account.handle

    posts = _posts(data, "data", retrieved_at, handles, errors)
    matched = {post.id for post in posts}
    context = [p for p in _posts(included_tweets, "includes.tweets", retrieved_at, handles, errors)
               if p.id not in matched]
    return Batch(posts=tuple(posts), context_posts=tuple(context), accounts=tuple(accounts),
                 errors=tuple(errors))


def normalize_counts(body: Mapping[str, Any]) -> list[CountBucket]:
    """Buckets from a `counts/recent` (or `counts/all`) page; old and new count field names."""
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    data = body.get("data", [])
    if not isinstance(data, list):
        raise MalformedPage(f"data is {type(data).__name__}, not a list")
    # One broken bucket rejects the page: half a page of counts would show a coverage gap that is not there.
    buckets = []
    for index, item in enumerate(data):
        where = f"data[{index}]"
        if not isinstance(item, Mapping):
            raise MalformedPage(f"{where} is not an object")
        count = counter(item.get("tweet_count", item.get("post_count")))
        if count is None:
            raise MalformedPage(f"{where}: no tweet_count / post_count")
        start = utc_moment(item.get("start"), f"{where}.start")
        end = utc_moment(item.get("end"), f"{where}.end")
        if end <= start:
            raise MalformedPage(f"{where}: ends before it starts")
        buckets.append(CountBucket(start=start, end=end, count=count))
    return buckets


def normalize_trends(body: Mapping[str, Any], location: str, seen_at: datetime) -> list[Trend]:
    """Entries of a `GET /2/trends/by/woeid/{woeid}` page (`data[].trend_name`, `tweet_count`), ranked in order.

    `location` is the WOEID the page was asked for. Entries without a name are skipped; a page with neither
    data nor entries raises MalformedPage naming X's error. The input is never modified.
    """
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    data = body.get("data")
    if data is None and body.get("errors"):
        raise MalformedPage("; ".join(_api_error_text(e) for e in body["errors"] or [])[:300])
    if not isinstance(data, list):
        raise MalformedPage(f"data is {type(data).__name__}, not a list")
    woeid = int(location) if location.isdigit() else None
    place = place_name(woeid) if woeid is not None else location
    # Trend names are hashtags and phrases people typed: cleaned of control characters and cut short.
    entries = [(name, item) for item in data if type(item) is dict and type(item.get("trend_name")) is str
               for name in [strip_controls(item["trend_name"][:MAX_TAG]).strip()] if name]
    return [Trend(platform=PLATFORM, location=place, woeid=woeid, rank=rank, name=name,
                  volume=_count(item.get("tweet_count", item.get("post_count"))), seen_at=seen_at)
            for rank, (name, item) in enumerate(entries, 1)]


def normalize_flattened_post(tweet: Mapping[str, Any], retrieved_at: str) -> Batch:
    """Rows from one `twarc2 flatten` line: a post carrying its author and referenced posts inline."""
    if not isinstance(tweet, Mapping):
        raise MalformedPage(f"post is {type(tweet).__name__}, not a JSON object")
    users = [tweet["author"]] if isinstance(tweet.get("author"), dict) else []
    references = tweet.get("referenced_tweets")
    referenced = [r for r in references if isinstance(r, dict) and "text" in r] if type(references) is list else []
    for reference in referenced:
        if isinstance(reference.get("author"), dict):
            users.append(reference["author"])
    return normalize_page({"data": [tweet], "includes": {"users": users, "tweets": referenced}}, retrieved_at)


def is_counts_page(body: Mapping[str, Any]) -> bool:
    """Whether a page is a counts response (buckets) rather than posts."""
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        first = data[0]
        return "start" in first and "end" in first and ("tweet_count" in first or "post_count" in first)
    meta = body.get("meta")
    return isinstance(meta, Mapping) and ("total_tweet_count" in meta or "total_post_count" in meta)


def _count(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value <= 2**63 - 1 else counter(value)


def _api_error_text(error: Any) -> str:
    """One of a page's `errors` as a line for the run record (the API's words: a stranger's text, cleaned)."""
    if type(error) is not dict:
        return optional_text(str(error)[:300], "error") or "error"
    title = error.get("title")
    detail = error.get("detail") or error.get("message")
    text = f"{title if type(title) is str and title else 'error'}: {detail if type(detail) is str else ''}"
    return optional_text(text.strip().rstrip(":")[:300], "error") or "error"


def _account(user: Any, retrieved_at: str, errors: list[str], where: str) -> Account | None:
    try:
        return _user(user, retrieved_at, errors, where)
    except MalformedPage as exc:
        errors.append(f"{where}{exc}, skipped")
        return None


def _user(user: Any, retrieved_at: str, errors: list[str], where: str) -> Account:
    """One user; a MalformedPage message starts with the field (`.username: …`) for the caller to place."""
    if type(user) is not dict:
        raise MalformedPage(": not an object")
    native = numeric_id(user.get("id"), ".id")
    handle = user.get("username")
    if handle is None:
        handle = native
    elif type(handle) is not str or not X.handles.is_valid(handle):
        raise MalformedPage(f".username: {str(handle)[:40]!r} is not an X username")
    metrics = optional_dict(user.get("public_metrics"), ".public_metrics") or _NO_METRICS
    created = user.get("created_at")
    try:
        created_at = utc_stamp(created, f"{where}.created_at")[0] if created else None
    except MalformedPage as exc:
        errors.append(str(exc))
        created_at = None
    verified = user.get("verified")
    return Account(
        uid=uid(native),
        platform=PLATFORM,
        id=native,
        handle=handle,
        name=optional_text(user.get("name"), ".name", MAX_NAME),
        followers_count=_count(metrics.get("followers_count")),
        following_count=_count(metrics.get("following_count")),
        posts_count=_count(metrics.get("tweet_count", metrics.get("post_count"))),
        verified=verified if type(verified) is bool else None,
        created_at=created_at,
        updated_at=retrieved_at,
    )


def _posts(items: list[Any], section: str, retrieved_at: str, handles: dict[str, str],
           errors: list[str]) -> list[Post]:
    posts = []
    for index, item in enumerate(items):
        try:
            posts.append(_post(item, retrieved_at, handles))
        except MalformedPage as exc:
            errors.append(f"{section}[{index}]{exc}, skipped")
    return posts


def _post(tweet: Any, retrieved_at: str, handles: dict[str, str]) -> Post:
    """One post; a MalformedPage message starts with the field (`.created_at: …`) for the caller to place.

    Every field read is checked: a wrong type, an id that is not a 64-bit number or an impossible time rejects
    the post (and only it).
    """
    if type(tweet) is not dict:
        raise MalformedPage(": not an object")
    native = numeric_id(tweet.get("id"), ".id")
    created = tweet.get("created_at")
    if created:
        created_at, ts = utc_stamp(created, ".created_at")
    else:  # default-field responses omit created_at; the snowflake id carries it
        created_at, ts = epoch_stamp(snowflake_ms(native), ".id (as a time)")
    kind, ref_id = "original", None
    for index, reference in enumerate(optional_list(tweet.get("referenced_tweets"), ".referenced_tweets")):
        if type(reference) is not dict:
            raise wrong_type(f".referenced_tweets[{index}]", "an object", reference)
        ref_type = reference.get("type")
        ref_kind = _KIND_OF_REFERENCE.get(ref_type) if type(ref_type) is str else None
        if ref_kind and (kind == "original" or _KIND_RANK[ref_kind] < _KIND_RANK[kind]):
            kind, ref_id = ref_kind, numeric_id(reference.get("id"), f".referenced_tweets[{index}].id")
    author = tweet.get("author_id")
    author_id = numeric_id(author, ".author_id") if author is not None else None
    entities = optional_dict(tweet.get("entities"), ".entities")
    tags: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    if entities:
        hashtags = optional_list(entities.get("hashtags"), ".entities.hashtags")
        if hashtags:
            tags = unique([t for t in (clean_tag(item.get("tag")) for item in _entities(hashtags, ".entities.hashtags"))
                           if t])
        named = optional_list(entities.get("mentions"), ".entities.mentions")
        if named:
            mentions = unique([h.casefold() for h in (item.get("username")
                                                      for item in _entities(named, ".entities.mentions"))
                               if type(h) is str and X.handles.is_valid(h)])
    metrics = optional_dict(tweet.get("public_metrics"), ".public_metrics") or _NO_METRICS
    text = tweet.get("text")
    note = optional_dict(tweet.get("note_tweet"), ".note_tweet")  # long posts carry their full text here
    if note is not None and type(note.get("text")) is str:
        text = note["text"]
    text = optional_text(_unescape(text) if type(text) is str else text, ".text", MAX_TEXT) or ""
    lang = tweet.get("lang")
    lang = optional_text(lang, ".lang", MAX_LANG) if lang is not None else None
    reposts = metrics.get("retweet_count")
    return Post(
        f"x:{native}", PLATFORM, native, f"x:{author_id}" if author_id else None, created_at, ts, text,
        lang, kind, f"x:{ref_id}" if ref_id else None,
        f"https://x.com/{(handles.get(author_id) if author_id else None) or 'i/web'}/status/{native}",
        _count(metrics.get("like_count")),
        _count(reposts if reposts is not None else metrics.get("repost_count")),
        _count(metrics.get("reply_count")), _count(metrics.get("quote_count")),
        _count(metrics.get("bookmark_count")), _count(metrics.get("impression_count")),
        retrieved_at, tags, mentions)


def _entities(items: list[Any], where: str) -> list[dict[str, Any]]:
    """Hashtag or mention entities: each an object."""
    for index, item in enumerate(items):
        if type(item) is not dict:
            raise wrong_type(f"{where}[{index}]", "an object", item)
    return items


_NO_METRICS: dict[str, Any] = {}


def _unescape(text: str) -> str:
    """X escapes exactly these three characters in post text; anything else was typed by the author."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --------------------------------------------------------------------------- archive records

def _is_api_response(body: dict[str, Any]) -> bool:
    """An X API v2 response (search, lookup, counts) or a twarc2 line."""
    meta = body.get("meta")
    return "data" in body or "includes" in body or (type(meta) is dict and "result_count" in meta)


def _is_counts_response(body: dict[str, Any]) -> bool:
    if not _is_api_response(body):
        return False
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict) and "start" in data[0] and "end" in data[0]:
        return True
    meta = body.get("meta")
    return isinstance(meta, dict) and ("total_tweet_count" in meta or "total_post_count" in meta)


def _is_flattened_post(body: dict[str, Any]) -> bool:
    return "id" in body and "text" in body and ("author_id" in body or "edit_history_tweet_ids" in body
                                                or "author" in body or "created_at" in body)


def _is_trends_response(body: dict[str, Any]) -> bool:
    data = body.get("data")
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "trend_name" in data[0]


X_COUNTS = RecordKind("x-counts", PLATFORM, _is_counts_response, counts=normalize_counts)
# Trending lists are archived with the pages; an import knows them and finds no posts in them.
X_TRENDS = RecordKind("x-trends", PLATFORM, _is_trends_response, rows=lambda body, retrieved_at: Batch())
X_PAGE = RecordKind("x-page", PLATFORM, _is_api_response, rows=normalize_page)
# A post on its own (`twarc2 flatten`) is known only by id and text: anything more specific goes first.
X_POST = RecordKind("x-post", PLATFORM, _is_flattened_post, rows=normalize_flattened_post, loose=True)
RECORD_KINDS = (X_COUNTS, X_TRENDS, X_PAGE, X_POST)
