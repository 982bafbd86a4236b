"""Opaque, URL-safe ids in the style Exchange mints (``AAMkAD...``).

Exchange ids are base64 and contain ``=``, ``-`` and ``_`` but never ``/``, ``+``, ``?``, ``#``,
``%`` or spaces once URL-safe encoded. O365 puts ids into URLs without escaping them
(python-o365, https://github.com/O365/python-o365), so we only mint characters that survive that:
``[A-Za-z0-9_-]`` plus a trailing ``=``.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid

# One prefix per kind keeps ids recognisable in logs, like Exchange's AAMk / AQMk.
_PREFIX = {
    "message": b"\x00\x03\x24\x00",
    "event": b"\x00\x03\x24\x01",
    "folder": b"\x00\x03\x2e\x00",
    "calendar": b"\x00\x03\x2e\x01",
    "calendarGroup": b"\x00\x03\x2e\x02",
    "attachment": b"\x00\x03\x24\x12",
    "session": b"\x00\x03\x24\x13",
}

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,200}={0,2}$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def new_id(kind: str) -> str:
    """A fresh opaque id for an entity of ``kind`` (``message``, ``event``, ``attachment``...)."""
    raw = _PREFIX.get(kind, b"\x00\x03\x00\x00") + secrets.token_bytes(25)
    # 29 bytes -> 40 base64 chars ending in "=" like real ids.
    return base64.urlsafe_b64encode(raw).decode("ascii")


def new_guid() -> str:
    return str(uuid.uuid4())


def looks_like_id(value: str) -> bool:
    """True when ``value`` could be an id we minted (or a GUID); false for garbled input."""
    return bool(_ID_RE.match(value) or _GUID_RE.match(value))


def is_guid(value: str) -> bool:
    return bool(_GUID_RE.match(value))
