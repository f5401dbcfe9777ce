"""Storm intelligence in the simulated storm: the opponents' counter wave, a target's responses, and the truths a
collector's intelligence figures are checked against.

What a spec asks for (all off by default, so a spec without them is the storm it always was):

* `counter_hashtags` + `counter_posts`: opponents (new users, role "opponent") post a wave of their own tags a
  third of the way into the storm, some of it carrying a campaign tag too (hijacking), some reposts of it;
* `target_responses`: the first target posts an unrelated statement, then replies to the most reposted campaign
  post on X, posts about the case on Mastodon and quotes a campaign post on Bluesky (copies of the target's
  account on those platforms, when the storm runs there);
* `toolkit_share` and `personal_texts` shape what supporters write (`generator.own_words`).

The extra users come after the storm's own and the extra posts are drawn from a stream of their own after the
storm is generated, so nothing the storm had changes. The truths (`copy_truth`, `counter_truth`, `target_truth`)
count what DESIGN.md and issue 12 define, from the storm's own structure (entity spans, not text patterns).
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from stormwatch.simulator import texts
from stormwatch.simulator.draws import base62, mix_seed
from stormwatch.simulator.generator import _split_template, _TextBuilder
from stormwatch.simulator.spec import ORIGINAL, QUOTE, REPLY, REPOST, Post, StormSpec, User, snowflake, unescape_text

_SALT = 4  # seed streams: 1 population, 2 skeleton, 3 background, 4 here, 1_000_003+ posts, 7_000_003+ own words
WAVE_CENTRE = 0.3  # of the storm window
WAVE_SPREAD = 0.08
HIJACK_SHARE = 0.3  # counter posts that also carry a campaign hashtag
COUNTER_REPOSTS = 0.4
COUNTER_REPLIES = 0.1
# When the responding target posts, as shares of the storm window.
TARGET_TIMES = {"unrelated": 0.10, "reply": 0.40, "mastodon": 0.50, "quote": 0.60}
MIN_WORDS = 3  # texts shorter than this are never counted as copies (a bare hashtag is not a pasted text)
NEAR = 0.8  # Jaccard over word pairs at or above which two texts are near-identical
_WORD = re.compile(r"\w+")


def intel_users(spec: StormSpec, users: Sequence[User]) -> list[User]:
    """The users a spec's storm intelligence adds after the storm's own: the responding target's accounts on
    the storm's other platforms, and the opponents."""
    rng = random.Random(mix_seed(spec.seed, _SALT))
    added: list[User] = []
    taken = {user.id for user in users}

    def new_id(created_ms: int) -> str:
        while True:
            candidate = str(snowflake(created_ms, rng.getrandbits(10), rng.getrandbits(12)))
            if candidate not in taken:
                taken.add(candidate)
                return candidate

    platforms = [name for name, _ in spec.platforms]
    target = responding_target(spec, users)
    if target is not None:
        for platform in platforms:
            if platform != target.platform:
                added.append(replace(target, index=len(users) + len(added), id=new_id(target.created_ms),
                                     platform=platform))
    if spec.counter_posts:
        shares = [share for _, share in spec.platforms]
        created_ms = int(spec.window_start.timestamp() * 1000) - 40 * 86_400_000
        for number in range(max(5, spec.counter_posts // 5)):
            platform = rng.choices(platforms, shares)[0]
            name = f"{rng.choice(texts.COUNTER_NAMES)}{rng.randrange(10, 9999)}"
            followers = int(rng.lognormvariate(math.log(800), 1.2))
            created = created_ms - int(rng.random() * 900 * 86_400_000)
            added.append(User(index=len(users) + len(added), id=new_id(created), platform=platform,
                              username=f"{name}_{number}"[:15], name=name, created_ms=created, followers=followers,
                              following=rng.randrange(50, 3000), tweet_count=rng.randrange(100, 40_000),
                              listed=followers // 200, verified=False, verified_type="none", description="",
                              location="", protected=False, profile_image_url="", lang="en", role="opponent"))
    return added


def responding_target(spec: StormSpec, users: Sequence[User]) -> User | None:
    """The target who responds (the first one, on the storm's home platform), when the spec asks for it."""
    if not spec.target_responses or not spec.targets:
        return None
    return next((u for u in users if u.role == "target"), None)


def intel_posts(spec: StormSpec, users: Sequence[User], posts: Sequence[Post]) -> list[Post]:
    """The posts a spec's storm intelligence adds (any order; ids unique against `posts`)."""
    rng = random.Random(mix_seed(spec.seed, _SALT + 100))
    taken = {post.id for post in posts}
    added: list[Post] = []

    def new_id(ms: int) -> int:
        candidate = snowflake(ms, rng.getrandbits(10), rng.getrandbits(12))
        while candidate in taken:
            candidate += 1
        taken.add(candidate)
        return candidate

    added += _target_posts(spec, users, posts, new_id)
    added += _counter_wave(spec, users, posts, rng, new_id)
    return added


def _at(spec: StormSpec, share: float) -> int:
    return int((spec.start.timestamp() + share * (spec.end - spec.start).total_seconds()) * 1000)


def _target_posts(spec: StormSpec, users: Sequence[User], posts: Sequence[Post],
                  new_id: Callable[[int], int]) -> list[Post]:
    target = responding_target(spec, users)
    if target is None:
        return []
    copies = {u.platform: u for u in users if u.role == "target" and u.username == target.username}
    found: list[Post] = []

    def post(user: User, share: float, kind: str, text: str, ref: Post | None) -> None:
        builder = _TextBuilder()
        if kind == REPLY and ref is not None:
            builder.mention(ref.author, users[ref.author].username)
            builder.plain(" ")
        builder.plain(text)
        if kind == QUOTE and ref is not None:
            builder.plain(" ")
            builder.link("https://t.co/" + base62(ref.id, 10),
                         f"https://twitter.com/{users[ref.author].username}/status/{ref.id}")
        ms = _at(spec, share)
        post_id = new_id(ms)
        found.append(Post(id=post_id, ms=ms, platform=user.platform, author=user.index, kind=kind, text=builder.text(),
                          lang="en", hashtags=(), mentions=tuple(builder.mentions), urls=tuple(builder.urls),
                          ref_id=ref.id if ref else None,
                          conversation_id=ref.conversation_id if ref and kind == REPLY else post_id,
                          in_reply_to=ref.author if ref and kind == REPLY else None, campaign=False, deleted=False,
                          reposts=120, replies=40, likes=2400, quotes=15, bookmarks=60,
                          impressions=user.followers // 3, source="Twitter Web App"))

    home = copies[target.platform]
    post(home, TARGET_TIMES["unrelated"], ORIGINAL, texts.TARGET_UNRELATED, None)
    answered = _most_reposted(posts, target.platform, _at(spec, TARGET_TIMES["reply"]), _at(spec, 0.0))
    if answered is not None:
        post(home, TARGET_TIMES["reply"], REPLY, texts.TARGET_REPLY, answered)
    if "mastodon" in copies:
        post(copies["mastodon"], TARGET_TIMES["mastodon"], ORIGINAL, texts.TARGET_MASTODON, None)
    quoted = _most_reposted(posts, "bluesky", _at(spec, TARGET_TIMES["quote"]), _at(spec, 0.0))
    if "bluesky" in copies and quoted is not None:
        post(copies["bluesky"], TARGET_TIMES["quote"], QUOTE, texts.TARGET_QUOTE, quoted)
    return found


def _most_reposted(posts: Sequence[Post], platform: str, before_ms: int, after_ms: int = 0) -> Post | None:
    """The campaign original on a platform with the most reposts created in [after, before) (the earliest of
    equals): what a target answers is a post of the storm."""
    candidates = [p for p in posts if p.platform == platform and p.campaign and not p.deleted and p.kind == ORIGINAL
                  and after_ms <= p.ms < before_ms]
    return max(candidates, key=lambda p: (p.reposts, -p.ms), default=None)


def _counter_wave(spec: StormSpec, users: Sequence[User], posts: Sequence[Post], rng: random.Random,
                  new_id: Callable[[int], int]) -> list[Post]:
    if not spec.counter_posts:
        return []
    opponents = [u for u in users if u.role == "opponent"]
    window = (spec.start.timestamp() * 1000, spec.end.timestamp() * 1000)
    centre, spread = _at(spec, WAVE_CENTRE), WAVE_SPREAD * (window[1] - window[0])
    moments = sorted(int(min(window[1] - 1000, max(window[0], rng.gauss(centre, spread))))
                     for _ in range(spec.counter_posts))
    templates = [_split_template(t) for t in texts.COUNTER_TEMPLATES]
    originals: dict[str, list[Post]] = {}
    rows: list[tuple[int, User, int, Post | None]] = []  # (ms, author, kind code, referenced post)
    for ms in moments:
        author = opponents[int(rng.random() ** 1.6 * len(opponents))]  # a few opponents post most
        roll = rng.random()
        mine = originals.get(author.platform, [])
        if roll < COUNTER_REPOSTS and mine:
            rows.append((ms, author, 1, mine[-1 - int(rng.random() ** 2 * len(mine))]))
            continue
        ref = (_most_reposted(posts, author.platform, ms, _at(spec, 0.0)) if roll < COUNTER_REPOSTS + COUNTER_REPLIES
               else None)
        post = _counter_post(spec, users, rng, templates, author, ms, new_id(ms), ref)
        originals.setdefault(author.platform, []).append(post)
        rows.append((ms, author, 0, post))
    reposted: dict[int, int] = {}
    for _, _, code, ref in rows:
        if code == 1 and ref is not None:
            reposted[ref.id] = reposted.get(ref.id, 0) + 1
    found: list[Post] = []
    for ms, author, code, ref in rows:
        assert ref is not None
        if code == 0:
            found.append(replace(ref, reposts=reposted.get(ref.id, 0)))
        else:
            found.append(_counter_repost(users, author, new_id(ms), ms, ref, reposted.get(ref.id, 0)))
    return found


def _counter_post(spec: StormSpec, users: Sequence[User], rng: random.Random, templates: list[tuple[str, ...]],
                  author: User, ms: int, post_id: int, ref: Post | None) -> Post:
    """An opponent's original (or reply to a campaign post), with their tags and sometimes a campaign tag."""
    builder = _TextBuilder()
    if ref is not None:
        builder.mention(ref.author, users[ref.author].username)
        builder.plain(" ")
    tags = rng.sample(list(spec.counter_hashtags), k=min(len(spec.counter_hashtags), 1 + int(rng.random() * 2)))
    hijack = rng.random() < HIJACK_SHARE
    if hijack:
        tags.append(spec.hashtags[int(rng.random() * len(spec.hashtags))])
    for piece in templates[int(rng.random() * len(templates))]:
        if piece == "{tags}":
            for number, tag in enumerate(tags):
                if number:
                    builder.plain(" ")
                builder.hashtag(tag)
        else:
            builder.plain(piece)
    likes = int(rng.lognormvariate(math.log(1 + 0.003 * author.followers), 1.0))
    return Post(id=post_id, ms=ms, platform=author.platform, author=author.index, kind=REPLY if ref else ORIGINAL,
                text=builder.text(), lang="en", hashtags=tuple(builder.hashtags), mentions=tuple(builder.mentions),
                urls=(), ref_id=ref.id if ref else None, conversation_id=ref.conversation_id if ref else post_id,
                in_reply_to=ref.author if ref else None, campaign=hijack, deleted=False, reposts=0, replies=0,
                likes=likes, quotes=0, bookmarks=likes // 50, impressions=author.followers // 5 + likes * 20,
                source="Twitter for Android")


def _counter_repost(users: Sequence[User], author: User, post_id: int, ms: int, original: Post,
                    reposts: int) -> Post:
    """A repost of an opponent's post: "RT @handle: " and its text, entities shifted, counters copied (as X does)."""
    handle = users[original.author].username
    shift = len(f"RT @{handle}: ")
    return Post(id=post_id, ms=ms, platform=original.platform, author=author.index, kind=REPOST,
                text=f"RT @{handle}: {original.text}", lang=original.lang,
                hashtags=tuple((s + shift, e + shift, tag) for s, e, tag in original.hashtags),
                mentions=((3, 4 + len(handle), original.author),
                          *((s + shift, e + shift, who) for s, e, who in original.mentions)),
                urls=(), ref_id=original.id, conversation_id=post_id, in_reply_to=None, campaign=original.campaign,
                deleted=False, reposts=reposts, replies=0, likes=original.likes, quotes=0, bookmarks=original.bookmarks,
                impressions=original.impressions, source=original.source)


# --- truths ---------------------------------------------------------------------------------------------------


def clean_words(post: Post) -> list[str]:
    """A post's words with its hashtags, mentions and links taken out by their entity spans, case-folded."""
    spans = sorted([(s, e) for s, e, _ in post.hashtags] + [(s, e) for s, e, _ in post.mentions]
                   + [(s, e) for s, e, _, _ in post.urls])
    pieces, cursor = [], 0
    for start, end in spans:
        pieces.append(post.text[cursor:start])
        cursor = max(cursor, end)
    pieces.append(post.text[cursor:])
    return [word.casefold() for word in _WORD.findall(unescape_text(" ".join(pieces)))]


@dataclass(frozen=True)
class CopyTruth:
    """Which non-repost posts of a set are copies (another account's post is identical or near-identical)."""

    posts: int
    copies: frozenset[str]
    largest: tuple[int, int]  # (posts, accounts) of the largest group of copies

    @property
    def share(self) -> float:
        """Copies over non-repost posts (0 without any)."""
        return len(self.copies) / self.posts if self.posts else 0.0


def copy_truth(posts: Iterable[Post], author_of: dict[int, str] | None = None) -> CopyTruth:
    """The copies among `posts` (reposts left out), by exact Jaccard over word pairs, every pair compared.

    `author_of` maps a post's author index to the account it counts as (default: the index itself).
    """
    own = [p for p in posts if p.kind != REPOST]
    shingles: dict[str, frozenset[tuple[str, str]]] = {}
    author: dict[str, str] = {}
    for post in own:
        words = clean_words(post)
        if len(words) >= MIN_WORDS:
            shingles[post.native_id] = frozenset(itertools.pairwise(words))
            author[post.native_id] = (author_of or {}).get(post.author, str(post.author))
    by_text: dict[frozenset[tuple[str, str]], list[str]] = {}
    for key, value in shingles.items():
        by_text.setdefault(value, []).append(key)
    groups = list(by_text.items())
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    near: dict[int, set[int]] = {i: {i} for i in range(len(groups))}
    for i, (a, _) in enumerate(groups):
        for j in range(i + 1, len(groups)):
            b = groups[j][0]
            if min(len(a), len(b)) >= NEAR * max(len(a), len(b)) and len(a & b) >= NEAR * len(a | b):
                near[i].add(j)
                near[j].add(i)
                parent[find(i)] = find(j)
    copies: set[str] = set()
    for i, (_, keys) in enumerate(groups):
        others = {author[k] for j in near[i] for k in groups[j][1]}
        for key in keys:
            if others - {author[key]}:
                copies.add(key)
    components: dict[int, list[str]] = {}
    for i, (_, keys) in enumerate(groups):
        components.setdefault(find(i), []).extend(keys)
    sized = [(len(keys), len({author[k] for k in keys})) for keys in components.values()]
    largest = max((s for s in sized if s[1] > 1), default=(0, 0))
    return CopyTruth(posts=len(own), copies=frozenset(copies), largest=largest)


@dataclass(frozen=True)
class TargetPost:
    """One post of a target: where, who, what kind, when, and whether it answered a campaign post."""

    platform: str
    handle: str
    kind: str
    created_at: datetime
    in_reply_to_campaign_post: bool


def target_truth(posts: Iterable[Post], users: Sequence[User], since: datetime, until: datetime,
                 campaign_ids: frozenset[str]) -> list[TargetPost]:
    """The targets' posts in [since, until), oldest first; answering = replying to, quoting or reposting a post
    among `campaign_ids` (what the collector holds as campaign posts)."""
    low, high = since.timestamp(), until.timestamp()
    return [TargetPost(p.platform, users[p.author].username, p.kind, datetime.fromtimestamp(p.ms // 1000, UTC),
                       p.ref_id is not None and str(p.ref_id) in campaign_ids)
            for p in sorted(posts, key=lambda p: p.ms)
            if users[p.author].role == "target" and not p.deleted and low <= p.ms // 1000 < high]


def carries(post: Post, tags: Iterable[str]) -> bool:
    """Whether a post carries any of `tags` (case-insensitive)."""
    wanted = {tag.casefold() for tag in tags}
    return any(tag.casefold() in wanted for _, _, tag in post.hashtags)
