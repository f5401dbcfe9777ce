"""The seeded storm generator: a `StormSpec` becomes users (`population.py`) and posts, in time order.

A storm is generated in two passes so that it can be both realistic and streamed:

1. **Skeleton** (`StormGenerator.__init__`): every post's time, snowflake id, author, kind, referenced
   post and conversation root, drawn in time order from one seeded RNG, into compact `array` columns
   (about 50 bytes per post). Because references always point backwards in time, the number of reposts,
   quotes and replies each post *will* receive is known at the end of this pass, which is what lets every
   post carry its final engagement snapshot.
2. **Content** (`StormGenerator.post(i)`): text, entities, language, metrics of post *i*, drawn from an RNG
   seeded by ``(seed, i)`` alone, so any post can be rebuilt at any time, in any order, identically.

Users (the population, the campaign's own accounts and the officials it addresses; see `population.py`)
are materialized up front in both modes: they are O(population), not O(posts), and every post needs its
author's handle and followers. `iter_storm` streams posts one by one, keeping an original only until its
last repost is built (a repost's text, entities and counters come from its original); `Storm.build`
materializes them all for the simulated platforms.

Determinism: only `random.Random` seeded with integers, no `hash()`, no iteration over sets, so a spec
produces the same storm in every process.
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from stormwatch.simulator import texts
from stormwatch.simulator.draws import PERSON_LANG_CHOICE, Weighted, base62, cumulative, mix_seed
from stormwatch.simulator.population import build_population
from stormwatch.simulator.spec import (
    KINDS,
    QUOTE,
    REPLY,
    REPOST,
    TWITTER_EPOCH_MS,
    Hashtag,
    Link,
    Mention,
    Post,
    StormSpec,
    User,
    escape_text,
)

# Skeleton flag byte: low two bits are the kind, the rest are properties.
_KIND_MASK = 0b11
_NOISE = 1 << 2
_DELETED = 1 << 3
_HOSTILE = 1 << 4
_ACCOUNT_POST = 1 << 5  # an announcement by one of the campaign's own accounts

# Shares of campaign posts by kind (the rest are originals) and of noise posts.
_CAMPAIGN_KIND_SHARES = ((REPOST, 0.60), (QUOTE, 0.10), (REPLY, 0.10))
_NOISE_KIND_SHARES = ((REPOST, 0.45), (QUOTE, 0.05), (REPLY, 0.10))
NOISE_SHARE = 0.15  # of all posts on a platform
_DELETED_ORIGINAL_SHARE = 0.065  # of campaign originals, i.e. ~1% of campaign posts
_TARGET_MENTION_SHARE = 0.25
_HOSTILE_EVERY = 2000  # one hostile-text original per this many person originals (the 5th is the first)
_RT_LIMIT = 140  # X cuts "RT @handle: text" to 140 characters plus an ellipsis


class _TextBuilder:
    """Concatenates text pieces while recording entity offsets in the escaped (served) text."""

    __slots__ = ("hashtags", "length", "mentions", "parts", "urls")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.hashtags: list[Hashtag] = []
        self.mentions: list[Mention] = []
        self.urls: list[Link] = []

    def plain(self, text: str) -> None:
        """Append literal text (escaped as X serves it)."""
        served = escape_text(text)
        self.parts.append(served)
        self.length += len(served)

    def hashtag(self, tag: str) -> None:
        """Append a #hashtag and record its entity."""
        piece = "#" + tag
        self.hashtags.append((self.length, self.length + len(piece), tag))
        self.parts.append(piece)
        self.length += len(piece)

    def mention(self, user_index: int, username: str) -> None:
        """Append an @mention and record its entity."""
        piece = "@" + username
        self.mentions.append((self.length, self.length + len(piece), user_index))
        self.parts.append(piece)
        self.length += len(piece)

    def link(self, short_url: str, expanded_url: str) -> None:
        """Append a t.co link and record its entity."""
        self.urls.append((self.length, self.length + len(short_url), short_url, expanded_url))
        self.parts.append(short_url)
        self.length += len(short_url)

    def text(self) -> str:
        """The text built so far."""
        return "".join(self.parts)


