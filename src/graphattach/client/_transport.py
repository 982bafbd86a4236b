"""The default transports: httpx's own, with the TLS one made only when an https URL is requested.

``httpx.HTTPTransport(verify=True)`` loads the CA bundle as it is made (about 25 ms and 1.5 MiB).
A client of a local ``http://`` server never opens a TLS connection, so each scheme gets its own
transport, made on its first request; https behaves exactly as the default would.
"""

from __future__ import annotations

import threading

from graphattach._httpx import httpx

__all__ = ["AsyncSchemeTransports", "SchemeTransports"]


def _tls(scheme: str) -> bool:
    # Every other scheme goes to the plain transport, which refuses it as httpx's default would.
    return scheme == "https"


class SchemeTransports(httpx.BaseTransport):
    """An ``httpx.HTTPTransport`` for https and one for http, each made on first use (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[bool, httpx.HTTPTransport] = {}

    def _for(self, tls: bool) -> httpx.HTTPTransport:
        transport = self._made.get(tls)
        if transport is None:
            with self._lock:
                transport = self._made.get(tls)
                if transport is None:
                    # verify=False for plain http: its pool never starts TLS, so there is nothing to verify.
                    transport = self._made[tls] = httpx.HTTPTransport(verify=tls)
        return transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._for(_tls(request.url.scheme)).handle_request(request)

    def close(self) -> None:
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for transport in made:
            transport.close()


class AsyncSchemeTransports(httpx.AsyncBaseTransport):
    """The asynchronous twin of :class:`SchemeTransports` (one event loop: no lock needed)."""

    def __init__(self) -> None:
        self._made: dict[bool, httpx.AsyncHTTPTransport] = {}

    def _for(self, tls: bool) -> httpx.AsyncHTTPTransport:
        transport = self._made.get(tls)
        if transport is None:
            # verify=False for plain http: its pool never starts TLS, so there is nothing to verify.
            transport = self._made[tls] = httpx.AsyncHTTPTransport(verify=tls)
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._for(_tls(request.url.scheme)).handle_async_request(request)

    async def aclose(self) -> None:
        made, self._made = list(self._made.values()), {}
        for transport in made:
            await transport.aclose()
