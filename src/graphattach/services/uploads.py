"""Upload sessions: create one on a message or event, take byte ranges, report, cancel, sweep.

Durability: the blob is the journal. The bytes of a range go straight from the request stream
into the session's blob, and ``BlobStore.append`` makes them durable together with a record of
the range, in one sync (one ``fdatasync``; one PutObject per part on S3); only then is the new
length written to the session's row (``advance_session``), which is not synced: a killed
process loses nothing, and after a crash of the machine or the database ``recover_sessions``
takes each session's progress from its blob. Bytes a crash or a disconnect left past the
acknowledged length belong to no record: the next range writes over them. The final range
commits the attachment and the completion in one transaction (``complete_session``); the
attachment takes over the session's blob, nothing is copied. So after a crash at any point the
attachment is either wholly there or absent, and ``nextExpectedRanges`` reports the acknowledged
bytes. One lock per session
(``lock_session``, across processes) serialises the PUTs and the cancel of a session.

What happens on each request is decided by the state machine in ``domain/upload_session.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from graphattach.auth.permissions import write_permissions
from graphattach.auth.principal import Principal
from graphattach.auth.tokens import GRAPH_AUDIENCES, UploadClaims
from graphattach.domain import ids, limits
from graphattach.domain.content_types import guess_content_type
from graphattach.domain.errors import GraphError
from graphattach.domain.models import Attachment, UploadSession, replace
from graphattach.domain.sizes import file_attachment_size
from graphattach.domain.upload_session import (
    Event,
    Outcome,
    State,
    classify_put,
    decide,
    observe,
)
from graphattach.protocol.content_range import ContentRange, RangeHeaders
from graphattach.protocol.errors import (
    UPLOAD_OUTCOME_ERRORS,
    AttachmentSizeBelowMinimum,
    ContentSizeMismatch,
    InvalidAudience,
    InvalidAuthenticationToken,
    IrresolvableConflict,
    ItemNotFound,
    MessageSizeExceeded,
    SessionOnlyForFileAttachments,
)
from graphattach.protocol.paths import GraphPath
from graphattach.protocol.upload_sessions import (
    AttachmentItem,
    UploadPath,
    attachment_location,
    next_range,
    parse_create_request,
    upload_url,
)
from graphattach.services import journal, notifications
from graphattach.services.access import authorize, resolve_item, resolve_user
from graphattach.services.attachments import too_many_attachments
from graphattach.services.context import Context
from graphattach.storage.errors import RecordNotFound
from graphattach.storage.interfaces import LimitExceeded, SessionUsage

log = logging.getLogger("graphattach.uploads")

#: Blob keys of upload sessions (the attachment keeps the key when the upload completes).
BLOB_PREFIX = "uploads/"
#: A range this small is read from the socket while the session lock and row are fetched
#: (bounded memory: at most this many bytes per request), not after them.
PREFETCH_LIMIT = 64 * 1024


# errors -------------------------------------------------------------------------------------------


def invalid_audience() -> GraphError:
    # The gv1.0 upload endpoint's answer to a Graph token (msgraph-sdk-java-core#445).
    return InvalidAudience(inner={"oAuthEventOperationId": ids.new_guid()})


def _expected(session: UploadSession, profile: str) -> str:
    return f"The next expected range is '{next_range(session.received, session.size, profile)}'."


# createUploadSession ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatedSession:
    session: UploadSession
    upload_url: str


async def create_session(
    ctx: Context, principal: Principal, path: GraphPath, body: dict[str, object]
) -> CreatedSession:
    """createUploadSession on the attachments of the message or event ``path`` names."""
    assert path.item_kind is not None
    user = await resolve_user(ctx, principal, path)
    # A delegated token on another user's mailbox is a 403, Outlook's known issue for this action.
    authorize(principal, user, write_permissions(path.item_kind))
    spec: AttachmentItem = parse_create_request(body, strict=ctx.settings.strict)
    item = await resolve_item(ctx, user, path)
    if spec.attachment_type != "file":
        raise SessionOnlyForFileAttachments()
    if spec.size < limits.UPLOAD_SESSION_MIN_SIZE:
        raise AttachmentSizeBelowMinimum()
    if spec.size > limits.UPLOAD_SESSION_MAX_SIZE:
        raise MessageSizeExceeded()
    now = ctx.clock.now()
    session_id = ids.new_id("session")
    session = UploadSession(
        id=session_id,
        user_id=user.id,
        item_id=item.id,
        item_kind=item.kind,
        name=spec.name,
        content_type=spec.content_type,
        is_inline=spec.is_inline,
        content_id=spec.content_id,
        size=spec.size,
        received=0,
        blob_key=f"{BLOB_PREFIX}{session_id}",
        state="active",
        expires=now + timedelta(seconds=ctx.settings.upload_session_lifetime),
        created=now,
    )
    await ctx.metadata.add_session(session)
    token = ctx.tokens.mint_upload_token(
        session_id=session_id, user_id=user.id, expires=session.expires.timestamp(), app_id=principal.app_id
    )
    url = upload_url(ctx.settings.upload_root, user.id, ctx.tenant_id, item.kind, item.id, session_id, token)
    return CreatedSession(session, url)


# authentication on the upload URL -----------------------------------------------------------------


def authenticate(ctx: Context, path: UploadPath, authtoken: str | None, authorization: str | None) -> UploadClaims:
    """Check the upload URL's own token, and any ``Authorization`` header, as Outlook does.

    - no ``Authorization``: the ``authtoken`` query parameter authorises the request;
    - ``Authorization: Bearer <the authtoken>`` is accepted (vgrem's client, the JS workaround);
      without ``authtoken`` in the URL, a bearer upload token for this session stands in for it;
    - any other ``Authorization`` header is a 401 in ``outlook`` (a Graph token: ``InvalidAudience``),
      and ignored in ``lenient`` (msgraph-sdk sends its Graph token to every host by default).
    """
    bearer: str | None = None
    if authorization is not None and authorization.strip():
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        bearer = value if scheme.lower() == "bearer" and value else None
        if bearer is None or (authtoken is not None and bearer != authtoken):
            if ctx.settings.profile != "lenient":
                if bearer is not None and ctx.tokens.audience_of(bearer) in GRAPH_AUDIENCES:
                    raise invalid_audience()
                raise InvalidAuthenticationToken(
                    "The access token in the Authorization header is not valid for this resource."
                )
            bearer = None
    credential = authtoken if authtoken is not None else bearer
    if not credential:
        raise InvalidAuthenticationToken("The access token is missing.")
    if ctx.tokens.audience_of(credential) in GRAPH_AUDIENCES:
        raise invalid_audience()
    try:
        claims = ctx.tokens.verify_upload_token(credential)
    except GraphError as exc:
        if exc.code == InvalidAudience.code:
            raise invalid_audience() from None
        raise InvalidAuthenticationToken("The access token is invalid.") from None
    if claims.session_id != path.session_id or claims.user_id != path.user_id or path.tenant_id != ctx.tenant_id:
        raise InvalidAuthenticationToken("The access token is not valid for this upload session.")
    journal.note_upload_caller(claims.user_id)
    return claims


def _token_expiry(claims: UploadClaims) -> datetime:
    return datetime.fromtimestamp(claims.expires, UTC)


async def _load(ctx: Context, path: UploadPath, claims: UploadClaims) -> tuple[UploadSession | None, State]:
    session = await ctx.metadata.get_session(path.session_id)
    return _observe(ctx, path, claims, session)


def _observe(
    ctx: Context, path: UploadPath, claims: UploadClaims, session: UploadSession | None
) -> tuple[UploadSession | None, State]:
    if session is not None and (
        session.user_id != path.user_id or session.item_id != path.item_id or session.item_kind != path.item_kind
    ):
        session = None  # the URL was edited: it names no session of ours
    return session, observe(session, ctx.clock.now(), token_expires=_token_expiry(claims))


def _refuse(
    outcome: Outcome, session: UploadSession | None = None, profile: str = "outlook", **fields: Any
) -> GraphError:
    """The error the catalogue maps a refusing outcome to; ``session`` fills in the next expected range."""
    expected = _expected(session, profile) if session is not None else ""
    return UPLOAD_OUTCOME_ERRORS[outcome](expected=expected, **fields)


# PUT ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PutAnswer:
    """What to answer a PUT: ``created`` with the attachment's ``location``, else the session status."""

    session: UploadSession
    created: bool = False
    location: str | None = None
    #: The outcome the state machine chose (for tests and logs).
    outcome: Outcome = Outcome.REPORT_STATUS


async def put_range(
    ctx: Context,
    path: UploadPath,
    claims: UploadClaims,
    headers: RangeHeaders,
    chunks: AsyncIterable[bytes],
) -> PutAnswer:
    """Take one byte range. A large body is read only when the bytes are to be stored (or a
    retry's body drained), so a refused request leaves it unread; a body of at most
    ``PREFETCH_LIMIT`` bytes is read at once."""
    header_error, rng, length = headers.error, headers.range, headers.length
    prefetch: asyncio.Task[list[bytes]] | None = None
    if (
        header_error is None
        and length is not None
        and length <= min(PREFETCH_LIMIT, ctx.settings.max_upload_chunk)
        and not ctx.metadata.answers_inline
    ):
        # A small body is read while the lock and the session are fetched, not after: with
        # msgraph-core's 1 KiB ranges that wait is as long as the write (bench/README.md, A/B runs).
        # A store that answers inline leaves nothing to overlap: the task would only cost its
        # own scheduling and a turn of the event loop.
        prefetch = asyncio.ensure_future(_read_small(chunks, length))
        prefetch.add_done_callback(_retrieve)
        chunks = _prefetched(prefetch)
    try:
        return await _put_locked(ctx, path, claims, header_error, rng, length, chunks)
    finally:
        if prefetch is not None and not prefetch.done():
            # Refused before the body came: let the read finish (the body is small, and a refusal
            # drains it anyway) rather than cancel the server's receive midway.
            await asyncio.wait([prefetch])


def _retrieve(task: asyncio.Task[list[bytes]]) -> None:
    """Mark the prefetch's error as seen: whoever reads the body gets it (or the body is unused)."""
    if not task.cancelled():
        task.exception()


async def _read_small(chunks: AsyncIterable[bytes], length: int) -> list[bytes]:
    """A small body, whole (at most ``length`` + 1 bytes are kept: the excess is the error)."""
    parts: list[bytes] = []
    received = 0
    async for chunk in chunks:
        parts.append(chunk)
        received += len(chunk)
        if received > length:
            break
    return parts


async def _prefetched(task: asyncio.Task[list[bytes]]) -> AsyncIterator[bytes]:
    for chunk in await task:
        yield chunk


async def _put_locked(
    ctx: Context,
    path: UploadPath,
    claims: UploadClaims,
    header_error: str | None,
    rng: ContentRange | None,
    length: int | None,
    chunks: AsyncIterable[bytes],
) -> PutAnswer:
    profile = ctx.settings.profile
    async with ctx.metadata.lock_session(path.session_id):
        # The session and what the size check needs, in one round trip to the store.
        usage = await ctx.metadata.session_usage(path.session_id)
        session, state = _observe(ctx, path, claims, usage.session)
        if header_error is not None or rng is None or length is None:
            event = Event.BAD_HEADERS
        elif length > ctx.settings.max_upload_chunk:
            event = Event.TOO_LARGE
        elif session is not None:
            event = classify_put(session, rng.start, rng.end, rng.total, length)
        else:
            event = Event.NEXT_RANGE  # no session: every PUT is answered alike
        outcome = decide(state, event, profile)
        if outcome in (Outcome.NOT_FOUND, Outcome.TOKEN_EXPIRED):
            raise _refuse(outcome)
        assert session is not None
        if outcome in UPLOAD_OUTCOME_ERRORS:
            raise _refuse(
                outcome,
                session,
                profile,
                max_chunk=ctx.settings.max_upload_chunk,
                header_error=header_error,
                start=rng.start if rng else None,
                total=rng.total if rng else None,
                range_length=rng.length if rng else None,
                content_length=length,
                size=session.size,
            )
        assert rng is not None and length is not None
        if outcome is Outcome.REPLAY_STATUS:
            await _drain(chunks, length, session, profile)
            return PutAnswer(session, outcome=outcome)
        if outcome is Outcome.REPLAY_CREATED:
            await _drain(chunks, length, session, profile)
            return PutAnswer(session, created=True, location=_location(ctx, session), outcome=outcome)
        if outcome is Outcome.APPEND or outcome is Outcome.COMPLETE:
            return await _store(ctx, session, usage, rng, chunks, complete=outcome is Outcome.COMPLETE)
        raise AssertionError(f"unexpected outcome {outcome} for a PUT")  # pragma: no cover


def _location(ctx: Context, session: UploadSession) -> str:
    assert session.attachment_id is not None
    return attachment_location(
        ctx.settings.upload_root,
        session.user_id,
        ctx.tenant_id,
        session.item_kind,
        session.item_id,
        session.attachment_id,
    )


async def _drain(chunks: AsyncIterable[bytes], length: int, session: UploadSession, profile: str) -> None:
    """Read a retried range's body to its end (so the connection stays usable) and store nothing."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > length:
            break
    if received != length and length != 0:
        raise _content_size_error(received, length, session, profile)


def _content_size_error(received: int, expected: int, session: UploadSession, profile: str) -> GraphError:
    return ContentSizeMismatch(
        relation="exceeds" if received > expected else "is less than",
        received=received,
        content_length=expected,
        expected=_expected(session, profile),
    )


async def _counted(chunks: AsyncIterable[bytes], counter: list[int]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if chunk:
            counter[0] += len(chunk)
            yield chunk


async def _store(
    ctx: Context,
    session: UploadSession,
    usage: SessionUsage,
    rng: ContentRange,
    chunks: AsyncIterable[bytes],
    *,
    complete: bool,
) -> PutAnswer:
    """Append the range to the session's blob, durably, then commit (the caller holds the lock)."""
    profile = ctx.settings.profile
    _check_message_size(usage, rng.end + 1)
    counter = [0]
    try:
        # The one durable write of the range (the blob records it); the session's row follows
        # without a sync of its own.
        new_length = await ctx.blobs.append(
            session.blob_key,
            _counted(chunks, counter),
            offset=session.received,
            length=rng.length,
            size=session.size,
            final=complete,
        )
    except ValueError:
        # more bytes than Content-Length said: the range left the session's progress as it was
        raise _content_size_error(counter[0], rng.length, session, profile) from None
    if new_length != rng.end + 1:
        raise _content_size_error(counter[0], rng.length, session, profile)
    if not complete:
        if not await ctx.metadata.advance_session(session.id, session.received, rng.end + 1, (rng.start, rng.end)):
            raise IrresolvableConflict()
        advanced = replace(session, received=rng.end + 1, last_range=(rng.start, rng.end))
        return PutAnswer(advanced, outcome=Outcome.APPEND)
    attachment = Attachment(
        id=ids.new_id("attachment"),
        user_id=session.user_id,
        item_id=session.item_id,
        kind="file",
        name=session.name,
        content_type=session.content_type or guess_content_type(session.name, await _head(ctx, session.blob_key)),
        size=file_attachment_size(session.size),
        is_inline=session.is_inline,
        content_id=session.content_id,
        last_modified=ctx.clock.now(),
        content_length=session.size,
        blob_key=session.blob_key,
    )
    item = await ctx.metadata.get_item(session.user_id, session.item_id)
    if item is None:
        raise ItemNotFound()  # the item was deleted meanwhile; the session stays as it was
    try:
        done = await ctx.metadata.complete_session(
            session.id,
            session.received,
            attachment,
            max_count=limits.MAX_ATTACHMENTS_PER_ITEM,
            outbox=notifications.outbox(ctx, notifications.updated(item)),
        )
    except RecordNotFound:
        raise ItemNotFound() from None  # the item was deleted meanwhile; the session stays as it was
    except LimitExceeded:
        raise too_many_attachments() from None
    if not done:
        raise IrresolvableConflict()
    completed = replace(
        session,
        received=session.size,
        state="completed",
        attachment_id=attachment.id,
        last_range=(session.received, session.size - 1),
    )
    return PutAnswer(completed, created=True, location=_location(ctx, completed), outcome=Outcome.COMPLETE)


async def _head(ctx: Context, key: str, size: int = 16) -> bytes:
    data = b""
    async for chunk in ctx.blobs.read(key, start=0, end=size):
        data += chunk
    return data


def _check_message_size(usage: SessionUsage, upto: int) -> None:
    """Exchange refuses the range that takes the item past the mailbox's maximum message size,
    mid-upload, with ErrorMessageSizeExceeded (microsoft-graph-docs-contrib#2561). Raw bytes."""
    if usage.max_message_size is None:
        raise ItemNotFound()
    if usage.attachment_bytes + upto > usage.max_message_size:
        raise MessageSizeExceeded()


# GET and DELETE -----------------------------------------------------------------------------------


async def status(ctx: Context, path: UploadPath, claims: UploadClaims) -> UploadSession:
    """The session as a GET on its upload URL reports it (no lock: acknowledged bytes only)."""
    session, state = await _load(ctx, path, claims)
    outcome = decide(state, Event.STATUS, ctx.settings.profile)
    if outcome is not Outcome.REPORT_STATUS:
        raise _refuse(outcome)
    assert session is not None
    return session


async def cancel(ctx: Context, path: UploadPath, claims: UploadClaims) -> None:
    """DELETE on the upload URL: forget the session and free its bytes."""
    async with ctx.metadata.lock_session(path.session_id):
        session, state = await _load(ctx, path, claims)
        outcome = decide(state, Event.CANCEL, ctx.settings.profile)
        if outcome is not Outcome.CANCEL:
            raise _refuse(outcome)
        assert session is not None
        await forget_session(ctx, session, "cancelled")


def final_state(session: UploadSession) -> str:
    """How a session the sweeper forgets ended: completed if it made its attachment, cancelled if
    it was marked so, else expired."""
    return session.state if session.state in ("completed", "cancelled") else "expired"


async def forget_session(ctx: Context, session: UploadSession, state: str) -> bool:
    """End the session (the store keeps only a record of how it ended, for the web UI: requests on
    its upload URL find no session), then delete its blob unless an attachment owns it. True if
    it was there."""
    if await ctx.metadata.end_session(session.id, state, ctx.clock.now()) is None:
        return False
    if session.blob_key not in await ctx.metadata.referenced_blob_keys([session.blob_key]):
        await ctx.blobs.delete(session.blob_key)
    return True


async def recover_sessions(ctx: Context, *, concurrency: int = 16) -> int:
    """Bring every active session's progress up to what its blob durably holds (a crash of the
    machine or of the database may have lost the last unsynced ``advance_session`` commits, never
    the ranges: ``BlobStore.append``). Run when the server starts, ``concurrency`` sessions at a
    time (on S3 each is a listing); returns how many moved."""
    far = ctx.clock.now() + timedelta(days=36500)
    sessions = [s for s in await ctx.metadata.list_sessions_expiring_before(far, limit=1 << 30) if s.state == "active"]
    slots = asyncio.Semaphore(concurrency)

    async def recover(session: UploadSession) -> bool:
        async with slots:
            found = await ctx.blobs.progress(session.blob_key, session.size, known=session.received)
            if found is None or not session.received < found.received < session.size:
                return False
            async with ctx.metadata.lock_session(session.id):
                moved = await ctx.metadata.advance_session(
                    session.id, session.received, found.received, found.last_range
                )
            if moved:
                log.warning(
                    "upload session %s: progress %d -> %d bytes, from its blob",
                    session.id,
                    session.received,
                    found.received,
                )
            return moved

    return sum(await asyncio.gather(*(recover(s) for s in sessions)))
