"""Each platform's facts in one place: name, label, colour, how handles, mentions and links are written,
and what it reports. Imports nothing of stormwatch, so every layer (config, normalizers, dashboard, report)
can read it.

Link and mention forms are data (regular expressions with named groups `handle`, and `post` for post
links) so that everything that leaves the machine can recognize every way a platform names an account.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

# X ids are snowflakes: the top bits (id >> 22) are milliseconds since this moment (2010-11-04T01:42:54.657Z).
X_SNOWFLAKE_EPOCH_MS = 1288834974657


@dataclass(frozen=True)
class HandleFormat:
    """How a platform writes handles: in config files, in mentions inside post texts, and in links.

    The forms are regular expressions (matched case-blind), compiled on first use: most processes (the
    import reader, the collector) never need them.
    """

    mention: str  # how a mention is written, `{handle}` standing for the handle
    valid: str  # a handle as a campaign may list it (without the leading `@`)
    mentions: tuple[str, ...]  # mentions inside a post's text (group `handle`)
    profile_links: tuple[str, ...]  # links to an account's profile (group `handle`)
    post_links: tuple[str, ...]  # links to one post (groups `handle` and `post`)
    profile_url: str  # the platform's own profile address: `{handle}` (and `{instance}`) stand for their values
    # Any other address on the platform whose path starts with an account (`x.com/NAME/likes`,
    # `bsky.app/profile/NAME/lists/…`, `x.com/i/web/status/…`): group `handle` *may* name an account. For
    # hiding links in reports (a link whose account is not known to be named is hidden), never for naming.
    loose_links: tuple[str, ...] = ()

    def is_valid(self, handle: str) -> bool:
        """Whether `handle` (without `@`) is a handle of this platform."""
        return _compiled(self.valid).fullmatch(handle) is not None

    def mention_of(self, handle: str) -> str:
        """How a post mentions `handle`."""
        return self.mention.format(handle=handle)

    def mention_patterns(self) -> tuple[re.Pattern[str], ...]:
        """Every way a post's text mentions an account."""
        return tuple(_compiled(text) for text in self.mentions)

    def links(self) -> tuple[re.Pattern[str], ...]:
        """Every link form that names an account: post links first (they are the longer match)."""
        return tuple(_compiled(text) for text in self.post_links + self.profile_links)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class Reports:
    """What a platform reports about posts and accounts (what the metrics can and cannot say about it)."""

    impressions: bool  # posts carry how often they were seen
    reposts_as_posts: bool  # a repost arrives as a post of its own (kind `repost`), not only as a counter
    follower_counts: bool  # accounts come with their follower counts
    billed: bool  # reads cost money (the collector counts spend and obeys budgets)
    volume_counts: bool  # the platform counts a query's posts per minute (coverage check)
    # Whether those counts count reposts: X's counts (since 2026-05-04) count what its search returns, no reposts.
    counts_reposts: bool = True
    # Why reposts are not among the collected posts, where they are not (their count is then "—", never 0).
    reposts_missing: str | None = None


@dataclass(frozen=True)
class Platform:
    """One platform stormwatch collects from."""

    name: str  # the key in config files and in every row uid (`x:1578516068309794817`)
    label: str  # how people write it
    colour: str  # its colour in every chart (Okabe–Ito: distinguishable with colour-vision deficiencies)
    handles: HandleFormat
    reports: Reports
    snowflake_epoch_ms: int | None = None  # ids carry their creation time (milliseconds since this epoch)


# A link starts at a word boundary of the text (so `about.twitter.com/jobs` and `dropbox.com/x` are not X links);
# the scheme is optional because people write `x.com/name` and `name.bsky.social` bare.
_SCHEME = r"(?<![\w.@/-])(?:https?://)?"
# A mention's at-sign: `@`, or the full-width `＠` (U+FF20, which X reads as a mention) or small `﹫` (U+FE6B)
# that look the same to a reader; none of them may follow a word character or another at-sign (`me@example.org`).
_AT = "(?<![\\w@\uff20\ufe6b])[@\uff20\ufe6b]"
# Bluesky handles are domain names (`name.bsky.social`, `example.org`); accounts are also named by DID.
_BLUESKY_HANDLE = r"(?:did:[a-z0-9]+:[\w.:%-]+|[\w-]+(?:\.[\w-]+)+)"

# X's own addresses and its front-ends (embed fixers, mirrors, nitter instances under any domain).
_X_HOSTS = (r"(?:(?:www\.|mobile\.)?(?:x|twitter)\.com|(?:[\w-]+\.)*(?:fxtwitter|vxtwitter|fixupx|fixvx|twittpr|"
            r"xcancel|twstalker|twiiit|sotwe|twitfix|nitter)(?:\.[\w-]+)+|(?:[\w-]+\.)+nitter(?:\.[\w-]+)*|"
            r"nitter(?:\.[\w-]+)+)")

