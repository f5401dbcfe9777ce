"""The storm's population: the campaign's own accounts, the officials it addresses, and ordinary people.

Users are O(population), not O(posts), so they are built up front in one pass from their own seeded stream:
campaign accounts (established, 10k-60k followers), targets (huge audiences; they never post), and people
spread over the platforms by share, with heavy-tailed followers and Pareto-distributed activity.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stormwatch.simulator import texts
from stormwatch.simulator.draws import PERSON_LANG_CHOICE, base62, cumulative, mix_seed
from stormwatch.simulator.spec import StormSpec, User, snowflake


@dataclass(frozen=True)
class Population:
    """The users of a storm (index = position) and how actively each posts (0 for targets)."""

    users: list[User]
    activity: list[float]


def build_population(spec: StormSpec) -> Population:
    """Every user of the storm `spec` describes, drawn from the spec's seed alone."""
    platforms = tuple(name for name, _ in spec.platforms)
    users: list[User] = []
    rng = random.Random(mix_seed(spec.seed, 1))
    taken_ids: set[int] = set()
    taken_handles: set[str] = set()
    home = "x" if "x" in platforms else platforms[0]
    storm_ms = int(spec.window_start.timestamp() * 1000)

    def new_id(created_ms: int) -> str:
        while True:
            if created_ms < 1370000000000:  # before mid-2013 X user ids were sequential, not snowflakes
                candidate = rng.randrange(1_000_000, 1_500_000_000)
            else:
                candidate = snowflake(created_ms, rng.getrandbits(10), rng.getrandbits(12))
            if candidate not in taken_ids:
                taken_ids.add(candidate)
                return str(candidate)

    def claim(handle: str) -> str:
        base = handle[:15]
        candidate = base
        while candidate.lower() in taken_handles:
            digits = str(rng.randrange(1, 9999))
            candidate = base[: 15 - len(digits)] + digits
        taken_handles.add(candidate.lower())
        return candidate

    def image(created_ms: int) -> str:
        if rng.random() < 0.08:
            return "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"
        token = base62(rng.getrandbits(48), 8)
        return f"https://pbs.twimg.com/profile_images/{snowflake(created_ms + 86_400_000)}/{token}_normal.jpg"

    # Campaign accounts: established, 10k-60k followers.
    for handle in spec.accounts:
        created = int(datetime(2009 + rng.randrange(6), 1 + rng.randrange(12), 1, tzinfo=UTC).timestamp()) * 1000
        followers = rng.randrange(10_000, 60_001)
        verified = rng.random() < 0.3
        users.append(
            User(
                index=len(users), id=new_id(created), platform=home, username=claim(handle),
                name=handle, created_ms=created, followers=followers, following=rng.randrange(300, 2500),
                tweet_count=rng.randrange(5_000, 60_000), listed=followers // rng.randrange(40, 120),
                verified=verified, verified_type="blue" if verified else "none",
                description=rng.choice(texts.BIOS["en"]),
                location=rng.choice(texts.PLACES["ar"]), protected=False, profile_image_url=image(created),
                lang="en", role="campaign",
            )
        )
    # Officials the campaign addresses: very large audiences, verified; they never post in the storm.
    for handle in spec.targets:
        created = int(datetime(2009 + rng.randrange(8), 1 + rng.randrange(12), 1, tzinfo=UTC).timestamp()) * 1000
        followers = int(math.exp(rng.uniform(math.log(100_000), math.log(2_000_000))))
        users.append(
            User(
                index=len(users), id=new_id(created), platform=home, username=claim(handle),
                name=handle, created_ms=created, followers=followers, following=rng.randrange(50, 900),
                tweet_count=rng.randrange(2_000, 30_000), listed=followers // rng.randrange(80, 300),
                verified=True, verified_type="government", description="", location="", protected=False,
                profile_image_url=image(created), lang="en", role="target",
            )
        )

    # People: platform by share, heavy-tailed followers and activity.
    platform_cum = cumulative(share for _, share in spec.platforms)
    first_ms = int(datetime(2008, 1, 1, tzinfo=UTC).timestamp() * 1000)
    last_ms = storm_ms - 30 * 86_400_000
    activity: list[float] = [0.0] * len(users)
    for _ in range(spec.people):
        platform = spec.platforms[bisect.bisect_right(platform_cum, rng.random() * platform_cum[-1])][0]
        lang = PERSON_LANG_CHOICE.pick(rng)
        first_latin, first_shown = rng.choice(texts.FIRST_NAMES[lang])
        last_latin, last_shown = rng.choice(texts.LAST_NAMES[lang])
        handle = _handle(rng, first_latin, last_latin)
        style = rng.random()
        if style < 0.55:
            name = f"{first_shown} {last_shown}"
        elif style < 0.75:
            name = first_shown
        elif style < 0.9:
            name = f"{first_shown} {last_shown}{rng.choice(texts.NAME_DECORATIONS)}"
        else:
            name = f"{first_shown} {last_shown[0]}."
        # Account ages skew recent: many supporters join the platform for causes like this.
        created = int(first_ms + (last_ms - first_ms) * rng.random() ** 0.7)
        if rng.random() < 0.97:
            followers = int(rng.lognormvariate(math.log(300), 1.35))
        else:
            followers = int(min(2_000_000, 5_000 * (1.0 - rng.random()) ** (-1 / 1.05)))
        verified = rng.random() < (0.4 if followers > 50_000 else 0.01)
        users.append(
            User(
                index=len(users), id=new_id(created), platform=platform, username=claim(handle),
                name=name, created_ms=created, followers=followers,
                following=min(7500, int(rng.lognormvariate(math.log(350), 1.0))),
                tweet_count=1 + int(rng.lognormvariate(math.log(2500), 1.4)),
                listed=int(followers * rng.uniform(0.0, 0.02)), verified=verified,
                verified_type="blue" if verified else "none",
                description="" if rng.random() < 0.3 else rng.choice(texts.BIOS[lang]),
                location="" if rng.random() < 0.4 else rng.choice(texts.PLACES[lang]),
                protected=False, profile_image_url=image(created), lang=lang, role="person",
            )
        )
        # Activity is Pareto: a few people post a lot, most once or twice.
        activity.append(min(300.0, (1.0 - rng.random()) ** (-1 / 1.3)))

    # Campaign accounts also repost and reply during the storm, like a busy supporter.
    for user in users:
        if user.role == "campaign":
            activity[user.index] = 25.0

    # Real data has markup in display names: give it to the busiest person, who surely posts.
    people = [u.index for u in users if u.role == "person"]
    if people:
        busiest = max(people, key=lambda i: (activity[i], -i))
        user = users[busiest]
        users[busiest] = _replace_user(
            user, name=texts.HOSTILE_DISPLAY_NAME, description=texts.HOSTILE_DESCRIPTION
        )

    return Population(users, activity)


