"""One interface for campaign figures, two ways to read them: the running tallies or the rows.

`figure_reader(store, campaign, reader)` picks one: `"rows"` counts from the rows (any window), `"tallies"`
reads the running tallies and refuses what they cannot answer, and `"auto"` (the default everywhere) reads
the tallies where they cover the question exactly, the campaign's registered storm window, and the rows
otherwise. Both give the same figures (a test compares every one of them).
"""

from __future__ import annotations

from typing import Literal, Protocol

from ..store import Store
from ..store.tallies import window_of
from .figures import AccountStat, BucketCounts, Totals
from .from_rows import RowReader
from .from_tallies import TallyReader
from .windows import Window

ReaderChoice = Literal["auto", "tallies", "rows"]
READER_CHOICES: tuple[ReaderChoice, ...] = ("auto", "tallies", "rows")


class FigureReader(Protocol):
    """Where one campaign's figures come from."""

    source: str  # "tallies" or "rows"

    def platform_totals(self, window: Window) -> dict[str, Totals]:
        """Totals per platform with posts in the window, by platform name."""
        ...

    def bucket_counts(self, window: Window, origin: int, size: int) -> BucketCounts:
        """Posts per bucket and platform, and accounts whose first post in the window falls in each bucket."""
        ...

    def busiest_minute(self, window: Window) -> tuple[int, int] | None:
        """(epoch minute, posts) of the window's busiest minute, the earliest of equals."""
        ...

    def minute_counts(self, first: int, end: int, platform: str | None) -> dict[int, int]:
        """Member posts per epoch minute in [first, end), inside the storm window or not."""
        ...

    def newcomers_since(self, window: Window, since_ts: int) -> int:
        """Accounts whose first post in the window came at or after `since_ts`."""
        ...

    def ranked_accounts(self, window: Window, by: str, limit: int) -> list[AccountStat]:
        """Contributors of the window ranked by `by` (posts, engagement or followers); `limit` -1 for all."""
        ...

    def contributor_directory(self, window: Window) -> dict[str, tuple[str, int]]:
        """Every contributor of the window: uid -> (handle, followers)."""
        ...

    def key_counts(self, window: Window, kind: str, only: list[str] | None, exclude: list[str] | None,
                   limit: int) -> list[tuple[str, int]]:
        """Posts per tag or mention (`kind` "tags" or "mentions"), most first."""
        ...

    def member_count(self) -> int:
        """How many posts the campaign holds, any time."""
        ...

    def mentioned_accounts(self, window: Window) -> list[tuple[str, str, str, int]]:
        """(uid, platform, handle, followers) of known accounts the window's posts mention."""
        ...


def figure_reader(store: Store, campaign: str, reader: ReaderChoice = "auto") -> FigureReader:
    """The reader of a campaign's figures: `"auto"`, `"tallies"` or `"rows"` (see the module's docstring)."""
    if reader not in READER_CHOICES:
        raise ValueError(f"reader {reader!r}: choose one of {', '.join(READER_CHOICES)}")
    rows = RowReader(store, campaign)
    if reader == "rows":
        return rows
    window = window_of(store.conn, campaign)
    if window is None:
        if reader == "tallies":
            raise ValueError(f"campaign {campaign!r} has no running tallies (its window was never registered)")
        return rows
    return TallyReader(store, campaign, window, fallback=rows if reader == "auto" else None)
