"""The storm as the AT Protocol shows it: what the Bluesky XRPC mount and the Jetstream server both serve.

`BlueskyNetwork` turns the storm's Bluesky posts and users into DIDs, handles, at-uris, post records with
rich-text facets (UTF-8 *byte* offsets), post views and profile views, and searches them. Only posts and
users of platform "bluesky" exist here. Bluesky reposts are separate ``app.bsky.feed.repost`` records, not
posts (they show in ``repostCount``), and deleted posts are gone.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import hashlib
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from stormwatch.simulator.spec import QUOTE, REPLY, REPOST, Post, User, unescape_text
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.truth import Truth

PLATFORM = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
REPOST_COLLECTION = "app.bsky.feed.repost"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
MENTION_FEATURE = "app.bsky.richtext.facet#mention"
HANDLE_DOMAIN = "bsky.social"
_SORTABLE_BASE32 = "234567abcdefghijklmnopqrstuvwxyz"
# A CIDv1 header: version 1, dag-cbor codec, sha2-256 multihash of 32 bytes.
_CID_PREFIX = bytes([0x01, 0x71, 0x12, 0x20])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def tid(micros: int, clock_id: int = 0) -> str:
    """An atproto TID (record key): 53 bits of microseconds and 10 bits of clock id, base32-sortable."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_SORTABLE_BASE32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def cid_for(text: str) -> str:
    """A well-formed CIDv1 (dag-cbor, sha2-256, base32) for some stable content."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "b" + base64.b32encode(_CID_PREFIX + digest).decode("ascii").lower().rstrip("=")


def did_for(text: str) -> str:
    """A well-formed did:plc identifier derived from `text` (24 base32 characters)."""
    digest = hashlib.sha256(("did:" + text).encode("utf-8")).digest()[:15]
    return "did:plc:" + base64.b32encode(digest).decode("ascii").lower()


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as atproto writes datetimes: `2021-02-07T16:00:00.123Z`."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def handle_for(user: User) -> str:
    """The Bluesky handle of a storm user: its username as a bsky.social subdomain (handles have no `_`)."""
    label = user.username.lower().replace("_", "-").strip("-") or f"user{user.index}"
    return f"{label}.{HANDLE_DOMAIN}"



def micros(moment: datetime) -> int:
    """A moment in epoch microseconds (Jetstream's `time_us`, searchPosts' `since`/`until`)."""
    return (moment - _EPOCH) // _MICROSECOND


class BlueskyNetwork:
    """The storm as Bluesky shows it: identities, records with facets, post and profile views, a search index."""

    def __init__(self, storm: Storm) -> None:
        self.storm = storm
        self.seed = storm.spec.seed
        # Posts that exist as app.bsky.feed.post records, in time order; reposts are repost records.
        self.posts: tuple[Post, ...] = tuple(
            p for p in storm.posts if p.platform == PLATFORM and not p.deleted and p.kind != REPOST)
        self.reposts: tuple[Post, ...] = tuple(p for p in storm.posts if p.platform == PLATFORM and p.kind == REPOST)
        self.users: tuple[User, ...] = tuple(u for u in storm.users if u.platform == PLATFORM)
        self._dids = [did_for(f"{self.seed}:{user.id}") for user in storm.users]
        self._handles = [handle_for(user) for user in storm.users]
        self._member_by_actor: dict[str, User] = {}
        for user in self.users:
            self._member_by_actor[self._dids[user.index]] = user
            self._member_by_actor[self._handles[user.index]] = user
        self._position_by_uri = {self.uri(post): position for position, post in enumerate(self.posts)}
        self.sort_us = [post.ms * 1000 for post in self.posts]
        self._by_tag: dict[str, list[int]] = {}
        for position, post in enumerate(self.posts):
            for tag in {tag.casefold() for _, _, tag in post.hashtags}:
                self._by_tag.setdefault(tag, []).append(position)
        self._records: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- identities

    def did(self, user: User) -> str:
        """The DID of a storm user."""
        return self._dids[user.index]

    def handle(self, user: User) -> str:
        """The handle of a storm user."""
        return self._handles[user.index]

    def member(self, actor: str) -> User | None:
        """The Bluesky user with this DID or handle (case-insensitive), if any."""
        return self._member_by_actor.get(actor.strip().lstrip("@").lower())

    def author(self, post: Post) -> User:
        """The author of a post."""
        return self.storm.users[post.author]

    def rkey(self, post: Post) -> str:
        """The record key of a post: a TID of its creation time, as the author's app mints it."""
        return tid(self.created_us(post), (post.id >> 12) & 0x3FF)

    def uri(self, post: Post) -> str:
        """The at-uri of a post (or, for a repost, of its app.bsky.feed.repost record)."""
        collection = REPOST_COLLECTION if post.kind == REPOST else POST_COLLECTION
        return f"at://{self.did(self.author(post))}/{collection}/{self.rkey(post)}"

    def cid(self, post: Post) -> str:
        """The CID of a post's record."""
        return cid_for(f"{self.seed}:record:{post.id}")

    def uri_of_id(self, post_id: str | int) -> str | None:
        """The at-uri of the storm post with this native id (the ids `Storm.truth` lists)."""
        post = self.storm.post_by_id(post_id)
        return None if post is None else self.uri(post)

    def truth(self, since: datetime, until: datetime, tags: tuple[str, ...] | None = None) -> Truth:
        """What a collector can find on Bluesky in [since, until): posts without reposts, and no impressions
        (the campaign's posts, or with `tags` those carrying them)."""
        # Bluesky reposts are records of their own, not posts; Bluesky reports no impressions.
        truth = self.storm.truth(since, until, platform=PLATFORM, include_reposts=False, tags=tags)
        return dataclasses.replace(truth, impressions=0)

    def post_by_uri(self, uri: str) -> Post | None:
        """The (existing, non-repost) post with this at-uri."""
        position = self._position_by_uri.get(uri)
        return None if position is None else self.posts[position]

    # ---------------------------------------------------------------------------------- timing

    @staticmethod
    def created_us(post: Post) -> int:
        """When the post was created, in epoch microseconds (the storm has milliseconds; the rest is stable)."""
        return post.ms * 1000 + ((post.id >> 12) & 0x3FF) % 1000

    @staticmethod
    def indexed_ms(post: Post) -> int:
        """When the AppView indexed the post: 40 ms to about a second after it was created."""
        return post.ms + 40 + ((post.id >> 12) & 0x3FF)

    # --------------------------------------------------------------------------------- records

    def record(self, post: Post) -> dict[str, Any]:
        """The post's app.bsky.feed.post record (or app.bsky.feed.repost record), as its author wrote it."""
        with self._lock:
            cached = self._records.get(post.id)
        if cached is not None:
            return cached
        if post.kind == REPOST:
            original = self.storm.post_by_id(post.ref_id) if post.ref_id is not None else None
            record: dict[str, Any] = {"$type": REPOST_COLLECTION, "createdAt": iso_ms(post.ms),
                                      "subject": self._strong_ref(original) if original else None}
        else:
            record = self._post_record(post)
        with self._lock:
            self._records[post.id] = record
        return record

    def _post_record(self, post: Post) -> dict[str, Any]:
        text, facets = self._compose(post)
        record: dict[str, Any] = {"$type": POST_COLLECTION, "text": text, "createdAt": iso_ms(post.ms)}
        if post.lang != "und":
            record["langs"] = [post.lang]
        if facets:
            record["facets"] = facets
        if post.kind == REPLY and post.ref_id is not None:
            parent = self.storm.post_by_id(post.ref_id)
            root = self.storm.post_by_id(post.conversation_id) or parent
            if parent is not None and root is not None:
                record["reply"] = {"root": self._strong_ref(root), "parent": self._strong_ref(parent)}
        if post.kind == QUOTE and post.ref_id is not None:
            quoted = self.storm.post_by_id(post.ref_id)
            if quoted is not None:
                record["embed"] = {"$type": "app.bsky.embed.record", "record": self._strong_ref(quoted)}
        return record

    def _strong_ref(self, post: Post) -> dict[str, str]:
        return {"uri": self.uri(post), "cid": self.cid(post)}

    def _compose(self, post: Post) -> tuple[str, list[dict[str, Any]]]:
        """The post's text as a Bluesky app writes it, with tag and mention facets at UTF-8 byte offsets.

        The storm's text is X-shaped (HTML-escaped, code-point offsets, `@user` reply prefixes, t.co links
        to quoted posts); Bluesky text is plain, replies and quotes carry their target in the record, and
        mentions name full handles.
        """
        spans: list[tuple[int, int, str, Any]] = sorted(
            [(s, e, "tag", tag) for s, e, tag in post.hashtags]
            + [(s, e, "mention", who) for s, e, who in post.mentions]
            + [(s, e, "link", url) for s, e, url, _ in post.urls])
        parts: list[str] = []
        facets: list[dict[str, Any]] = []
        size = 0

        def add(piece: str) -> None:
            nonlocal size
            parts.append(piece)
            size += len(piece.encode("utf-8"))

        position = 0
        for index, (start, end, kind, value) in enumerate(spans):
            if index == 0 and kind == "mention" and start == 0 and post.kind == REPLY:
                # X prefixes replies with the parent's author; Bluesky names the parent in `reply` instead.
                position = end + (1 if post.text[end:end + 1] == " " else 0)
                continue
            add(unescape_text(post.text[position:start]))
            if kind == "tag":
                begin = size
                add("#" + value)
                facets.append(_facet(begin, size, {"$type": TAG_FEATURE, "tag": value}))
            elif kind == "mention":
                mentioned = self.storm.users[value]
                begin = size
                add("@" + self.handle(mentioned))
                facets.append(_facet(begin, size, {"$type": MENTION_FEATURE, "did": self.did(mentioned)}))
            # A link only ever points at the quoted post, which the record embeds: it is left out of the text.
            position = end
        add(unescape_text(post.text[position:]))
        # Dropping a trailing link leaves its separating space behind; facets all end before it.
        return "".join(parts).rstrip(), facets

    # ----------------------------------------------------------------------------------- views

    def author_view(self, user: User) -> dict[str, Any]:
        """An app.bsky.actor.defs#profileViewBasic, as post views embed their author."""
        did = self.did(user)
        return {
            "did": did,
            "handle": self.handle(user),
            "displayName": user.name,
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/{cid_for(f'avatar:{user.id}')}@jpeg",
            "associated": {"chat": {"allowIncoming": "following"}},
            "viewer": {"muted": False, "blockedBy": False},
            "labels": [],
            "createdAt": iso_ms(user.created_ms),
        }

    def profile_view(self, user: User) -> dict[str, Any]:
        """An app.bsky.actor.defs#profileViewDetailed with follower, follow and post counts."""
        view = self.author_view(user)
        view.pop("viewer")
        view.update({
            "description": user.description,
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False,
                           "chat": {"allowIncoming": "following"}},
            "indexedAt": iso_ms(user.created_ms + 3_600_000),
            "viewer": {"muted": False, "blockedBy": False},
            "followersCount": user.followers,
            "followsCount": user.following,
            "postsCount": user.tweet_count,
        })
        return view

    def post_view(self, post: Post, now_ms: int) -> dict[str, Any]:
        """An app.bsky.feed.defs#postView of an existing post, with its engagement counters."""
        view: dict[str, Any] = {
            "uri": self.uri(post),
            "cid": self.cid(post),
            "author": self.author_view(self.author(post)),
            "record": self.record(post),
        }
        if post.kind == QUOTE and post.ref_id is not None:
            quoted = self.storm.post_by_id(post.ref_id)
            if quoted is not None:
                view["embed"] = {"$type": "app.bsky.embed.record#view", "record": self._embedded(quoted, now_ms)}
        view.update({
            "replyCount": post.replies,
            "repostCount": post.reposts,
            "likeCount": post.likes,
            "quoteCount": post.quotes,
            "indexedAt": iso_ms(self.indexed_ms(post)),
            "viewer": {"threadMuted": False, "embeddingDisabled": False},
            "labels": [],
        })
        return view

    def _embedded(self, quoted: Post, now_ms: int) -> dict[str, Any]:
        uri = self.uri(quoted)
        if self.post_by_uri(uri) is None or self.indexed_ms(quoted) > now_ms:
            return {"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": True}
        return {
            "$type": "app.bsky.embed.record#viewRecord",
            "uri": uri,
            "cid": self.cid(quoted),
            "author": self.author_view(self.author(quoted)),
            "value": self.record(quoted),
            "labels": [],
            "likeCount": quoted.likes,
            "replyCount": quoted.replies,
            "repostCount": quoted.reposts,
            "quoteCount": quoted.quotes,
            "indexedAt": iso_ms(self.indexed_ms(quoted)),
            "embeds": [],
        }

    # ---------------------------------------------------------------------------------- search

    def search(self, *, words: Iterable[str] = (), tags: Iterable[str] = (), since_us: int | None = None,
               until_us: int | None = None, now_ms: int, author: User | None = None, mention: User | None = None,
               lang: str | None = None) -> list[Post]:
        """Indexed posts matching every word and tag (case-insensitive) in [since, until), newest first."""
        wanted_tags = [tag.casefold().lstrip("#") for tag in tags]
        low = 0 if since_us is None else bisect.bisect_left(self.sort_us, since_us)
        high = len(self.posts) if until_us is None else bisect.bisect_left(self.sort_us, until_us)
        if wanted_tags:
            lists = [self._by_tag.get(tag, []) for tag in wanted_tags]
            shortest = min(lists, key=len)
            others = [set(positions) for positions in lists if positions is not shortest]
            candidates = [p for p in shortest[bisect.bisect_left(shortest, low):bisect.bisect_left(shortest, high)]
                          if all(p in other for other in others)]
        else:
            candidates = list(range(low, high))
        wanted_words = [word.casefold() for word in words]
        mention_did = self.did(mention) if mention is not None else None
        found = []
        for position in reversed(candidates):
            post = self.posts[position]
            if self.indexed_ms(post) > now_ms:
                continue
            if author is not None and post.author != author.index:
                continue
            if lang is not None and post.lang != lang:
                continue
            if wanted_words or mention_did:
                record = self.record(post)
                text = record["text"].casefold()
                if not all(word in text for word in wanted_words):
                    continue
                if mention_did and not any(
                        feature.get("did") == mention_did
                        for facet in record.get("facets", []) for feature in facet["features"]):
                    continue
            found.append(post)
        return found


def _facet(byte_start: int, byte_end: int, feature: dict[str, Any]) -> dict[str, Any]:
    return {"index": {"byteStart": byte_start, "byteEnd": byte_end}, "features": [feature]}

