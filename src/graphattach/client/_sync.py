"""``Client``: runs the flows of :mod:`graphattach.client._core` with ``httpx.Client``."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from graphattach._httpx import httpx
from graphattach.client._auth import TokenProvider, as_token_provider
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
    Progress,
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
from graphattach.client._transport import SchemeTransports

__all__ = ["Client"]


class Client:
    """A blocking client. ``with Client(graph_url, token) as client: client.attach(Message(id), "f.pdf")``.

    ``graph_url`` is the service root with its version (``https://graph.microsoft.com/v1.0``, or
    ``http://127.0.0.1:8765/v1.0`` for a local graphattach server). ``token`` is a string, a
    callable returning one, or a token provider (see :mod:`graphattach.client._auth`).
    ``transport`` replaces the network (``httpx.MockTransport`` in tests); ``sleep`` replaces
    ``time.sleep`` between retries; ``on_retry`` is told of each retry before its pause
    (a :class:`~graphattach.client.Retrying`: what failed, where, and how long the pause is).
    """

    def __init__(
        self,
        graph_url: str = DEFAULT_GRAPH_URL,
        token: str | TokenProvider | Callable[[], str] | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry: RetryPolicy | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        verify: Any = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        cancel_on_failure: bool = True,
        on_retry: Callable[[Retrying], None] | None = None,
    ) -> None:
        self._core = Core(graph_url, chunk_size=chunk_size, retry=retry, cancel_on_failure=cancel_on_failure)
        self._token = as_token_provider(token)
        if concurrency < 1:
            raise InvalidInput("concurrency must be at least 1")
        self.concurrency = concurrency
        self._sleep = sleep
        self._on_retry = on_retry
        if transport is None and verify is True:
            transport = SchemeTransports()  # the CA bundle is loaded only if an https URL comes up
        self._http = httpx.Client(transport=transport, timeout=timeout, verify=verify, follow_redirects=False)
        # httpx checks a str URL character by character on every request; an upload sends the
        # same URL (about 1 KB on Outlook) with each of its ranges, so parsed URLs are kept.
        self._url = functools.lru_cache(maxsize=16)(httpx.URL)

    @property
    def graph_url(self) -> str:
        return self._core.graph_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the driver

    def _run(self, flow: Flow[R]) -> R:
        result: Result = None
        pending: BaseException | None = None
        while True:
            try:
                op = flow.throw(pending) if pending is not None else flow.send(result)
            except StopIteration as stop:
                value: R = stop.value
                return value
            pending = None
            try:
                result = self._execute(op)
            except BaseException as exc:  # thrown into the flow so that it can clean up (cancel a session)
                pending = exc

    def _execute(self, op: Send | Sleep) -> Result:
        if isinstance(op, Sleep):
            if op.notice is not None and self._on_retry is not None:
                self._on_retry(op.notice)
            self._sleep(op.seconds)
            return None
        headers = dict(op.headers)
        content: Any = op.content
        if isinstance(content, FileSlice):
            content = iter(content)
        if op.auth and self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_token(op.refresh_token)}"
        try:
            if op.sink is None:
                response = self._http.request(op.method, self._url(op.url), headers=headers, content=content)
                return Reply(response.status_code, response.headers, response.content)
            with self._http.stream(op.method, self._url(op.url), headers=headers, content=content) as response:
                if not 200 <= response.status_code < 300:
                    return Reply(response.status_code, response.headers, response.read())
                op.sink.seek(0)
                op.sink.truncate()
                written = 0
                for chunk in response.iter_bytes():
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

    def attach(
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
        """Attach a file (path or binary file object) to a message or event; returns the attachment.

        One POST when the JSON request fits Graph's 4 MiB cap, else an upload session of
        ``chunk_size`` PUTs. ``restart_expired=True`` starts a new session if one expires.
        """
        source = FileSource(file, name)
        flow = self._core.attach(
            target,
            source,
            **file_spec_args(content_type, inline, content_id),
            progress=progress,
            restart_expired=restart_expired,
        )
        return self._run(flow)

    def attach_many(
        self,
        target: Target,
        files: Sequence[FileLike],
        *,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
        restart_expired: bool = False,
    ) -> list[AttachResult]:
        """Attach several files, ``concurrency`` at a time (default 4, Outlook's limit per mailbox).

        Returns one :class:`AttachResult` per file, in order; a failed file does not stop the others.
        """
        import queue  # here: a single attach does not need it

        stop = threading.Event()

        def report(event: Progress) -> None:
            if stop.is_set() and event.done < event.total:
                raise KeyboardInterrupt  # the caller was interrupted: cancel this upload's session
            if progress is not None:
                progress(event)

        def one(file: FileLike) -> AttachResult:
            if stop.is_set():
                return AttachResult(file, None, ClientError("not attempted: interrupted", code="Interrupted"))
            try:
                return AttachResult(file, self.attach(target, file, progress=report, restart_expired=restart_expired))
            except ClientError as exc:
                return AttachResult(file, None, exc)
            except KeyboardInterrupt:
                return AttachResult(
                    file, None, ClientError("interrupted; its upload session was cancelled", code="Interrupted")
                )

        results: list[AttachResult | None] = [None] * len(files)
        pending: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(files)):
            pending.put(index)

        def work(finished: threading.Event) -> None:
            try:
                while True:
                    try:
                        index = pending.get_nowait()
                    except queue.Empty:
                        return
                    results[index] = one(files[index])
            finally:
                finished.set()

        # Waiting on Events, not Thread.join(): a join that Ctrl-C interrupts cannot be trusted in 3.11.
        workers = max(1, min(concurrency or self.concurrency, len(files) or 1))
        finished = [threading.Event() for _ in range(workers)]
        threads = [
            threading.Thread(target=work, args=(event,), name=f"graphattach-upload-{i}", daemon=True)
            for i, event in enumerate(finished)
        ]
        try:
            for thread in threads:
                thread.start()
            for event in finished:
                event.wait()
        except BaseException:
            # Ctrl-C: every upload in flight cancels its session at its next step; wait for that.
            stop.set()
            for thread, event in zip(threads, finished, strict=True):
                waited = 0.0
                while not event.wait(0.1):
                    waited += 0.1
                    if waited >= 2 and thread.ident is None:
                        break  # interrupted before it could start
            raise
        return [
            r if r is not None else AttachResult(f, None, ClientError("not attempted", code="Interrupted"))
            for r, f in zip(results, files, strict=True)
        ]

    def resume(
        self,
        upload_url: str,
        file: FileLike,
        *,
        target: Target | None = None,
        progress: ProgressCallback | None = None,
    ) -> Attachment:
        """Continue an upload session started by another process, from where the session says."""
        return self._run(self._core.resume(upload_url, FileSource(file), target=target, progress=progress))

    def cancel(self, upload_url: str) -> None:
        """Cancel an upload session (DELETE on its URL)."""
        self._run(self._core.cancel(upload_url))

    # -- reading and removing attachments

    def list_attachments(self, target: Target, *, select: Sequence[str] | None = METADATA_SELECT) -> list[Attachment]:
        return self._run(self._core.list_attachments(target, select=select))

    def get_attachment(self, target: Target, attachment_id: str, *, select: Sequence[str] | None = None) -> Attachment:
        return self._run(self._core.get_attachment(target, attachment_id, select=select))

    def delete_attachment(self, target: Target, attachment_id: str) -> None:
        self._run(self._core.delete_attachment(target, attachment_id))

    def download(self, target: Target, attachment: Attachment | str, path: str | os.PathLike[str] | IO[bytes]) -> int:
        """Stream an attachment's raw bytes (``$value``) to ``path`` (a file, a directory, or a binary
        file object); returns the byte count. A file path is written whole or not at all."""
        import tempfile  # here: only a download to a path needs it

        attachment_id = attachment.id if isinstance(attachment, Attachment) else attachment
        if not isinstance(path, str | os.PathLike):
            return self._run(self._core.download(target, attachment_id, path))
        name = attachment.name if isinstance(attachment, Attachment) else None
        if name is None and Path(path).is_dir():
            name = self.get_attachment(target, attachment_id, select=("id", "name")).name
        dest = download_destination(Path(path), name, attachment_id)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            as_created_file(fd)
            with os.fdopen(fd, "w+b") as sink:
                count: int = self._run(self._core.download(target, attachment_id, sink))
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return count

    # -- other attachment kinds, and things to attach to

    def add_item_attachment(
        self, target: Target, item: dict[str, Any], *, name: str | None = None, kind: str | None = None
    ) -> Attachment:
        return self._run(self._core.add_item_attachment(target, item, name=name, kind=kind))

    def add_reference_attachment(
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
        return self._run(flow)

    def create_draft(
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
        return self._run(flow)

    def send_draft(self, message: Target) -> None:
        self._run(self._core.send_draft(message))

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
    ) -> Event:
        flow = self._core.create_event(
            subject=subject, start=start, end=end, time_zone=time_zone, body=body, user=user, calendar=calendar
        )
        return self._run(flow)
