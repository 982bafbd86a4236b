"""What the test kit reports: the request journal's entries, the least-privilege report's groups
and a mailbox item as the inspector shows it. Plain records; ``services/journal.py`` and
``services/inspect.py`` fill them, ``protocol/testkit.py`` serialises them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from graphattach.domain.models import Attachment, Item


@dataclass(slots=True)
class JournalEntry:
    """One request as the server served it."""

    seq: int
    time: datetime
    method: str
    path: str
    query: str
    scheme: str = "http"
    status: int = 0
    request_id: str = ""
    client_request_id: str = ""
    operation: str = "unknown"
    #: ``delegated``, ``app``, ``upload`` (an upload URL's own token) or None (not authenticated).
    caller: str | None = None
    user: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    #: What the caller's token granted (``scp`` or ``roles``).
    granted: tuple[str, ...] = ()
    #: Every permission that would have allowed the call, least privileged first (empty: none needed).
    accepted: tuple[str, ...] = ()
    bytes_in: int = 0
    bytes_out: int = 0
    duration_ms: float = 0.0
    #: What the fault layer did to the request (a fault rule, a throttling 429), if anything.
    fault: str | None = None
    #: The headers as they came and went (ASGI's name and value bytes), credentials already
    #: redacted; read them decoded through ``request_headers`` and ``response_headers``. Kept
    #: raw because most entries are never read: decoding them on every request was much of
    #: what the journal cost a request (bench/README.md, A/B table).
    raw_request_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    raw_response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    request_body: bytes = b""
    response_body: bytes = b""

    @property
    def permission(self) -> str | None:
        """The least privileged permission the call needed."""
        return self.accepted[0] if self.accepted else None

    @property
    def request_headers(self) -> list[tuple[str, str]]:
        """The request's headers, names in lowercase (credentials redacted)."""
        return _decoded(self.raw_request_headers)

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        """The response's headers, names in lowercase (credentials redacted)."""
        return _decoded(self.raw_response_headers)

    @property
    def host(self) -> str:
        """The request's ``Host`` header ("" without one)."""
        return next(
            (value.decode("latin-1") for name, value in self.raw_request_headers if name.lower() == b"host"), ""
        )


def _decoded(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw]


@dataclass(slots=True)
class PrivilegeGroup:
    """What one app did as one kind of caller (delegated or app), and the permissions that covers."""

    caller: str
    app_id: str
    minimal: list[str]
    granted: list[str]
    excess: list[str]
    #: operation → the least privileged permission it needed, for the operations that needed one.
    operations: dict[str, str]
    requests: int
    #: Requests refused with 403 (the token lacked the permission).
    denied: int


@dataclass(slots=True)
class AttachmentView:
    attachment: Attachment
    #: SHA-256 (hex) of a file attachment's bytes; None for item and reference attachments.
    sha256: str | None


@dataclass(slots=True)
class ItemView:
    item: Item
    #: The folder's well-known name (``inbox``, ``calendar``...) or its display name.
    folder: str
    attachments: list[AttachmentView] = field(default_factory=list)
