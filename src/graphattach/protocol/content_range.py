"""The ``Content-Range`` request header of an upload PUT, parsed strictly and without I/O.

The only accepted form is RFC 9110's byte-range with a known complete length::

    Content-Range: bytes {first}-{last}/{complete}

``bytes`` is matched case-insensitively (range units are), the numbers are ASCII digits only
(``int()`` would also take ``"٣"``, ``"+3"``, ``" 3"`` or ``"3_0"``), at most 19 digits each,
``first <= last < complete``. Anything else - ``bytes */N``, ``bytes 0-9/*``, several ranges,
missing parts, signs, spaces inside - is refused with ``ContentRangeError`` naming the problem.
Whether the range fits the upload session is the state machine's business, not the parser's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FORM = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19})", re.IGNORECASE | re.ASCII)
#: Leading and trailing optional whitespace (OWS) that HTTP allows around a field value.
_OWS = " \t"

EXPECTED_FORM = "bytes {start}-{end}/{total}"


class ContentRangeError(ValueError):
    """The header is absent or not ``bytes {start}-{end}/{total}`` with ``start <= end < total``."""


@dataclass(frozen=True, slots=True)
class ContentRange:
    start: int
    end: int
    total: int

    @property
    def length(self) -> int:
        """Bytes the range covers (``end`` is inclusive)."""
        return self.end - self.start + 1

    def __str__(self) -> str:
        return format_content_range(self.start, self.end, self.total)


def format_content_range(start: int, end: int, total: int) -> str:
    return f"bytes {start}-{end}/{total}"


def parse_content_range(value: str | None) -> ContentRange:
    """Parse one ``Content-Range`` value; ``ContentRangeError`` if it is missing or malformed."""
    if value is None:
        raise ContentRangeError("The Content-Range header is missing.")
    text = value.strip(_OWS)
    match = _FORM.fullmatch(text)
    if match is None:
        raise ContentRangeError(
            f"The Content-Range header '{_printable(value)}' is malformed: the expected form is '{EXPECTED_FORM}'."
        )
    start, end, total = (int(group) for group in match.groups())
    if start > end:
        raise ContentRangeError(f"The Content-Range header '{text}' is invalid: the start is after the end.")
    if end >= total:
        raise ContentRangeError(f"The Content-Range header '{text}' is invalid: the range ends past the total size.")
    return ContentRange(start, end, total)


def _printable(value: str, limit: int = 80) -> str:
    """The header as it may be echoed in an error message: printable ASCII, shortened."""
    cleaned = "".join(ch if " " <= ch <= "~" else "?" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def parse_content_length(value: str | None) -> int | None:
    """A ``Content-Length`` header (RFC 9110 §8.6: ``1*DIGIT``), None when absent; ``ValueError``
    for anything else (signs, spaces inside, underscores, more than 19 digits)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ValueError(value)
    return int(text)


@dataclass(frozen=True, slots=True)
class RangeHeaders:
    """The ``Content-Range`` and ``Content-Length`` of an upload PUT, parsed; ``error`` says what
    is wrong with them (the upload state machine turns it into its ``BAD_HEADERS`` event)."""

    range: ContentRange | None
    length: int | None
    error: str | None = None


def parse_range_headers(content_range: str | None, content_length: str | None) -> RangeHeaders:
    """Both headers of an upload PUT; a missing or malformed one is reported in ``error``."""
    try:
        length = parse_content_length(content_length)
    except ValueError:
        return RangeHeaders(None, None, "The Content-Length header is not a valid number.")
    if length is None:
        return RangeHeaders(None, None, "The Content-Length header is required.")
    try:
        rng = parse_content_range(content_range)
    except ContentRangeError as exc:
        return RangeHeaders(None, length, str(exc))
    return RangeHeaders(rng, length)
