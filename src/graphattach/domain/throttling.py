"""Outlook's throttling, per app id + mailbox (pure: the caller passes the time).

The documented limits (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits):
four concurrent requests, 10,000 requests per 10 minutes, 150 MB of upload (PATCH, POST, PUT
bodies) per 5 minutes. ``Throttler.admit`` decides whether a request may start; a refused
request changes no counter. Windows slide over the caller's clock (the server's settable clock),
so tests move time instead of sleeping.

Retry-After compliance (as Dev Proxy's RetryAfterPlugin, with state): after a time-based 429
(RequestRate, IncomingBytes) the app + mailbox is blocked until its Retry-After has passed (after
a fault rule's 429, only the same request: method and path); a request in that time is refused again (with the Retry-After that is left) and
recorded as a ``Violation``. MailboxConcurrency is not time-based ("you need at least 1 concurrent call to
complete", https://learn.microsoft.com/answers/questions/2143058), so it blocks nothing.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from graphattach.domain.limits import MiB

Limit = Literal["MailboxConcurrency", "RequestRate", "IncomingBytes", "RetryAfter"]
#: (app id, mailbox) — the mailbox as a lower-cased user id.
Key = tuple[str, str]


class ThrottlingSpecError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    concurrency: int = 4
    requests: int = 10_000
    requests_window: float = 600.0
    #: "150 MB" read as 150 MiB, as the upload-session maximum is (domain/limits.py).
    upload_bytes: int = 150 * MiB
    upload_window: float = 300.0


OUTLOOK = ThrottleLimits()

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": MiB, "mib": MiB, "gb": 1024 * MiB, "gib": 1024 * MiB}


def _positive_int(text: str, field: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ThrottlingSpecError(field, f"'{text}' is not a positive integer")
    return int(text)


def _window(text: str, field: str) -> float:
    text = text.strip().lower()
    scale = 1
    for suffix, factor in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(suffix) and text[: -len(suffix)].strip().isdigit():
            text, scale = text[: -len(suffix)], factor  # type: ignore[assignment]
            break
    seconds = _positive_int(text, field) * scale
    return float(seconds)


def _amount_per_window(value: str, field: str, *, size: bool) -> tuple[int, float]:
    amount, sep, window = value.partition("/")
    if not sep:
        raise ThrottlingSpecError(field, f"'{value}' must be AMOUNT/SECONDS, e.g. 100/60")
    if size:
        found = _SIZE.match(amount)
        if not found:
            raise ThrottlingSpecError(field, f"'{amount}' is not a size (e.g. 20MB)")
        count = int(found.group(1)) * _UNITS[(found.group(2) or "").lower()]
        if count < 1:
            raise ThrottlingSpecError(field, "must be at least 1 byte")
    else:
        count = _positive_int(amount, field)
    return count, _window(window, field)


def parse_throttling(spec: str) -> ThrottleLimits | None:
    """``outlook`` (the documented limits), ``off`` (None), or ``key=value,...`` with keys
    ``concurrency`` (N), ``requests`` (N/SECONDS) and ``upload`` (SIZE/SECONDS, e.g. ``20MB/60``);
    a key left out keeps Outlook's value."""
    text = spec.strip()
    if text.lower() in ("", "off", "none", "false"):
        return None
    if text.lower() == "outlook":
        return OUTLOOK
    values: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise ThrottlingSpecError(key or "throttling", "expected key=value")
        if key in values:
            raise ThrottlingSpecError(key, "given twice")
        values[key] = value.strip()
    return limits_from_values(values)


def limits_from_values(values: Mapping[str, object]) -> ThrottleLimits:
    """Limits from ``concurrency``/``requests``/``upload`` values (ints or the strings of the spec)."""
    limits = OUTLOOK
    for key, value in values.items():
        if key == "preset":
            if value != "outlook":
                raise ThrottlingSpecError("preset", "the only preset is 'outlook'")
            continue
        if key == "concurrency":
            count = value if isinstance(value, int) and not isinstance(value, bool) else None
            if count is None:
                count = _positive_int(str(value), "concurrency")
            if count < 1:
                raise ThrottlingSpecError("concurrency", "must be at least 1")
            limits = _replace(limits, concurrency=count)
        elif key == "requests":
            requests, window = _amount_per_window(str(value), "requests", size=False)
            limits = _replace(limits, requests=requests, requests_window=window)
        elif key == "upload":
            size, window = _amount_per_window(str(value), "upload", size=True)
            limits = _replace(limits, upload_bytes=size, upload_window=window)
        else:
            raise ThrottlingSpecError(key, "is not a throttling key (concurrency, requests, upload)")
    return limits


def _replace(limits: ThrottleLimits, **changes: float | int) -> ThrottleLimits:
    from dataclasses import replace

    return replace(limits, **changes)  # type: ignore[arg-type]


def limits_spec(limits: ThrottleLimits) -> dict[str, object]:
    """The limits in the keys of the spec (``requests`` as ``N/SECONDS``)."""
    return {
        "concurrency": limits.concurrency,
        "requests": f"{limits.requests}/{_seconds(limits.requests_window)}",
        "upload": f"{limits.upload_bytes}B/{_seconds(limits.upload_window)}",
    }


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{int(value * 1000)}ms"


