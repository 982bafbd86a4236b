"""Helpers for the upload-session tests: items to attach to, sessions, range PUTs."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.helpers import ADELE, EVENT, Graph

MiB = 1024 * 1024
#: The walkthrough's file: 3,483,322 bytes in a 2 MiB range and a 1,386,170-byte range (the large-attachments walkthrough).
FLOWER_SIZE = 3_483_322
FLOWER_SPLIT = 2_097_152
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


def payload(size: int, seed: int = 0, head: bytes = b"") -> bytes:
    """Deterministic pseudo-random bytes, optionally starting with ``head``."""
    return head + random.Random(seed).randbytes(size - len(head))


async def new_item(graph: Graph, kind: str = "message", user: str = ADELE) -> str:
    if kind == "message":
        response = await graph.post(f"/users/{user}/messages", json={"subject": "Large attachment"}, user=user)
    else:
        response = await graph.post(f"/users/{user}/events", json=EVENT, user=user)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def collection(kind: str) -> str:
    return "messages" if kind == "message" else "events"


async def create_session(
    graph: Graph,
    item_id: str,
    size: int,
    *,
    kind: str = "message",
    name: str = "flower",
    user: str = ADELE,
    item: dict[str, Any] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    body = {"AttachmentItem": item or {"attachmentType": "file", "name": name, "size": size}}
    return await graph.post(
        f"/users/{user}/{collection(kind)}/{item_id}/attachments/createUploadSession", json=body, **kwargs
    )


async def upload_url(graph: Graph, item_id: str, size: int, **kwargs: Any) -> str:
    response = await create_session(graph, item_id, size, **kwargs)
    assert response.status_code == 201, response.text
    return str(response.json()["uploadUrl"])


async def put_range(
    graph: Graph,
    url: str,
    data: bytes,
    start: int,
    total: int,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """PUT ``data`` as the range starting at ``start``, with no Authorization header."""
    all_headers = {
        "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}",
    }
    all_headers.update(headers or {})
    return await graph.http.put(url, content=data, headers=all_headers)


async def upload_all(graph: Graph, url: str, data: bytes, chunk: int) -> httpx.Response:
    """Upload ``data`` in ranges of ``chunk`` bytes; returns the last response."""
    response: httpx.Response | None = None
    for start in range(0, len(data), chunk):
        response = await put_range(graph, url, data[start : start + chunk], start, len(data))
        assert response.status_code in (200, 201), response.text
    assert response is not None
    return response


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["authtoken"][0]


def without_token(url: str) -> str:
    return url.split("?", 1)[0]
