"""The report's export rows: the accounts its posts mention (for naming), and every post of the window.

Read through `stormwatch.metrics` (the SQL lives there); what the rows mean to the report is defined here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from .. import metrics
from ..metrics import POST_ROW_FIELDS, PostRowTuple, Window
from ..privacy.naming import KnownAccount
from ..store import Store

__all__ = ["POST_ROW_FIELDS", "PostRowTuple", "iter_post_rows", "mentioned_accounts"]


def mentioned_accounts(store: Store, campaign: str, window: Window) -> list[KnownAccount]:
    """Known accounts whose handle the window's campaign posts mention (matched per platform, case-insensitively).

    A handle mentioned but unknown here stays unknown: the report hides it.
    """
    return [KnownAccount(*row) for row in metrics.mentioned_account_rows(store, campaign, window)]


def iter_post_rows(store: Store, campaign: str, window: Window, *,
                   referencing: Collection[str] | None = None) -> Iterator[PostRowTuple]:
    """Every post of the window in time order, as plain tuples in `POST_ROW_FIELDS` order (a million rows stream);
    the referenced post's author only for the posts of `referencing` authors (every post when None)."""
    return metrics.post_rows(store, campaign, window, referencing=referencing)
