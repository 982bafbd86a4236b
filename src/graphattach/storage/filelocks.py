"""Cross-process locks on files: ``fcntl.flock`` on one lock file per name.

The kernel drops a ``flock`` when its holder dies, however it dies. A lock file is retired by
its holder (``flock_release``: unlinked while held, so waiters notice and retry on the new
file). Used by the SQLite store's ``lock_session``; tests/storage run them through the
conformance suite of every persistent store.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import threading
from pathlib import Path

_SAFE_LOCK_NAME = re.compile(r"^[A-Za-z0-9_=-]{1,200}$")


def flock_acquire(path: Path) -> int:
    """Open and ``flock`` ``path``; retry if its holder unlinked it meanwhile. Returns the fd."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # we locked a file the previous holder removed: take the new one


def flock_try(path: Path) -> int | None:
    """``flock_acquire`` without waiting: the fd when the lock is free, else None. Only
    non-blocking system calls, so it runs on the event loop (no thread for an uncontended lock)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        current = os.stat(path)
        mine = os.fstat(fd)
    except FileNotFoundError:
        current = None
    except BaseException:
        flock_unlock(fd)
        raise
    if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
        return fd
    flock_unlock(fd)  # we locked a file the previous holder removed: let the waiting path retry
    return None


def flock_unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def flock_release(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it (waiters notice and retry), then unlock:
    how a lock file is retired, when its session is gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def lock_file_name(session_id: str) -> str:
    """Ids we mint are safe file names; anything else is hashed, never used as a path."""
    if _SAFE_LOCK_NAME.match(session_id):
        return f"{session_id}.lock"
    return f"h-{hashlib.sha256(session_id.encode('utf-8', 'surrogatepass')).hexdigest()}.lock"


def flock_in_daemon_thread(path: Path) -> asyncio.Future[int]:
    """``flock_acquire`` in a daemon thread: a blocked ``flock`` must not keep the process alive
    at exit (executor threads are joined then). If the waiter is gone when the lock comes, the
    thread releases it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()

    def deliver(fd: int | None, error: BaseException | None) -> None:
        if future.cancelled():
            if fd is not None:
                flock_unlock(fd)
        elif error is not None:
            future.set_exception(error)
        elif fd is not None:
            future.set_result(fd)

    def run() -> None:
        fd: int | None = None
        error: BaseException | None = None
        try:
            fd = flock_acquire(path)
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(deliver, fd, error)
        except RuntimeError:  # the event loop is closed: nobody wants the lock any more
            if fd is not None:
                flock_unlock(fd)

    threading.Thread(target=run, name="graphattach-flock", daemon=True).start()
    return future
