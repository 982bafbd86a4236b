"""Small pieces both drivers share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphattach._httpx import httpx
from graphattach.client._errors import ClientError, InvalidInput, ProtocolError
from graphattach.client._files import FileLike
from graphattach.client._models import Attachment

#: Generous read/write timeouts: a 4 MiB PUT on a slow link takes a while.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=30.0)


@dataclass(frozen=True, slots=True)
class AttachResult:
    """The outcome of one file of ``attach_many``: an attachment, or the error."""

    file: FileLike
    attachment: Attachment | None
    error: ClientError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def file_spec_args(content_type: str | None, inline: bool, content_id: str | None) -> dict[str, Any]:
    if content_id is not None and not inline:
        inline = True
    return {"content_type": content_type, "inline": inline, "content_id": content_id}


def execution_error(exc: httpx.HTTPError, url: str) -> ClientError | None:
    """Errors that no retry can fix; None for the transport failures worth retrying."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return InvalidInput(f"not a usable URL: {url[:200]} ({exc})", code="InvalidUrl")
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"the answer from {httpx.URL(url).host} could not be decoded: {exc}")
    if isinstance(exc, httpx.TransportError):
        return None
    return ProtocolError(f"{type(exc).__name__}: {exc}")


def _umask() -> int:
    # /proc tells without changing it; os.umask() can only be read by setting it, which a
    # thread creating a file meanwhile would notice.
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_created_file(fd: int) -> None:
    """Give a temporary file (``mkstemp`` makes it 0600) the mode a new file would get: 0666 less the umask."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o666 & ~_umask())


def download_destination(path: Path, name: str | None, attachment_id: str) -> Path:
    """``path`` itself, or ``path/<attachment name>`` when it is a directory."""
    if path.is_dir():
        base = os.path.basename(name or "") or attachment_id
        if base in (".", ".."):
            base = attachment_id
        return path / base
    if not path.parent.exists():
        raise InvalidInput(f"{path.parent}: no such directory", code="FileNotFound")
    return path
