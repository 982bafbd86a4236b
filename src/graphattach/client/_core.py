"""The protocol, without I/O: every operation is a generator that yields what it needs done.

A flow yields :class:`Send` (one HTTP exchange) and :class:`Sleep` (a pause before a retry), and
is sent back a :class:`Reply` or a :class:`Failure` (the request did not complete) for each
``Send``. :class:`graphattach.client.Client` and :class:`graphattach.client.AsyncClient` are thin
drivers that run the same flows with ``httpx.Client`` and ``httpx.AsyncClient``: every decision
(which method, which bytes, when to retry, where to resume, what an answer means) is made here.

Facts followed (https://learn.microsoft.com/graph/outlook-large-attachments): one POST when the whole JSON request fits
Graph's 4 MiB cap, else createUploadSession (201 + ``uploadUrl``), PUTs of byte ranges without a
Graph token, intermediate 200 with ``nextExpectedRanges`` (``"N"``, ``"N-"`` or ``"N-M"``, camel
or Pascal case), final 201 with ``Location: …/Attachments('{id}')``, DELETE on the upload URL to
cancel (204), 429 with ``Retry-After`` in integer or decimal seconds.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import http
import ipaddress
import json
import random
import re
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, TypeVar
from urllib.parse import quote

from graphattach import __version__
from graphattach._httpx import httpx
from graphattach.client._errors import (
    ClientError,
    GraphError,
    InvalidInput,
    NotFound,
    ProtocolError,
    TransportError,
    UploadSessionExpired,
    error_class,
)
from graphattach.client._files import FileSlice, FileSource
from graphattach.client._models import (
    Attachment,
    Event,
    Message,
    Target,
    UploadSession,
    _parse_datetime,
    _seg,
    attachment_id_from_location,
    parse_range,
    target_path,
)
from graphattach.domain.content_types import guess_content_type
from graphattach.domain.limits import MAX_REQUEST_BODY, MAX_SINGLE_POST_RAW, UPLOAD_SESSION_MAX_SIZE

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_GRAPH_URL",
    "Core",
    "Failure",
    "FileSlice",
    "Progress",
    "Reply",
    "RetryPolicy",
    "Retrying",
    "Send",
    "Sleep",
]

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
MiB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 4 * MiB
#: Outlook allows four concurrent requests per app and mailbox.
DEFAULT_CONCURRENCY = 4
USER_AGENT = f"graphattach-client/{__version__}"
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"
ITEM_ATTACHMENT = "#microsoft.graph.itemAttachment"
REFERENCE_ATTACHMENT = "#microsoft.graph.referenceAttachment"
#: What ``attach`` reads back after an upload session (``$select`` of the walkthrough, plus id).
METADATA_SELECT = ("id", "name", "contentType", "size", "isInline", "lastModifiedDateTime")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
GATEWAY_STATUSES = frozenset({502, 503, 504})
#: Statuses on which a POST certainly created nothing, so it may be sent again.
SAFE_POST_RETRY_STATUSES = frozenset({429, 503})


# --- What a flow asks for, and what it gets back -------------------------------------------------


@dataclass(slots=True)
class Send:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    #: The body: bytes, or a slice of a file read while it is sent (upload ranges).
    content: bytes | FileSlice | None = None
    #: Add ``Authorization: Bearer`` from the token provider (Graph requests only).
    auth: bool = True
    #: Ask the token provider for a fresh token first (after a 401).
    refresh_token: bool = False
    #: Stream a 2xx body into this binary file (rewound and truncated first) instead of memory.
    sink: IO[bytes] | None = None


@dataclass(frozen=True, slots=True)
class Retrying:
    """A retry about to happen: what failed (``reason``), the pause, and which retry this is."""

    #: What failed, naming host and port: ``127.0.0.1:8765: HTTP 503 Service Unavailable``.
    reason: str
    #: Seconds before the request is sent again.
    delay: float
    #: This retry's number (1 for the first) of ``attempts`` at most.
    attempt: int
    attempts: int

    def one_line(self) -> str:
        """``retry 2 of 6 in 1.2 s: 127.0.0.1:8765: …``: what the CLI prints."""
        return f"retry {self.attempt} of {self.attempts} in {self.delay:.1f} s: {self.reason}"


@dataclass(slots=True)
class Sleep:
    seconds: float
    #: Why: the clients pass it to their ``on_retry`` callback before sleeping.
    notice: Retrying | None = None


@dataclass(slots=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes = b""
    #: Bytes written to the ``sink`` of the request.
    streamed: int = 0

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            snippet = self.body[:120].decode("utf-8", "replace")
            raise ProtocolError(
                f"HTTP {self.status} with a body that is not JSON: {snippet!r}",
                status=self.status,
                request_id=self.headers.get("request-id"),
            ) from exc


@dataclass(slots=True)
class Failure:
    """The request did not complete: connection refused or cut, timeout, broken HTTP."""

    error: BaseException

    @property
    def before_sending(self) -> bool:
        """The server cannot have acted on it (the connection was never made)."""
        return isinstance(self.error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


Op = Send | Sleep
Result = Reply | Failure | None
R = TypeVar("R")
#: A protocol flow: yields ``Op``s, is sent their ``Result``s, returns an ``R``.
Flow = Generator[Op, Result, R]


@dataclass(frozen=True, slots=True)
class Progress:
    """``done`` of ``total`` bytes of ``name`` confirmed by the service."""

    name: str
    done: int
    total: int
    #: ``post`` (one request) or ``session`` (an upload session)
    method: str = "post"


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of connection errors, 5xx and 429: exponential backoff with jitter, or Retry-After."""

    #: Retries after the first attempt (per request; an upload's count restarts when it advances).
    attempts: int = 6
    #: The first backoff in seconds; it doubles on each retry, up to ``max_backoff``.
    backoff: float = 0.5
    max_backoff: float = 30.0
    #: Fraction of each backoff drawn at random (0: none, 1: "full jitter").
    jitter: float = 0.5
    #: Longest Retry-After honoured; longer ones are clipped to it.
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base: float = min(self.backoff * (2**attempt), self.max_backoff)
        return base * (1 - self.jitter * random.random())


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``Retry-After``: integer or decimal seconds (Graph sends ``2.128``) or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def graph_call_error(reply: Reply, url: str) -> ClientError:
    """The exception for an error answer to a Graph request (:func:`error_from_reply`), unless the
    answer did not come from Graph: neither a Graph error body (``{"error": {"code": …}}``) nor
    Graph's ``request-id`` header (a web server's or a proxy's page), a :class:`ProtocolError`."""
    error = error_from_reply(reply)
    # 502-504 without a body are what gateways in front of Graph answer: server errors (exit 1)
    if error.body is None and error.request_id is None and reply.status not in GATEWAY_STATUSES:
        return ProtocolError(
            f"not a Graph answer from {host_port(url)}: HTTP {reply.status}: {error.message[:200]}",
            code=error.code,
            status=reply.status,
        )
    return error


