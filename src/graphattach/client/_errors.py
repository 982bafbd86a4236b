"""The client's exceptions. One tree; catch broadly, recover narrowly::

    ClientError                      anything this client raises on purpose
    ├── InvalidInput                 bad arguments or a bad file (missing, a directory, over 150 MB)
    │   └── FileChanged              the file changed size or content while it was being uploaded
    ├── AuthError                    no token could be had (token command failed, azure extra missing)
    ├── TransportError               the service could not be reached, after every retry
    ├── ProtocolError                the service answered something that is not Graph (garbage)
    └── GraphError                   Graph answered an error: .code, .message, .status, .request_id
        ├── BadRequest               400
        ├── Unauthorized             401 (missing, expired or foreign token)
        ├── Forbidden                403 (e.g. ErrorAccessDenied: the token lacks the scope)
        ├── NotFound                 404 (e.g. ErrorItemNotFound: unknown message or event)
        ├── Conflict                 409 and 416 (a range the upload session did not expect)
        ├── RequestTooLarge          413
        ├── Throttled                429 (still throttled after every retry)
        ├── ServerError              5xx (still failing after every retry)
        └── UploadSessionExpired     the upload session's expirationDateTime has passed

Every ``GraphError`` carries the Graph error ``code`` and ``message``, the HTTP ``status`` and
the ``request_id`` (from the body's ``innerError`` or the ``request-id`` header). Errors raised
during an upload session also carry its ``upload_url`` (None once the session was cancelled).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "FileChanged",
    "Forbidden",
    "GraphError",
    "InvalidInput",
    "NotFound",
    "ProtocolError",
    "RequestTooLarge",
    "ServerError",
    "Throttled",
    "TransportError",
    "Unauthorized",
    "UploadSessionExpired",
]


class ClientError(Exception):
    """Base of every error this client raises on purpose."""

    #: Graph's error code (``ErrorItemNotFound``...), or a code of this client's own.
    code: str = "ClientError"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        upload_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.request_id = request_id
        self.upload_url = upload_url

    def one_line(self) -> str:
        """``Code: message (HTTP 404, request-id …)``: what the CLI prints."""
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.request_id:
            details.append(f"request-id {self.request_id}")
        text = " ".join(self.message.split())
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{self.code}: {text}{suffix}"

    def __str__(self) -> str:
        return self.one_line()


class InvalidInput(ClientError, ValueError):
    code = "InvalidInput"


class FileChanged(InvalidInput):
    code = "FileChanged"


class AuthError(ClientError):
    code = "AuthError"


class TransportError(ClientError):
    code = "TransportError"


class ProtocolError(ClientError):
    code = "ProtocolError"


class GraphError(ClientError):
    """Graph answered with an error status."""

    code = "GraphError"

    def __init__(self, message: str, *, body: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        #: The parsed ``error`` object of the response, when it had one.
        self.body = body


class BadRequest(GraphError):
    pass


class Unauthorized(GraphError):
    pass


class Forbidden(GraphError):
    pass


class NotFound(GraphError):
    pass


class Conflict(GraphError):
    pass


class RequestTooLarge(GraphError):
    pass


class Throttled(GraphError):
    pass


class ServerError(GraphError):
    pass


class UploadSessionExpired(GraphError):
    code = "UploadSessionExpired"


_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: RequestTooLarge,
    416: Conflict,
    429: Throttled,
}


def error_class(status: int) -> type[GraphError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, GraphError)
