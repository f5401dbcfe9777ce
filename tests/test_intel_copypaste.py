"""The copy-paste audit on posts stored in a store: what counts as a copy, and what does not."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from stormwatch.intel.copypaste import MIN_WORDS, NEAR, CopyAudit, window_copies
from stormwatch.intel.text import clean_words, shown
from stormwatch.models import Batch
from stormwatch.store import Store

from .conftest import x_post

T0 = datetime(2021, 2, 7, 16, 0, tzinfo=UTC)
TOOLKIT = ("Issa Amro is a peaceful human rights defender who faces a military court tomorrow for documenting "
           "abuses in Hebron. Drop all charges and end the judicial harassment now!")


def store_posts(store: Store, *posts: tuple[str, str, str, str], first: int = 0) -> None:
    """(id, author, kind, text) posts of the campaign, a second apart from T0 (+ `first` seconds)."""
    rows = tuple(dataclasses.replace(x_post(native, kind=kind, author=f"x:{author}"), text=text,
                                     ts=int(T0.timestamp()) + number, created_at=f"2021-02-07T16:00:{number:02d}.000Z")
                 for number, (native, author, kind, text) in enumerate(posts, first))
    store.save_page(Batch(posts=rows), campaign="c", cursor=None, run_id=None, collected_at=T0)


def audit(store: Store) -> CopyAudit:
    found = CopyAudit("c", T0, T0 + timedelta(hours=1))
    found.update(store)
    return found


def test_words_leave_out_links_mentions_and_hashtags_in_every_platforms_form() -> None:
    text = ("RT-free: Drop   the CHARGES! @issaamro @name.bsky.social @user@mastodon.social #StandWithIssa ＃Tag "
            "https://t.co/abc www.example.org/@x #x ✊ &")
    assert clean_words(text) == ["rt", "free", "drop", "the", "charges"]
    assert shown("a\u202eb\nc\t d\x00", 4) == "ab…" and shown("one  line") == "one line"


def test_identical_and_near_identical_texts_of_other_accounts_are_copies(memory_store: Store) -> None:
    store_posts(memory_store,
                ("1", "a", "original", f"{TOOLKIT} #StandWithIssa"),
                ("2", "b", "original", f"@vonderleyen {TOOLKIT.upper()}  #DropTheCharges https://t.co/x"),
                ("3", "c", "reply", f"URGENT: {TOOLKIT} Please share."),  # two words more: still near
                ("4", "d", "quote", TOOLKIT.replace("peaceful", "nonviolent")),  # one word changed: near
                ("5", "e", "original", "Wrote to my MP tonight about the trial in Hebron, do it too #StandWithIssa"),
                ("6", "f", "original", "My union stands with the defenders of Hebron and asks you to join #Solidarity"))
    found = audit(memory_store).figures()
    assert (found.posts, found.copies) == (6, 4)
    (top,) = found.top
    assert (top.posts, top.accounts) == (4, 4) and top.text.startswith("Issa Amro")


def test_reposts_one_accounts_repeats_and_short_texts_are_not_copies(memory_store: Store) -> None:
    store_posts(memory_store,
                ("1", "a", "original", TOOLKIT),
                ("2", "b", "repost", f"RT @a: {TOOLKIT}"),  # meant to be identical: left out
                ("3", "a", "original", TOOLKIT),  # the same account twice
                ("4", "c", "original", "#StandWithIssa ✊"),  # no words at all
                ("5", "d", "original", "#StandWithIssa ✊ free Issa"),  # two words: too short to judge
                ("6", "e", "original", "free Issa #DropTheCharges"))
    found = audit(memory_store).figures()
    # the repost is not counted at all; the short texts count among the posts but never as copies
    assert (found.posts, found.copies, found.top) == (5, 0, ())
    assert len(clean_words("#StandWithIssa ✊ free Issa")) < MIN_WORDS


def test_texts_below_the_threshold_are_not_near(memory_store: Store) -> None:
    words = TOOLKIT.split()
    # four words of twenty-six changed: about 0.6 of the word pairs shared, under NEAR
    changed = " ".join(w if i % 6 else "different" for i, w in enumerate(words))
    store_posts(memory_store, ("1", "a", "original", TOOLKIT), ("2", "b", "original", changed))
    assert NEAR == 0.8 and audit(memory_store).figures().copies == 0


def test_a_later_post_makes_an_earlier_one_a_copy_and_refreshes_read_only_what_is_new(memory_store: Store) -> None:
    store_posts(memory_store, ("1", "a", "original", TOOLKIT))
    live = audit(memory_store)
    assert (live.read, live.figures().copies) == (1, 0)
    store_posts(memory_store, ("2", "b", "original", TOOLKIT + " Please share."), first=1)
    assert not live.update(memory_store, limit=0) and live.read == 1  # nothing read yet: not complete
    assert live.update(memory_store, expected=2) and live.read == 2
    assert live.figures().copies == 2  # both: each is the other account's text
    assert live.update(memory_store, expected=2) and live.read == 2  # the tallies say nothing is new
    assert window_copies(memory_store, "c", T0, T0 + timedelta(hours=1)).copies == 2
    # a span of the window: the second post alone is in it, and it is a copy of the first
    assert (live.figures(T0 + timedelta(seconds=1)).posts, live.figures(T0 + timedelta(seconds=1)).copies) == (1, 1)