def error_from_reply(reply: Reply, *, upload_url: str | None = None) -> GraphError:
    """The exception for an error answer: Graph's code, message, status and request-id."""
    request_id = reply.headers.get("request-id")
    code = message = None
    body: Any = None
    try:
        data = json.loads(reply.body) if reply.body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        body = data["error"]
        code = body.get("code") if isinstance(body.get("code"), str) else None
        message = body.get("message") if isinstance(body.get("message"), str) else None
        inner = body.get("innerError") or body.get("innererror")
        if isinstance(inner, dict) and isinstance(inner.get("request-id"), str):
            request_id = inner["request-id"]
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = f"HTTP {reply.status}"
    if code is None:
        code = phrase.replace(" ", "").replace("-", "")
        snippet = reply.body[:200].decode("utf-8", "replace").strip()
        message = message or (f"{phrase}: {snippet}" if snippet else phrase)
    return error_class(reply.status)(
        message or phrase, code=code, status=reply.status, request_id=request_id, body=body, upload_url=upload_url
    )


# --- The single POST: its exact size --------------------------------------------------------------


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str
    content_type: str
    inline: bool = False
    content_id: str | None = None

    def post_envelope(self) -> tuple[bytes, bytes]:
        """The JSON body of the single POST around its base64 ``contentBytes``: (prefix, suffix)."""
        obj: dict[str, Any] = {"@odata.type": FILE_ATTACHMENT, "name": self.name, "contentType": self.content_type}
        if self.inline:
            obj["isInline"] = True
        if self.content_id is not None:
            obj["contentId"] = self.content_id
        head = _json_bytes(obj)
        return head[:-1] + b',"contentBytes":"', b'"}'

    def post_size(self, raw_size: int) -> int:
        """The exact length of the POST body for a file of ``raw_size`` bytes."""
        prefix, suffix = self.post_envelope()
        return len(prefix) + 4 * ((raw_size + 2) // 3) + len(suffix)

    def fits_single_post(self, raw_size: int) -> bool:
        """One POST when the whole request fits 4 MiB (and the raw file Graph's observed 3,145,611)."""
        return raw_size <= MAX_SINGLE_POST_RAW and self.post_size(raw_size) <= MAX_REQUEST_BODY

    def post_body(self, data: bytes) -> bytes:
        prefix, suffix = self.post_envelope()
        return prefix + base64.b64encode(data) + suffix

    def session_body(self, size: int) -> bytes:
        item: dict[str, Any] = {
            "attachmentType": "file",
            "name": self.name,
            "size": size,
            "contentType": self.content_type,
        }
        if self.inline:
            item["isInline"] = True
        if self.content_id is not None:
            item["contentId"] = self.content_id
        return _json_bytes({"AttachmentItem": item})


# --- The flows -------------------------------------------------------------------------------------


class Core:
    """Request planning shared by both clients. Holds configuration only, no connections."""

    def __init__(
        self,
        graph_url: str = DEFAULT_GRAPH_URL,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry: RetryPolicy | None = None,
        cancel_on_failure: bool = True,
    ) -> None:
        graph_url = graph_url.strip().rstrip("/")
        if not graph_url.startswith(("http://", "https://")):
            raise InvalidInput(f"the Graph URL must start with http:// or https://: {graph_url!r}")
        if not isinstance(chunk_size, int) or chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be a positive number of bytes, not {chunk_size!r}")
        self.graph_url = graph_url
        self.chunk_size = chunk_size
        self.retry = retry or RetryPolicy()
        self.cancel_on_failure = cancel_on_failure
        #: ``host:port`` of every origin that answered: a refusal there later is a restart, worth retrying.
        self._answered: set[str] = set()

    # -- plumbing

    @property
    def beta_url(self) -> str:
        for version in ("/v1.0", "/V1.0"):
            if self.graph_url.endswith(version):
                return self.graph_url[: -len(version)] + "/beta"
        return self.graph_url

    def url(self, path: str, query: dict[str, str] | None = None, *, root: str | None = None) -> str:
        url = (root or self.graph_url) + "/" + path.lstrip("/")
        if query:
            url += "?" + "&".join(f"{k}={quote(v, safe=',$()/@=:')}" for k, v in query.items())
        return url

    def graph_headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, "client-request-id": str(uuid.uuid4())}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _retryable(self, failure: Failure, url: str, attempt: int) -> bool:
        """Whether a transport failure is worth another try."""
        return attempt < self.retry.attempts and not self._down_here(failure, url)

    def _down_here(self, failure: Failure, url: str) -> bool:
        """A refused connection to a server on this machine that has not answered yet: nothing
        listens there, and no retry will change that (one that answered before is restarting)."""
        return _refused_locally(failure, url) and host_port(url) not in self._answered

    def _answer(self, url: str) -> None:
        self._answered.add(host_port(url))

    def _pause(self, attempt: int, reason: str, reply: Reply | None = None) -> Sleep:
        """The pause before retry ``attempt + 1``, Retry-After honoured, with why it happens."""
        retry_after = parse_retry_after(reply.headers.get("retry-after")) if reply is not None else None
        delay = self.retry.delay(attempt, retry_after)
        return Sleep(delay, Retrying(reason, delay, attempt + 1, self.retry.attempts))

    def call(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        idempotent: bool | None = None,
        sink: IO[bytes] | None = None,
        accept: str | None = None,
    ) -> Generator[Op, Result, Reply]:
        """One Graph request with retries; returns a 2xx reply or raises."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "PUT", "DELETE", "HEAD")
        headers = self.graph_headers(content_type if body is not None else None)
        if accept:
            headers["Accept"] = accept
        attempt = 0
        refresh = False
        refreshed = False
        while True:
            result = yield Send(method, url, dict(headers), body, auth=True, refresh_token=refresh, sink=sink)
            refresh = False
            if isinstance(result, Failure):
                if self._retryable(result, url, attempt) and (idempotent or result.before_sending):
                    yield self._pause(attempt, _failure_reason(result, url))
                    attempt += 1
                    continue
                raise _transport_error(result, url)
            assert isinstance(result, Reply)
            self._answer(url)
            if result.status == 401 and not refreshed:
                refresh = refreshed = True
                continue
            if result.status in RETRY_STATUSES and attempt < self.retry.attempts:
                if idempotent or result.status in SAFE_POST_RETRY_STATUSES:
                    yield self._pause(attempt, _status_reason(result, method, url), result)
                    attempt += 1
                    continue
            if result.status >= 400:
                raise graph_call_error(result, url)
            if not 200 <= result.status < 300:
                raise ProtocolError(f"unexpected HTTP {result.status} from {method} {url}", status=result.status)
            return result

    def call_json(self, method: str, url: str, payload: Any = None, **kwargs: Any) -> Generator[Op, Result, Any]:
        body = _json_bytes(payload) if payload is not None else None
        reply = yield from self.call(method, url, body=body, content_type="application/json", **kwargs)
        if not reply.body:
            return None
        data = reply.json()
        if not isinstance(data, dict):
            raise ProtocolError(f"expected a JSON object from {method} {url}, got {str(data)[:120]!r}")
        return data

    # -- attachments

    def attach(
        self,
        target: Target,
        source: FileSource,
        *,
        content_type: str | None = None,
        inline: bool = False,
        content_id: str | None = None,
        progress: ProgressCallback | None = None,
        restart_expired: bool = False,
    ) -> Generator[Op, Result, Attachment]:
        """Attach ``source`` to ``target``: one POST if it fits, else an upload session."""
        path, _kind = target_path(target)
        spec = FileSpec(source.name, content_type or guess_content_type(source.name), inline, content_id)
        size = source.size
        if size > UPLOAD_SESSION_MAX_SIZE:
            raise InvalidInput(
                f"{source.name}: {size:,} bytes is over the 150 MB ({UPLOAD_SESSION_MAX_SIZE:,} bytes) "
                "Outlook accepts for one attachment",
                code="FileTooLarge",
            )
        if spec.fits_single_post(size):
            with source:
                data = source.read_all()
                body = spec.post_body(data)
                del data
            reply = yield from self.call(
                "POST", self.url(f"{path}/attachments"), body=body, content_type="application/json", idempotent=False
            )
            del body
            attachment = Attachment.from_json(reply.json(), parent=path)
            if progress:
                progress(Progress(source.name, size, size, "post"))
            return attachment
        restarts = 0
        while True:
            session = yield from self.create_upload_session(target, spec, size)
            try:
                return (yield from self.upload(session, source, target=path, progress=progress))
            except UploadSessionExpired:
                if not restart_expired or restarts >= 2:
                    raise
                restarts += 1

    def create_upload_session(self, target: Target, spec: FileSpec, size: int) -> Generator[Op, Result, UploadSession]:
        path, _ = target_path(target)
        reply = yield from self.call(
            "POST",
            self.url(f"{path}/attachments/createUploadSession"),
            body=spec.session_body(size),
            content_type="application/json",
            # A second session is harmless (nothing is attached until one completes).
            idempotent=True,
        )
        session = UploadSession.from_json(reply.json())
        if not session.upload_url.startswith(("http://", "https://")):
            raise ProtocolError(f"the uploadUrl is not an http(s) URL: {session.upload_url[:100]!r}")
        return session

    def upload(
        self,
        session: UploadSession,
        source: FileSource,
        *,
        target: str | None = None,
        progress: ProgressCallback | None = None,
        cancel_on_failure: bool | None = None,
    ) -> Generator[Op, Result, Attachment]:
        """Send the rest of ``source`` to ``session``; on failure, cancel the session (DELETE)."""
        cancel = self.cancel_on_failure if cancel_on_failure is None else cancel_on_failure
        try:
            with source:
                attachment = yield from self._upload(session, source, target, progress)
        except BaseException as exc:
            if cancel and not isinstance(exc, UploadSessionExpired | GeneratorExit):
                cancelled = yield from self._cancel_quietly(session.upload_url)
                if isinstance(exc, ClientError):
                    exc.upload_url = None if cancelled else session.upload_url
            elif isinstance(exc, ClientError) and exc.upload_url is None:
                exc.upload_url = session.upload_url
            raise
        # Done: the session is consumed, nothing left to cancel whatever the callback does.
        if progress:
            progress(Progress(source.name, source.size, source.size, "session"))
        return attachment

    def _upload(
        self, session: UploadSession, source: FileSource, target: str | None, progress: ProgressCallback | None
    ) -> Generator[Op, Result, Attachment]:
        total = source.size
        url = session.upload_url
        if total == 0:
            raise InvalidInput(f"{source.name}: an upload session cannot carry an empty file")
        first, last = _first_range(session.next_expected_ranges, total, url)
        if progress:
            progress(Progress(source.name, first, total, "session"))
        failures = stalls = 0
        final_failed = False
        snapshot: set[str] | None = None
        while True:
            end = min(first + self.chunk_size, last + 1)
            is_final = end == total
            if is_final and target is not None and snapshot is None:
                # To tell, should the answer to the final PUT be lost, whether it created the attachment.
                snapshot = yield from self._ids_named(target, source.name)
            source.check()
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {first}-{end - 1}/{total}",
                "Content-Length": str(end - first),
                "User-Agent": USER_AGENT,
            }
            # Pre-authenticated URL: never a Graph token here (createUploadSession docs; msgraph-sdk-java#409). The body is
            # read from the file while it is sent: memory does not depend on the range or file size.
            result = yield Send("PUT", url, headers, FileSlice(source, first, end - first), auth=False)
            retry_after: float | None = None
            if isinstance(result, Reply):
                self._answer(url)
                status = result.status
                if status == 201 or (status in (200, 201) and _looks_like_attachment(result)):
                    return (yield from self._finished(result, source, target, url))
                if status in (200, 202):
                    state = UploadSession.from_json(result.json(), url)
                    if state.next_expected_ranges:
                        previous = first
                        first, last = _first_range(state.next_expected_ranges, total, url)
                        stalls = stalls + 1 if first <= previous else 0
                        if stalls > self.retry.attempts:
                            raise ProtocolError(
                                f"the upload session keeps asking for byte {first} again",
                                status=status,
                                request_id=result.headers.get("request-id"),
                                upload_url=url,
                            )
                        failures = 0
                        if progress:
                            progress(Progress(source.name, first, total, "session"))
                        continue
                    probed = yield from self._probe(url, total)
                    if isinstance(probed, tuple):
                        first, last = probed
                        continue
                    raise ProtocolError(
                        f"HTTP {status} to an upload PUT without nextExpectedRanges nor a Location",
                        status=status,
                        request_id=result.headers.get("request-id"),
                        upload_url=url,
                    )
                if status in (409, 416):
                    probed = yield from self._probe(url, total)
                    if not isinstance(probed, tuple):
                        probed = _range_named_in_error(result, total)
                    if isinstance(probed, tuple) and probed != (first, last) and failures < self.retry.attempts:
                        first, last = probed
                        failures += 1
                        continue
                    raise error_from_reply(result, upload_url=url)
                if status not in RETRY_STATUSES:
                    if final_failed and target is not None and snapshot is not None:
                        found = yield from self._new_attachment(target, source.name, snapshot)
                        if found is not None:
                            return found
                    raise _session_error(result, session, url)
                retry_after = parse_retry_after(result.headers.get("retry-after"))
            # A failure or a retryable status: wait, ask the session where to continue, go on.
            final_failed = final_failed or is_final
            if failures >= self.retry.attempts or (isinstance(result, Failure) and self._down_here(result, url)):
                if isinstance(result, Failure):
                    raise _transport_error(result, url)
                assert isinstance(result, Reply)
                raise error_from_reply(result, upload_url=url)
            if isinstance(result, Failure):
                reason = _failure_reason(result, url)
            else:
                assert isinstance(result, Reply)
                reason = _status_reason(result, "PUT", url)
            delay = self.retry.delay(failures, retry_after)
            yield Sleep(delay, Retrying(reason, delay, failures + 1, self.retry.attempts))
            failures += 1
            probed = yield from self._probe(url, total)
            if isinstance(probed, tuple):
                first, last = probed
            elif probed == "gone" and final_failed and target is not None and snapshot is not None:
                found = yield from self._new_attachment(target, source.name, snapshot)
                if found is not None:
                    return found
            # Otherwise send the same range again: its answer says where to continue.

    def _probe(self, url: str, total: int) -> Generator[Op, Result, tuple[int, int] | str | None]:
        """Ask the session where to continue: GET on the upload URL (not every server answers it)."""
        result = yield Send("GET", url, {"Accept": "application/json", "User-Agent": USER_AGENT}, auth=False)
        if not isinstance(result, Reply):
            return None
        if result.status == 404:
            return "gone"
        if result.status != 200:
            return None
        try:
            state = UploadSession.from_json(result.json(), url)
            if not state.next_expected_ranges:
                return None
            return _first_range(state.next_expected_ranges, total, url)
        except ProtocolError:
            return None

    def _finished(
        self, reply: Reply, source: FileSource, target: str | None, url: str
    ) -> Generator[Op, Result, Attachment]:
        location = reply.headers.get("location") or ""
        attachment_id = attachment_id_from_location(location) if location else None
        if attachment_id is None and reply.body:
            try:
                data = json.loads(reply.body)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                attachment_id = data["id"]
        if attachment_id is None:
            raise ProtocolError(
                f"the upload finished (HTTP {reply.status}) without a Location naming the attachment",
                status=reply.status,
                request_id=reply.headers.get("request-id"),
            )
        fallback = Attachment(attachment_id, source.name, parent=target, raw={"location": location})
        if target is None:
            return fallback
        try:
            return (yield from self.get_attachment(target, attachment_id, select=METADATA_SELECT))
        except GraphError:
            return fallback

    def _ids_named(self, target: str, name: str) -> Generator[Op, Result, set[str] | None]:
        try:
            attachments = yield from self.list_attachments(target, select=("id", "name"))
        except ClientError:
            return None
        return {a.id for a in attachments if a.name == name}

    def _new_attachment(self, target: str, name: str, before: set[str]) -> Generator[Op, Result, Attachment | None]:
        now = yield from self._ids_named(target, name)
        new = (now or set()) - before
        if len(new) != 1:
            return None
        return (yield from self.get_attachment(target, new.pop(), select=METADATA_SELECT))

    def resume(
        self,
        upload_url: str,
        source: FileSource,
        *,
        target: Target | None = None,
        progress: ProgressCallback | None = None,
    ) -> Generator[Op, Result, Attachment]:
        """Continue a session started elsewhere: ask it where to continue, then upload the rest."""
        path = target_path(target)[0] if target is not None else None
        probed = yield from self._probe(upload_url, max(source.size, 1))
        ranges: tuple[str, ...] = ()
        if isinstance(probed, tuple):
            ranges = (f"{probed[0]}-{probed[1]}",)
        elif probed == "gone":
            raise NotFound(
                "the upload session is gone (finished, cancelled or expired)",
                code="UploadSessionNotFound",
                status=404,
                upload_url=upload_url,
            )
        return (yield from self.upload(UploadSession(upload_url, None, ranges), source, target=path, progress=progress))

    def cancel(self, upload_url: str) -> Generator[Op, Result, None]:
        """DELETE the upload session (204). Retries like any request; 404 raises NotFound."""
        attempt = 0
        while True:
            result = yield Send("DELETE", upload_url, {"User-Agent": USER_AGENT}, auth=False)
            if isinstance(result, Failure):
                if self._retryable(result, upload_url, attempt):
                    yield self._pause(attempt, _failure_reason(result, upload_url))
                    attempt += 1
                    continue
                raise _transport_error(result, upload_url)
            assert isinstance(result, Reply)
            self._answer(upload_url)
            if result.status in RETRY_STATUSES and attempt < self.retry.attempts:
                yield self._pause(attempt, _status_reason(result, "DELETE", upload_url), result)
                attempt += 1
                continue
            if result.status >= 400:
                raise error_from_reply(result, upload_url=upload_url)
            return None

    def _cancel_quietly(self, upload_url: str) -> Generator[Op, Result, bool]:
        """One DELETE, errors ignored (we are already failing). True if the session is gone."""
        result = yield Send("DELETE", upload_url, {"User-Agent": USER_AGENT}, auth=False)
        return isinstance(result, Reply) and (result.status < 300 or result.status == 404)

    def list_attachments(
        self, target: Target, *, select: Sequence[str] | None = METADATA_SELECT
    ) -> Generator[Op, Result, list[Attachment]]:
        path, _ = target_path(target)
        query = {"$select": ",".join(select)} if select else None
        url: str | None = self.url(f"{path}/attachments", query)
        out: list[Attachment] = []
        while url:
            data = yield from self.call_json("GET", url)
            values = data.get("value") if isinstance(data, dict) else None
            if not isinstance(values, list):
                raise ProtocolError(f"expected {{'value': [...]}} from GET {url}")
            out.extend(Attachment.from_json(v, parent=path) for v in values)
            link = data.get("@odata.nextLink")
            url = link if isinstance(link, str) and link else None
        return out

    def get_attachment(
        self, target: Target, attachment_id: str, *, select: Sequence[str] | None = None
    ) -> Generator[Op, Result, Attachment]:
        path, _ = target_path(target)
        query = {"$select": ",".join(select)} if select else None
        data = yield from self.call_json("GET", self.url(f"{path}/attachments/{_seg(attachment_id)}", query))
        return Attachment.from_json(data, parent=path)

    def delete_attachment(self, target: Target, attachment_id: str) -> Generator[Op, Result, None]:
        path, _ = target_path(target)
        yield from self.call("DELETE", self.url(f"{path}/attachments/{_seg(attachment_id)}"))

    def download(self, target: Target, attachment_id: str, sink: IO[bytes]) -> Generator[Op, Result, int]:
        """Stream the raw bytes (``$value``) into ``sink``; returns the byte count."""
        path, _ = target_path(target)
        url = self.url(f"{path}/attachments/{_seg(attachment_id)}/$value")
        reply = yield from self.call("GET", url, sink=sink, accept="*/*")
        return reply.streamed

    def add_item_attachment(
        self, target: Target, item: dict[str, Any], *, name: str | None = None, kind: str | None = None
    ) -> Generator[Op, Result, Attachment]:
        """Attach an Outlook item (a message, event or contact given as Graph JSON)."""
        path, _ = target_path(target)
        item = dict(item)
        if "@odata.type" not in item:
            item["@odata.type"] = f"microsoft.graph.{kind or 'message'}"
        payload: dict[str, Any] = {"@odata.type": ITEM_ATTACHMENT, "name": name or item.get("subject") or "item"}
        payload["item"] = item
        data = yield from self.call_json("POST", self.url(f"{path}/attachments"), payload, idempotent=False)
        return Attachment.from_json(data, parent=path)

    def add_reference_attachment(
        self,
        target: Target,
        name: str,
        source_url: str,
        *,
        provider_type: str | None = None,
        permission: str | None = None,
        is_folder: bool | None = None,
    ) -> Generator[Op, Result, Attachment]:
        """Attach a link. ``sourceUrl`` and friends exist only in beta, so this goes to the beta root."""
        path, _ = target_path(target)
        payload: dict[str, Any] = {"@odata.type": REFERENCE_ATTACHMENT, "name": name, "sourceUrl": source_url}
        for key, value in (("providerType", provider_type), ("permission", permission), ("isFolder", is_folder)):
            if value is not None:
                payload[key] = value
        url = self.url(f"{path}/attachments", root=self.beta_url)
        data = yield from self.call_json("POST", url, payload, idempotent=False)
        return Attachment.from_json(data, parent=path)

    # -- things to attach to

    def create_draft(
        self,
        *,
        subject: str | None = None,
        body: str | None = None,
        body_type: str = "text",
        to: Sequence[str] = (),
        user: str | None = None,
        folder: str | None = None,
    ) -> Generator[Op, Result, Message]:
        prefix = Message("x", user=user, folder=folder).path.rsplit("/", 1)[0]
        payload: dict[str, Any] = {}
        if subject is not None:
            payload["subject"] = subject
        if body is not None:
            payload["body"] = {"contentType": body_type, "content": body}
        if to:
            payload["toRecipients"] = [{"emailAddress": {"address": a}} for a in to]
        data = yield from self.call_json("POST", self.url(prefix), payload, idempotent=False)
        return Message(_id_of(data), user=user, folder=folder)

    def send_draft(self, message: Target) -> Generator[Op, Result, None]:
        path, kind = target_path(message)
        if kind != "message":
            raise InvalidInput("only a message can be sent")
        yield from self.call("POST", self.url(f"{path}/send"), idempotent=False)

    def create_event(
        self,
        *,
        subject: str,
        start: datetime | str,
        end: datetime | str,
        time_zone: str = "UTC",
        body: str | None = None,
        user: str | None = None,
        calendar: str | None = None,
    ) -> Generator[Op, Result, Event]:
        prefix = Event("x", user=user, calendar=calendar).path.rsplit("/", 1)[0]
        payload: dict[str, Any] = {
            "subject": subject,
            "start": {"dateTime": _graph_datetime(start), "timeZone": time_zone},
            "end": {"dateTime": _graph_datetime(end), "timeZone": time_zone},
        }
        if body is not None:
            payload["body"] = {"contentType": "text", "content": body}
        data = yield from self.call_json("POST", self.url(prefix), payload, idempotent=False)
        return Event(_id_of(data), user=user, calendar=calendar)


def _graph_datetime(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds")


def _id_of(data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ProtocolError(f"expected an object with an id, got {str(data)[:120]!r}")
    return str(data["id"])


def _looks_like_attachment(reply: Reply) -> bool:
    if not reply.body or reply.status != 200:
        return False
    try:
        data = json.loads(reply.body)
    except ValueError:
        return False
    lowered = {k.lower() for k in data} if isinstance(data, dict) else set()
    return "id" in lowered and "nextexpectedranges" not in lowered


def _first_range(ranges: Sequence[str], total: int, url: str) -> tuple[int, int]:
    if not ranges:
        return 0, total - 1
    try:
        return parse_range(ranges[0], total)
    except ProtocolError as exc:
        exc.upload_url = url
        raise


_NEXT_RANGE_IN_MESSAGE = re.compile(r"next expected range is '?(\d+(?:-\d*)?)'?", re.IGNORECASE)


def _range_named_in_error(reply: Reply, total: int) -> tuple[int, int] | None:
    """``… The next expected range is '{next}'.`` in an out-of-order error, when the session cannot be asked."""
    error = error_from_reply(reply)
    match = _NEXT_RANGE_IN_MESSAGE.search(error.message)
    if not match:
        return None
    try:
        return parse_range(match.group(1), total)
    except ProtocolError:
        return None


@functools.lru_cache(maxsize=64)
def host_port(url: str) -> str:
    """``host:port`` of a URL, the port spelled out even when it is the scheme's default."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return url[:100]
    port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{host}:{port}" if port else host


