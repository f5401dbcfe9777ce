"""The exceptions stormwatch raises; the CLI turns each into one line and a non-zero exit."""

from __future__ import annotations

import errno
from datetime import datetime


class StormwatchError(Exception):
    """Base of every error stormwatch reports to the user as one line."""

    exit_code = 1


class ConfigError(StormwatchError):
    """The configuration file is missing, unreadable or invalid (names file and key path)."""

    exit_code = 2


class UsageError(StormwatchError):
    """A command-line option's value cannot be used (a time outside 1970–2100, say)."""

    exit_code = 2


class CredentialsError(StormwatchError):
    """A secret named in the configuration is not set in the environment."""

    exit_code = 2


class SourceError(StormwatchError):
    """A platform request failed; `transient` errors are worth retrying.

    `request_made` is False when the source stopped on its own, before sending a request.
    """

    def __init__(self, message: str, *, transient: bool = False, request_made: bool = True) -> None:
        super().__init__(message)
        self.transient = transient
        self.request_made = request_made


class RateLimited(SourceError):
    """The platform refused more requests until `reset_at` (UTC)."""

    def __init__(self, message: str, reset_at: datetime, *, request_made: bool = True) -> None:
        super().__init__(message, transient=False, request_made=request_made)
        self.reset_at = reset_at


class StoreError(StormwatchError):
    """The database cannot be opened, is locked, or is not a stormwatch database."""


class DatabaseDamaged(StoreError):
    """The database file is damaged (not a database, or malformed): nothing is written into it."""


class CollectorBusy(StoreError):
    """Another live process is already collecting the same campaign and source."""


class ArchiveError(StormwatchError):
    """A file being imported cannot be read or recognized."""


class MalformedPage(StormwatchError):
    """A page does not have the platform's documented shape; the message says what is wrong where."""


def is_disk_full(error: BaseException) -> bool:
    """Whether an error says the disk (or the database's size limit) is full."""
    return (getattr(error, "errno", None) == errno.ENOSPC or "disk is full" in str(error)
            or "No space left" in str(error))
