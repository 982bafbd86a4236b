"""The content type of a file that came without one: the one place it is guessed.

Used for a fileAttachment POSTed without ``contentType``, for an upload session created without
one (with the file's first bytes), and by the client library before it uploads.
"""

from __future__ import annotations

import mimetypes

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def guess_content_type(name: str, head: bytes = b"") -> str:
    """What Exchange reports for a file stored without ``contentType``.

    The walkthrough at https://learn.microsoft.com/graph/outlook-large-attachments uploads
    ``flower`` (no extension, no contentType) and GET reports ``image/jpeg``: Exchange looks at
    the bytes. We recognise a few signatures in ``head`` (when the bytes are at hand), then the
    file extension (``mimetypes``), then fall back to ``application/octet-stream``.
    """
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    if head[8:12] == b"WEBP" and head.startswith(b"RIFF"):
        return "image/webp"
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