def _is_local(url: str) -> bool:
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        current = current.__cause__ or current.__context__
    return "connection refused" in str(error).lower() or "errno 111" in str(error).lower()


def _refused_locally(failure: Failure, url: str) -> bool:
    """A refused connection to this machine: nothing listens on that port, and waiting will not
    change that in the seconds a retry waits (a remote refusal may be a restarting proxy)."""
    return isinstance(failure.error, httpx.ConnectError) and _refused(failure.error) and _is_local(url)


def _failure_reason(failure: Failure, url: str) -> str:
    error = failure.error
    if isinstance(error, httpx.ConnectError) and _refused(error):
        return f"{host_port(url)}: connection refused"
    kind = type(error).__name__
    return f"{host_port(url)}: {kind}: {str(error) or kind}"


def _status_reason(reply: Reply, method: str, url: str) -> str:
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = ""
    text = f"{host_port(url)}: HTTP {reply.status} {phrase}".rstrip() + f" to {method}"
    retry_after = reply.headers.get("retry-after")
    return text + (f" (Retry-After: {retry_after})" if retry_after else "")


def _transport_error(failure: Failure, url: str) -> TransportError:
    error = failure.error
    where = host_port(url)
    if _refused_locally(failure, url):
        return TransportError(
            f"cannot reach {where}: connection refused (nothing listens there: is `graphattach serve` running?)",
            code="NetworkError",
        )
    kind = type(error).__name__
    text = str(error) or kind
    return TransportError(f"cannot reach {where}: {kind}: {text}", code="NetworkError")


def _session_error(reply: Reply, session: UploadSession, url: str) -> GraphError:
    error = error_from_reply(reply, upload_url=url)
    server_now = _parse_http_date(reply.headers.get("date")) or datetime.now(UTC)
    expired = session.expiration is not None and server_now >= session.expiration
    if expired or "expire" in f"{error.code} {error.message}".lower():
        return UploadSessionExpired(
            f"the upload session expired ({error.code}: {error.message})",
            code="UploadSessionExpired",
            status=reply.status,
            request_id=error.request_id,
            body=error.body,
            upload_url=url,
        )
    return error


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _parse_datetime(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)
