"""Shared helpers of the attachment API tests: items created over HTTP, attachment payloads."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from tests.helpers import ADELE, EVENT, Graph

FILE = "#microsoft.graph.fileAttachment"
ITEM = "#microsoft.graph.itemAttachment"
REFERENCE = "#microsoft.graph.referenceAttachment"


def file_payload(name: str = "menu.txt", data: bytes = b"mac and cheese today", **extra: Any) -> dict[str, Any]:
    return {"@odata.type": FILE, "name": name, "contentBytes": base64.b64encode(data).decode(), **extra}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def new_message(graph: Graph, user: str = ADELE, *, folder: str | None = None, **props: Any) -> dict[str, Any]:
    path = f"/users/{user}/mailFolders/{folder}/messages" if folder else f"/users/{user}/messages"
    response = await graph.post(path, json={"subject": "with attachments", **props}, user=user)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_event(graph: Graph, user: str = ADELE, **props: Any) -> dict[str, Any]:
    response = await graph.post(f"/users/{user}/events", json={**EVENT, **props}, user=user)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def attach(graph: Graph, base: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = await graph.post(f"{base}/attachments", json=payload, **kwargs)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def attachment_ids(graph: Graph, base: str, **kwargs: Any) -> list[str]:
    response = await graph.get(f"{base}/attachments?$select=id", **kwargs)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["value"]]
