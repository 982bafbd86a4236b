"""The physical limit: disk writes (page cache, and fdatasync every 4 MiB) and loopback TCP."""

from __future__ import annotations

import os
import socket
import threading
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
            piece = data[written % len(data) :][:CHUNK]
            piece = piece[: total - written]
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


def loopback_tcp(total: int, chunk: int = CHUNK) -> tuple[int, float]:
    """Send ``total`` bytes over one 127.0.0.1 TCP connection, receiver in a thread; (bytes, seconds)."""
    payload = memoryview(bytes(chunk))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    received = 0
    done = threading.Event()

    def receive() -> None:
        nonlocal received
        conn, _ = listener.accept()
        buf = bytearray(1024 * 1024)
        view = memoryview(buf)
        with conn:
            while True:
                n = conn.recv_into(view)
                if n == 0:
                    break
                received += n
        done.set()

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    with socket.create_connection(("127.0.0.1", port)) as sender:
        start = time.perf_counter()
        sent = 0
        while sent < total:
            piece = payload[: min(chunk, total - sent)]
            sender.sendall(piece)
            sent += len(piece)
        sender.shutdown(socket.SHUT_WR)
        done.wait(60)
        elapsed = time.perf_counter() - start
    thread.join(5)
    listener.close()
    return received, elapsed
