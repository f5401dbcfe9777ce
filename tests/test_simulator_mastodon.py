"""The simulated Mastodon instances: the recorded entities' shape, paging like Mastodon, federation."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import requests

from stormwatch.normalize.mastodon import normalize_statuses
from stormwatch.simulator.mastodon import instance_urls
from stormwatch.simulator.spec import REPOST
from tests import mastodon_support
from tests.mastodon_support import CHAOS, RETRIEVED, SOCIAL, TAG, Fediverse, cassette, tag_responses

# Fixtures the tests take by name, shared with the other Mastodon test modules.
storm = mastodon_support.storm
fedi = mastodon_support.fedi


def test_simulated_entities_have_the_recorded_shape(fedi: Fediverse) -> None:
    ((_, statuses, _),) = tag_responses("test_hashtag_tl.yaml")
    real_status = statuses[0]
    served = requests.get(f"{instance_urls(fedi.platform, [SOCIAL])[0]}/api/v1/timelines/tag/{TAG}",
                          headers={"Authorization": "Bearer any"}, timeout=5).json()[0]
    # Every field a client reads is there, with the same JSON type as on a real instance.
    for key in ("id", "created_at", "in_reply_to_id", "uri", "url", "content", "language", "visibility",
                "replies_count", "reblogs_count", "favourites_count", "quotes_count", "account", "tags",
                "mentions", "media_attachments", "reblog", "quote", "card", "poll", "emojis", "edited_at"):
        assert key in served, key
        if real_status[key] is not None and served[key] is not None:
            assert type(served[key]) is type(real_status[key]), key
    for key in ("id", "username", "acct", "display_name", "created_at", "url", "followers_count",
                "following_count", "statuses_count", "bot", "locked", "note"):
        assert type(served["account"][key]) is type(real_status["account"][key]), key
    real_v2 = json.loads(next(i for i in cassette("test_entity_tag.yaml")
                              if i["request"]["uri"].endswith("/api/v2/instance/"))["response"]["body"]["string"])
    served_v2 = requests.get(f"{instance_urls(fedi.platform, [SOCIAL])[0]}/api/v2/instance/", timeout=5).json()
    assert set(served_v2) <= set(real_v2)
    assert served_v2["configuration"]["timelines_access"].keys() == real_v2["configuration"]["timelines_access"].keys()


def test_simulator_pages_like_mastodon(fedi: Fediverse) -> None:
    base = f"{instance_urls(fedi.platform, [SOCIAL])[0]}/api/v1/timelines/tag/{TAG.lower()}"
    everything = fedi.instances.tag_timeline(SOCIAL, TAG)
    ids = [int(fedi.instances.local_id(SOCIAL, p)) for p in everything]
    assert len(ids) > 45 and ids == sorted(ids)

    default = requests.get(base, timeout=5)
    assert [int(s["id"]) for s in default.json()] == ids[::-1][:20]  # newest first, 20 by default
    assert len(requests.get(base, params={"limit": 400}, timeout=5).json()) == 40  # at most 40
    after = requests.get(base, params={"min_id": ids[4], "limit": 3}, timeout=5)
    assert [int(s["id"]) for s in after.json()] == [ids[7], ids[6], ids[5]]  # the page right after min_id
    below = requests.get(base, params={"max_id": ids[10], "since_id": ids[4], "limit": 3}, timeout=5)
    assert [int(s["id"]) for s in below.json()] == [ids[9], ids[8], ids[7]]  # newest below max_id
    links = after.links
    assert parse_qs(urlsplit(links["prev"]["url"]).query) == {"limit": ["3"], "min_id": [str(ids[7])]}
    assert parse_qs(urlsplit(links["next"]["url"]).query) == {"limit": ["3"], "max_id": [str(ids[5])]}
    assert requests.get(links["prev"]["url"], timeout=5).ok  # links lead back to the simulator
    empty = requests.get(base, params={"min_id": ids[-1]}, timeout=5)
    assert empty.json() == [] and "Link" not in empty.headers
    assert int(default.headers["X-RateLimit-Limit"]) == 300
    reset = datetime.fromisoformat(default.headers["X-RateLimit-Reset"])
    assert reset.minute % 5 == 0 and reset.second == 0 and reset > fedi.clock.now()  # aligned 5-minute windows


def test_simulator_serves_only_what_has_happened(fedi: Fediverse) -> None:
    before = len(fedi.instances.tag_timeline(SOCIAL, TAG))
    fedi.clock.advance(600)
    later = fedi.instances.tag_timeline(SOCIAL, TAG)
    assert len(later) > before
    assert all(p.ms // 1000 <= fedi.clock.now().timestamp() and not p.deleted and p.kind != REPOST for p in later)


def test_one_status_on_two_instances_has_two_ids_and_one_uri(fedi: Fediverse) -> None:
    on_social = {fedi.instances.uri_of(p): p for p in fedi.instances.tag_timeline(SOCIAL, TAG)}
    shared = [p for p in fedi.instances.tag_timeline(CHAOS, TAG) if fedi.instances.uri_of(p) in on_social]
    assert shared and len(shared) < len(on_social)  # federation reaches some statuses, not all
    post = shared[0]
    seen = [fedi.instances.status_json(name, post) for name in (SOCIAL, CHAOS)]
    assert seen[0]["id"] != seen[1]["id"] and seen[0]["uri"] == seen[1]["uri"]
    rows = [normalize_statuses([status], RETRIEVED, name).posts[0] for status, name in zip(seen, (SOCIAL, CHAOS),
                                                                                            strict=True)]
    assert rows[0].uid == rows[1].uid and rows[0].author_uid == rows[1].author_uid
