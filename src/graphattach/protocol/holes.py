"""JSON with holes: a response body as JSON pieces with, between them, the base64 of blobs that
are streamed in place (``services/attachments.fill_holes``), so a large ``contentBytes`` is never
held in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from graphattach.protocol.attachments import base64_length


@dataclass(slots=True)
class Hole:
    """The base64 of one blob, streamed in place."""

    blob_key: str
    raw_length: int


Part = bytes | Hole


def entity_parts(entity: dict[str, Any], hole: Hole | None) -> list[Part]:
    """``entity`` as JSON, with ``"contentBytes": <hole>`` as its last property when given."""
    encoded = orjson.dumps(entity)
    if hole is None:
        return [encoded]
    return [encoded[:-1] + b',"contentBytes":"', hole, b'"}']


def parts_length(parts: list[Part]) -> int:
    """The length of the body once every hole is filled."""
    return sum(base64_length(p.raw_length) if isinstance(p, Hole) else len(p) for p in parts)


def hole_bytes(parts: list[Part]) -> int:
    """The raw bytes the holes stand for."""
    return sum(p.raw_length for p in parts if isinstance(p, Hole))


def merge_parts(parts: list[Part]) -> list[Part]:
    """Adjacent JSON pieces joined."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return merged
