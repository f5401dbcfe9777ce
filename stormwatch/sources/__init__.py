"""Platform sources: each returns raw pages stamped with provenance and the cursor that covers them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from ..config import CampaignConfig
from ..models import Cursor, RawPage


class Source(Protocol):
    """What the collector needs from a platform: queries, where each starts, and pages from a cursor."""

    name: str

    def queries(self, campaign: CampaignConfig) -> list[str]:
        """The queries (hashtag groups, instance/tag pairs…) that cover a campaign."""
        ...

    def first_cursor(self, campaign: CampaignConfig, query: str, now: datetime) -> Cursor:
        """The cursor of a query never collected before."""
        ...

    def search(self, cursor: Cursor, now: datetime) -> Iterator[RawPage]:
        """Pages newer than the cursor, each carrying the cursor that covers it once stored."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
