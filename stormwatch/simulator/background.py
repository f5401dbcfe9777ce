"""Everyday use of a campaign's hashtags in the days before its storm: the history X's counts endpoint shows.

A storm's hashtags are rarely new: people use them a little every day before the announced storm. A spec with
`background_days` gets that many days of such posts on X before its `window_start` (the plan reads X's counts
of the last seven days; Mastodon and Bluesky serve only the storm itself, as before). The rate follows the
day: quiet at night (UTC), busiest in the evening. About half of the posts are reposts of the others.

The background is drawn from its own seeded RNG after the storm is generated and uses the storm's existing
users, so the storm's users and posts are byte-identical with or without it; every background post is older
than the storm's first one, so ids stay increasing.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from stormwatch.simulator import texts
from stormwatch.simulator.draws import mix_seed
from stormwatch.simulator.generator import _split_template
from stormwatch.simulator.spec import ORIGINAL, REPOST, TWITTER_EPOCH_MS, Hashtag, Mention, Post, StormSpec, User
from stormwatch.simulator.spec import escape_text as escape

PLATFORM = "x"
# Background posts per day when the spec does not say: a fortieth of the storm's size (a storm of 4,000 posts
# has seen about a hundred posts a day on its hashtags in the week before), and at least two dozen.
DEFAULT_SHARE_PER_DAY = 1 / 40
MIN_PER_DAY = 24
REPOST_SHARE = 0.5
# Relative rate by UTC hour: a night trough and an evening peak (one cosine over the day).
_PEAK_HOUR = 19
_SWING = 0.7
_SALT = 3  # the generator uses seed streams 1 (population), 2 (skeleton) and 1_000_003+ (posts)


def background_per_day(spec: StormSpec) -> int:
    """How many background posts a day the spec's storm has on X."""
    if spec.background_per_day is not None:
        return spec.background_per_day
    return max(MIN_PER_DAY, round(spec.posts * DEFAULT_SHARE_PER_DAY))


def background_posts(spec: StormSpec, users: Sequence[User]) -> list[Post]:
    """The background posts before the storm (oldest first), or none when the spec asks for none."""
    if spec.background_days <= 0 or PLATFORM not in {name for name, _ in spec.platforms}:
        return []
    end_ms = int(spec.window_start.timestamp() * 1000) - 1000  # strictly before the storm's first post
    start_ms = end_ms - spec.background_days * 86_400_000
    authors = [u for u in users if u.platform == PLATFORM and u.role == "person" and u.created_ms < start_ms]
    if not authors:
        return []
    rng = random.Random(mix_seed(spec.seed, _SALT))
    moments = _moments(rng, start_ms, end_ms, background_per_day(spec) * spec.background_days)
    # Skeleton first (who, when, which original), so each original knows how often it is reposted.
    rows: list[tuple[int, int, int]] = []  # (ms, author index, position of the original or -1)
    originals: list[int] = []
    for ms in moments:
        author = authors[int(rng.random() * len(authors))].index
        if originals and rng.random() < REPOST_SHARE:
            # Reposts favour the recent: the last day's originals get most of them.
            rows.append((ms, author, originals[-1 - int(rng.random() ** 3 * len(originals))]))
        else:
            originals.append(len(rows))
            rows.append((ms, author, -1))
    reposted = Counter(ref for _, _, ref in rows if ref >= 0)
    posts: list[Post] = []
    last_id = 0
    for position, (ms, author, ref) in enumerate(rows):
        post_id = max(last_id + 1, ((ms - TWITTER_EPOCH_MS) << 22) | (rng.getrandbits(10) << 12))
        last_id = post_id
        if ref < 0:
            posts.append(_original(rng, spec, users, users[author], post_id, ms, reposted[position]))
        else:
            posts.append(_repost(users, author, post_id, ms, posts[ref]))
    return posts


def _moments(rng: random.Random, start_ms: int, end_ms: int, count: int) -> list[int]:
    """`count` sorted times between two moments, drawn from the daily rate curve (rejection sampling)."""
    top = 1 + _SWING
    moments: list[int] = []
    while len(moments) < count:
        ms = start_ms + int(rng.random() * (end_ms - start_ms))
        hour = (ms / 3_600_000) % 24
        rate = 1 + _SWING * math.cos(2 * math.pi * (hour - _PEAK_HOUR) / 24)
        if rng.random() * top < rate:
            moments.append(ms)
    return sorted(moments)


def _original(rng: random.Random, spec: StormSpec, users: Sequence[User], author: User, post_id: int, ms: int,
              reposts: int) -> Post:
    """An ordinary original on one campaign hashtag (and maybe a co-hashtag), in the author's language."""
    lang = author.lang if author.lang in texts.CAMPAIGN_TEMPLATES else "en"
    options = [t for t in texts.CAMPAIGN_TEMPLATES[lang] if spec.accounts or "{account}" not in t]
    template = options[int(rng.random() * len(options))]
    parts: list[str] = []
    hashtags: list[Hashtag] = []
    mentions: list[Mention] = []
    length = 0
    for piece in _split_template(template):
        if piece == "{tags}":
            tags = [spec.hashtags[int(rng.random() * len(spec.hashtags))]]
            if rng.random() < 0.4:
                co_tags = [t for t in texts.CO_HASHTAGS if t.lower() not in {h.lower() for h in spec.hashtags}]
                tags.append(co_tags[int(rng.random() * len(co_tags))])
            for number, tag in enumerate(tags):
                text = (" " if number else "") + "#" + tag
                hashtags.append((length + len(text) - len(tag) - 1, length + len(text), tag))
                parts.append(text)
                length += len(text)
        elif piece == "{account}":
            account = users[int(rng.random() * len(spec.accounts))]  # the campaign's accounts come first
            text = "@" + account.username
            mentions.append((length, length + len(text), account.index))
            parts.append(text)
            length += len(text)
        else:
            text = escape(piece)
            parts.append(text)
            length += len(text)
    likes = reposts * 2 + int(rng.lognormvariate(math.log(1 + 0.002 * author.followers), 1.0))
    return Post(id=post_id, ms=ms, platform=PLATFORM, author=author.index, kind=ORIGINAL, text="".join(parts),
                lang=lang, hashtags=tuple(hashtags), mentions=tuple(mentions), urls=(), ref_id=None,
                conversation_id=post_id, in_reply_to=None, campaign=True, deleted=False, reposts=reposts, replies=0,
                likes=likes, quotes=0, bookmarks=likes // 40,
                impressions=int(author.followers * rng.uniform(0.02, 0.15)) + likes * 30 + rng.randrange(5, 60),
                source="Twitter for Android" if rng.random() < 0.5 else "Twitter Web App")


def _repost(users: Sequence[User], author: int, post_id: int, ms: int, original: Post) -> Post:
    """A repost: "RT @handle: " and the original's text, entities shifted, counters copied (as X does)."""
    handle = users[original.author].username
    prefix = f"RT @{handle}: "
    shift = len(prefix)
    mentions = ((3, 4 + len(handle), original.author),
                *((s + shift, e + shift, who) for s, e, who in original.mentions))
    return Post(id=post_id, ms=ms, platform=PLATFORM, author=author, kind=REPOST, text=prefix + original.text,
                lang=original.lang, hashtags=tuple((s + shift, e + shift, tag) for s, e, tag in original.hashtags),
                mentions=mentions, urls=(), ref_id=original.id, conversation_id=post_id, in_reply_to=None,
                campaign=True, deleted=False, reposts=original.reposts, replies=0, likes=original.likes, quotes=0,
                bookmarks=original.bookmarks, impressions=original.impressions, source=original.source)