X = Platform(
    name="x",
    label="X",
    colour="#0072B2",
    handles=HandleFormat(
        mention="@{handle}",
        valid=r"\w{1,50}",
        mentions=(_AT + r"(?P<handle>\w{1,50})",),
        profile_links=(_SCHEME + r"(?:www\.|mobile\.)?(?:x|twitter)\.com/(?P<handle>\w{1,50})(?![\w/])",),
        post_links=(_SCHEME + r"(?:www\.|mobile\.)?(?:x|twitter)\.com/(?P<handle>\w{1,50})/status(?:es)?/"
                    r"(?P<post>\d+)",),
        profile_url="https://x.com/{handle}",
        loose_links=(_SCHEME + r"(?:www\.|mobile\.)?(?:x|twitter)\.com/(?P<handle>\w{1,50})",
                     # `x.com//NAME`, `x.com/@NAME`, and the front-ends people share X through (the Bluesky app
                     # drops the scheme when it shortens a link): `fxtwitter.com/NAME`, `nitter.net/NAME`...
                     _SCHEME + _X_HOSTS + r"/+@?(?P<handle>\w{1,50})"),
    ),
    reports=Reports(impressions=True, reposts_as_posts=True, follower_counts=True, billed=True, volume_counts=True,
                    counts_reposts=False),
    snowflake_epoch_ms=X_SNOWFLAKE_EPOCH_MS,
)

_INSTANCE = r"(?P<instance>[\w-]+(?:\.[\w-]+)+)"
_MASTODON_USER = r"(?P<handle>\w+(?:[.-]\w+)*)"
# An instance shows accounts of other servers under its own address: `mastodon.social/@user@kolektiva.social`.
_MASTODON_REMOTE = r"@(?P<remote>[\w-]+(?:\.[\w-]+)+)"

MASTODON = Platform(
    name="mastodon",
    label="Mastodon",
    colour="#CC79A7",
    handles=HandleFormat(
        mention="@{handle}",  # `@user` on the author's instance, `@user@instance` elsewhere
        valid=r"\w+(?:[.-]\w+)*(?:@[\w-]+(?:\.[\w-]+)+)?",
        mentions=(_AT + r"(?P<handle>\w+(?:[.-]\w+)*(?:@[\w-]+(?:\.[\w-]+)+)?)",),
        profile_links=(_SCHEME + _INSTANCE + "/@" + _MASTODON_USER + _MASTODON_REMOTE + r"(?![\w/])",
                       _SCHEME + _INSTANCE + "/@" + _MASTODON_USER + r"(?![\w/@])",
                       _SCHEME + _INSTANCE + "/users/" + _MASTODON_USER + r"(?![\w/])"),
        post_links=(_SCHEME + _INSTANCE + "/@" + _MASTODON_USER + r"/(?P<post>\d+)",
                    _SCHEME + _INSTANCE + "/users/" + _MASTODON_USER + r"/statuses/(?P<post>\d+)"),
        profile_url="https://{instance}/@{handle}",
        loose_links=(_SCHEME + _INSTANCE + "/@" + _MASTODON_USER + f"(?:{_MASTODON_REMOTE})?",
                     _SCHEME + _INSTANCE + "/users/" + _MASTODON_USER),
    ),
    # A boost is a status of its own, but the tag timelines the collector reads carry no boosts.
    reports=Reports(impressions=False, reposts_as_posts=True, follower_counts=True, billed=False,
                    volume_counts=False, reposts_missing="tag timelines carry no boosts"),
)

_BLUESKY_PROFILE = _SCHEME + r"(?:www\.)?bsky\.app/profile/(?P<handle>" + _BLUESKY_HANDLE + ")"
# Any host serving Bluesky's app (`staging.bsky.app`, `main.bsky.dev`), and other sites' paths holding a handle
# (`clearsky.app/NAME.bsky.social`).
_BLUESKY_ANY_PROFILE = (_SCHEME + r"(?:[\w-]+\.)*bsky\.(?:app|dev)/+profile/+@?(?P<handle>" + _BLUESKY_HANDLE + ")")
_BLUESKY_IN_PATH = (_SCHEME + r"[\w-]+(?:\.[\w-]+)+(?:/[^\s/]*)*/@?(?P<handle>[\w-]+(?:\.[\w-]+)*\.bsky\.social)"
                    r"(?![\w-])")

