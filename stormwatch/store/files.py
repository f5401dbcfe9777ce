"""Folders and files that hold participant data, created readable by their owner only (0700 folders, 0600 files).

The database (and SQLite's -wal and -shm beside it, which take the database file's mode), the log and the raw
archive name people who joined a storm. The modes are set explicitly after creating, so a permissive umask
cannot widen them; files and folders that already exist are left as their owner set them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CollectorBusy

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(folder: Path) -> None:
    """Create `folder` and any missing parents, each readable by its owner only."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process: its mode is its owner's business
        os.chmod(path, FOLDER_MODE)


def private_file(path: Path) -> bool:
    """Create the empty file `path` readable by its owner only, in a private folder; False when it existed."""
    private_folder(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)
    return True


def open_private(path: Path, mode: str = "ab") -> int:
    """A descriptor for appending to `path`, created owner-only when new (for log and archive files)."""
    private_folder(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    existed = path.exists()
    descriptor = os.open(path, flags, FILE_MODE)
    if not existed:
        os.fchmod(descriptor, FILE_MODE)
    return descriptor


def process_running(pid: int) -> bool:
    """Whether a process with this id runs (as any user): who still owns a lock file, a state file or a folder."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


@contextmanager
def collector_lock(database: Path, what: str) -> Iterator[None]:
    """Hold the database's collector lock (`<database>.collector`, an owner-only file saying who holds it) while
    `what` collects: a second collector on the same database is refused in one line naming the running one.
    The kernel lets go of the lock however the holder ends (Ctrl-C, kill -9, a crash)."""
    path = database.with_name(database.name + ".collector")
    private_file(path)
    descriptor = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 300, 0).decode("utf-8", "replace").strip() or "another process"
            raise CollectorBusy(f"{database}: refused: a collector already runs on this database ({holder}); "
                             "one collector per database") from None
        except OSError:
            pass  # a file system without locks: nothing to hold
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"`{what}`, process {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(descriptor)