def _handle(rng: random.Random, first: str, last: str) -> str:
    """A handle made of a name, in one of the styles people pick."""
    first_ascii = _ascii_handle(first)
    last_ascii = _ascii_handle(last)
    style = rng.random()
    if style < 0.3:
        handle = first_ascii + last_ascii
    elif style < 0.5:
        handle = f"{first_ascii}_{last_ascii}"
    elif style < 0.75:
        handle = f"{first_ascii}{rng.randrange(1, 999)}"
    elif style < 0.9:
        handle = f"{first_ascii.lower()}{last_ascii[:1].lower()}{rng.randrange(70, 100)}"
    else:
        handle = f"{first_ascii[:1].lower()}{last_ascii.lower()}"
    return handle


@functools.lru_cache(maxsize=1024)
def _ascii_handle(name: str) -> str:
    """A handle-safe ASCII form of a (possibly accented) name."""
    table = str.maketrans(
        {"é": "e", "è": "e", "É": "E", "í": "i", "á": "a", "ó": "o", "ú": "u", "ñ": "n", "ü": "u", "ö": "o",
         "ä": "a", "ç": "c", "ş": "s", "Ş": "S", "ı": "i", "ğ": "g", "Ç": "C", "Ö": "O", "Ü": "U", "â": "a"}
    )
    return "".join(ch for ch in name.translate(table) if ch.isascii() and (ch.isalnum() or ch == "_"))


def _replace_user(user: User, **changes: Any) -> User:
    values = {name: getattr(user, name) for name in User.__dataclass_fields__}
    values.update(changes)
    return User(**values)