def _split_template(template: str) -> tuple[str, ...]:
    """Split a template into literal text and `{tags}` / `{account}` placeholders."""
    pieces: list[str] = []
    rest = template
    while rest:
        cut = min((rest.find(p) for p in ("{tags}", "{account}") if p in rest), default=-1)
        if cut == -1:
            pieces.append(rest)
            break
        if cut:
            pieces.append(rest[:cut])
        placeholder = "{tags}" if rest.startswith("{tags}", cut) else "{account}"
        pieces.append(placeholder)
        rest = rest[cut + len(placeholder) :]
    return tuple(pieces)


_CAMPAIGN_TEMPLATES = {lang: tuple(map(_split_template, ts)) for lang, ts in texts.CAMPAIGN_TEMPLATES.items()}
_NOISE_TEMPLATES = {lang: tuple(map(_split_template, ts)) for lang, ts in texts.NOISE_TEMPLATES.items()}
_SOURCE_CHOICE = Weighted(texts.SOURCES)
_TOOLKIT_VARIATION = Weighted(tuple((str(i), v[0]) for i, v in enumerate(texts.TOOLKIT_VARIATIONS)))


class _Intensity:
    """The posting-rate curve of a storm, discretised for inverse-CDF sampling of post times.

    Campaign posts: a quiet baseline during the lead, a sharp rise at the announced start peaking after
    5-10 minutes, then a power-law decay to a low tail at the end. Noise posts: everyday traffic on the
    co-hashtags, flat with a gentle lift while the storm is loud (people piggyback on attention).
    """

    def __init__(self, spec: StormSpec, campaign_posts: float, noise_posts: float) -> None:
        self.t0 = spec.window_start.timestamp()
        self.t1 = spec.end.timestamp()
        start = spec.start.timestamp()
        storm_seconds = self.t1 - start
        # The peak comes 7 minutes after the start, sooner for very short storms.
        peak_at = start + min(420.0, storm_seconds / 4)
        # Decay: a power law whose scale grows with the storm's length but stays within half an hour,
        # so a 24-hour storm still spends most of its posts in the first hours.
        decay_scale = min(1800.0, max(120.0, (self.t1 - peak_at) / 25))
        baseline, tail = 0.008, 0.006
        cells = int(min(20000, max(2000, (self.t1 - self.t0) / 5)))
        width = (self.t1 - self.t0) / cells
        campaign_mass: list[float] = []
        noise_mass: list[float] = []
        for cell in range(cells):
            t = self.t0 + (cell + 0.5) * width
            if t < start:
                # Announcements build slightly towards the start.
                rate = baseline * (1.0 + (t - self.t0) / max(start - self.t0, 1.0))
            elif t < peak_at:
                rise = (t - start) / (peak_at - start)
                rate = 2 * baseline + (1.0 - 2 * baseline) * rise**1.5
            else:
                rate = tail + (1.0 - tail) * (1.0 + (t - peak_at) / decay_scale) ** -1.4
            campaign_mass.append(rate * width)
            noise_mass.append((1.0 + 0.6 * rate**0.5) * width)
        campaign_scale = campaign_posts / sum(campaign_mass)
        noise_scale = noise_posts / sum(noise_mass) if noise_posts > 0 else 0.0
        self.width = width
        self.noise_share = array("d")
        self.cdf = array("d", [0.0])
        running = 0.0
        total = campaign_posts + noise_posts
        for c_mass, n_mass in zip(campaign_mass, noise_mass, strict=True):
            c_mass *= campaign_scale
            n_mass *= noise_scale
            running += (c_mass + n_mass) / total
            self.cdf.append(running)
            self.noise_share.append(n_mass / (c_mass + n_mass))
        self.cdf[-1] = 1.0  # guard against float drift


