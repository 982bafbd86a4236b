"""Errors that carry a Graph error code.

Every failure a caller can see is a ``GraphError``: an HTTP status, the Graph ``code`` and a
``message``. The protocol layer turns it into ``{"error": {"code", "message", "innerError"}}``.
Errors raised by Exchange itself (throttling, message size) have no ``innerError`` on the real
service, so ``inner_error=False`` reproduces that.
"""

from __future__ import annotations


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
        headers: dict[str, str] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if message is not None:
            self.message = message
        self.inner_error = inner_error
        self.headers = headers or {}
        super().__init__(f"{self.status} {self.code}: {self.message}")


class BadRequest(GraphError):
    status, code = 400, "BadRequest"


class InvalidRequest(GraphError):
    status, code = 400, "invalidRequest"


class ItemNotFound(GraphError):
    status, code, message = 404, "ErrorItemNotFound", "The specified object was not found in the store."


class ResourceNotFound(GraphError):
    """A path under ``/v1.0`` with a segment Graph does not know: the real service answers 400."""

    status, code = 400, "BadRequest"
    message = "Resource not found for the segment."


class NotFound(GraphError):
    """The router's own 404, outside the Graph service root."""

    status, code, message = 404, "UnknownError", "The requested resource does not exist."


class InvalidIdMalformed(GraphError):
    status, code, message = 400, "ErrorInvalidIdMalformed", "Id is malformed."


class InvalidAuthenticationToken(GraphError):
    status, code, message = 401, "InvalidAuthenticationToken", "Access token is empty."


class AccessDenied(GraphError):
    status, code, message = 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."


class MethodNotAllowed(GraphError):
    status, code = 405, "Request_BadRequest"
    message = "The HTTP method is not supported for this resource."


class RequestEntityTooLarge(GraphError):
    status, code = 413, "RequestEntityTooLarge"
    message = "The maximum request length supported is 4MB."


class UnprocessableType(GraphError):
    status, code = 422, "UnprocessableType"
    message = "Cannot process input of abstract type 'Microsoft.OutlookServices.Attachment'"


class InternalServerError(GraphError):
    status, code, message = 500, "InternalServerError", "An internal server error occurred."


class ServiceUnavailable(GraphError):
    status, code, message = 503, "ServiceUnavailable", "The service is temporarily unavailable."


class ConnectionDropped(Exception):
    """Raised to make the ASGI server close the connection mid-response (the ``drop`` and ``cut``
    fault actions, on servers that give an app no other way to close it)."""
