"""A materialized storm: every user and post of a spec, sorted by id, with the lookups the mounts need.

`Storm.build(spec)` runs the generator (`generator.py`) to the end and keeps everything in memory for the
simulated platforms; `Storm.truth` asks the oracle (`truth.py`) about a window of it.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import threading
from array import array
from collections.abc import Iterable
from datetime import datetime

from stormwatch.simulator.background import background_posts
from stormwatch.simulator.generator import StormGenerator
from stormwatch.simulator.intel import carries, intel_posts, intel_users
from stormwatch.simulator.spec import QUOTE, REPLY, REPOST, Post, StormSpec, User
from stormwatch.simulator.truth import Truth, TruthBuilder


class Storm:
    """A materialized storm for the simulated server: users, and posts sorted by id."""

    def __init__(self, spec: StormSpec, users: Iterable[User], posts: Iterable[Post]) -> None:
        self.spec = spec
        self.users: tuple[User, ...] = tuple(users)
        self.posts: tuple[Post, ...] = tuple(posts)
        for position, user in enumerate(self.users):
            if user.index != position:
                raise ValueError(f"user {user.username} has index {user.index}, expected {position}")
        self.ids = array("q", (post.id for post in self.posts))
        if any(a >= b for a, b in zip(self.ids, self.ids[1:], strict=False)):
            raise ValueError("posts must be sorted by strictly increasing id")
        # Seconds are non-decreasing because ids encode creation time.
        self.seconds = array("q", (post.ms // 1000 for post in self.posts))
        if any(a > b for a, b in zip(self.seconds, self.seconds[1:], strict=False)):
            raise ValueError("post ids must increase with creation time")
        self._position_by_id = {post.id: position for position, post in enumerate(self.posts)}
        self._user_index_by_id = {user.id: user.index for user in self.users}
        # A handle names the first user that has it (a target's accounts on other platforms share its handle).
        self._user_index_by_handle: dict[str, int] = {}
        self._reactions: dict[int, tuple[array[int], array[int], array[int]]] | None = None  # see counters_at
        self._reactions_lock = threading.Lock()
        for user in self.users:
            self._user_index_by_handle.setdefault(user.username.lower(), user.index)

    @classmethod
    def build(cls, spec: StormSpec) -> Storm:
        """Generate and materialize the storm described by `spec`."""
        generator = StormGenerator(spec, cache_size=None)
        # Everyday use of the hashtags before the storm (none unless the spec asks), then the storm itself.
        posts = [*background_posts(spec, generator.users), *generator.posts()]
        # What the spec's storm intelligence adds (counter wave, a target's responses): none unless it asks.
        users = [*generator.users, *intel_users(spec, generator.users)]
        extra = intel_posts(spec, users, posts)
        return cls(spec, users, sorted([*posts, *extra], key=lambda post: post.id) if extra else posts)

    def __len__(self) -> int:
        return len(self.posts)

    def counters_at(self, post: Post, now: datetime) -> tuple[int, int, int]:
        """A post's reposts, quotes and replies made by `now`, as the platform counts them when read then (a post
        read as it is made has none yet; its counters grow as the storm reacts)."""
        with self._reactions_lock:
            if self._reactions is None:
                self._reactions = _reactions(self.posts)
            later = self._reactions.get(post.id)
        if later is None:
            return post.reposts, post.quotes, post.replies
        moment = math.floor(now.timestamp() * 1000)
        future = [len(times) - bisect.bisect_right(times, moment) for times in later]
        return (max(0, post.reposts - future[0]), max(0, post.quotes - future[1]),
                max(0, post.replies - future[2]))

    def position_of(self, post_id: int | str) -> int | None:
        """The index of post `post_id` in `posts`, or None."""
        try:
            return self._position_by_id.get(int(post_id))
        except ValueError:
            return None

    def post_by_id(self, post_id: int | str) -> Post | None:
        """The post with id `post_id` (deleted ones included; callers decide what is visible)."""
        position = self.position_of(post_id)
        return None if position is None else self.posts[position]

    def user(self, index: int) -> User:
        """User number `index`."""
        return self.users[index]

    def user_by_id(self, user_id: str | int) -> User | None:
        """The user with native id `user_id`, if any."""
        index = self._user_index_by_id.get(str(user_id))
        return None if index is None else self.users[index]

    def user_by_handle(self, handle: str) -> User | None:
        """The user with this handle (case-insensitive, with or without @), if any."""
        index = self._user_index_by_handle.get(handle.lstrip("@").lower())
        return None if index is None else self.users[index]

    def truth(
        self,
        since: datetime,
        until: datetime,
        *,
        platform: str | None = "x",
        include_reposts: bool = True,
        tags: tuple[str, ...] | None = None,
    ) -> Truth:
        """Ground truth over campaign-matching (or, with `tags`, tag-carrying), non-deleted posts with
        since <= created_at < until."""
        builder = TruthBuilder(since, until, platform=platform, include_reposts=include_reposts, tags=tags)
        low = bisect.bisect_left(self.seconds, math.ceil(builder.since.timestamp()))
        high = bisect.bisect_left(self.seconds, math.ceil(builder.until.timestamp()))
        for post in self.posts[low:high]:
            builder.add(post, self.users[post.author])
        return builder.result()

    def supporters(self, truth: Truth, counter_tags: Iterable[str]) -> Truth:
        """`truth` without the posts carrying any of `counter_tags` (hijack candidates, DESIGN.md): the supporters'
        figures. A platform's figure the truth left at 0 (impressions where none are reported) stays 0."""
        builder = TruthBuilder(truth.since, truth.until, platform=truth.platform,
                               include_reposts=truth.include_reposts)
        counter = tuple(counter_tags)
        for post_id in sorted(truth.post_ids, key=int):
            post = self.post_by_id(post_id)
            if post is not None and not carries(post, counter):
                builder.count(post, self.users[post.author])
        found = builder.result()
        return found if truth.impressions else dataclasses.replace(found, impressions=0)


def _reactions(posts: Iterable[Post]) -> dict[int, tuple[array[int], array[int], array[int]]]:
    """For each reacted-to post id, the milliseconds its reposts, quotes and replies were made (each ascending)."""
    found: dict[int, tuple[array[int], array[int], array[int]]] = {}
    column = {REPOST: 0, QUOTE: 1, REPLY: 2}
    for post in posts:
        if post.ref_id is not None and post.kind in column:
            lists = found.get(post.ref_id)
            if lists is None:
                lists = found[post.ref_id] = (array("q"), array("q"), array("q"))
            lists[column[post.kind]].append(post.ms)
    return found
