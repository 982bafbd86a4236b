"""Limits the real service enforces, with their sources (docs/fidelity.md, "limits")."""

from __future__ import annotations

import re

MiB = 1024 * 1024

#: Whole request body cap on Graph: the largest raw file that fits a POST is 3,145,611 bytes,
#: whose base64 plus the JSON wrapper is exactly 4 MiB.
MAX_REQUEST_BODY = 4 * MiB
#: The largest raw attachment that fits one POST (derived from the cap above).
MAX_SINGLE_POST_RAW = 3_145_611

#: createUploadSession minimum enforced by the service (the docs say 3 MB).
UPLOAD_SESSION_MIN_SIZE = 2 * MiB
#: createUploadSession maximum: 150 MB, read as 150 MiB like Outlook (157,286,400 bytes).
UPLOAD_SESSION_MAX_SIZE = 150 * MiB

#: Exchange Online's default maximum message size (admins can raise it to 150 MB).
DEFAULT_MAX_MESSAGE_SIZE = 150 * MiB
#: Exchange Online: at most 250 attachments on one item.
MAX_ATTACHMENTS_PER_ITEM = 250
#: Embedded items nest at most 30 levels.
MAX_ITEM_NESTING = 30

#: A PUT must accept at least msgraph-core's 5 MiB + 1 byte; the default ceiling is generous.
DEFAULT_MAX_UPLOAD_CHUNK = 60 * MiB

#: Upload session lifetime (the docs only show example timestamps; see docs/fidelity.md).
DEFAULT_UPLOAD_SESSION_LIFETIME_SECONDS = 6 * 3600

#: Default page size of collections when no $top is given (Graph pages messages by 10).
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000


_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
#: Binary units, as Exchange's size limits (150 MB is 150 MiB) and the throttling spec read them.
_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20, "gb": 1 << 30, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """``512MB``, ``64 KiB``, ``1gb`` or a number of bytes (units binary: MB = MiB); ``ValueError`` if not a size."""
    found = _SIZE.match(text)
    if not found:
        raise ValueError(f"'{text}' is not a size (e.g. 512MB)")
    return int(found.group(1)) * _UNITS[(found.group(2) or "").lower()]
