"""Bluesky (AT Protocol) pages to rows: post views (searchPosts pages, saved feeds), Jetstream events, profiles.

A post is keyed by its at-uri (`bluesky:at://<did>/app.bsky.feed.post/<rkey>`), an account by its DID
(`bluesky:<did>`); handles change, DIDs do not. Hashtags come from rich-text tag facets and the record's
`tags`; mentions from mention facets, the handle being the text at the facet's UTF-8 *byte* range. Reposts
are separate `app.bsky.feed.repost` records, not posts: they count only through `repostCount`. Counters
come with post views only; Jetstream records have none, and their snapshot time is the event's own, so a
later post view's counters always win over them in the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from ..errors import MalformedPage
from ..models import Account, Batch, Post
from .common import (
    EARLIEST,
    LATEST,
    MAX_LANG,
    MAX_NAME,
    MAX_TEXT,
    RecordKind,
    clean_tag,
    counter,
    epoch_stamp,
    optional_dict,
    optional_list,
    optional_text,
    unique,
    utc_stamp,
    wrong_type,
)

PLATFORM = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
MENTION_FEATURE = "app.bsky.richtext.facet#mention"
_QUOTE_EMBEDS = ("app.bsky.embed.record", "app.bsky.embed.recordWithMedia")
_RECORD_VIEW = "app.bsky.embed.record#viewRecord"
# Lists of profile views in actor endpoints: getProfiles, searchActors, getFollows, getFollowers.
_PROFILE_LISTS = ("profiles", "actors", "follows", "followers")
# A `#tag` typed in the text: Bluesky tags end at whitespace or punctuation (campaign tags are \w+).
_TEXT_TAG = re.compile(r"(?:^|(?<=\s))[#＃](\w+)")
# The AT Protocol's syntax for DIDs, handles, collection names (NSIDs) and record keys: anything else in an
# at:// uri or a profile is not what the network sends, and is refused rather than stored as a key.
_DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]{0,2040}[a-zA-Z0-9._-]")
_HANDLE = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_NSID = re.compile(r"[a-zA-Z](?:[a-zA-Z0-9-]{0,62})(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,62}))+")
_RECORD_KEY = re.compile(r"[a-zA-Z0-9._:~-]{1,512}")
_EARLIEST_US = int(EARLIEST.timestamp()) * 1_000_000
_LATEST_US = int(LATEST.timestamp()) * 1_000_000


def uid(key: str) -> str:
    """The platform-qualified key of a post (by at-uri) or an account (by DID)."""
    return f"{PLATFORM}:{key}"


def parse_at_uri(uri: Any) -> tuple[str, str, str] | None:
    """(authority, collection, rkey) of an `at://` record uri, or None when it is not one (each part checked
    against the protocol's syntax)."""
    if not isinstance(uri, str) or not uri.startswith("at://") or len(uri) > 3000:
        return None
    parts = uri[5:].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    authority, collection, rkey = parts
    if not (is_did(authority) or _HANDLE.fullmatch(authority)) or not _NSID.fullmatch(collection):
        return None
    if not _RECORD_KEY.fullmatch(rkey) or rkey in (".", ".."):
        return None
    return authority, collection, rkey


def is_did(value: Any) -> TypeGuard[str]:
    """Whether `value` is a DID (`did:plc:…`, `did:web:…`) by the protocol's syntax."""
    return type(value) is str and _DID.fullmatch(value) is not None


def post_url(actor: str, rkey: str) -> str:
    """The bsky.app address of a post (`actor` is the author's handle, or DID when the handle is unknown)."""
    return f"https://bsky.app/profile/{actor}/post/{rkey}"


def record_tags(record: Mapping[str, Any]) -> tuple[str, ...]:
    """A post record's hashtags as stored (lower-case, no `#`): tag facets, then the record's `tags` array."""
    found: list[str] = []
    facets = record.get("facets")
    if type(facets) is list:
        for facet in facets:
            features = facet.get("features") if type(facet) is dict else None
            if type(features) is not list:
                continue
            for feature in features:
                if type(feature) is dict and feature.get("$type") == TAG_FEATURE:
                    tag = clean_tag(feature.get("tag"))
                    if tag:
                        found.append(tag)
    extra = record.get("tags")
    if type(extra) is list:
        found.extend(t for t in (clean_tag(tag) for tag in extra) if t)
    return unique(found)


def text_tags(text: Any) -> tuple[str, ...]:
    """The `#tags` typed in a text (lower-case, no `#`), for records whose app made no tag facets."""
    if not isinstance(text, str) or ("#" not in text and "＃" not in text):
        return ()
    return unique([match.casefold() for match in _TEXT_TAG.findall(text)])


def normalize_page(body: Any, retrieved_at: str) -> Batch:
    """Rows from any Bluesky page the source stores or an archive holds, recognized by its shape."""
    if isinstance(body, list):
        return normalize_post_views(body, retrieved_at)
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    if "events" in body:
        return normalize_jetstream(body, retrieved_at)
    if any(name in body for name in _PROFILE_LISTS) or ("did" in body and "handle" in body):
        return normalize_profiles(body, retrieved_at)
    return normalize_post_views(body, retrieved_at)


def normalize_post_views(body: Mapping[str, Any] | list[Any], retrieved_at: str) -> Batch:
    """Rows from post views: a searchPosts or getPosts page (`{"posts": […]}`), a feed page (`{"feed": […]}`),
    a listRecords page (`{"records": […]}`), or a plain JSON array of post views.

    Every post of the page is a post of the batch (the caller decides campaign membership); posts that
    quote embeds show are context. Unreadable items are skipped and named in `Batch.errors`; a page of the
    wrong shape raises MalformedPage. The input is never modified.
    """
    section, items = _items(body)
    errors: list[str] = []
    posts: list[Post] = []
    context: dict[str, Post] = {}
    accounts: list[Account] = []
    for index, item in enumerate(items):
        where = f"{section}[{index}]"
        view = item.get("post") if section == "feed" and type(item) is dict else item
        try:
            post, author = _post_from_view(view, retrieved_at)
        except MalformedPage as exc:
            errors.append(f"{where}{exc}, skipped")
            continue
        posts.append(post)
        if author is not None:
            accounts.append(author)
        embedded = _embedded_view(view)
        if embedded is not None:
            try:
                quoted, quoted_author = _post_from_view(embedded, retrieved_at)
            except MalformedPage as exc:
                errors.append(f"{where}.embed{exc}, not kept")
            else:
                context[quoted.uid] = quoted
                if quoted_author is not None:
                    accounts.append(quoted_author)
    matched = {post.uid for post in posts}
    return Batch(posts=tuple(posts), context_posts=tuple(p for u, p in context.items() if u not in matched),
                 accounts=tuple(accounts), errors=tuple(errors))


def normalize_author_feed(body: Mapping[str, Any], retrieved_at: str) -> Batch:
    """Rows from an author feed page (`{"feed": [feedViewPost]}`): the author's own posts and replies.

    Items with a `reason` are reposts by the author: on Bluesky those are not posts (they count in the
    original's repostCount), so they are left out. The input is never modified.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("feed"), list):
        raise MalformedPage("no feed list in the page")
    return normalize_post_views({"feed": [item for item in body["feed"] if not (type(item) is dict
                                                                               and item.get("reason"))]},
                                retrieved_at)


def normalize_jetstream(body: Mapping[str, Any], retrieved_at: str) -> Batch:
    """Rows from a batch of Jetstream events (`{"events": […]}`): the posts created in it.

    Only `commit` events creating an `app.bsky.feed.post` record become posts; every other event (likes,
    reposts, deletions, identity and account events) is passed over. Jetstream names the author by DID
    only, so no account rows come from here (the profiles call brings them). The input is never modified.
    """
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    if "events" not in body:
        raise MalformedPage("no events in the page")
    events = body["events"]
    if not isinstance(events, list):
        raise MalformedPage(f"events is {type(events).__name__}, not a list")
    posts: list[Post] = []
    errors: list[str] = []
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if type(event) is not dict:
            errors.append(f"{where}: not an object, skipped")
            continue
        if event.get("kind") != "commit":
            continue
        commit = event.get("commit")
        if type(commit) is not dict:
            errors.append(f"{where}.commit: not an object, skipped")
            continue
        if commit.get("collection") != POST_COLLECTION or commit.get("operation") != "create":
            continue
        try:
            posts.append(_post_from_commit(event, commit, retrieved_at))
        except MalformedPage as exc:
            errors.append(f"{where}{exc}, skipped")
    return Batch(posts=tuple(posts), errors=tuple(errors))


def normalize_profiles(body: Mapping[str, Any], retrieved_at: str) -> Batch:
    """Accounts from a getProfiles page (`{"profiles": […]}`), another list of profile views, or one profile."""
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    section = next((name for name in _PROFILE_LISTS if name in body), None)
    if section is None:
        if "did" in body and "handle" in body:
            section, items = "profile", [body]
        else:
            raise MalformedPage("no profiles in the page")
    else:
        items = body[section]
        if not isinstance(items, list):
            raise MalformedPage(f"{section} is {type(items).__name__}, not a list")
    accounts: list[Account] = []
    errors: list[str] = []
    for index, profile in enumerate(items):
        try:
            accounts.append(_account(profile, retrieved_at))
        except MalformedPage as exc:
            errors.append(f"{section}[{index}]{exc}, skipped")
    return Batch(accounts=tuple(accounts), errors=tuple(errors))


def _items(body: Mapping[str, Any] | list[Any]) -> tuple[str, list[Any]]:
    if isinstance(body, list):
        return "posts", body
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object or array")
    for section in ("posts", "feed", "records"):
        if section in body:
            items = body[section]
            if not isinstance(items, list):
                raise MalformedPage(f"{section} is {type(items).__name__}, not a list")
            return section, items
    raise MalformedPage("no posts in the page")


def _post_from_view(view: Any, retrieved_at: str) -> tuple[Post, Account | None]:
    """A post view, an embed's viewRecord or a repo record view (`{uri, cid, value}`) to a post and its author.

    A MalformedPage message starts with the field (`.record: …`) for the caller to place.
    """
    if type(view) is not dict:
        raise MalformedPage(": not an object")
    parsed = parse_at_uri(view.get("uri"))
    if parsed is None:
        raise MalformedPage(": no at:// uri")
    authority, collection, rkey = parsed
    record = view.get("record", view.get("value"))
    field = ".value" if "value" in view and "record" not in view else ".record"
    if type(record) is not dict:
        raise MalformedPage(f"{field}: not an object")
    record_type = record.get("$type", POST_COLLECTION)
    if collection != POST_COLLECTION or record_type != POST_COLLECTION:
        shown = record_type if type(record_type) is str and record_type else collection
        raise MalformedPage(f": {optional_text(shown[:100], '$type')} record, not a post")
    author_view = optional_dict(view.get("author"), ".author")
    author = None
    if author_view is not None and type(author_view.get("did")) is str:
        try:
            author = _account(author_view, retrieved_at)
        except MalformedPage:
            author = None  # the post stays readable; its author row waits for the profiles call
    did = authority if authority.startswith("did:") else author.id if author else None
    if did is None:
        raise MalformedPage(": the uri names no DID and the author has none")
    uri = f"at://{did}/{POST_COLLECTION}/{rkey}"
    created_at, ts = _created(record, field, view.get("indexedAt"), None)
    handle = author.handle if author is not None and author.id == did else None
    return _post(uri, did, rkey, handle, record, created_at, ts, view, retrieved_at), author


def _post_from_commit(event: Mapping[str, Any], commit: Mapping[str, Any], retrieved_at: str) -> Post:
    did, rkey, record = event.get("did"), commit.get("rkey"), commit.get("record")
    if not is_did(did):
        raise MalformedPage(".did: not a DID")
    if type(rkey) is not str or not _RECORD_KEY.fullmatch(rkey) or rkey in (".", ".."):
        raise MalformedPage(".commit.rkey: not a record key")
    if type(record) is not dict:
        raise MalformedPage(".commit.record: not an object")
    time_us = event.get("time_us")
    event_ms = time_us // 1000 if type(time_us) is int and _EARLIEST_US <= time_us < _LATEST_US else None
    created_at, ts = _created(record, ".commit.record", None, event_ms)
    # Nothing is known of the counters; the snapshot is as old as the event, so any post view wins later.
    metrics_at = epoch_stamp(event_ms)[0] if event_ms is not None else retrieved_at
    return _post(f"at://{did}/{POST_COLLECTION}/{rkey}", did, rkey, None, record, created_at, ts, None, metrics_at)


def _created(record: Mapping[str, Any], field: str, indexed_at: Any, event_ms: int | None) -> tuple[str, int]:
    """The record's createdAt (client-set); when unreadable, the AppView's indexedAt or the event's time."""
    created = record.get("createdAt")
    try:
        return utc_stamp(created, f"{field}.createdAt")
    except MalformedPage as problem:
        if isinstance(indexed_at, str):
            try:
                return utc_stamp(indexed_at, ".indexedAt")
            except MalformedPage:
                pass
        if event_ms is not None:
            return epoch_stamp(event_ms)
        raise problem from None


def _post(uri: str, did: str, rkey: str, handle: str | None, record: Mapping[str, Any], created_at: str, ts: int,
          view: Mapping[str, Any] | None, metrics_at: str) -> Post:
    """The post; every field of the record it reads is checked (a wrong type rejects the post)."""
    raw_text = record.get("text")
    if raw_text is not None and type(raw_text) is not str:
        raise wrong_type(".record.text", "a string", raw_text)
    langs = optional_list(record.get("langs"), ".record.langs")
    lang = optional_text(langs[0], ".record.langs[0]", MAX_LANG) if langs else None
    optional_list(record.get("facets"), ".record.facets")
    optional_list(record.get("tags"), ".record.tags")
    kind, ref = _kind(record)
    counts = view or {}
    # Mentions first: their facets point at byte ranges of the text as the author wrote it.
    mentions = _mentions(record, raw_text or "")
    text = optional_text(raw_text, ".record.text", MAX_TEXT) or ""
    return Post(
        uid(uri), PLATFORM, uri, uid(did), created_at, ts, text, lang, kind, uid(ref) if ref else None,
        post_url(handle or did, rkey),
        counter(counts.get("likeCount")), counter(counts.get("repostCount")), counter(counts.get("replyCount")),
        counter(counts.get("quoteCount")), counter(counts.get("bookmarkCount")), None,
        metrics_at, record_tags(record), mentions)


def _kind(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """`reply` (to the parent), `quote` (of an embedded post) or `original`; a reply that quotes is a reply."""
    reply = optional_dict(record.get("reply"), ".record.reply")
    if reply is not None:
        parent = reply.get("parent")
        ref = parent.get("uri") if type(parent) is dict else None
        return "reply", ref if parse_at_uri(ref) else None
    embed = optional_dict(record.get("embed"), ".record.embed")
    if embed is not None and embed.get("$type") in _QUOTE_EMBEDS:
        inner = embed.get("record")
        if type(inner) is dict and embed.get("$type") == "app.bsky.embed.recordWithMedia":
            inner = inner.get("record")
        ref = inner.get("uri") if type(inner) is dict else None
        parsed = parse_at_uri(ref)
        # Embedding a feed, list or starter pack is not quoting a post.
        if parsed is not None and parsed[1] == POST_COLLECTION:
            return "quote", ref
    return "original", None


def _mentions(record: Mapping[str, Any], text: str) -> tuple[str, ...]:
    """Handles mentioned through facets: the text at each mention facet's UTF-8 byte range, without `@`."""
    facets = record.get("facets")
    if type(facets) is not list or not text:
        return ()
    encoded = text.encode("utf-8", "surrogatepass")  # a lone surrogate must not stop the other mentions
    found: list[str] = []
    for facet in facets:
        if type(facet) is not dict or type(facet.get("features")) is not list:
            continue
        if not any(type(f) is dict and f.get("$type") == MENTION_FEATURE for f in facet["features"]):
            continue
        index = facet.get("index")
        start = index.get("byteStart") if type(index) is dict else None
        end = index.get("byteEnd") if type(index) is dict else None
        if type(start) is not int or type(end) is not int or not 0 <= start < end <= len(encoded):
            continue
        try:
            piece = encoded[start:end].decode("utf-8")
        except UnicodeDecodeError:  # a range that cuts a character is not a handle
            continue
        handle = piece.strip().lstrip("@\uff20\ufe6b").casefold()
        if len(handle) <= 253 and (_HANDLE.fullmatch(handle) or is_did(handle)):
            found.append(handle)
    return unique(found)


def _embedded_view(view: Any) -> dict[str, Any] | None:
    """The quoted post a post view's embed shows (a viewRecord of a post), if any."""
    if type(view) is not dict:
        return None
    embed = view.get("embed")
    if type(embed) is not dict:
        return None
    shown = embed.get("record")
    if type(shown) is dict and embed.get("$type") == "app.bsky.embed.recordWithMedia#view":
        shown = shown.get("record")
    if type(shown) is not dict or shown.get("$type") != _RECORD_VIEW:
        return None
    parsed = parse_at_uri(shown.get("uri"))
    return shown if parsed is not None and parsed[1] == POST_COLLECTION else None


def _account(profile: Any, retrieved_at: str) -> Account:
    if type(profile) is not dict:
        raise MalformedPage(": not an object")
    did, handle = profile.get("did"), profile.get("handle")
    if not is_did(did):
        raise MalformedPage(".did: not a DID")
    # The AppView shows `handle.invalid` when a handle no longer resolves to its DID; anything that is not a
    # handle at all is not shown as one either.
    if (type(handle) is not str or len(handle) > 253 or handle == "handle.invalid"
            or not _HANDLE.fullmatch(handle)):
        handle = did
    created = profile.get("createdAt")
    try:
        created_at = utc_stamp(created, ".createdAt")[0] if created else None
    except MalformedPage:
        created_at = None
    return Account(
        uid=uid(did),
        platform=PLATFORM,
        id=did,
        handle=handle.casefold(),
        name=optional_text(profile.get("displayName"), ".displayName", MAX_NAME),
        followers_count=counter(profile.get("followersCount")),
        following_count=counter(profile.get("followsCount")),
        posts_count=counter(profile.get("postsCount")),
        verified=_verified(profile.get("verification")),
        created_at=created_at,
        updated_at=retrieved_at,
    )


def _verified(verification: Any) -> bool | None:
    """Bluesky's verification badge: `verifiedStatus` is "valid" for verified accounts; absent means unknown."""
    if type(verification) is not dict or "verifiedStatus" not in verification:
        return None
    return verification.get("verifiedStatus") == "valid"


# --------------------------------------------------------------------------- archive records

def _is_post_view(body: dict[str, Any]) -> bool:
    uri = body.get("uri")
    return isinstance(uri, str) and uri.startswith("at://") and ("record" in body or "author" in body)


def _is_jetstream(body: dict[str, Any]) -> bool:
    """stormwatch's own batches of Jetstream events, or one event a line."""
    return isinstance(body.get("events"), list) or ("did" in body and "time_us" in body and "kind" in body)


def _is_profiles_page(body: dict[str, Any]) -> bool:
    return isinstance(body.get("profiles"), list)


def _is_posts_page(body: dict[str, Any]) -> bool:
    posts = body.get("posts")
    if not isinstance(posts, list):
        return False
    first = posts[0] if posts else None
    return ("cursor" in body or "hitsTotal" in body or not posts
            or (isinstance(first, dict) and str(first.get("uri", "")).startswith("at://")))


def _is_author_feed(body: dict[str, Any]) -> bool:
    """An author feed page (`getAuthorFeed`: a target's own posts), as the archive keeps it."""
    return isinstance(body.get("feed"), list)


def _normalize_one_view(view: Any, retrieved_at: str) -> Batch:
    return normalize_post_views([view], retrieved_at)


def _normalize_events(body: Mapping[str, Any], retrieved_at: str) -> Batch:
    """A batch of events as stored, or one event on its own line."""
    return normalize_jetstream(body if isinstance(body.get("events"), list) else {"events": [body]}, retrieved_at)


BLUESKY_POST = RecordKind("bluesky-post", PLATFORM, _is_post_view, rows=_normalize_one_view)
BLUESKY_EVENTS = RecordKind("bluesky-events", PLATFORM, _is_jetstream, rows=_normalize_events)
BLUESKY_PROFILES = RecordKind("bluesky-profiles", PLATFORM, _is_profiles_page, rows=normalize_profiles)
BLUESKY_PAGE = RecordKind("bluesky-page", PLATFORM, _is_posts_page, rows=normalize_post_views)
BLUESKY_FEED = RecordKind("bluesky-feed", PLATFORM, _is_author_feed, rows=normalize_author_feed)
RECORD_KINDS = (BLUESKY_POST, BLUESKY_EVENTS, BLUESKY_PROFILES, BLUESKY_PAGE, BLUESKY_FEED)
