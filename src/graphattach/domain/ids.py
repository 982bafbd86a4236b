"""Opaque, URL-safe ids in the style Exchange mints (``AAMkAD...``).

Exchange ids are base64 and contain ``=``, ``-`` and ``_`` but never ``/``, ``+``, ``?``, ``#``,
``%`` or spaces once URL-safe encoded. O365 puts ids into URLs without escaping them
(python-o365, https://github.com/O365/python-o365), so we only mint characters that survive that:
``[A-Za-z0-9_-]`` plus a trailing ``=``.
"""

from __future__ import annotations

import base64
import random
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

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


class IdSource:
    """Where ids, GUIDs and other minted values come from: the OS's randomness (``seed=None``), or a
    generator seeded with ``seed`` that yields the same sequence after every ``restart()``.

    A server started with ``--seed N`` binds a seeded source to each request (``bind``), so that a
    scripted session mints the same ids, request ids and upload URLs on every run.
    """

    __slots__ = ("_random", "seed")

    def __init__(self, seed: int | str | None = None) -> None:
        self.seed = seed
        self._random: random.Random | None = None
        self.restart()

    def restart(self) -> None:
        """Back to the start of the sequence (nothing to do for OS randomness)."""
        # random.Random is not for secrets; a seeded server is for tests, where repeating is the point.
        self._random = random.Random(self.seed) if self.seed is not None else None

    @property
    def deterministic(self) -> bool:
        return self._random is not None

    def token_bytes(self, n: int) -> bytes:
        return self._random.randbytes(n) if self._random is not None else secrets.token_bytes(n)


_OS_RANDOM = IdSource()
_source: ContextVar[IdSource] = ContextVar("graphattach_id_source", default=_OS_RANDOM)


def bind(source: IdSource) -> Token[IdSource]:
    """Mint from ``source`` in the current context (a request); ``unbind`` with the returned token."""
    return _source.set(source)


def unbind(token: Token[IdSource]) -> None:
    _source.reset(token)


@contextmanager
def minting_from(source: IdSource) -> Iterator[IdSource]:
    """Mint from ``source`` inside the block."""
    token = _source.set(source)
    try:
        yield source
    finally:
        _source.reset(token)


def token_bytes(n: int) -> bytes:
    """``n`` bytes from the current source (random, or repeatable under ``--seed``)."""
    return _source.get().token_bytes(n)


def token_hex(n: int) -> str:
    return token_bytes(n).hex()


def new_id(kind: str) -> str:
    """A fresh opaque id for an entity of ``kind`` (``message``, ``event``, ``attachment``...)."""
    raw = _PREFIX.get(kind, b"\x00\x03\x00\x00") + token_bytes(25)
    # 29 bytes -> 40 base64 chars ending in "=" like real ids.
    return base64.urlsafe_b64encode(raw).decode("ascii")


def new_guid() -> str:
    """A version-4 GUID from the current source (every request mints one: formatted here, the
    same text as ``str(uuid.UUID(bytes=..., version=4))`` at a fraction of its cost)."""
    return guid_of(token_bytes(16))


def guid_of(raw: bytes) -> str:
    """The version-4 GUID whose random bits are ``raw`` (16 bytes), as ``uuid.UUID`` sets them."""
    data = bytearray(raw)
    data[6] = (data[6] & 0x0F) | 0x40  # version 4
    data[8] = (data[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = data.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def looks_like_id(value: str) -> bool:
    """True when ``value`` could be an id we minted (or a GUID); false for garbled input."""
    return bool(_ID_RE.match(value) or _GUID_RE.match(value))


def is_guid(value: str) -> bool:
    return bool(_GUID_RE.match(value))
