"""The error catalogue and Graph's error body.

Every error the server answers is an entry of this module: an ``ErrorKind`` with its HTTP
status, Graph ``code``, message (a ``str.format`` template) and whether the body has an
``innerError`` (errors raised by Exchange itself, such as message size, have none on the real
service), plus any fixed fields ``innerError`` carries. Calling an entry makes the
``GraphError`` to raise: ``raise ItemNotFound()``, ``raise InvalidUser(user=upn)``, or with a
message of the call site's own, ``raise BadRequest("Invalid $orderby clause.")``. The status
and code always come from the table. ``UPLOAD_OUTCOME_ERRORS`` maps the refusals of the
upload-session state machine to their entries.

``graph_error_body`` is the one renderer: ``{"error": {"code", "message", "innerError": {"date",
"request-id", "client-request-id", ...}}}`` as documented at
https://learn.microsoft.com/graph/errors. docs/fidelity.md's error rows are checked against
``CATALOGUE`` by tests/protocol/test_errors.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from graphattach.domain import limits
from graphattach.domain.errors import GraphError
from graphattach.domain.upload_session import Outcome


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One row of the catalogue; call it to make the exception."""

    status: int
    code: str
    message: str
    #: False for errors Exchange raises itself: the real body has no ``innerError``.
    inner_error: bool = True
    #: Fixed fields added to ``innerError`` (OneDrive-style nested codes of the upload endpoint).
    inner: tuple[tuple[str, str], ...] = ()

    def __call__(
        self,
        message: str | None = None,
        /,
        *,
        inner: Mapping[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> GraphError:
        text = message if message is not None else self.message.format(**fields)
        return GraphError(
            text,
            status=self.status,
            code=self.code,
            inner_error=self.inner_error,
            inner={**dict(self.inner), **(inner or {})},
            headers=headers,
        )

    def with_status(self, status: int) -> ErrorKind:
        return dataclasses.replace(self, status=status)


#: Every entry, in the order defined (tests check docs/fidelity.md against it).
CATALOGUE: list[ErrorKind] = []


def _kind(status: int, code: str, message: str, /, *, inner_error: bool = True, **inner: str) -> ErrorKind:
    kind = ErrorKind(status, code, message, inner_error, tuple(inner.items()))
    CATALOGUE.append(kind)
    return kind


# request syntax and OData ------------------------------------------------------------------------

BadRequest = _kind(400, "BadRequest", "The request is invalid.")
#: A path under ``/v1.0`` with a segment Graph does not know: the real service answers 400.
ResourceNotFound = _kind(400, "BadRequest", "Resource not found for the segment '{segment}'.")
UnsupportedResource = _kind(400, "BadRequest", "The '{endpoint}' resource is not supported by this server.")
#: Any other status Starlette's router raises keeps its status (``with_status``).
HttpError = _kind(400, "BadRequest", "{detail}")
#: The router's own 404, outside the Graph service roots.
NotFound = _kind(404, "UnknownError", "No resource at '{path}'. Graph lives under /v1.0 and /beta.")
MethodNotSupported = _kind(405, "Request_BadRequest", "The HTTP method '{method}' is not supported for this resource.")
RequestBodyRead = _kind(400, "RequestBodyRead", "The request body could not be read.")
InvalidIdMalformed = _kind(400, "ErrorInvalidIdMalformed", "Id is malformed.")
RequestEntityTooLarge = _kind(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
UnprocessableType = _kind(
    422, "UnprocessableType", "Cannot process input of abstract type 'Microsoft.OutlookServices.Attachment'"
)
InvalidParameter = _kind(400, "ErrorInvalidParameter", "The '{name}' parameter is required.")
InvalidUrlQuery = _kind(400, "ErrorInvalidUrlQuery", "The query is not supported here.")
InvalidSyncStateData = _kind(400, "ErrorInvalidSyncStateData", "The sync state data is corrupt or otherwise invalid.")
#: A delta token whose sync state is gone: 410 with a ``Location`` that starts a new full round
#: (delta-query-overview, "Synchronization reset"; the code and words of a real answer:
#: microsoftgraph/microsoft-graph-docs#2350).
SyncStateNotFound = _kind(410, "SyncStateNotFound", "The sync state generation is not found; generation={generation}.")

# authentication and authorisation ----------------------------------------------------------------

InvalidAuthenticationToken = _kind(401, "InvalidAuthenticationToken", "Access token is empty.")
TokenExpired = _kind(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
InvalidAudience = _kind(401, "InvalidAudience", "The audience claim value is invalid 'aud'.")
AccessDenied = _kind(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
AuthorizationRequestDenied = _kind(
    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
)

# directory (/users) -------------------------------------------------------------------------------

DirectoryBadRequest = _kind(400, "Request_BadRequest", "The request is invalid.")
DirectoryResourceNotFound = _kind(
    404,
    "Request_ResourceNotFound",
    "Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
)
InvalidUser = _kind(404, "ErrorInvalidUser", "The requested user '{user}' is invalid.")

# mailbox items ------------------------------------------------------------------------------------

ItemNotFound = _kind(404, "ErrorItemNotFound", "The specified object was not found in the store.")
InvalidRequest = _kind(400, "ErrorInvalidRequest", "The request is invalid.")
InvalidPropertySet = _kind(400, "ErrorInvalidPropertySet", "Set action is invalid for property '{name}'.")
InvalidPropertyUpdateSentMessage = _kind(
    400,
    "ErrorInvalidPropertyUpdateSentMessage",
    "Update operation is invalid for property of a sent message ('{name}').",
)
InvalidRecipients = _kind(400, "ErrorInvalidRecipients", "At least one recipient is required, but none were found.")
InvalidOperation = _kind(
    400,
    "ErrorInvalidOperation",
    "Only a draft message can be sent; this message has already been sent or received.",
)
InvalidFolderName = _kind(400, "ErrorInvalidFolderName", "The folder name cannot be empty.")
FolderExists = _kind(409, "ErrorFolderExists", "A folder with the specified name already exists.")
DeleteDistinguishedFolder = _kind(403, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted.")
TimeZoneNotSupported = _kind(
    400,
    "TimeZoneNotSupportedException",
    "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
)
CalendarEndDateIsEarlierThanStartDate = _kind(
    400, "ErrorCalendarEndDateIsEarlierThanStartDate", "The end date occurs before the start date."
)
PropertyValidationFailure = _kind(400, "ErrorPropertyValidationFailure", "At least one property failed validation.")

# attachments --------------------------------------------------------------------------------------

#: Exchange's own error, without innerError. The upload endpoint's wording is the default; a POST
#: adds Exchange's save failure (office365-mail#39, microsoft-graph-docs-contrib#2561).
MessageSizeExceeded = _kind(
    400, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.", inner_error=False
)
MESSAGE_SIZE_EXCEEDED_ON_SAVE = (
    "The message exceeds the maximum supported size., Cannot save changes made to an item to store."
)
AttachmentLimitExceeded = _kind(
    400,
    "ErrorAttachmentLimitExceeded",
    "The maximum number of attachments ({limit}) on the item has been reached.",
    inner_error=False,
)
AttachmentNestLevelLimitExceeded = _kind(
    400,
    "ErrorAttachmentNestLevelLimitExceeded",
    "The attachment nesting level is too deep: at most {limit} levels are allowed.",
    inner_error=False,
)
#: CSDL ``UpdateRestrictions Updatable=false`` (status); the code is our choice (docs/fidelity.md).
UpdateNotAllowed = _kind(405, "ErrorInvalidRequest", "Update not allowed.")
#: https://learn.microsoft.com/graph/api/attachment-get: "$value of a reference attachment returns HTTP 405".
ReferenceValueNotAllowed = _kind(
    405,
    "ErrorInvalidRequest",
    "The $value of a reference attachment cannot be read: it points to a file stored in the cloud.",
)
ContentMissing = _kind(500, "ErrorInternalServerError", "The attachment content is missing from the store.")

# upload sessions ----------------------------------------------------------------------------------

SessionOnlyForFileAttachments = _kind(
    405,
    "ErrorAttachmentSessionIsSupportedOnlyForFileAttachments",
    "Unsupported Attachment type specified. Only File attachments can be uploaded using an Upload Session.",
)
AttachmentSizeBelowMinimum = _kind(
    400,
    "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
    f"The attachment size should not be less than the minimum size of {limits.UPLOAD_SESSION_MIN_SIZE} bytes.",
)
IrresolvableConflict = _kind(409, "ErrorIrresolvableConflict", "The upload session changed during the request.")
#: The insert's announced blob was reclaimed by the sweeper first (services/sweeper.py).
SaveInterrupted = _kind(
    503,
    "ErrorInternalServerTransientError",
    "The attachment could not be saved in time; nothing was stored. Retry the request.",
)
RangeTooLarge = _kind(
    413,
    "RequestEntityTooLarge",
    "The request body is larger than the largest range this server accepts in one request "
    "({max_chunk} bytes). {expected}",
)
RangeHeadersInvalid = _kind(400, "invalidRequest", "{header_error} {expected}")
FragmentOutOfOrder = _kind(
    416,
    "invalidRange",
    "The uploaded fragment starts at byte {start}, after the next expected byte: ranges must be "
    "uploaded in order. {expected}",
    code="fragmentOutOfOrder",
)
FragmentOverlap = _kind(
    416,
    "invalidRange",
    "The uploaded fragment overlaps with data already received. {expected}",
    code="fragmentOverlap",
)
FragmentLengthMismatch = _kind(
    400,
    "invalidRequest",
    "The upload session is for {size} total bytes, but the Content-Range header declares a "
    "total of {total}. {expected}",
    code="fragmentLengthMismatch",
)
RangeLengthMismatch = _kind(
    400,
    "invalidRequest",
    "The Content-Range header length ({range_length}) does not match the provided number of bytes "
    "(Content-Length {content_length}). {expected}",
)
#: Outlook's wording (microsoft-graph-docs-contrib#836).
ContentSizeMismatch = _kind(
    400,
    "invalidRequest",
    "Content size {relation} specified contentLength. {received} bytes written while expected "
    "{content_length}. {expected}",
)

#: What each refusal of the upload-session state machine answers (domain/upload_session.py).
UPLOAD_OUTCOME_ERRORS: Mapping[Outcome, ErrorKind] = {
    Outcome.NOT_FOUND: ItemNotFound,
    Outcome.TOKEN_EXPIRED: TokenExpired,
    Outcome.REJECT_TOO_LARGE: RangeTooLarge,
    Outcome.REJECT_HEADERS: RangeHeadersInvalid,
    Outcome.REJECT_ORDER: FragmentOutOfOrder,
    Outcome.REJECT_OVERLAP: FragmentOverlap,
    Outcome.REJECT_TOTAL: FragmentLengthMismatch,
    Outcome.REJECT_LENGTH: RangeLengthMismatch,
}

# throttling and fault rules (api/faults.py) ------------------------------------------------------

TooManyRequests = _kind(429, "TooManyRequests", "Please retry again later.")
#: Outlook's own 429: no innerError (magodo/terraform-provider-outlook#21, python-o365#500).
ApplicationThrottled = _kind(429, "ApplicationThrottled", "Application is over its {limit} limit.", inner_error=False)
#: What a ``status`` fault rule answers by default, per status (protocol/faults.STATUS_ERRORS):
#: Exchange's code for an internal failure, seen on sendMail
#: (https://learn.microsoft.com/answers/questions/5629476);
ExchangeInternalError = _kind(
    500, "ErrorInternalServerError", "An internal server error occurred. The operation failed."
)
#: a gateway's 502 and 504, UnknownError with an empty message
#: (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/1220);
BadGateway = _kind(502, "UnknownError", "")
GatewayTimeout = _kind(504, "UnknownError", "")
#: https://learn.microsoft.com/graph/errors ("There may be a Retry-After header.");
ServiceNotAvailable = _kind(
    503,
    "serviceNotAvailable",
    "The service is not available. Try the request again after a delay. There may be a Retry-After header.",
)
#: https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6177.
QuotaExceeded = _kind(507, "QuotaExceededException", "Target mailbox quota exceeded.")
#: The admin API's answer for an unknown fault rule id.
# change notifications (subscriptions): codes as the live service answers them, quoted in
# github.com/microsoftgraph/microsoft-graph-docs/issues/2988, msgraph-sdk-php/issues/221 and
# splunk/azure-functions-splunk/issues/26 (docs/fidelity.md, "Change notifications")
SubscriptionNotFound = _kind(404, "ResourceNotFound", "The object was not found.")
SubscriptionInvalidRequest = _kind(400, "InvalidRequest", "The subscription request is invalid.")
SubscriptionValidationFailed = _kind(400, "ValidationError", "Subscription validation request failed. {reason}")
SubscriptionExpirationInvalid = _kind(400, "ExtensionError", "Subscription expiration must be in the future.")
SubscriptionForbidden = _kind(
    403,
    "ExtensionError",
    "Operation: {operation}; Exception: [Status Code: Forbidden; Reason: Access is denied. "
    "Check credentials and try again.]",
)
FaultRuleNotFound = _kind(404, "ItemNotFound", "No fault rule with that id.")

# the server itself --------------------------------------------------------------------------------

#: ``domain/errors.BodyTimeout`` (a transport-level exception the middleware catches) answers this.
RequestTimeout = _kind(408, "RequestTimeout", "The request body stopped arriving: no data was received for too long.")

InternalServerError = _kind(500, "InternalServerError", "An internal server error occurred.")


# the renderer -------------------------------------------------------------------------------------


def inner_error_date(value: datetime) -> str:
    """``2020-08-09T06:14:32``: innerError.date has no zone and no fraction."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def graph_error_body(exc: GraphError, *, request_id: str, client_request_id: str, now: datetime) -> bytes:
    """The body of every error response, whichever path raised it."""
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.inner_error:
        error["innerError"] = {
            "date": inner_error_date(now),
            "request-id": request_id,
            "client-request-id": client_request_id,
            **exc.inner,
        }
    return orjson.dumps({"error": error})
