"""A scripted fake of Microsoft Graph's Outlook attachment endpoints, as an ``httpx.MockTransport``.

It implements the documented behaviour (https://learn.microsoft.com/graph/outlook-large-attachments): POST
attachments up to a 4 MiB body (413 above), createUploadSession → 201 with an ``uploadUrl`` on
another host (``outlook.fake``) and ``["0-"]``, intermediate PUT → 200 with
``{"ExpirationDateTime", "nextExpectedRanges": ["N"]}``, final PUT → 201 + ``Location:
…/Attachments('{id}')``, DELETE → 204, and a Graph token on the upload URL → 401. Knobs switch
the range form (``"N"``, ``"N-"``, ``"N-M"``) and the casing (``nextExpectedRanges`` or
``NextExpectedRanges``), and ``script`` injects faults (429 + Retry-After, 503, cut connections,
garbage) into chosen requests.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

GRAPH = "https://graph.fake/v1.0"
UPLOAD_HOST = "outlook.fake"
TOKEN = "good-token"
NO_SCOPE_TOKEN = "token-without-scopes"
USER = "adele@contoso.onmicrosoft.com"
USER_ID = "7f0a6d2c-0000-4000-8000-00000000ade1"
TENANT_ID = "72aa88bf-76f0-494f-91ab-2d7cd730db47"
MiB = 1024 * 1024


def graph_error(status: int, code: str, message: str, *, inner: bool = True, **headers: str) -> httpx.Response:
    request_id = str(uuid.uuid4())
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innerError"] = {"date": "2026-11-22T03:00:00", "request-id": request_id, "client-request-id": request_id}
    return httpx.Response(status, json={"error": error}, headers={"request-id": request_id, **headers})


@dataclass
class Stored:
    id: str
    name: str
    content_type: str
    data: bytes
    is_inline: bool = False
    content_id: str | None = None
    odata_type: str = "#microsoft.graph.fileAttachment"
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self, select: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "@odata.type": self.odata_type,
            "id": self.id,
            "lastModifiedDateTime": "2026-11-22T03:00:00Z",
            "name": self.name,
            "contentType": self.content_type,
            "size": len(self.data) + 158,
            "isInline": self.is_inline,
        }
        if self.odata_type.endswith("fileAttachment"):
            body.update(
                contentId=self.content_id, contentLocation=None, contentBytes=base64.b64encode(self.data).decode()
            )
        body.update(self.extra)
        if select is not None:
            body = {k: v for k, v in body.items() if k in select or k in ("@odata.type", "id")}
        return body


@dataclass
class Session:
    id: str
    item_kind: str
    item_id: str
    name: str
    size: int
    content_type: str | None
    is_inline: bool
    content_id: str | None
    expires: datetime
    received: bytearray = field(default_factory=bytearray)
    done: bool = False


@dataclass
class Rule:
    when: Callable[[httpx.Request], bool]
    action: Callable[[httpx.Request, Callable[[], httpx.Response]], httpx.Response]
    times: int = 1


def status(code: int, *, retry_after: str | None = None, body: bytes | None = None) -> Any:
    """An action: answer ``code`` without acting on the request."""

    def action(request: httpx.Request, proceed: Callable[[], httpx.Response]) -> httpx.Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if body is not None:
            return httpx.Response(code, content=body, headers=headers)
        if code == 429:
            return graph_error(
                429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.", inner=False, **headers
            )
        return graph_error(code, "ServiceUnavailable" if code == 503 else "UnknownError", "Try again later.", **headers)

    return action


def cut_after() -> Any:
    """An action: the server acts on the request, then the connection is cut before the answer."""

    def action(request: httpx.Request, proceed: Callable[[], httpx.Response]) -> httpx.Response:
        proceed()
        raise httpx.ReadError("connection reset by peer", request=request)

    return action


def cut_before() -> Any:
    """An action: the connection cannot be made."""

    def action(request: httpx.Request, proceed: Callable[[], httpx.Response]) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return action


def upload_put(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.url.host == UPLOAD_HOST


def upload_put_at(start: int) -> Callable[[httpx.Request], bool]:
    return lambda r: upload_put(r) and r.headers.get("content-range", "").startswith(f"bytes {start}-")


class FakeGraph:
    """State and behaviour. ``transport`` serves both ``httpx.Client`` and ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        range_form: str = "N",
        range_key: str = "nextExpectedRanges",
        status_get: bool = True,
        session_lifetime: timedelta = timedelta(hours=1),
        max_chunk: int = 60 * MiB,
    ) -> None:
        self.range_form = range_form
        self.range_key = range_key
        self.status_get = status_get
        self.session_lifetime = session_lifetime
        self.max_chunk = max_chunk
        self.items: dict[tuple[str, str], dict[str, Stored]] = {}
        self.sessions: dict[str, Session] = {}
        self.requests: list[httpx.Request] = []
        self.rules: list[Rule] = []
        self.token_on_upload = 0
        self.transport = httpx.MockTransport(self.handle)

    # -- setup helpers

    def add_message(self, item_id: str = "AAMkAGI2TG93AAA=") -> str:
        self.items[("message", item_id)] = {}
        return item_id

    def add_event(self, item_id: str = "AAMkADU5CCmSAAA=") -> str:
        self.items[("event", item_id)] = {}
        return item_id

    def attachments(self, kind: str, item_id: str) -> dict[str, Stored]:
        return self.items[(kind, item_id)]

    def script(self, when: Callable[[httpx.Request], bool], action: Any, times: int = 1) -> None:
        self.rules.append(Rule(when, action, times))

    def expire_all(self) -> None:
        for session in self.sessions.values():
            session.expires = datetime.now(UTC) - timedelta(seconds=1)

    def calls(self, method: str | None = None, host: str | None = None) -> list[httpx.Request]:
        return [
            r for r in self.requests if (method is None or r.method == method) and (host is None or r.url.host == host)
        ]

    # -- dispatch

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for rule in self.rules:
            if rule.times > 0 and rule.when(request):
                rule.times -= 1
                return rule.action(request, lambda: self.serve(request))
        return self.serve(request)

    def serve(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == UPLOAD_HOST:
            return self.upload_endpoint(request)
        auth = request.headers.get("authorization", "")
        if auth not in (f"Bearer {TOKEN}", f"Bearer {NO_SCOPE_TOKEN}"):
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty." if not auth else "CompactToken parsing failed with error code: 80049217",
            )
        path = request.url.raw_path.decode().split("?", 1)[0]
        match = re.match(r"^/(v1\.0|beta)/(me|users/[^/]+)(/.*)$", path)
        if not match:
            return graph_error(400, "BadRequest", f"Resource not found for the segment '{path}'.")
        rest = match.group(3)
        if request.method == "POST" and re.fullmatch(r"(/mailFolders/[^/]+(/childFolders/[^/]+)*)?/messages", rest):
            item_id = f"AAMkMSG{uuid.uuid4().hex[:12]}="
            self.add_message(item_id)
            return httpx.Response(201, json={"id": item_id, "isDraft": True, **json.loads(request.content or b"{}")})
        if request.method == "POST" and re.fullmatch(
            r"(/calendar|/calendars/[^/]+|/calendarGroups/[^/]+/calendars/[^/]+)?/events", rest
        ):
            item_id = f"AAMkEVT{uuid.uuid4().hex[:12]}="
            self.add_event(item_id)
            return httpx.Response(201, json={"id": item_id, **json.loads(request.content or b"{}")})
        found = re.search(r"/(messages|events)/([^/]+)(?:/(send)|/attachments(?:/([^/]+))?(?:/(\$value))?)?$", rest)
        if not found:
            return graph_error(400, "BadRequest", f"Unsupported segment '{rest}'.")
        kind = "message" if found.group(1) == "messages" else "event"
        item_id = unquote(found.group(2))
        if (kind, item_id) not in self.items:
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        writes = request.method in ("POST", "DELETE")
        if writes and auth == f"Bearer {NO_SCOPE_TOKEN}":
            return graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        if found.group(3) == "send":
            return httpx.Response(202)
        segment = unquote(found.group(4)) if found.group(4) else None
        store = self.items[(kind, item_id)]
        if segment is None:
            if request.method == "POST":
                return self.post_attachment(request, store)
            if request.method == "GET":
                select = self._select(request)
                return httpx.Response(200, json={"value": [a.json(select) for a in store.values()]})
        elif segment.lower() in ("createuploadsession", "microsoft.graph.createuploadsession"):
            if request.method == "POST":
                return self.create_session(request, kind, item_id)
        else:
            attachment = store.get(segment)
            if attachment is None:
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            if found.group(5):
                if attachment.odata_type.endswith("referenceAttachment"):
                    return graph_error(405, "ErrorInvalidRequest", "Not supported for reference attachments.")
                return httpx.Response(200, content=attachment.data, headers={"Content-Type": attachment.content_type})
            if request.method == "GET":
                return httpx.Response(200, json=attachment.json(self._select(request)))
            if request.method == "DELETE":
                del store[segment]
                return httpx.Response(204)
        return graph_error(405, "MethodNotAllowed", "Method not allowed.")

    @staticmethod
    def _select(request: httpx.Request) -> list[str] | None:
        query = parse_qs(urlsplit(str(request.url)).query)
        values = query.get("$select")
        return values[0].split(",") if values else None

    def post_attachment(self, request: httpx.Request, store: dict[str, Stored]) -> httpx.Response:
        if len(request.content) > 4 * MiB:
            return graph_error(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
        body = json.loads(request.content)
        odata_type = body.get("@odata.type", "")
        if not odata_type:
            return graph_error(
                422, "UnprocessableType", "Cannot process input of abstract type 'Microsoft.OutlookServices.Attachment'"
            )
        attachment_id = f"AAMkATT{uuid.uuid4().hex[:16]}="
        if odata_type.endswith("fileAttachment"):
            stored = Stored(
                attachment_id,
                body["name"],
                body.get("contentType") or "application/octet-stream",
                base64.b64decode(body["contentBytes"]),
                bool(body.get("isInline")),
                body.get("contentId"),
            )
        else:
            extra = {k: v for k, v in body.items() if k not in ("@odata.type", "name", "item")}
            stored = Stored(
                attachment_id, body["name"], body.get("contentType"), b"", odata_type=odata_type, extra=extra
            )
        store[attachment_id] = stored
        return httpx.Response(201, json=stored.json())

    def create_session(self, request: httpx.Request, kind: str, item_id: str) -> httpx.Response:
        body = json.loads(request.content)
        item = next((v for k, v in body.items() if k.lower() == "attachmentitem"), None)
        if not isinstance(item, dict):
            return graph_error(400, "BadRequest", "AttachmentItem is required.")
        size = int(item["size"])
        if size < 2 * MiB:
            return graph_error(
                400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize", "Attachment size must be at least 3 MB."
            )
        if size > 150 * MiB:
            return graph_error(400, "ErrorAttachmentSizeExceeded", "Attachment size exceeds 150 MB.")
        session = Session(
            f"AAMkSES{uuid.uuid4().hex[:12]}=",
            kind,
            item_id,
            item["name"],
            size,
            item.get("contentType"),
            bool(item.get("isInline")),
            item.get("contentId"),
            datetime.now(UTC) + self.session_lifetime,
        )
        self.sessions[session.id] = session
        return httpx.Response(
            201,
            json={
                "@odata.context": "https://graph.fake/v1.0/$metadata#microsoft.graph.uploadSession",
                "uploadUrl": self.upload_url(session),
                "expirationDateTime": self._expiry(session),
                "nextExpectedRanges": ["0-"],
            },
        )

    def upload_url(self, session: Session) -> str:
        collection = "messages" if session.item_kind == "message" else "events"
        return (
            f"https://{UPLOAD_HOST}/api/gv1.0/users('{USER_ID}@{TENANT_ID}')/{collection}('{session.item_id}')"
            f"/AttachmentSessions('{session.id}')?authtoken=session-{session.id}"
        )

    @staticmethod
    def _expiry(session: Session) -> str:
        return session.expires.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"

    def _range_text(self, session: Session) -> str:
        start = len(session.received)
        if self.range_form == "N":
            return str(start)
        if self.range_form == "N-":
            return f"{start}-"
        return f"{start}-{session.size - 1}"

    def _session_body(self, session: Session) -> dict[str, Any]:
        return {
            "@odata.context": f"https://{UPLOAD_HOST}/api/v2.0/$metadata#Users/AttachmentSessions/$entity",
            "ExpirationDateTime": self._expiry(session),
            self.range_key: [self._range_text(session)],
        }

    def upload_endpoint(self, request: httpx.Request) -> httpx.Response:
        match = re.search(r"AttachmentSessions\('([^']+)'\)", unquote(request.url.raw_path.decode()))
        session = self.sessions.get(match.group(1)) if match else None
        if request.headers.get("authorization"):
            self.token_on_upload += 1
            return graph_error(401, "InvalidAudience", "The audience claim value is invalid 'aud'.")
        if session is None or session.done:
            return graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store.", inner=False
            )
        if datetime.now(UTC) >= session.expires:
            return graph_error(
                404, "ErrorItemNotFound", "The upload session was not found or has expired.", inner=False
            )
        if request.method == "DELETE":
            del self.sessions[session.id]
            return httpx.Response(204)
        if request.method == "GET":
            if not self.status_get:
                return graph_error(405, "ErrorInvalidRequest", "The OData request is not supported.", inner=False)
            return httpx.Response(200, json=self._session_body(session))
        if request.method != "PUT":
            return graph_error(405, "ErrorInvalidRequest", "Method not allowed.", inner=False)
        found = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("content-range", ""))
        if not found:
            return graph_error(400, "ErrorInvalidRequest", "Content-Range is missing or malformed.", inner=False)
        start, end, total = (int(g) for g in found.groups())
        data = request.content
        if total != session.size or len(data) != end - start + 1 or int(request.headers["content-length"]) != len(data):
            return graph_error(
                400, "ErrorInvalidRequest", "Content size does not match the Content-Range.", inner=False
            )
        if len(data) > self.max_chunk:
            return graph_error(413, "RequestEntityTooLarge", "Chunk too large.", inner=False)
        if end < len(session.received) and bytes(session.received[start : end + 1]) == data:
            # The same range again (a client retry): the same answer as the first time.
            return httpx.Response(200, json=self._session_body(session))
        if start != len(session.received):
            return graph_error(
                416, "ErrorInvalidRange", f"Expected the range to start at {len(session.received)}.", inner=False
            )
        session.received.extend(data)
        if len(session.received) < session.size:
            return httpx.Response(200, json=self._session_body(session))
        session.done = True
        attachment_id = f"AAMkATT{uuid.uuid4().hex[:16]}="
        self.items[(session.item_kind, session.item_id)][attachment_id] = Stored(
            attachment_id,
            session.name,
            session.content_type or "application/octet-stream",
            bytes(session.received),
            session.is_inline,
            session.content_id,
        )
        collection = "Messages" if session.item_kind == "message" else "Events"
        location = (
            f"https://{UPLOAD_HOST}/api/v2.0/Users('{USER_ID}@{TENANT_ID}')/{collection}('{session.item_id}')"
            f"/Attachments('{attachment_id}')"
        )
        return httpx.Response(201, headers={"Location": location, "Content-Length": "0"})
