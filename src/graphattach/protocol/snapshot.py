"""The snapshot format (``graphattach snapshot export|import``, ``/_graphattach/snapshot``), version 1.

JSON Lines, UTF-8, one record per line, written and read as a stream:

    {"format": "graphattach-snapshot", "version": 1, "created": "...", "tenantId": "..."}
    {"type": "user", "record": {...}}            users, then folders (parents first), items,
    {"type": "folder", "record": {...}}          blobs, attachments and upload sessions; the
    {"type": "item", "record": {...}}            record fields are those of domain/models.py,
    {"type": "blob", "key": "...", "size": N}    date-times in ISO 8601
    {"type": "chunk", "data": "<base64>"}        the blob's bytes, at most 1 MiB per chunk, in order
    {"type": "attachment", "record": {...}}
    {"type": "session", "record": {...}}
    {"type": "end", "records": N, "sha256": "<hex of every byte before this line>"}

A file without its ``end`` line (truncated), with a wrong count or checksum (corrupt), or of a
newer version is refused before anything is changed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime
from typing import Any

import orjson

from graphattach.domain.models import Attachment, Folder, Item, UploadSession, User
from graphattach.protocol.jsonio import dumps

FORMAT = "graphattach-snapshot"
VERSION = 1
CHUNK = 1024 * 1024

_MODELS: dict[str, Any] = {
    "user": User,
    "folder": Folder,
    "item": Item,
    "attachment": Attachment,
    "session": UploadSession,
}
_DATETIMES = ("created", "last_modified", "expires")


class SnapshotError(ValueError):
    """The snapshot is refused: ``line N: what is wrong``."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def header(created: datetime, tenant_id: str) -> bytes:
    return dumps({"format": FORMAT, "version": VERSION, "created": created.isoformat(), "tenantId": tenant_id}) + b"\n"


def record_line(kind: str, record: Any) -> bytes:
    fields = {f.name: _jsonable(getattr(record, f.name)) for f in dataclasses.fields(record)}
    fields.pop("has_attachments", None)  # derived by the store
    if fields.get("ended", "") is None:
        del fields["ended"]  # only live sessions are exported: the field stays out of the format
    return dumps({"type": kind, "record": fields}) + b"\n"


def blob_line(key: str, size: int) -> bytes:
    return dumps({"type": "blob", "key": key, "size": size}) + b"\n"


def chunk_line(data: bytes) -> bytes:
    return dumps({"type": "chunk", "data": base64.b64encode(data).decode("ascii")}) + b"\n"


def end_line(records: int, sha256: str) -> bytes:
    return dumps({"type": "end", "records": records, "sha256": sha256}) + b"\n"


def parse_line(raw: bytes, number: int) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SnapshotError(f"line {number}: not a JSON object (a corrupt snapshot?)") from None
    if not isinstance(value, dict):
        raise SnapshotError(f"line {number}: not a JSON object (a corrupt snapshot?)")
    return value


def check_header(value: dict[str, Any]) -> None:
    if value.get("format") != FORMAT:
        raise SnapshotError("line 1: not a graphattach snapshot")
    version = value.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise SnapshotError(f"line 1: snapshot version {version!r} is newer than this graphattach reads ({VERSION})")


def decode_record(value: dict[str, Any], number: int) -> Any:
    """The domain record of a ``user``/``folder``/``item``/``attachment``/``session`` line."""
    model = _MODELS[value["type"]]
    fields = value.get("record")
    if not isinstance(fields, dict):
        raise SnapshotError(f"line {number}: a {value['type']} without its record")
    try:
        data = dict(fields)
        for name in _DATETIMES:
            if isinstance(data.get(name), str):
                data[name] = datetime.fromisoformat(data[name])
        if isinstance(data.get("last_range"), list):
            data["last_range"] = tuple(data["last_range"])
        return model(**data)
    except (TypeError, ValueError) as exc:
        raise SnapshotError(f"line {number}: a {value['type']} record that does not fit: {exc}") from None


def decode_chunk(value: dict[str, Any], number: int) -> bytes:
    try:
        return base64.b64decode(str(value.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise SnapshotError(f"line {number}: a chunk that is not base64") from None


RECORD_TYPES = frozenset(_MODELS)
