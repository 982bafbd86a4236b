"""Limits the real service enforces, with their sources (docs/fidelity.md, "limits")."""

from __future__ import annotations

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
