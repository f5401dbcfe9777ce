"""Helpers for the live page's tests: a started page over a copy of the collected storm, read as its users do."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from stormwatch.config import Config
from stormwatch.web import LiveView, build_app, link_file, link_secret

SECRET_IN_URL = re.compile(r"http://[^/\s]+/([A-Za-z0-9_-]+)/")


def copied(config: Config, folder: Path) -> Config:
    """The config pointed at a writable copy of its database in `folder`."""
    target = folder / "copy.db"
    shutil.copy(config.storage.database, target)
    return replace(config, storage=replace(config.storage, database=target))


@contextmanager
def started(config: Config, **options: Any) -> Iterator[tuple[LiveView, Any, str]]:
    """A started LiveView of the first campaign, its guarded app and its secret (stopped afterwards)."""
    live = LiveView(config, config.campaigns[0], **options)
    live.start()
    secret = link_secret(link_file(config))
    try:
        yield live, build_app(live, secret), secret
    finally:
        live.stop()
