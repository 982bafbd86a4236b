"""``AsyncClient``: runs the flows of :mod:`graphattach.client._core` with ``httpx.AsyncClient``."""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.lowlevel

from graphattach._httpx import httpx
from graphattach.client._auth import StaticToken, TokenProvider, as_token_provider
from graphattach.client._common import (
    DEFAULT_TIMEOUT,
    AttachResult,
    as_created_file,
    download_destination,
    execution_error,
    file_spec_args,
)
from graphattach.client._core import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_GRAPH_URL,
    METADATA_SELECT,
    Core,
    Failure,
    FileSlice,
    Flow,
    ProgressCallback,
    R,
    Reply,
    Result,
    Retrying,
    RetryPolicy,
    Send,
    Sleep,
)
from graphattach.client._errors import ClientError, InvalidInput
from graphattach.client._files import FileLike, FileSource
from graphattach.client._models import Attachment, Event, Message, Target
from graphattach.client._transport import AsyncSchemeTransports

__all__ = ["AsyncClient"]

#: Seconds allowed for cleanup requests (cancelling a session) after the caller was cancelled.
CLEANUP_TIMEOUT = 15.0


class AsyncClient:
    """The asynchronous twin of :class:`graphattach.client.Client` (same methods, awaited).

    ``token`` may also be an async callable. ``sleep`` replaces ``anyio.sleep`` between retries.
    """

    def __init__(
        self,
        graph_url: str = DEFAULT_GRAPH_URL,
        token: str | TokenProvider | Callable[[], str] | Callable[[], Awaitable[str]] | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry: RetryPolicy | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        verify: Any = True,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        cancel_on_failure: bool = True,
        on_retry: Callable[[Retrying], None] | None = None,
    ) -> None:
        self._core = Core(graph_url, chunk_size=chunk_size, retry=retry, cancel_on_failure=cancel_on_failure)
        self._async_token: Callable[[], Awaitable[str]] | None = None
        self._token: TokenProvider | None = None
        if callable(token) and _is_async_callable(token):
            self._async_token = token  # type: ignore[assignment]
        else:
            self._token = as_token_provider(token)  # type: ignore[arg-type]
        if concurrency < 1:
            raise InvalidInput("concurrency must be at least 1")
        self.concurrency = concurrency
        self._sleep = sleep
        self._on_retry = on_retry
        if transport is None and verify is True:
            transport = AsyncSchemeTransports()  # the CA bundle is loaded only if an https URL comes up
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, verify=verify, follow_redirects=False)
        # httpx checks a str URL character by character on every request; an upload sends the
        # same URL (about 1 KB on Outlook) with each of its ranges, so parsed URLs are kept.
        self._url = functools.lru_cache(maxsize=16)(httpx.URL)

    @property
    def graph_url(self) -> str:
        return self._core.graph_url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # -- the driver

    async def _run(self, flow: Flow[R]) -> R:
        result: Result = None
        pending: BaseException | None = None
        cleaning_up = False
        while True:
            try:
                op = flow.throw(pending) if pending is not None else flow.send(result)
            except StopIteration as stop:
                value: R = stop.value
                return value
            pending = None
            try:
                if cleaning_up:
                    # The caller was cancelled: let the flow finish its cleanup, briefly and shielded.
                    with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                        result = await self._execute(op)
                else:
                    await anyio.lowlevel.checkpoint_if_cancelled()
                    result = await self._execute(op)
            except BaseException as exc:  # thrown into the flow so that it can clean up (cancel a session)
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    cleaning_up = True
                pending = exc

    async def _bearer(self, refresh: bool) -> str:
        if self._async_token is not None:
            return await self._async_token()
        assert self._token is not None
        if isinstance(self._token, StaticToken):
            return self._token.get_token(refresh)
        token = self._token
        return await anyio.to_thread.run_sync(lambda: token.get_token(refresh))

    async def _execute(self, op: Send | Sleep) -> Result:
        if isinstance(op, Sleep):
            if op.notice is not None and self._on_retry is not None:
                self._on_retry(op.notice)
            await self._sleep(op.seconds)
            return None
        headers = dict(op.headers)
        content: Any = op.content
        if isinstance(content, FileSlice):
            content = aiter(content)
        if op.auth and (self._token is not None or self._async_token is not None):
            headers["Authorization"] = f"Bearer {await self._bearer(op.refresh_token)}"
        try:
            if op.sink is None:
                response = await self._http.request(op.method, self._url(op.url), headers=headers, content=content)
                return Reply(response.status_code, response.headers, response.content)
            async with self._http.stream(op.method, self._url(op.url), headers=headers, content=content) as response:
                if not 200 <= response.status_code < 300:
                    return Reply(response.status_code, response.headers, await response.aread())
                op.sink.seek(0)
                op.sink.truncate()
                written = 0
                async for chunk in response.aiter_bytes():
                    op.sink.write(chunk)
                    written += len(chunk)
                return Reply(response.status_code, response.headers, b"", written)
        except httpx.TransportError as exc:
            if (error := execution_error(exc, op.url)) is not None:
                raise error from exc
            return Failure(exc)
        except httpx.HTTPError as exc:
            raise execution_error(exc, op.url) or ClientError(str(exc)) from exc

    # -- attaching files

    async def attach(
        self,
        target: Target,
        file: FileLike,
        *,
        name: str | None = None,
        content_type: str | None = None,
        inline: bool = False,
        content_id: str | None = None,
        progress: ProgressCallback | None = None,
        restart_expired: bool = False,
    ) -> Attachment:
        """See :meth:`graphattach.client.Client.attach`."""
        source = FileSource(file, name)
        flow = self._core.attach(
            target,
            source,
            **file_spec_args(content_type, inline, content_id),
            progress=progress,
            restart_expired=restart_expired,
        )
        return await self._run(flow)

    async def attach_many(
        self,
        target: Target,
        files: Sequence[FileLike],
        *,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
        restart_expired: bool = False,
    ) -> list[AttachResult]:
        """See :meth:`graphattach.client.Client.attach_many`."""
        limiter = anyio.CapacityLimiter(max(1, concurrency or self.concurrency))
        results: list[AttachResult | None] = [None] * len(files)

        async def one(index: int, file: FileLike) -> None:
            async with limiter:
                try:
                    attachment = await self.attach(target, file, progress=progress, restart_expired=restart_expired)
                    results[index] = AttachResult(file, attachment)
                except ClientError as exc:
                    results[index] = AttachResult(file, None, exc)

        async with anyio.create_task_group() as group:
            for index, file in enumerate(files):
                group.start_soon(one, index, file)
        return [r for r in results if r is not None]

    async def resume(
        self,
        upload_url: str,
        file: FileLike,
        *,
        target: Target | None = None,
        progress: ProgressCallback | None = None,
    ) -> Attachment:
        flow = self._core.resume(upload_url, FileSource(file), target=target, progress=progress)
        return await self._run(flow)

    async def cancel(self, upload_url: str) -> None:
        await self._run(self._core.cancel(upload_url))

    # -- reading and removing attachments

    async def list_attachments(
        self, target: Target, *, select: Sequence[str] | None = METADATA_SELECT
    ) -> list[Attachment]:
        return await self._run(self._core.list_attachments(target, select=select))

    async def get_attachment(
        self, target: Target, attachment_id: str, *, select: Sequence[str] | None = None
    ) -> Attachment:
        return await self._run(self._core.get_attachment(target, attachment_id, select=select))

    async def delete_attachment(self, target: Target, attachment_id: str) -> None:
        await self._run(self._core.delete_attachment(target, attachment_id))

    async def download(
        self, target: Target, attachment: Attachment | str, path: str | os.PathLike[str] | IO[bytes]
    ) -> int:
        """See :meth:`graphattach.client.Client.download`."""
        import tempfile  # here: only a download to a path needs it

        attachment_id = attachment.id if isinstance(attachment, Attachment) else attachment
        if not isinstance(path, str | os.PathLike):
            return await self._run(self._core.download(target, attachment_id, path))
        name = attachment.name if isinstance(attachment, Attachment) else None
        if name is None and Path(path).is_dir():
            name = (await self.get_attachment(target, attachment_id, select=("id", "name"))).name
        dest = download_destination(Path(path), name, attachment_id)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            as_created_file(fd)
            with os.fdopen(fd, "w+b") as sink:
                count: int = await self._run(self._core.download(target, attachment_id, sink))
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return count

    # -- other attachment kinds, and things to attach to

    async def add_item_attachment(
        self, target: Target, item: dict[str, Any], *, name: str | None = None, kind: str | None = None
    ) -> Attachment:
        return await self._run(self._core.add_item_attachment(target, item, name=name, kind=kind))

    async def add_reference_attachment(
        self,
        target: Target,
        name: str,
        source_url: str,
        *,
        provider_type: str | None = None,
        permission: str | None = None,
        is_folder: bool | None = None,
    ) -> Attachment:
        flow = self._core.add_reference_attachment(
            target, name, source_url, provider_type=provider_type, permission=permission, is_folder=is_folder
        )
        return await self._run(flow)

    async def create_draft(
        self,
        *,
        subject: str | None = None,
        body: str | None = None,
        body_type: str = "text",
        to: Sequence[str] = (),
        user: str | None = None,
        folder: str | None = None,
    ) -> Message:
        flow = self._core.create_draft(subject=subject, body=body, body_type=body_type, to=to, user=user, folder=folder)
        return await self._run(flow)

    async def send_draft(self, message: Target) -> None:
        await self._run(self._core.send_draft(message))

    async def create_event(
        self,
        *,
        subject: str,
        start: datetime | str,
        end: datetime | str,
        time_zone: str = "UTC",
        body: str | None = None,
        user: str | None = None,
        calendar: str | None = None,
    ) -> Event:
        flow = self._core.create_event(
            subject=subject, start=start, end=end, time_zone=time_zone, body=body, user=user, calendar=calendar
        )
        return await self._run(flow)


def _is_async_callable(obj: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(getattr(obj, "__call__", None))  # noqa: B004
