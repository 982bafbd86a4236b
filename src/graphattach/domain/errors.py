"""The exception every failure a caller can see is raised as.

A ``GraphError`` carries an HTTP status, the Graph ``code`` and a ``message``; which statuses,
codes and messages exist is the catalogue in ``protocol/errors.py``, whose entries make these
exceptions, and whose ``graph_error_body`` renders them. A subclass that sets ``status``,
``code`` and ``message`` as class attributes is honoured too (for failures the transport raises
below the protocol layer), but a new error belongs in the catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class GraphError(Exception):
    """A failure with the status, code and message that Microsoft Graph would answer."""

    status: int = 400
    code: str = "BadRequest"
    message: str = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        inner_error: bool = True,
        inner: Mapping[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if message is not None:
            self.message = message
        #: False for errors Exchange raises itself: the real body has no ``innerError``.
        self.inner_error = inner_error
        #: Fields added to ``innerError`` (``oAuthEventOperationId``, OneDrive-style nested codes).
        self.inner: dict[str, Any] = dict(inner or {})
        self.headers = headers or {}
        super().__init__(f"{self.status} {self.code}: {self.message}")


class BodyTimeout(GraphError):
    """No byte of the request body arrived for the idle timeout: the request is answered and the
    connection closed (what IIS, in front of Graph, does: a 408 to a stalled request)."""

    status, code = 408, "RequestTimeout"
    message = "The request body stopped arriving: no data was received for too long."


class ConnectionDropped(Exception):
    """Raised to make the ASGI server close the connection mid-response (the ``drop`` and ``cut``
    fault actions, on servers that give an app no other way to close it)."""
