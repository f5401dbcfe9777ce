"""Pseudonyms: one call labels a list of accounts; labels are random, unique and stable per campaign."""

from __future__ import annotations

import re

from stormwatch.store import Store
from stormwatch.store.pseudonyms import LABEL_PREFIX, LABEL_SHAPE, new_label

from .conftest import rows

LABEL = re.compile(r"participant-[0-9a-f]{4}")


def test_one_call_labels_every_account_and_labels_stay(memory_store: Store) -> None:
    uids = [f"x:{n}" for n in range(50)]
    labels = memory_store.assign_pseudonyms("c", [*uids, "x:3"])
    assert list(labels) == uids  # each account once, in the order asked
    assert all(LABEL.fullmatch(label) for label in labels.values())
    assert len(set(labels.values())) == 50
    again = memory_store.assign_pseudonyms("c", ["x:49", "x:new", "x:0"])
    assert again["x:49"] == labels["x:49"] and again["x:0"] == labels["x:0"]
    assert again["x:new"] not in labels.values()
    assert rows(memory_store, "SELECT count(*) FROM pseudonyms WHERE campaign = 'c'") == [(51,)]


def test_campaigns_label_their_accounts_independently(memory_store: Store) -> None:
    first = memory_store.assign_pseudonyms("one", ["x:1", "x:2"])
    second = memory_store.assign_pseudonyms("two", ["x:1"])
    assert memory_store.assign_pseudonyms("one", ["x:1"]) == {"x:1": first["x:1"]}
    assert set(second) == {"x:1"} and rows(memory_store, "SELECT count(*) FROM pseudonyms") == [(3,)]
    assert memory_store.assign_pseudonyms("two", []) == {}


def test_labels_grow_longer_once_a_quarter_of_them_are_taken() -> None:
    assert f"{LABEL_PREFIX}xxxx" == LABEL_SHAPE
    crowded = {f"{LABEL_PREFIX}{n:04x}" for n in range(16 ** 4 // 4 + 1)}
    label = new_label(crowded)
    assert re.fullmatch(r"participant-[0-9a-f]{6}", label)
    assert LABEL.fullmatch(new_label(set()))


def test_a_read_only_store_keeps_the_labels_it_made_while_open(tmp_path) -> None:
    database = tmp_path / "pseudonyms.db"
    with Store.open(database) as store:
        stored = store.assign_pseudonyms("c", ["x:1"])
    with Store.open_for_reading(database, writable=False) as store:
        assert store.read_only
        first = store.assign_pseudonyms("c", ["x:1", "x:2", "x:3"])
        # a live view asks every second: an account keeps the label it was given, and a new one gets another
        again = store.assign_pseudonyms("c", ["x:3", "x:2", "x:4"])
        assert first["x:1"] == stored["x:1"]
        assert again["x:2"] == first["x:2"] and again["x:3"] == first["x:3"]
        assert len({*first.values(), *again.values()}) == 4
        assert store.labels_not_stored == 3
    with Store.open(database) as store:
        assert rows(store, "SELECT uid FROM pseudonyms") == [("x:1",)]  # nothing was written
