"""`stormwatch serve`: the team's live page (the only importer of Starlette and uvicorn), read-only, from the
dashboard's snapshot.

live.py publishes one rendering of the snapshot (metrics/snapshot.py) about once a second, made by refresher.py in
a worker process of its own (workers.py) on a read-only connection, so that the page's process only serves bytes;
page.py turns a snapshot into what the page shows (pure); app.py is the Starlette application behind
its guard (secret link, GET/HEAD only, rate limit, security headers); server.py keeps the link's secret, draws its
QR code and runs uvicorn.
"""

from __future__ import annotations

from .app import build_app
from .live import LiveView
from .server import PageServer, in_thread, is_loopback, link_file, link_secret, page_notice, prepare, qr_text

__all__ = ["LiveView", "PageServer", "build_app", "in_thread", "is_loopback", "link_file", "link_secret",
           "page_notice", "prepare", "qr_text"]