@dataclass(frozen=True, slots=True)
class Violation:
    """A request made before the Retry-After its key was given had passed."""

    at: float
    app_id: str
    mailbox: str
    method: str
    path: str
    operation: str
    request_id: str
    #: How many seconds before the end of the Retry-After period it came.
    early_by: float
    retry_after: int
    limit: str


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: Limit
    retry_after: int
    violation: Violation | None = None
    #: For ``RetryAfter`` refusals: the limit of the 429 whose Retry-After was not honoured.
    original: str | None = None


@dataclass(slots=True)
class _Block:
    until: float
    retry_after: int
    limit: str


@dataclass(slots=True)
class Throttler:
    #: None: no limits, only Retry-After compliance (of fault rules' 429s).
    limits: ThrottleLimits | None
    inflight: dict[Key, int] = field(default_factory=dict)
    requests: dict[Key, deque[float]] = field(default_factory=dict)
    uploads: dict[Key, deque[tuple[float, int]]] = field(default_factory=dict)
    upload_totals: dict[Key, int] = field(default_factory=dict)
    #: Keyed by (app, mailbox) for the limits' 429s, by (app, mailbox, method, path) for a
    #: single request's (a fault rule's) 429.
    blocks: dict[tuple[str, ...], _Block] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    #: At most this many violations are kept (the oldest go first).
    max_violations: int = 1000

    def reset(self) -> None:
        self.inflight.clear()
        self.requests.clear()
        self.uploads.clear()
        self.upload_totals.clear()
        self.blocks.clear()
        self.violations.clear()

    def admit(
        self,
        key: Key,
        now: float,
        upload_bytes: int,
        *,
        method: str = "",
        path: str = "",
        operation: str = "",
        request_id: str = "",
    ) -> Refusal | None:
        """None: the request may start (it is counted; call ``release`` when it ends).
        Else why it is refused and its Retry-After; nothing is counted."""
        for block_key in (key, (*key, method.upper(), path)):
            block = self.blocks.get(block_key)
            if block is None:
                continue
            if now < block.until:
                violation = Violation(
                    at=now,
                    app_id=key[0],
                    mailbox=key[1],
                    method=method,
                    path=path,
                    operation=operation,
                    request_id=request_id,
                    early_by=round(block.until - now, 3),
                    retry_after=block.retry_after,
                    limit=block.limit,
                )
                self.violations.append(violation)
                del self.violations[: -self.max_violations]
                # The block does not restart (Dev Proxy's does): concurrent workers of one app,
                # each honouring its own Retry-After, would otherwise keep each other out forever.
                return Refusal("RetryAfter", _whole(block.until - now), violation, original=block.limit)
            del self.blocks[block_key]
        limits = self.limits
        if limits is None:
            return None
        if self.inflight.get(key, 0) >= limits.concurrency:
            return Refusal("MailboxConcurrency", 1)
        times = self.requests.get(key)
        if times is not None:
            horizon = now - limits.requests_window
            while times and times[0] <= horizon:
                times.popleft()
            if len(times) >= limits.requests:
                wait = times[0] + limits.requests_window - now
                return self._block(key, now, Refusal("RequestRate", _whole(wait)))
        uploads = self.uploads.get(key)
        if upload_bytes > 0:
            total = self.upload_totals.get(key, 0)
            if uploads is not None:
                horizon = now - limits.upload_window
                while uploads and uploads[0][0] <= horizon:
                    total -= uploads.popleft()[1]
                self.upload_totals[key] = total
            if total + upload_bytes > limits.upload_bytes:
                return self._block(key, now, Refusal("IncomingBytes", self._upload_wait(key, now, upload_bytes)))
        self.inflight[key] = self.inflight.get(key, 0) + 1
        self.requests.setdefault(key, deque()).append(now)
        if upload_bytes > 0:
            self.uploads.setdefault(key, deque()).append((now, upload_bytes))
            self.upload_totals[key] = self.upload_totals.get(key, 0) + upload_bytes
        return None

    def _upload_wait(self, key: Key, now: float, size: int) -> int:
        limits = self.limits
        assert limits is not None
        if size > limits.upload_bytes:
            return _whole(limits.upload_window)  # never fits: at least wait out a window
        total = self.upload_totals.get(key, 0)
        for at, amount in self.uploads.get(key, ()):
            total -= amount
            if total + size <= limits.upload_bytes:
                return _whole(at + limits.upload_window - now)
        return 1

    def _block(self, key: Key, now: float, refusal: Refusal) -> Refusal:
        self.blocks[key] = _Block(now + refusal.retry_after, refusal.retry_after, refusal.limit)
        return refusal

    def note_retry_after(self, key: Key, now: float, retry_after: int, limit: str, method: str, path: str) -> None:
        """A fault rule answered one request of ``key`` a 429 with ``retry_after``: that request
        (same method and path) must not come back earlier. Other requests of the app go on: the
        fault stands for one request's failure, not for the mailbox's limits."""
        self.blocks[(*key, method.upper(), path)] = _Block(now + retry_after, retry_after, limit)

    def release(self, key: Key) -> None:
        left = self.inflight.get(key, 0) - 1
        if left > 0:
            self.inflight[key] = left
        else:
            self.inflight.pop(key, None)


def _whole(seconds: float) -> int:
    """Retry-After in whole seconds, at least 1 (decimals crash O365 and kiota < 1.15)."""
    return max(1, math.ceil(seconds - 1e-9))