@dataclass(slots=True)
class _Pool:
    """Posts of one (platform, stream) that later posts may repost, quote or reply to."""

    recent: list[int] = field(default_factory=list)
    urn: array[int] = field(default_factory=lambda: array("i"))  # preferential attachment: one entry per pull
    announcements: list[int] = field(default_factory=list)

    def add(self, index: int, weight: int) -> None:
        """Make post `index` available, `weight` times in the urn."""
        self.recent.append(index)
        if len(self.recent) > 6000:
            del self.recent[:3000]  # keep the "recent" window bounded
        for _ in range(weight):
            self.urn.append(index)

    def pick(self, rng: random.Random) -> int:
        """The post a new repost, quote or reply refers to."""
        roll = rng.random()
        if roll < 0.5:
            # Rich get richer: a post is picked in proportion to the engagement it already has.
            return self.urn[int(rng.random() * len(self.urn))]
        if roll < 0.7 and self.announcements:
            return self.announcements[int(rng.random() * len(self.announcements))]
        # Otherwise something recent, biased to the newest.
        window = min(len(self.recent), 3000)
        return self.recent[-1 - int(rng.random() ** 2 * window)]


class StormGenerator:
    """Generates a storm: users and a post skeleton up front, post content on demand (see module doc)."""

    def __init__(self, spec: StormSpec, *, cache_size: int | None = 50_000) -> None:
        self.spec = spec
        self._cache_size = cache_size
        self._cache: OrderedDict[int, Post] = OrderedDict()
        self.platforms = tuple(name for name, _ in spec.platforms)
        self._campaign_tags = spec.hashtags
        campaign_lower = {tag.lower() for tag in spec.hashtags}
        self._co_tags = tuple(t for t in texts.CO_HASHTAGS if t.lower() not in campaign_lower)
        self._co_tags_ar = tuple(t for t in texts.CO_HASHTAGS_AR if t.lower() not in campaign_lower)
        self._campaign_templates = self._usable(_CAMPAIGN_TEMPLATES)
        self._noise_templates = self._usable(_NOISE_TEMPLATES)
        population = build_population(spec)
        self.users: list[User] = population.users
        self._activity = population.activity
        self._user_index_by_id = {user.id: user.index for user in self.users}
        self._build_skeleton()

    def _usable(self, templates: dict[str, tuple[tuple[str, ...], ...]]) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Templates per language, without those mentioning a campaign account when there is none."""
        if self.spec.accounts:
            return templates
        return {
            lang: tuple(t for t in options if "{account}" not in t) or options for lang, options in templates.items()
        }

    # -------------------------------------------------------------------------------------- skeleton

    def _build_skeleton(self) -> None:
        spec = self.spec
        rng = random.Random(mix_seed(spec.seed, 2))
        noise_posts = spec.posts * NOISE_SHARE / (1 - NOISE_SHARE)
        intensity = _Intensity(spec, float(spec.posts), noise_posts)
        total = round(spec.posts + noise_posts)

        # Per-platform author samplers.
        authors_by_platform: dict[str, tuple[list[int], list[float]]] = {}
        for platform in self.platforms:
            members = [u.index for u in self.users if u.platform == platform and self._activity[u.index] > 0]
            authors_by_platform[platform] = (members, cumulative(self._activity[i] for i in members))
        platform_cum = cumulative(share for _, share in spec.platforms)
        home = "x" if "x" in self.platforms else self.platforms[0]

        # The campaign accounts' own originals: an announcement during the lead, a burst at the start.
        schedule: list[tuple[int, int]] = []
        start_ms = int(spec.start.timestamp() * 1000)
        lead_ms = int(spec.lead.total_seconds() * 1000)
        burst_ms = int(min(15 * 60_000, (spec.end - spec.start).total_seconds() * 1000 / 3))
        for user in self.users:
            if user.role != "campaign":
                continue
            if lead_ms:
                schedule.append((start_ms - int(lead_ms * rng.uniform(0.2, 0.8)), user.index))
            for _ in range(2 + rng.randrange(3)):
                schedule.append((start_ms + int(burst_ms * rng.random()), user.index))
        schedule.sort()

        self.ms = array("q")
        self.ids = array("q")
        self.author = array("i")
        self.flags = array("B")
        self.ref = array("i")
        self.root = array("i")
        self.platform_code = array("B")
        self.repost_count = array("i")
        self.quote_count = array("i")
        self.reply_count = array("i")
        pools: dict[tuple[int, bool], _Pool] = {}
        platform_codes = {name: code for code, name in enumerate(self.platforms)}
        last_id = 0
        person_originals = 0
        # Per-author constants the hot loop needs, in flat lists (attribute access costs in a 1M loop).
        attraction = [1 + int(math.log10(1 + u.followers)) for u in self.users]
        is_person = [u.role == "person" for u in self.users]
        counters = (self.repost_count, self.quote_count, self.reply_count)
        ms_append, ids_append, author_append = self.ms.append, self.ids.append, self.author.append
        flags_append, ref_append, root_append = self.flags.append, self.ref.append, self.root.append
        platform_append = self.platform_code.append
        reposts_append, quotes_append = self.repost_count.append, self.quote_count.append
        replies_append = self.reply_count.append
        getrandbits = rng.getrandbits
        flags, root, ids = self.flags, self.root, self.ids

        def emit(ms: int, author: int, code: int, ref: int, platform: int) -> None:
            nonlocal last_id
            candidate = (((ms - TWITTER_EPOCH_MS) << 22) | (getrandbits(10) << 12)) | getrandbits(4)
            if candidate <= last_id:
                candidate = last_id + 1  # same millisecond: X's sequence bits keep ids strictly increasing
            last_id = candidate
            index = len(ids)
            ms_append((candidate >> 22) + TWITTER_EPOCH_MS)
            ids_append(candidate)
            author_append(author)
            flags_append(code)
            ref_append(ref)
            platform_append(platform)
            reposts_append(0)
            quotes_append(0)
            replies_append(0)
            kind = code & _KIND_MASK
            if ref >= 0:
                counters[kind - 1][ref] += 1
                pools[(platform, bool(flags[ref] & _NOISE))].urn.append(ref)
                root_append(root[ref] if kind == 3 else index)
            else:
                root_append(index)
            if kind != 1:  # reposts cannot be reposted; X points such pulls at the original
                pool = pools.get((platform, bool(code & _NOISE)))
                if pool is None:
                    pool = pools[(platform, bool(code & _NOISE))] = _Pool()
                pool.add(index, attraction[author])
                if code & _ACCOUNT_POST:
                    pool.announcements.append(index)

        next_scheduled = 0
        u_desc = 1.0
        cell = 0
        cdf = intensity.cdf
        last_cell = len(cdf) - 2
        noise_share = intensity.noise_share
        t0, width = intensity.t0, intensity.width
        single_platform = len(self.platforms) == 1
        random_ = rng.random
        bisect_right = bisect.bisect_right
        choose_kind = self._choose_kind
        author_of = self.author
        for remaining in range(total, 0, -1):
            # Ascending uniform order statistics one at a time (Rényi), so times come out sorted for free.
            u_desc *= random_() ** (1.0 / remaining)
            u = 1.0 - u_desc
            while cell < last_cell and cdf[cell + 1] <= u:
                cell += 1
            span = cdf[cell + 1] - cdf[cell]
            offset = (u - cdf[cell]) / span if span > 0 else 0.5
            ms = int((t0 + width * (cell + min(offset, 0.999999))) * 1000)
            while next_scheduled < len(schedule) and schedule[next_scheduled][0] <= ms:
                sched_ms, account = schedule[next_scheduled]
                next_scheduled += 1
                emit(sched_ms, account, 0 | _ACCOUNT_POST, -1, platform_codes[home])

            noise = random_() < noise_share[cell]
            if single_platform:
                platform = self.platforms[0]
            else:
                platform = self.platforms[bisect_right(platform_cum, random_() * platform_cum[-1])]
            members, cum = authors_by_platform[platform]
            if not members:
                continue
            author = members[bisect_right(cum, random_() * cum[-1])]
            code_platform = platform_codes[platform]
            kind, ref = choose_kind(rng, pools, code_platform, noise)
            if ref >= 0 and author_of[ref] == author:
                author = members[bisect_right(cum, random_() * cum[-1])]  # rarely yourself
            code = kind | (_NOISE if noise else 0)
            if kind == 0 and not noise and is_person[author]:
                person_originals += 1
                if person_originals % _HOSTILE_EVERY == 5:
                    code |= _HOSTILE
                elif random_() < _DELETED_ORIGINAL_SHARE:
                    code |= _DELETED
            emit(ms, author, code, ref, code_platform)
        while next_scheduled < len(schedule):
            sched_ms, account = schedule[next_scheduled]
            next_scheduled += 1
            emit(sched_ms, account, 0 | _ACCOUNT_POST, -1, platform_codes[home])

    @staticmethod
    def _choose_kind(
        rng: random.Random, pools: dict[tuple[int, bool], _Pool], platform: int, noise: bool
    ) -> tuple[int, int]:
        """The kind code and referenced post index (-1 for originals) of the next post."""
        shares = _NOISE_KIND_SHARES if noise else _CAMPAIGN_KIND_SHARES
        roll = rng.random()
        kind = 0
        for name, share in shares:
            if roll < share:
                kind = KINDS.index(name)
                break
            roll -= share
        if kind == 0:
            return 0, -1
        own = pools.get((platform, noise))
        if noise and kind != 1 and rng.random() < 0.3:
            # Noise replies and quotes sometimes engage with campaign posts without the campaign tags:
            # that engagement shows in the campaign post's counters but not in the campaign.
            own = pools.get((platform, False)) or own
        if own is None or not own.recent:
            return 0, -1
        return kind, own.pick(rng)

    # -------------------------------------------------------------------------------------- content

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, post_id: int) -> int | None:
        """The position of post `post_id` in time order, or None if there is no such post."""
        position = bisect.bisect_left(self.ids, post_id)
        if position < len(self.ids) and self.ids[position] == post_id:
            return position
        return None

    def post_by_id(self, post_id: int) -> Post | None:
        """The post with id `post_id` (deleted ones included), rebuilt if needed."""
        position = self.index_of(post_id)
        return None if position is None else self.post(position)

    def user(self, index: int) -> User:
        """User number `index`."""
        return self.users[index]

    def user_by_id(self, user_id: str) -> User | None:
        """The user with native id `user_id`, if any."""
        index = self._user_index_by_id.get(str(user_id))
        return None if index is None else self.users[index]

    def posts(self) -> Iterator[Post]:
        """All posts in time (and id) order, deleted and noise posts included (see their flags).

        Memory stays bounded: an original is kept only until its last repost has been built (reposts are
        the only posts that need another post's content), and at most `cache_size` of them at once.
        """
        pending = array("i", self.repost_count)
        keep: OrderedDict[int, Post] = OrderedDict()
        flags, refs = self.flags, self.ref
        for index in range(len(self.ids)):
            if flags[index] & _KIND_MASK == 1:
                ref = refs[index]
                original = keep.get(ref)
                if original is None:
                    original = self._make_post(ref)  # evicted under memory pressure: rebuild it
                post = self._make_repost(index, original)
                pending[ref] -= 1
                if pending[ref] <= 0:
                    keep.pop(ref, None)
            else:
                post = self._make_post(index)
                if pending[index] > 0:
                    keep[index] = post
                    if self._cache_size is not None and len(keep) > self._cache_size:
                        keep.popitem(last=False)
            yield post

    def post(self, index: int) -> Post:
        """Post number `index` in time order; identical whenever and however often it is asked for."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        if self.flags[index] & _KIND_MASK == 1:
            return self._make_repost(index, self.post(self.ref[index]))
        post = self._make_post(index)
        self._cache[index] = post  # reposts are cheap to rebuild; originals are what they need
        if self._cache_size is not None and len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return post

    def _make_post(self, index: int) -> Post:
        """Build a non-repost post from its skeleton row and its own seeded RNG."""
        code = self.flags[index]
        kind = code & _KIND_MASK
        noise = bool(code & _NOISE)
        author = self.users[self.author[index]]
        post_id = self.ids[index]
        rng = random.Random(mix_seed(self.spec.seed, 1_000_003 + index))
        source = _SOURCE_CHOICE.pick(rng)
        roll = rng.random()
        if roll < 0.88:
            lang = author.lang
        elif roll < 0.92:
            lang = "und"
        else:
            lang = PERSON_LANG_CHOICE.pick(rng)
        builder = _TextBuilder()
        in_reply_to = None
        ref_index = self.ref[index]
        # Replies and quotes only need who and which post they answer, both in the skeleton.
        target_author = self.users[self.author[ref_index]] if ref_index >= 0 else None
        if kind == 3 and target_author is not None:
            builder.mention(target_author.index, target_author.username)
            builder.plain(" ")
            in_reply_to = target_author.index
        templates = (self._noise_templates if noise else self._campaign_templates)[lang]
        template = templates[int(rng.random() * len(templates))]
        if code & _HOSTILE:
            template = (texts.HOSTILE_TEXT + " ", "{tags}")
        elif not noise and not code & _ACCOUNT_POST and author.role == "person" and (
                self.spec.toolkit_share or self.spec.personal_texts):
            template = own_words(self.spec, index, lang, template)
        for piece in template:
            if piece == "{tags}":
                self._write_tags(rng, builder, lang, noise)
            elif piece == "{account}":
                account = self.users[rng.randrange(len(self.spec.accounts))]
                builder.mention(account.index, account.username)
            else:
                builder.plain(piece)
        if kind == 2 and target_author is not None:
            short = "https://t.co/" + base62(rng.getrandbits(60), 10)
            builder.plain(" ")
            builder.link(short, f"https://twitter.com/{target_author.username}/status/{self.ids[ref_index]}")

        reposts, quotes, replies = self.repost_count[index], self.quote_count[index], self.reply_count[index]
        # Likes follow reposts and audience size, with a heavy lognormal spread.
        audience = author.followers
        likes = int(reposts * rng.uniform(1.5, 4.0) + quotes * rng.uniform(0.5, 2.0) + replies * 0.5)
        likes += int(rng.lognormvariate(math.log(1 + 0.004 * audience), 1.1))
        impressions = int(
            audience * rng.uniform(0.03, 0.25) + reposts * rng.uniform(150, 600) + likes * rng.uniform(20, 60)
        ) + rng.randrange(5, 60)
        return Post(
            id=post_id, ms=self.ms[index], platform=self.platforms[self.platform_code[index]],
            author=author.index, kind=KINDS[kind], text=builder.text(), lang=lang,
            hashtags=tuple(builder.hashtags), mentions=tuple(builder.mentions), urls=tuple(builder.urls),
            ref_id=self.ids[ref_index] if ref_index >= 0 else None, conversation_id=self.ids[self.root[index]],
            in_reply_to=in_reply_to, campaign=not noise, deleted=bool(code & _DELETED), reposts=reposts,
            replies=replies, likes=likes, quotes=quotes, bookmarks=int(likes * rng.uniform(0.01, 0.06)),
            impressions=impressions, source=source, possibly_sensitive=rng.random() < 0.003,
        )

    def _write_tags(self, rng: random.Random, builder: _TextBuilder, lang: str, noise: bool) -> None:
        """Hashtags (campaign tags typed in mixed case, then co-hashtags) and maybe an official's handle."""
        tags: list[str] = []
        if not noise:
            count = min(len(self._campaign_tags), 1 + int(rng.random() ** 1.5 * 3))
            for tag in _pick_distinct(rng, self._campaign_tags, count):
                roll = rng.random()
                if roll < 0.6:
                    tags.append(tag)
                elif roll < 0.85:
                    tags.append(tag.lower())
                elif roll < 0.9:
                    tags.append(tag.upper())
                else:
                    tags.append(tag[:1].upper() + tag[1:].lower())
        co_pool = self._co_tags_ar if lang == "ar" and rng.random() < 0.6 else self._co_tags
        co_count = (1 + int(rng.random() * 2)) if noise else int(rng.random() * 3)
        if co_pool:
            tags.extend(_pick_distinct(rng, co_pool, co_count))
        mention_target = bool(self.spec.targets) and not noise and rng.random() < _TARGET_MENTION_SHARE
        target_index = len(self.spec.accounts) + rng.randrange(len(self.spec.targets)) if mention_target else -1
        if target_index >= 0 and rng.random() < 0.5:
            builder.mention(target_index, self.users[target_index].username)
            builder.plain(" ")
            target_index = -1
        for position, tag in enumerate(tags):
            if position:
                builder.plain(" ")
            builder.hashtag(tag)
        if target_index >= 0:
            builder.plain(" ")
            builder.mention(target_index, self.users[target_index].username)

    def _make_repost(self, index: int, original: Post) -> Post:
        """A repost: "RT @handle: " plus the original's text, entities shifted, metrics copied (as X does)."""
        post_id = self.ids[index]
        # Reposts need no RNG of their own (seeding one is the costliest step of a post): the client app
        # comes from the id's random worker bits.
        source = _SOURCE_CHOICE.at(((post_id >> 12) & 0x3FF) / 1024)
        original_author = self.users[original.author]
        prefix = f"RT @{original_author.username}: "
        shift = len(prefix)
        full = prefix + original.text
        hashtags = tuple((s + shift, e + shift, tag) for s, e, tag in original.hashtags)
        mentions = (
            (3, 4 + len(original_author.username), original_author.index),
            *((s + shift, e + shift, who) for s, e, who in original.mentions),
        )
        urls = tuple((s + shift, e + shift, short, long) for s, e, short, long in original.urls)
        text = full
        if len(full) > _RT_LIMIT:
            # Cut like X does, but never through an entity: search matches a repost by its entities.
            last_entity_end = max((e for _, e, *_ in hashtags + mentions + urls), default=0)
            cut = max(_RT_LIMIT - 1, last_entity_end)
            escape_start = full.rfind("&", max(0, cut - 5), cut)
            if escape_start != -1 and ";" not in full[escape_start:cut]:
                cut = escape_start  # do not leave half an "&amp;" behind
            if cut < len(full):
                text = full[:cut].rstrip() + "…"
        return Post(
            id=post_id, ms=self.ms[index], platform=original.platform, author=self.author[index], kind=REPOST,
            text=text, lang=original.lang, hashtags=hashtags, mentions=mentions, urls=urls, ref_id=original.id,
            conversation_id=post_id, in_reply_to=None, campaign=not (self.flags[index] & _NOISE), deleted=False,
            reposts=original.reposts, replies=original.replies, likes=original.likes, quotes=original.quotes,
            bookmarks=original.bookmarks, impressions=original.impressions, source=source,
            possibly_sensitive=original.possibly_sensitive,
        )


def own_words(spec: StormSpec, index: int, lang: str, template: tuple[str, ...]) -> tuple[str, ...]:
    """What supporter post `index` says instead of `template`: the toolkit's text, varied a little (a share
    `toolkit_share` of them), or with `personal_texts` a sentence of their own before the template.

    Drawn from a stream of its own, so the storm's other draws stay what they were.
    """
    rng = random.Random(mix_seed(spec.seed, 7_000_003 + index))
    if rng.random() < spec.toolkit_share:
        text = texts.TOOLKIT_TEXTS.get(lang, texts.TOOLKIT_TEXTS["en"])
        _, before, swap, after = texts.TOOLKIT_VARIATIONS[int(_TOOLKIT_VARIATION.pick(rng))]
        if swap is not None:
            text = text.replace(swap[0], swap[1], 1)
        return _split_template(before + text + after)
    if not spec.personal_texts:
        return template
    sentence = " ".join(part[int(rng.random() * len(part))] for part in texts.PERSONAL_PARTS)
    return (sentence + " ", *template)


def _pick_distinct(rng: random.Random, items: tuple[str, ...], count: int) -> list[str]:
    """`count` distinct items in random order (a partial Fisher-Yates; `rng.sample` is slow for tiny k)."""
    pool = list(items)
    size = len(pool)
    count = min(count, size)
    for i in range(count):
        j = i + int(rng.random() * (size - i))
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:count]



def iter_storm(spec: StormSpec, *, cache_size: int = 50_000) -> Iterator[Post]:
    """Stream a storm's posts (all platforms, noise and deleted ones flagged) in time order.

    Memory: users are materialized first (O(population), under 1 KB each); the post skeleton costs about
    50 bytes per post in `array` columns; `Post` objects are built one at a time, and an original is kept
    only until its last repost has been built, at most `cache_size` of them (beyond that the oldest are
    dropped and rebuilt on demand). To get the users too, use the generator directly:
    ``gen = StormGenerator(spec); gen.users; for post in gen.posts(): ...``.
    """
    from stormwatch.simulator.background import background_posts  # background.py builds on this module

    if spec.counter_posts or spec.target_responses:
        # Those posts are drawn once the storm is whole: such a storm is materialized (intel.py).
        from stormwatch.simulator.storm import Storm

        yield from Storm.build(spec).posts
        return
    generator = StormGenerator(spec, cache_size=cache_size)
    yield from background_posts(spec, generator.users)
    yield from generator.posts()
