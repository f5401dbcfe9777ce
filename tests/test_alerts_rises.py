"""The `hijack` and `copy_paste` alerts: told once per rise of their share above the threshold (the counter-hashtags'
share of voice above 25%, copies above 30%, each over the last 15 minutes), again only after the share fell and
rose again; decided from a real SQLite store the way the scheduled collector's watcher decides them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

from stormwatch import intel
from stormwatch.alerts import AlertWatcher
from stormwatch.config import Config, load_config
from stormwatch.models import Batch, Post
from stormwatch.store import Store
from stormwatch.times import iso_utc

from .conftest import T0, write_config, x_post

COUNTER = "StopTheIncitement"
TOOLKIT = ("Issa Amro is a peaceful human rights defender who faces a military court tomorrow for documenting "
           "abuses in Hebron. Drop all charges and end the judicial harassment now!")


def rises_config(tmp_path: Path, kind: str) -> Config:
    return load_config(write_config(tmp_path, "http://127.0.0.1:9", top_extra=f'[alerts]\nkinds = ["{kind}"]\n',
                                    campaign_extra=f'counter_hashtags = ["{COUNTER}"]\n'))


def post(number: int, minute: int, *, text: str | None = None, author: int | None = None,
         tags: tuple[str, ...] = ("standwithissa",)) -> Post:
    moment = T0 + timedelta(minutes=minute, seconds=number % 50)
    return dataclasses.replace(x_post(str(number), tags=tags, author=f"x:{author if author is not None else number}"),
                               ts=int(moment.timestamp()), created_at=iso_utc(moment),
                               text=text or f"My own words number {number} for the defenders of Hebron today")


def store_minutes(store: Store, config: Config, minutes: range, *, ours: int, theirs: int = 0, copies: int = 0,
                  first: int = 0) -> int:
    """`ours` campaign posts a minute (`copies` of them the same text by different accounts) and `theirs` counter
    posts; the next free post number."""
    campaign = config.campaigns[0]
    counter = campaign.counter()
    assert counter is not None
    number = first
    for minute in minutes:
        own, other = [], []
        for index in range(ours):
            number += 1
            own.append(post(number, minute, text=TOOLKIT if index < copies else None))
        for _ in range(theirs):
            number += 1
            other.append(post(number, minute, tags=(COUNTER.casefold(),)))
        store.save_page(Batch(posts=tuple(own)), campaign=campaign.name, cursor=None, run_id=None, collected_at=T0)
        if other:
            store.save_page(Batch(posts=tuple(other)), campaign=counter.name, cursor=None, run_id=None,
                            collected_at=T0)
    return number


def told(watcher: AlertWatcher, store: Store, minutes: range) -> list[tuple[datetime, str, str]]:
    """Check once a storm minute (as the watcher does, and more often): (when, key, headline) of what was told."""
    found = []
    for minute in minutes:
        now = T0 + timedelta(minutes=minute, seconds=40)
        found += [(now, r.condition_key, r.text.split("\n")[0]) for r in watcher.check(now, store=store)]
    return found


def register(store: Store, config: Config) -> None:
    campaign = config.campaigns[0]
    counter = campaign.counter()
    assert counter is not None
    for each in (campaign, counter):
        store.register_campaign(each.name, each.start, each.end)


def test_hijack_is_told_once_per_rise_of_the_counter_tags_share(tmp_path: Path) -> None:
    config = rises_config(tmp_path, "hijack")
    watcher = AlertWatcher(config, config.campaigns, config.clock)
    with Store.open(tmp_path / "rises.db") as store:
        register(store, config)
        number = store_minutes(store, config, range(0, 20), ours=6)  # a storm of its own tags only
        number = store_minutes(store, config, range(20, 35), ours=6, theirs=4, first=number)  # the counter wave
        number = store_minutes(store, config, range(35, 70), ours=6, first=number)  # gone: the share falls
        store_minutes(store, config, range(70, 90), ours=6, theirs=6, first=number)  # back: a second rise
        first_rise = told(watcher, store, range(0, 69))
        second_rise = told(watcher, store, range(69, 100))
    assert len(first_rise) == 1 and len(second_rise) == 1  # checked every minute: told once per rise
    (when, key, headline), (later, other_key, _) = first_rise[0], second_rise[0]
    # Told at the first complete minute above 25% (share of the 15 minutes before it), named by the minute the rise
    # began (its share clearly above the level it fell back below: 20%).
    since = datetime.fromisoformat(key.removeprefix("hijack:").replace("Z", "+00:00"))
    assert T0 + timedelta(minutes=20) < since <= when and when - since < timedelta(minutes=4)
    assert other_key != key and later > T0 + timedelta(minutes=70)
    assert "#StandWithIssa is being hijacked: #StopTheIncitement have" in headline


def test_a_restarted_watcher_tells_the_same_rise_no_more(tmp_path: Path) -> None:
    config = rises_config(tmp_path, "hijack")
    with Store.open(tmp_path / "rises.db") as store:
        register(store, config)
        number = store_minutes(store, config, range(0, 20), ours=6)
        store_minutes(store, config, range(20, 50), ours=6, theirs=6, first=number)
        first = told(AlertWatcher(config, config.campaigns, config.clock), store, range(0, 30))
    with Store.open(tmp_path / "rises.db") as store:  # a new process: the rise is named by its first minute again
        again = told(AlertWatcher(config, config.campaigns, config.clock), store, range(30, 50))
        rise = intel.hijack_rise(store, config.campaigns[0], T0 + timedelta(minutes=45))
    assert len(first) == 1 and again == []
    assert rise is not None and first[0][1] == f"hijack:{iso_utc(rise.since)}" and rise.share > 0.25


def test_copy_paste_is_told_once_per_rise_with_the_advice(tmp_path: Path) -> None:
    config = rises_config(tmp_path, "copy_paste")
    watcher = AlertWatcher(config, config.campaigns, config.clock)
    with Store.open(tmp_path / "rises.db") as store:
        register(store, config)
        number = store_minutes(store, config, range(0, 20), ours=6)  # everyone in their own words
        number = store_minutes(store, config, range(20, 40), ours=6, copies=4, first=number)  # the toolkit text
        number = store_minutes(store, config, range(40, 80), ours=6, first=number)
        store_minutes(store, config, range(80, 100), ours=6, copies=5, first=number)
        alerts = told(watcher, store, range(0, 110))
        records = store.alerts(config.campaigns[0].name, limit=10)
    assert [key.split(":")[0] for _, key, _ in alerts] == ["copy_paste", "copy_paste"]
    assert alerts[0][1] != alerts[1][1]
    assert "of the last 15 minutes' posts are copies" in alerts[0][2]
    assert any("Vary the text: identical posts may be filtered." in r.text for r in records)


def test_a_quiet_quarter_hour_is_no_rise(tmp_path: Path) -> None:
    config = rises_config(tmp_path, "hijack")
    with Store.open(tmp_path / "rises.db") as store:
        register(store, config)
        store_minutes(store, config, range(0, 15), ours=0, theirs=1)  # 15 counter posts and nothing else
        assert intel.hijack_rise(store, config.campaigns[0], T0 + timedelta(minutes=15)) is None
