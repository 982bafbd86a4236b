"""The physical limit: disk writes (page cache, and fdatasync every 4 MiB), reads from the page
cache, and loopback TCP.

Loopback TCP is measured between two processes (the receiver is a forked child), once with
``send`` from memory (two copies, like a server writing from a buffer) and once with ``sendfile``
from a file in the page cache (one copy, like nginx serving a static file).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

CHUNK = 4 * 1024 * 1024


def disk_write(
    directory: Path, data: memoryview, total: int, *, sync_every_chunk: bool, time_limit: float
) -> tuple[int, float]:
    """Write ``total`` bytes in 4 MiB writes (fdatasync after each one if asked); (bytes, seconds).

    Stops early after ``time_limit`` seconds. The file is removed afterwards.
    """
    path = directory / f"disk-{os.getpid()}-{time.monotonic_ns()}.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    try:
        start = time.perf_counter()
        deadline = start + time_limit
        while written < total:
            piece = data[written % len(data) :][:CHUNK][: total - written]
            view = piece
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if sync_every_chunk:
                os.fdatasync(fd)
            written += len(piece)
            if time.perf_counter() > deadline:
                break
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()
    return written, elapsed


def page_cache_read(path: Path, total: int, *, chunk: int) -> tuple[int, float]:
    """Read ``path`` (already in the page cache) into a fresh ``chunk``-byte buffer per read, as
    a server streaming a file does, until ``total`` bytes; (bytes, seconds). The copy out of the
    page cache is what any server that does not ``sendfile`` pays for each byte it sends."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        read = 0
        start = time.perf_counter()
        while read < total:
            buffer = bytearray(min(chunk, total - read))
            got = os.preadv(fd, [buffer], read % size)
            if got <= 0:
                raise RuntimeError(f"{path} ended early")
            read += got
        return read, time.perf_counter() - start
    finally:
        os.close(fd)


def _receiver(listener: socket.socket) -> int:
    """Fork a child that accepts one connection and reads it to the end; returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            conn, _ = listener.accept()
            view = memoryview(bytearray(1024 * 1024))
            while conn.recv_into(view):
                pass
        finally:
            os._exit(0)
    return pid


def loopback_tcp(total: int, *, sendfile_from: Path | None = None, chunk: int = CHUNK) -> tuple[int, float]:
    """Send ``total`` bytes over one 127.0.0.1 connection to a child process; (bytes, seconds).

    With ``sendfile_from``, the bytes come from that (page-cached) file by ``sendfile``, repeated.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    pid = _receiver(listener)
    try:
        with socket.create_connection(("127.0.0.1", listener.getsockname()[1])) as sender:
            start = time.perf_counter()
            sent = 0
            if sendfile_from is not None:
                size = sendfile_from.stat().st_size
                fd = os.open(sendfile_from, os.O_RDONLY)
                try:
                    while sent < total:
                        offset = sent % size
                        n = os.sendfile(sender.fileno(), fd, offset, min(size - offset, total - sent))
                        if n == 0:
                            break
                        sent += n
                finally:
                    os.close(fd)
            else:
                payload = memoryview(bytes(chunk))
                while sent < total:
                    piece = payload[: min(chunk, total - sent)]
                    sender.sendall(piece)
                    sent += len(piece)
            sender.shutdown(socket.SHUT_WR)
            os.waitpid(pid, 0)
            pid = 0
            elapsed = time.perf_counter() - start
    finally:
        listener.close()
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    return sent, elapsed
