"""The SQLite store, the only writer: schema and named migrations, pages of rows, running tallies, cursors,
the run log, billed reads and pseudonyms.

`Store` is the way in; the modules beside it do the work inside its transactions:
`schema` (every table and index), `migrations` (named, ordered, applied once), `pages` (posts, accounts,
membership), `tallies` (the running tallies of each campaign window), `billing`, `pseudonyms`, `alerts`, `intel`
(the trending lists fetched for storm intelligence), `streams` (the filtered stream's connections).
"""

from __future__ import annotations

from .alerts import AlertRecord
from .database import BUSY_TIMEOUT_SECONDS, CHECKPOINT_PAGES, MEMORY, PageResult, Store, utc_day
from .files import collector_lock
from .streams import StreamConnection

__all__ = ["BUSY_TIMEOUT_SECONDS", "CHECKPOINT_PAGES", "MEMORY", "AlertRecord", "PageResult", "Store",
           "StreamConnection", "collector_lock", "utc_day"]
