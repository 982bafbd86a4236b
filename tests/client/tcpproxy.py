"""A loopback TCP proxy that can cut a connection in the middle of a request body."""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class CuttingProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<target>``.

    ``cut_after(n)`` arms it: the next ``n`` bytes the client sends are forwarded, then both sides
    of that connection are closed abruptly, in the middle of whatever request was going on.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._budget: int | None = None
        self.cuts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def cut_after(self, n: int) -> None:
        with self._lock:
            self._budget = n

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _take(self, n: int) -> tuple[int, bool]:
        """How many of ``n`` bytes pass, and whether the connection is cut after them."""
        with self._lock:
            if self._budget is None or self._budget >= n:
                if self._budget is not None:
                    self._budget -= n
                return n, False
            allowed, self._budget = self._budget, None
            self.cuts += 1
            return allowed, True

    def _pump(self, source: socket.socket, dest: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if upstream:
                    allowed, cut = self._take(len(data))
                    if cut:
                        dest.sendall(data[:allowed])
                        _abort(source)
                        _abort(dest)
                        return
                dest.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, dest):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a dropped network path looks to the peer."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        # Wakes the other pump thread blocked in recv() on this socket, which close() alone would not.
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