BLUESKY = Platform(
    name="bluesky",
    label="Bluesky",
    colour="#E69F00",
    handles=HandleFormat(
        mention="@{handle}",  # the whole domain handle: `@name.bsky.social`
        valid=_BLUESKY_HANDLE,
        mentions=(_AT + r"(?P<handle>[\w-]+(?:\.[\w-]+)+)",),
        profile_links=(_BLUESKY_PROFILE + r"(?![\w/])", _SCHEME + r"(?P<handle>[\w-]+\.bsky\.social)(?!\.?[\w-])"),
        post_links=(_BLUESKY_PROFILE + r"/post/(?P<post>\w+)",
                    r"(?<![\w.@/-])at://(?P<handle>" + _BLUESKY_HANDLE + r")/app\.bsky\.feed\.post/(?P<post>\w+)"),
        profile_url="https://bsky.app/profile/{handle}",
        loose_links=(_BLUESKY_PROFILE, r"(?<![\w.@/-])at://(?P<handle>" + _BLUESKY_HANDLE + ")",
                     _BLUESKY_ANY_PROFILE, _BLUESKY_IN_PATH),
    ),
    # Reposts are records of their own on Bluesky, not posts: they count only through a post's repostCount.
    # Follower counts come from a profile lookup after the posts (the live feed carries none).
    reports=Reports(impressions=False, reposts_as_posts=False, follower_counts=True, billed=False,
                    volume_counts=False, reposts_missing="reposts are records"),
)

PLATFORMS: tuple[Platform, ...] = (X, MASTODON, BLUESKY)
PLATFORM_NAMES: tuple[str, ...] = tuple(p.name for p in PLATFORMS)
_BY_NAME = {p.name: p for p in PLATFORMS}


def platform(name: str) -> Platform:
    """The platform called `name` (KeyError naming the known ones otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a known platform ({', '.join(PLATFORM_NAMES)})") from None


def find_platform(name: str) -> Platform | None:
    """The platform called `name`, or None."""
    return _BY_NAME.get(name)


def label(name: str) -> str:
    """A platform's display name (`X`, `Mastodon`); an unknown name as it is."""
    found = _BY_NAME.get(name)
    return found.label if found is not None else name


def is_valid_handle(handle: str) -> bool:
    """Whether `handle` (without `@`) is a handle on some platform: campaigns list accounts without saying where."""
    return len(handle) <= 100 and any(p.handles.is_valid(handle) for p in PLATFORMS)


def snowflake_ms(native_id: str | int) -> int:
    """When an X post or user id was minted, in milliseconds since the Unix epoch (ids carry their creation time)."""
    return (int(native_id) >> 22) + X_SNOWFLAKE_EPOCH_MS


def x_search_queries(hashtags: tuple[str, ...], *, include_reposts: bool, max_length: int) -> list[str]:
    """X's search and counts queries for these hashtags: OR'd into as few as fit `max_length` characters each,
    with `-is:retweet` when reposts are left out (ValueError when one hashtag alone is too long). The collector
    asks X with them, and coverage counts only the counts of these queries."""
    return or_queries([f"#{tag}" for tag in hashtags], "" if include_reposts else " -is:retweet", max_length)


def or_queries(terms: list[str], suffix: str, max_length: int) -> list[str]:
    """Terms OR'd into as few X queries as fit `max_length` characters each, each ending in `suffix`
    (ValueError when one term alone is too long)."""
    queries: list[str] = []
    group: list[str] = []

    def render(items: list[str]) -> str:
        body = items[0] if len(items) == 1 else "(" + " OR ".join(items) + ")"
        return body + suffix

    for term in terms:
        if len(render([term])) > max_length:
            raise ValueError(f"{term} alone makes a query longer than {max_length} characters")
        if group and len(render([*group, term])) > max_length:
            queries.append(render(group))
            group = []
        group.append(term)
    if group:
        queries.append(render(group))
    return queries


def not_reported(name: str) -> tuple[str, ...]:
    """The headline figures a platform cannot give (`impressions`; `reposts` where none are collected): shown
    as "—" with a note, and null in JSON, never as 0."""
    found = _BY_NAME.get(name)
    if found is None:
        return ()
    return (*(() if found.reports.impressions else ("impressions",)),
            *(() if found.reports.reposts_missing is None else ("reposts",)))


def not_reported_note(names: Iterable[str]) -> str | None:
    """The note that goes with the "—" cells of these platforms (None when every one reports everything)."""
    names = list(dict.fromkeys(names))
    sentences = []
    quiet = [label(n) for n in names if "impressions" in not_reported(n)]
    if quiet:
        sentences.append(f"{_and(quiet)} {'does' if len(quiet) == 1 else 'do'} not report impressions")
    missing = [f"{label(n)} ({_BY_NAME[n].reports.reposts_missing})" for n in names
               if n in _BY_NAME and _BY_NAME[n].reports.reposts_missing is not None]
    if missing:
        sentences.append(f"no reposts are collected from {_and(missing, 'or')}")
    return "; ".join(sentences) + "." if sentences else None


def _and(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]
