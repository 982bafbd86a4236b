"""Helpers for the fault and throttling tests: rules through the admin API, a mailbox of one's own,
a truthful upload client that resumes from what the server says."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx

from graphattach.domain.errors import ConnectionDropped
from tests.helpers import Graph
from tests.upload_helpers import put_range

#: What a client sees when a fault closes the connection: a transport error over a socket, the
#: app's exception in-process (httpx's ASGI transport re-raises it).
DROPPED = (httpx.TransportError, ConnectionDropped)


async def restore(graph: Graph) -> None:
    """Put back every rule, the throttling and the clock (the server process is shared by the
    whole session)."""
    await graph.admin("DELETE", "/faults")
    await graph.admin("DELETE", "/throttling")
    await graph.admin("DELETE", "/clock")


async def add_rule(graph: Graph, rule: dict[str, Any]) -> dict[str, Any]:
    response = await graph.admin("POST", "/faults", json=rule)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def rule_counts(graph: Graph) -> dict[str, tuple[int, int]]:
    response = await graph.admin("GET", "/faults")
    assert response.status_code == 200, response.text
    return {r["id"]: (r["matched"], r["fired"]) for r in response.json()["value"]}


async def new_user(graph: Graph) -> str:
    """A fresh user (an empty mailbox) for one test; returns its userPrincipalName."""
    upn = f"faults-{uuid.uuid4().hex[:10]}@contoso.onmicrosoft.com"
    response = await graph.admin("POST", "/users", json={"userPrincipalName": upn})
    assert response.status_code == 201, response.text
    return upn


def next_byte(status: httpx.Response) -> int:
    ranges = status.json()["nextExpectedRanges"]
    return int(ranges[0].split("-")[0])


async def put_or_drop(graph: Graph, url: str, data: bytes, start: int, total: int) -> httpx.Response | None:
    """The PUT's answer, or None when a fault closed the connection."""
    try:
        return await put_range(graph, url, data, start, total)
    except DROPPED:
        return None


async def truthful_upload(
    graph: Graph, url: str, data: bytes, chunk: int, *, max_attempts: int = 60
) -> tuple[httpx.Response, list[str]]:
    """Upload ``data`` as a careful client would: after any failure ask the session where to go on,
    and check that each answer tells the truth about ``nextExpectedRanges`` (the bytes the server
    holds are exactly a prefix of ``data``: checked at the end by the attachment's SHA-256).

    Returns the completing response (201) and a log of what happened to each PUT."""
    log: list[str] = []
    position = 0
    for _ in range(max_attempts):
        piece = data[position : position + chunk]
        response = await put_or_drop(graph, url, piece, position, len(data))
        if response is not None and response.status_code == 201:
            log.append("created")
            return response, log
        if response is not None and response.status_code == 200:
            reported = next_byte(response)
            assert reported == position + len(piece), (reported, position, len(piece))
            log.append("ok")
        else:
            log.append("dropped" if response is None else str(response.status_code))
            if response is not None and "retry-after" in response.headers:
                # Honour Retry-After on the server's clock instead of sleeping.
                seconds = int(response.headers["retry-after"])
                await graph.admin("POST", "/clock", json={"advanceSeconds": seconds})
        status = await graph.http.get(url)
        if status.status_code == 404 and (response is None or response.status_code >= 500):
            # The final range was committed but its answer lost: Outlook has consumed the session.
            log.append("completed-unseen")
            return status, log
        assert status.status_code == 200, status.text
        reported = next_byte(status)
        if response is not None and response.status_code == 200:
            # The PUT's answer and the session's status agree.
            assert reported == position + len(piece)
        # Never behind what was acknowledged, never past what was sent.
        assert position <= reported <= position + len(piece), (position, reported)
        position = reported
    raise AssertionError(f"no completion after {max_attempts} PUTs: {log}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def session_url(graph: Graph, item_id: str, size: int, user: str, name: str = "big.bin") -> str:
    """createUploadSession on ``user``'s message ``item_id``, as ``user``."""
    response = await graph.post(
        f"/users/{user}/messages/{item_id}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": name, "size": size}},
        user=user,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["uploadUrl"])


async def attachment_bytes(graph: Graph, user: str, item_id: str) -> list[bytes]:
    """The bytes of every attachment of ``user``'s message ``item_id``."""
    listed = await graph.get(f"/users/{user}/messages/{item_id}/attachments?$select=id", user=user)
    assert listed.status_code == 200, listed.text
    out = []
    for attachment in listed.json()["value"]:
        value = await graph.get(f"/users/{user}/messages/{item_id}/attachments/{attachment['id']}/$value", user=user)
        assert value.status_code == 200, value.text
        out.append(value.content)
    return out
