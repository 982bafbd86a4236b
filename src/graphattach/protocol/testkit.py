"""JSON shapes of the test-kit admin endpoints (not Graph): mailbox views, the request journal,
its HAR export and the least-privilege report."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from graphattach.domain.testkit import ItemView, JournalEntry, PrivilegeGroup
from graphattach.protocol.jsonio import graph_datetime


def item_view_json(view: ItemView) -> dict[str, Any]:
    item = view.item
    data = item.data
    body: dict[str, Any] = {
        "id": item.id,
        "kind": item.kind,
        "folder": view.folder,
        "subject": data.get("subject"),
        "createdDateTime": graph_datetime(item.created),
        "lastModifiedDateTime": graph_datetime(item.last_modified),
        "hasAttachments": item.has_attachments,
    }
    if item.kind == "message":
        sender = (data.get("from") or {}).get("emailAddress") or {}
        body.update(
            {
                "isDraft": bool(data.get("isDraft")),
                "isRead": bool(data.get("isRead")),
                "from": sender.get("address"),
                "toRecipients": [r["emailAddress"]["address"] for r in data.get("toRecipients") or []],
            }
        )
    else:
        body.update({"start": data.get("start"), "end": data.get("end")})
    body["attachments"] = [
        {
            "id": a.attachment.id,
            "kind": a.attachment.kind,
            "name": a.attachment.name,
            "contentType": a.attachment.content_type,
            "size": a.attachment.size,
            "contentLength": a.attachment.content_length,
            "isInline": a.attachment.is_inline,
            "sha256": a.sha256,
        }
        for a in view.attachments
    ]
    return body


def _iso(entry: JournalEntry) -> str:
    return entry.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    """One journal entry as ``GET /_graphattach/requests`` lists it."""
    return {
        "seq": entry.seq,
        "time": _iso(entry),
        "method": entry.method,
        "path": entry.path,
        "query": entry.query,
        "status": entry.status,
        "requestId": entry.request_id,
        "clientRequestId": entry.client_request_id,
        "operation": entry.operation,
        "caller": entry.caller,
        "user": entry.user,
        "userId": entry.user_id,
        "appId": entry.app_id,
        "permission": entry.permission,
        "acceptedPermissions": list(entry.accepted),
        "grantedPermissions": list(entry.granted),
        "bytesIn": entry.bytes_in,
        "bytesOut": entry.bytes_out,
        "durationMs": round(entry.duration_ms, 3),
        "fault": entry.fault,
    }


def _har_headers(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _header(headers: list[tuple[str, str]], name: str, default: str = "") -> str:
    return next((v for k, v in headers if k == name), default)


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def har_entry(entry: JournalEntry) -> dict[str, Any]:
    url = f"{entry.scheme}://{entry.host or 'localhost'}{entry.path}" + (f"?{entry.query}" if entry.query else "")
    request: dict[str, Any] = {
        "method": entry.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _har_headers(entry.request_headers),
        "queryString": [{"name": k, "value": v} for k, v in parse_qsl(entry.query, keep_blank_values=True)],
        "headersSize": -1,
        "bodySize": entry.bytes_in,
    }
    request_type = _header(entry.request_headers, "content-type")
    if entry.bytes_in:
        post: dict[str, Any] = {
            "mimeType": request_type or "application/octet-stream",
            "text": _text(entry.request_body),
        }
        if len(entry.request_body) < entry.bytes_in:
            post["comment"] = f"{len(entry.request_body)} of {entry.bytes_in} bytes kept"
        request["postData"] = post
    response_type = _header(entry.response_headers, "content-type")
    content: dict[str, Any] = {"size": entry.bytes_out, "mimeType": response_type or "x-unknown"}
    if entry.response_body:
        content["text"] = _text(entry.response_body)
    if len(entry.response_body) < entry.bytes_out:
        content["comment"] = f"{len(entry.response_body)} of {entry.bytes_out} bytes kept"
    try:
        reason = HTTPStatus(entry.status).phrase
    except ValueError:
        reason = ""
    return {
        "startedDateTime": _iso(entry),
        "time": round(entry.duration_ms, 3),
        "request": request,
        "response": {
            "status": entry.status,
            "statusText": reason,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _har_headers(entry.response_headers),
            "content": content,
            "redirectURL": _header(entry.response_headers, "location"),
            "headersSize": -1,
            "bodySize": entry.bytes_out,
        },
        "cache": {},
        "timings": {"send": 0, "wait": round(entry.duration_ms, 3), "receive": 0},
        "_graphattach": {
            "seq": entry.seq,
            "operation": entry.operation,
            "requestId": entry.request_id,
            "caller": entry.caller,
            "user": entry.user,
            "appId": entry.app_id,
            "permission": entry.permission,
        },
    }


def har_json(entries: list[JournalEntry], version: str) -> dict[str, Any]:
    """HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/); credentials are already redacted."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "graphattach", "version": version},
            "entries": [har_entry(e) for e in entries],
        }
    }


def permissions_report_json(groups: list[PrivilegeGroup], requests: int) -> dict[str, Any]:
    return {
        "requests": requests,
        "value": [
            {
                "caller": g.caller,
                "appId": g.app_id,
                "minimalPermissions": g.minimal,
                "grantedPermissions": g.granted,
                "excessPermissions": g.excess,
                "operations": g.operations,
                "requests": g.requests,
                "denied": g.denied,
            }
            for g in groups
        ],
    }
