"""X API v2 wire format: tweet and user objects, pages, counts, error bodies and pagination tokens.

Shapes follow recorded real responses (twarc2 and tweepy test data): only requested fields are returned;
`id`, `text` and `edit_history_tweet_ids` always for posts; `id`, `name`, `username` always for users.
Post text is HTML-escaped (``&amp;``, ``&lt;``, ``&gt;``) and entity offsets index that escaped text, as
on X; user names and descriptions are not escaped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from stormwatch.simulator.spec import QUOTE, REPLY, REPOST, Post, User

API_HOST = "https://api.twitter.com"
PROBLEM_INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
PROBLEM_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
INVALID_REQUEST_DETAIL = "One or more parameters to your request was invalid."

# The values X accepts (it rejects anything else with a 400 listing them). Not every accepted field has
# data in a simulated storm (no media, polls, places, annotations): those are accepted and simply absent,
# as they are on real posts without them.
TWEET_FIELDS: tuple[str, ...] = (
    "attachments", "author_id", "card_uri", "context_annotations", "conversation_id", "created_at",
    "display_text_range", "edit_controls", "edit_history_tweet_ids", "entities", "geo", "id",
    "in_reply_to_user_id", "lang", "media_metadata", "non_public_metrics", "note_tweet", "organic_metrics",
    "possibly_sensitive", "promoted_metrics", "public_metrics", "referenced_tweets", "reply_settings",
    "scopes", "source", "text", "withheld",
)
USER_FIELDS: tuple[str, ...] = (
    "affiliation", "connection_status", "created_at", "description", "entities", "id", "location",
    "most_recent_tweet_id", "name", "pinned_tweet_id", "profile_banner_url", "profile_image_url",
    "protected", "public_metrics", "receives_your_dm", "subscription_type", "url", "username", "verified",
    "verified_type", "withheld",
)
EXPANSIONS: tuple[str, ...] = (
    "attachments.media_keys", "attachments.media_source_tweet", "attachments.poll_ids", "author_id",
    "edit_history_tweet_ids", "entities.mentions.username", "geo.place_id", "in_reply_to_user_id",
    "entities.note.mentions.username", "referenced_tweets.id", "referenced_tweets.id.attachments.media_keys",
    "referenced_tweets.id.author_id",
)
USER_EXPANSIONS: tuple[str, ...] = ("affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id")
MEDIA_FIELDS: tuple[str, ...] = (
    "alt_text", "duration_ms", "height", "media_key", "non_public_metrics", "organic_metrics",
    "preview_image_url", "promoted_metrics", "public_metrics", "type", "url", "variants", "width",
)
PLACE_FIELDS: tuple[str, ...] = (
    "contained_within", "country", "country_code", "full_name", "geo", "id", "name", "place_type",
)
POLL_FIELDS: tuple[str, ...] = ("duration_minutes", "end_datetime", "id", "options", "voting_status")

# What twarc2 asks for (its archives are what the raw-archive reader must accept).
TWARC_TWEET_FIELDS: tuple[str, ...] = (
    "attachments", "author_id", "context_annotations", "conversation_id", "created_at", "edit_controls",
    "edit_history_tweet_ids", "entities", "geo", "id", "in_reply_to_user_id", "lang", "public_metrics",
    "text", "possibly_sensitive", "referenced_tweets", "reply_settings", "source", "withheld",
)
TWARC_USER_FIELDS: tuple[str, ...] = (
    "created_at", "description", "entities", "id", "location", "name", "pinned_tweet_id",
    "profile_image_url", "protected", "public_metrics", "url", "username", "verified", "verified_type",
    "withheld",
)
TWARC_EXPANSIONS: tuple[str, ...] = (
    "author_id", "in_reply_to_user_id", "referenced_tweets.id", "referenced_tweets.id.author_id",
    "entities.mentions.username", "attachments.poll_ids", "attachments.media_keys", "geo.place_id",
    "edit_history_tweet_ids",
)

_REFERENCE_TYPE = {REPOST: "retweeted", QUOTE: "quoted", REPLY: "replied_to"}


class PostSource(Protocol):
    """Where renderers look up users by index and referenced posts by id (a Storm or a StormGenerator)."""

    def user(self, index: int) -> User:
        """User number `index`."""
        ...

    def post_by_id(self, post_id: int) -> Post | None:
        """The post with this id, deleted ones included, or None."""
        ...


# ----------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ParameterProblem:
    """One invalid parameter, as one entry of X's invalid-request `errors` list."""

    parameter: str
    values: tuple[str, ...]
    message: str

    def to_json(self) -> dict[str, Any]:
        """The entry as X sends it."""
        return {"parameters": {self.parameter: list(self.values)}, "message": self.message}


