"""JSON batching (``POST /v1.0/$batch``): the request and response shapes and their rules.

Sources (https://learn.microsoft.com/graph/json-batching and the known-issues page):
- ``{"requests": [...]}``, at most 20; each has ``id`` (unique, case-insensitively), ``method``,
  a ``url`` relative to the version (``/me/messages`` or ``users?$select=id``), optional
  ``headers``, ``body`` (a JSON value, or a base64 string for other media types) and ``dependsOn``;
- a request with a body must carry a ``Content-Type`` header, else the whole batch fails
  (``Write request with id '1' does not contain a Content-Type header.``, seen in
  Softeria/ms-365-mcp-server#677);
- a request may depend on one earlier request, and the batch must be parallel (no ``dependsOn``),
  serial (each on the one before) or all on the same one ("Batch should be either fully
  sequential or fully parallel.", microsoftgraph/microsoft-graph-docs-contrib#2339); a dependency
  that is not an earlier request is "Invalid dependency for request Id ..."
  (microsoftgraph/msgraph-sdk-dotnet-core#891). The ``lenient`` profile accepts any acyclic
  ``dependsOn`` (several ids, any order) and refuses cycles.
- msgraph-sdk-python writes the key ``depends_on``; it is read as ``dependsOn`` (both profiles).

Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from graphattach.domain.errors import GraphError
from graphattach.protocol.errors import BadRequest

#: "JSON batch requests are currently limited to 20 individual requests" (json-batching).
MAX_REQUESTS = 20
#: Outlook takes at most four concurrent requests per app and mailbox; a batch is sent to it four
#: requests at a time (throttling-limits#outlook-service-limits).
MAX_CONCURRENT = 4
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


@dataclass(slots=True)
class BatchItem:
    """One request of a batch, validated."""

    id: str
    method: str
    #: Path and query relative to the version, always with a leading ``/``.
    url: str
    headers: dict[str, str]
    body: bytes | None
    depends_on: list[str] = field(default_factory=list)


def batch_error(message: str) -> GraphError:
    return BadRequest(message)


def _find(item: dict[str, Any], name: str) -> Any:
    for key, value in item.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def _body_bytes(request_id: str, body: Any, content_type: str) -> bytes:
    """A JSON value as JSON; a string as text for ``text/*`` and as base64 (or base64url) for
    other media types (the OData JSON batch format, microsoftgraph/msgraph-sdk-dotnet-core#22)."""
    if not isinstance(body, str):
        return orjson.dumps(body)
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith("text/"):
        return body.encode("utf-8")
    # A JSON document sent as a string is base64 (msgraph-core); a string that is not base64 under
    # a JSON media type is the JSON string value itself.
    padded = body + "=" * (-len(body) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        if media in ("application/json", ""):
            return orjson.dumps(body)
        raise batch_error(f"The body of request with id '{request_id}' is not valid base64.") from None


_ABSOLUTE = re.compile(r"^https?://[^/]+/(?:v1\.0|beta)(/.*)?$", re.IGNORECASE)


def _relative_url(request_id: str, url: str) -> str:
    """The url relative to the version. msgraph-sdk-python (msgraph-core's BatchRequestItem) sends
    absolute URLs (``https://graph.microsoft.com/v1.0/me``): the path after the version is taken."""
    if "://" in url:
        match = _ABSOLUTE.match(url)
        if not match or not match.group(1):
            raise batch_error(f"The url of request with id '{request_id}' must be relative, e.g. '/me/messages'.")
        url = match.group(1)
    return url if url.startswith("/") else "/" + url


def parse_batch(payload: Any, *, lenient: bool) -> list[BatchItem]:
    """The requests of a batch body, or the batch-level 400 Graph answers."""
    if not isinstance(payload, dict):
        raise batch_error("Invalid batch payload format.")
    requests = _find(payload, "requests")
    if not isinstance(requests, list):
        raise batch_error("Invalid batch payload format: the 'requests' array is missing.")
    if not requests:
        raise batch_error("Invalid batch payload format: the 'requests' array is empty.")
    if len(requests) > MAX_REQUESTS:
        # the message live Graph returns (microsoftgraph/microsoftgraph-postman-collections#9)
        raise batch_error("Number of requests inside batch exceeds the limit.")
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(requests):
        if not isinstance(raw, dict):
            raise batch_error("Invalid batch payload format: every request must be a JSON object.")
        request_id = _find(raw, "id")
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            request_id = str(request_id)
        if not isinstance(request_id, str) or not request_id:
            raise batch_error("Invalid batch payload format: a request has no 'id'.")
        if request_id.lower() in seen:
            raise batch_error(f"Request Id {request_id} has to be unique in a batch.")
        seen[request_id.lower()] = position
        method = _find(raw, "method")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise batch_error(f"Invalid method for request with id '{request_id}'.")
        url = _find(raw, "url")
        if not isinstance(url, str) or not url.strip():
            raise batch_error(f"Invalid url for request with id '{request_id}'.")
        url = _relative_url(request_id, url.strip())
        headers_raw = _find(raw, "headers") or {}
        if not isinstance(headers_raw, dict) or not all(isinstance(v, str) for v in headers_raw.values()):
            raise batch_error(f"Invalid headers for request with id '{request_id}'.")
        headers = {str(k): v for k, v in headers_raw.items()}
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        body_raw = _find(raw, "body")
        body: bytes | None = None
        if body_raw is None and method.upper() in ("POST", "PATCH", "PUT") and not lenient:
            # json-batching: a bodyless POST still needs headers and a body ("only body can be an
            # empty object"); Graph: microsoftgraph/msgraph-sdk-dotnet#2628. ``lenient`` takes it.
            raise batch_error(f"Write request id : {request_id} does not contain Content-Type header or body.")
        if body_raw is not None:
            if content_type is None:
                raise batch_error(f"Write request with id '{request_id}' does not contain a Content-Type header.")
            body = _body_bytes(request_id, body_raw, content_type)
        depends = _find(raw, "dependsOn")
        if depends is None:
            depends = _find(raw, "depends_on")
        if depends is None:
            depends = []
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise batch_error(f"Invalid dependency for request Id {request_id}.")
        items.append(BatchItem(request_id, method.upper(), url, headers, body, list(depends)))
    _check_dependencies(items, seen, lenient=lenient)
    return items


def _check_dependencies(items: list[BatchItem], positions: dict[str, int], *, lenient: bool) -> None:
    for index, item in enumerate(items):
        for dep in item.depends_on:
            where = positions.get(dep.lower())
            if where is None or where == index:
                raise batch_error(f"Invalid dependency for request Id {item.id}.")
            if not lenient and where > index:
                raise batch_error(f"Invalid dependency for request Id {item.id}.")
    if lenient:
        _refuse_cycles(items, positions)
        return
    dependents = [item for item in items if item.depends_on]
    if not dependents:
        return  # parallel
    if any(len(item.depends_on) > 1 for item in items):
        raise batch_error("Batch should be either fully sequential or fully parallel.")
    targets = [positions[item.depends_on[0].lower()] for item in items[1:] if item.depends_on]
    serial = all(
        items[i].depends_on and positions[items[i].depends_on[0].lower()] == i - 1 for i in range(1, len(items))
    )
    same = len(targets) == len(items) - 1 and len(set(targets)) == 1
    if not (serial or same):
        raise batch_error("Batch should be either fully sequential or fully parallel.")


def _refuse_cycles(items: list[BatchItem], positions: dict[str, int]) -> None:
    state = [0] * len(items)  # 0 new, 1 on the stack, 2 done

    def visit(index: int) -> None:
        if state[index] == 1:
            raise batch_error(f"Invalid dependency for request Id {items[index].id}: the dependencies form a cycle.")
        if state[index] == 2:
            return
        state[index] = 1
        for dep in items[index].depends_on:
            visit(positions[dep.lower()])
        state[index] = 2

    for index in range(len(items)):
        visit(index)


#: Response headers a batch item carries, spelled as Graph spells them (json-batching examples show
#: Cache-Control, OData-Version, Content-Type; Location, ETag, Retry-After... matter to clients).
#: Request ids, diagnostics and transport headers describe the outer response only.
_KEPT_HEADERS = {
    name.lower(): name
    for name in (
        "Cache-Control",
        "OData-Version",
        "Content-Type",
        "Location",
        "ETag",
        "Retry-After",
        "Preference-Applied",
        "WWW-Authenticate",
        "Content-Range",
    )
}


def response_item(request_id: str, status: int, headers: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """``{"id", "status", "headers", "body"}``: a JSON body as JSON, any other as base64 (which
    msgraph-core's BatchResponseContent decodes). A JSON body is embedded as the bytes the handler
    wrote (``orjson.Fragment``), not parsed and encoded again."""
    out_headers: dict[str, str] = {}
    for name, value in headers:
        canonical = _KEPT_HEADERS.get(name.lower())
        if canonical is not None:
            out_headers[canonical] = value
    item: dict[str, Any] = {"id": request_id, "status": status, "headers": out_headers}
    if body:
        content_type = out_headers.get("Content-Type", "").lower()
        item["body"] = (
            orjson.Fragment(body)
            if "json" in content_type and _is_json(body)
            else base64.b64encode(body).decode("ascii")
        )
    return item


def _is_json(body: bytes) -> bool:
    """True for a JSON document. The app's own JSON (an object, as every Graph answer is) is taken
    as written; anything else is parsed to be sure, since a fragment is embedded unchecked."""
    head, tail = body[:1], body.rstrip()[-1:]
    if head == b"{" and tail == b"}":
        return True
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


def failed_dependency_item(request_id: str, dependency: str) -> dict[str, Any]:
    """A request not run because one it depends on failed: 424 (json-batching). The body is not
    documented; this one names the failed request (docs/fidelity.md)."""
    return {
        "id": request_id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": {
            "error": {
                "code": "FailedDependency",
                "message": f"The request depends on request '{dependency}', which failed.",
            }
        },
    }