class InvalidRequest(ValueError):
    """A request X would refuse with 400 Invalid Request; carries the entries of the body."""

    def __init__(self, problems: Sequence[ParameterProblem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = tuple(problems)

    @classmethod
    def one(cls, parameter: str, value: str | Sequence[str], message: str) -> InvalidRequest:
        """An invalid request with a single problem."""
        values = (value,) if isinstance(value, str) else tuple(value)
        return cls([ParameterProblem(parameter, values, message)])

    def body(self) -> dict[str, Any]:
        """X's 400 body."""
        return invalid_request_body(self.problems)


def invalid_request_body(problems: Iterable[ParameterProblem]) -> dict[str, Any]:
    """X's 400 Invalid Request body for these problems."""
    return {
        "errors": [problem.to_json() for problem in problems],
        "title": "Invalid Request",
        "detail": INVALID_REQUEST_DETAIL,
        "type": PROBLEM_INVALID_REQUEST,
    }


def problem_body(status: int, title: str) -> dict[str, Any]:
    """X's generic problem body (401, 429, 503): title and detail alike, type about:blank."""
    return {"title": title, "detail": title, "type": "about:blank", "status": status}


def not_found_entry(resource_id: str, parameter: str, resource_type: str = "tweet") -> dict[str, Any]:
    """The partial-error entry X adds when a requested or referenced post (or user) does not exist (any more)."""
    return {
        "value": resource_id,
        "detail": f"Could not find {resource_type} with {parameter}: [{resource_id}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": resource_id,
        "type": PROBLEM_NOT_FOUND,
    }


PAGE_NOT_FOUND_BODY: dict[str, Any] = {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}


# ------------------------------------------------------------------------------------------ times


def iso_millis(moment: datetime) -> str:
    """X's timestamp format: ``2021-05-18T19:24:56.000Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def iso_seconds(epoch_seconds: int) -> str:
    """X's timestamp format for a whole epoch second."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def iso_minutes(moment: datetime) -> str:
    """The minute-precision format X uses inside error messages (``2021-03-30T18:18Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


# ------------------------------------------------------------------------------------- selections


@dataclass(frozen=True)
class Selection:
    """The requested tweet fields, user fields and expansions."""

    tweet_fields: frozenset[str] = frozenset()
    user_fields: frozenset[str] = frozenset()
    expansions: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> Selection:
        """All fields and expansions twarc2 requests."""
        return cls(frozenset(TWARC_TWEET_FIELDS), frozenset(TWARC_USER_FIELDS), frozenset(TWARC_EXPANSIONS))

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, expansions: tuple[str, ...] = EXPANSIONS) -> Selection:
        """Parse and validate `tweet.fields`, `user.fields`, `expansions` (and media/place/poll fields).

        `expansions` are those the endpoint accepts (posts' by default; users lookups have their own).
        """
        problems: list[ParameterProblem] = []

        def values(name: str, allowed: tuple[str, ...]) -> frozenset[str]:
            raw = params.get(name)
            if raw is None:
                return frozenset()
            chosen = [value.strip() for value in raw.split(",") if value.strip()]
            for value in chosen:
                if value not in allowed:
                    problems.append(
                        ParameterProblem(
                            name,
                            (value,),
                            f"The `{name}` query parameter value [{value}] is not one of [{','.join(allowed)}]",
                        )
                    )
            return frozenset(chosen)

        selection = cls(values("tweet.fields", TWEET_FIELDS), values("user.fields", USER_FIELDS),
                        values("expansions", expansions))
        values("media.fields", MEDIA_FIELDS)
        values("place.fields", PLACE_FIELDS)
        values("poll.fields", POLL_FIELDS)
        if problems:
            raise InvalidRequest(problems)
        return selection


# ---------------------------------------------------------------------------------------- objects


def _display_url(expanded_url: str) -> str:
    shown = expanded_url.split("://", 1)[-1]
    return shown if len(shown) <= 27 else shown[:26] + "…"


Counters = Callable[[Post], tuple[int, int, int]]  # a post's reposts, quotes and replies when it is read


def render_tweet(post: Post, source: PostSource, fields: frozenset[str], counters: Counters | None = None
                 ) -> dict[str, Any]:
    """One post as an X API v2 tweet object with the requested `fields` (its counters as `counters` says they
    stand when read; the storm's final ones without)."""
    tweet: dict[str, Any] = {"id": post.native_id, "text": post.text, "edit_history_tweet_ids": [post.native_id]}
    if "author_id" in fields:
        tweet["author_id"] = source.user(post.author).id
    if "created_at" in fields:
        tweet["created_at"] = iso_seconds(post.created_s)
    if "conversation_id" in fields:
        tweet["conversation_id"] = str(post.conversation_id)
    if "in_reply_to_user_id" in fields and post.in_reply_to is not None:
        tweet["in_reply_to_user_id"] = source.user(post.in_reply_to).id
    if "lang" in fields:
        tweet["lang"] = post.lang
    if "public_metrics" in fields:
        reposts, quotes, replies = counters(post) if counters is not None else (post.reposts, post.quotes,
                                                                               post.replies)
        tweet["public_metrics"] = {
            "retweet_count": reposts,
            "reply_count": replies,
            "like_count": post.likes,
            "quote_count": quotes,
            "bookmark_count": post.bookmarks,
            "impression_count": post.impressions,
        }
    if "entities" in fields:
        entities: dict[str, Any] = {}
        if post.hashtags:
            entities["hashtags"] = [{"start": s, "end": e, "tag": tag} for s, e, tag in post.hashtags]
        if post.mentions:
            mentions = []
            for s, e, who in post.mentions:
                user = source.user(who)
                mentions.append({"start": s, "end": e, "username": user.username, "id": user.id})
            entities["mentions"] = mentions
        if post.urls:
            entities["urls"] = [
                {"start": s, "end": e, "url": short, "expanded_url": long, "display_url": _display_url(long)}
                for s, e, short, long in post.urls
            ]
        if entities:
            tweet["entities"] = entities
    if "referenced_tweets" in fields and post.ref_id is not None:
        tweet["referenced_tweets"] = [{"type": _REFERENCE_TYPE[post.kind], "id": str(post.ref_id)}]
    if "source" in fields:
        tweet["source"] = post.source
    if "possibly_sensitive" in fields:
        tweet["possibly_sensitive"] = post.possibly_sensitive
    if "reply_settings" in fields:
        tweet["reply_settings"] = "everyone"
    if "edit_controls" in fields:
        tweet["edit_controls"] = {
            "edits_remaining": 5,
            "is_edit_eligible": post.kind != REPOST,
            "editable_until": iso_seconds(post.created_s + 1800),
        }
    return tweet


def render_user(user: User, fields: frozenset[str]) -> dict[str, Any]:
    """One account as an X API v2 user object with the requested `fields`."""
    rendered: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
    if "created_at" in fields:
        rendered["created_at"] = iso_seconds(user.created_ms // 1000)
    if "description" in fields:
        rendered["description"] = user.description
    if "location" in fields and user.location:
        rendered["location"] = user.location
    if "profile_image_url" in fields:
        rendered["profile_image_url"] = user.profile_image_url
    if "protected" in fields:
        rendered["protected"] = user.protected
    if "public_metrics" in fields:
        rendered["public_metrics"] = {
            "followers_count": user.followers,
            "following_count": user.following,
            "tweet_count": user.tweet_count,
            "listed_count": user.listed,
        }
    if "url" in fields:
        rendered["url"] = ""
    if "verified" in fields:
        rendered["verified"] = user.verified
    if "verified_type" in fields:
        rendered["verified_type"] = user.verified_type
    return rendered


# ------------------------------------------------------------------------------------------ pages


def render_page(
    source: PostSource,
    posts: Sequence[Post],
    selection: Selection,
    *,
    meta: dict[str, Any] | None = None,
    extra_errors: Sequence[dict[str, Any]] = (),
    counters: Counters | None = None,
) -> dict[str, Any]:
    """A response page: `data`, `includes` per the expansions, partial `errors`, and `meta` if given.

    Referenced posts that were deleted become X's "Could not find tweet with referenced_tweets.id"
    entries instead of includes. An empty search page is just ``{"meta": {"result_count": 0}}``.
    """
    expansions = selection.expansions
    users: dict[str, dict[str, Any]] = {}
    tweets: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = list(extra_errors)
    missing: set[int] = set()

    def include_user(index: int) -> None:
        user = source.user(index)
        if user.id not in users:
            users[user.id] = render_user(user, selection.user_fields)

    if "author_id" in expansions:
        for post in posts:
            include_user(post.author)
    if "in_reply_to_user_id" in expansions:
        for post in posts:
            if post.in_reply_to is not None:
                include_user(post.in_reply_to)
    if "entities.mentions.username" in expansions:
        for post in posts:
            for _, _, who in post.mentions:
                include_user(who)
    want_refs = "referenced_tweets.id" in expansions
    want_ref_authors = "referenced_tweets.id.author_id" in expansions
    if want_refs or want_ref_authors:
        for post in posts:
            if post.ref_id is None:
                continue
            referenced = source.post_by_id(post.ref_id)
            if referenced is None or referenced.deleted or referenced.platform != post.platform:
                if post.ref_id not in missing:
                    missing.add(post.ref_id)
                    errors.append(not_found_entry(str(post.ref_id), "referenced_tweets.id"))
                continue
            if want_refs and referenced.native_id not in tweets:
                tweets[referenced.native_id] = render_tweet(referenced, source, selection.tweet_fields, counters)
            if want_ref_authors:
                include_user(referenced.author)

    page: dict[str, Any] = {}
    if posts:
        page["data"] = [render_tweet(post, source, selection.tweet_fields, counters) for post in posts]
    includes: dict[str, Any] = {}
    if users:
        includes["users"] = list(users.values())
    if tweets:
        includes["tweets"] = list(tweets.values())
    if includes:
        page["includes"] = includes
    if errors:
        page["errors"] = errors
    if meta is not None:
        page["meta"] = meta
    return page


def render_users(users: Sequence[User], selection: Selection, errors: Sequence[dict[str, Any]] = ()
                 ) -> dict[str, Any]:
    """A users lookup response: `data` for the users found, `errors` for the rest (nobody pins a post here)."""
    page: dict[str, Any] = {}
    if users:
        page["data"] = [render_user(user, selection.user_fields) for user in users]
    if errors:
        page["errors"] = list(errors)
    return page


def search_meta(posts: Sequence[Post], next_token: str | None) -> dict[str, Any]:
    """The `meta` of a search page (posts newest first)."""
    if not posts:
        return {"result_count": 0}
    meta: dict[str, Any] = {
        "newest_id": posts[0].native_id,
        "oldest_id": posts[-1].native_id,
        "result_count": len(posts),
    }
    if next_token is not None:
        meta["next_token"] = next_token
    return meta


def render_counts(buckets: Iterable[tuple[datetime, datetime, int]]) -> dict[str, Any]:
    """A counts response from (start, end, count) buckets."""
    data = [{"end": iso_millis(end), "start": iso_millis(start), "tweet_count": count} for start, end, count in buckets]
    return {"data": data, "meta": {"total_tweet_count": sum(bucket["tweet_count"] for bucket in data)}}


def render_twarc_page(
    source: PostSource,
    posts: Sequence[Post],
    *,
    retrieved_at: datetime,
    query: str = "",
    version: str = "2.14.0",
    url: str | None = None,
) -> dict[str, Any]:
    """A twarc2-style archive line: a full search page (all fields and expansions) plus ``__twarc``.

    `posts` are put newest first, as search returns them. The ``__twarc.url`` is the request twarc2 would
    have made unless `url` is given.
    """
    ordered = sorted(posts, key=lambda post: post.id, reverse=True)
    selection = Selection.everything()
    page = render_page(source, ordered, selection, meta=search_meta(ordered, None))
    if url is None:
        url = f"{API_HOST}/2/tweets/search/recent?" + urlencode(
            {
                "expansions": ",".join(TWARC_EXPANSIONS),
                "tweet.fields": ",".join(TWARC_TWEET_FIELDS),
                "user.fields": ",".join(TWARC_USER_FIELDS),
                "max_results": "100",
                "query": query,
            }
        )
    page["__twarc"] = {
        "url": url,
        "version": version,
        "retrieved_at": retrieved_at.astimezone(UTC).isoformat(timespec="seconds"),
    }
    return page


# ------------------------------------------------------------------------------ pagination tokens

_TOKEN_VERSION = 1
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN_BITS = 8 + 64 + 64 + 32
# A fixed mask so tokens look opaque (like X's) instead of exposing the boundary id.
_TOKEN_MASK = int.from_bytes(hashlib.blake2b(b"stormwatch-simulator-token", digest_size=21).digest(), "big")


def _fingerprint(context: str) -> int:
    return int.from_bytes(hashlib.blake2b(context.encode("utf-8"), digest_size=8).digest(), "big")


def _check(value: int) -> int:
    return int.from_bytes(hashlib.blake2b(value.to_bytes(17, "big"), digest_size=4).digest(), "big")


def encode_next_token(boundary_id: int, context: str) -> str:
    """An opaque lowercase base36 token: "the next page holds posts older than `boundary_id`".

    `context` is the canonical form of the request's selection parameters; a token only decodes with the
    same context, so it cannot be replayed against a different query.
    """
    value = (((_TOKEN_VERSION << 64) | boundary_id) << 64) | _fingerprint(context)
    value = ((value << 32) | _check(value)) ^ _TOKEN_MASK
    digits: list[str] = []
    while value:
        value, digit = divmod(value, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits)) or "0"


def decode_next_token(token: str, context: str) -> int | None:
    """The boundary id in `token`, or None if the token is garbled or belongs to another request."""
    if not token or len(token) > 40 or any(ch not in _BASE36 for ch in token):
        return None
    value = int(token, 36) ^ _TOKEN_MASK
    if value >> _TOKEN_BITS:
        return None
    check = value & 0xFFFFFFFF
    value >>= 32
    if _check(value) != check:
        return None
    fingerprint = value & 0xFFFFFFFFFFFFFFFF
    value >>= 64
    boundary_id = value & 0xFFFFFFFFFFFFFFFF
    if value >> 64 != _TOKEN_VERSION or fingerprint != _fingerprint(context):
        return None
    return boundary_id
