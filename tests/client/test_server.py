"""The client against real ``graphattach serve`` processes (both profiles), over real sockets.

Every upload is checked by streaming ``$value`` back and comparing SHA-256 with the file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graphattach.client import (
    Client,
    Event,
    Forbidden,
    GraphattachTokenProvider,
    Message,
    NotFound,
    Progress,
    RetryPolicy,
    UploadSessionExpired,
)
from tests.client.conftest import MiB, file_bytes
from tests.client.tcpproxy import CuttingProxy
from tests.helpers import ADELE, ServerProcess, free_port

pytestmark = pytest.mark.server

MakeFile = Callable[..., Path]
SIZES = [1024, 3_145_611, 3_145_612, 20 * MiB]


@pytest.fixture(scope="module")
def lenient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("lenient") / "data", "--profile", "lenient").start()
    yield server
    server.stop()


@pytest.fixture(params=["outlook", "lenient"])
def server(request: pytest.FixtureRequest) -> ServerProcess:
    name = "server_process" if request.param == "outlook" else "lenient_server"
    server: ServerProcess = request.getfixturevalue(name)
    return server


def graph_client(server: ServerProcess, **kwargs: object) -> Client:
    token = GraphattachTokenProvider(server.root, ADELE)
    return Client(f"{server.root}/v1.0", token, **kwargs)  # type: ignore[arg-type]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def new_target(client: Client, kind: str) -> Message | Event:
    if kind == "message":
        return client.create_draft(subject="graphattach client test")
    return client.create_event(
        subject="graphattach client test", start="2030-01-01T10:00:00", end="2030-01-01T11:00:00"
    )


def check_round_trip(client: Client, target: Message | Event, attachment_id: str, path: Path, tmp_path: Path) -> None:
    copy = tmp_path / f"copy-{attachment_id[-12:]}"
    count = client.download(target, attachment_id, copy)
    assert count == path.stat().st_size
    assert sha256_of(copy) == sha256_of(path)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["message", "event"])
def test_attach_round_trips(server: ServerProcess, make_file: MakeFile, tmp_path: Path, kind: str, size: int) -> None:
    path = make_file(size, f"file-{size}.bin", seed=size)
    methods: set[str] = set()
    with graph_client(server) as client:
        target = new_target(client, kind)
        attachment = client.attach(target, path, progress=lambda p: methods.add(p.method))
        assert methods == {"post" if size <= 3_145_611 else "session"}
        assert attachment.name == path.name
        assert attachment.size is not None and attachment.size >= size
        assert [a.id for a in client.list_attachments(target)] == [attachment.id]
        check_round_trip(client, target, attachment.id, path, tmp_path)


def test_several_files_at_once(server_process: ServerProcess, make_file: MakeFile, tmp_path: Path) -> None:
    files = [make_file(10_000 * (i + 1), f"small-{i}.bin", seed=i) for i in range(5)]
    files += [make_file(5 * MiB, "large-a.bin", seed=10), make_file(6 * MiB, "large-b.bin", seed=11)]
    with graph_client(server_process) as client:
        target = new_target(client, "message")
        results = client.attach_many(target, files)
        assert all(r.ok for r in results), [r.error for r in results]
        for result, path in zip(results, files, strict=True):
            assert result.attachment is not None
            check_round_trip(client, target, result.attachment.id, path, tmp_path)


def test_inline_attachment_keeps_its_content_id(server_process: ServerProcess, make_file: MakeFile) -> None:
    with graph_client(server_process) as client:
        target = new_target(client, "message")
        attachment = client.attach(target, make_file(4 * MiB, "logo.png"), content_id="logo1")
        got = client.get_attachment(target, attachment.id)
        assert got.is_inline and got.content_id == "logo1" and got.content_type == "image/png"


def test_unknown_message_and_missing_scope(server_process: ServerProcess, make_file: MakeFile) -> None:
    with graph_client(server_process) as client:
        with pytest.raises(NotFound) as info:
            client.attach(Message("AAMkAGNvbnRvc29ub3RoZXJlAAA="), make_file(10))
        assert info.value.code == "ErrorItemNotFound" and info.value.request_id
        target = new_target(client, "message")
    read_only = GraphattachTokenProvider(server_process.root, ADELE, scopes="Mail.Read")
    with Client(f"{server_process.root}/v1.0", read_only) as client:
        with pytest.raises(Forbidden) as forbidden:
            client.attach(target, make_file(5 * MiB))
        assert forbidden.value.code == "ErrorAccessDenied" and forbidden.value.status == 403
        assert client.list_attachments(target) == []


def test_connection_cut_mid_upload_resumes(tmp_path: Path, make_file: MakeFile) -> None:
    port = free_port()
    with CuttingProxy(port) as proxy:
        server = ServerProcess(
            tmp_path / "data", "--upload-origin", f"http://localhost:{proxy.port}", port=port
        ).start()
        try:
            path = make_file(13 * MiB, "cut.bin", seed=5)

            def cut_soon(progress: Progress) -> None:
                if progress.done == 4 * MiB:
                    proxy.cut_after(MiB + 3)  # 1 MiB into the next range's body

            with graph_client(server, retry=RetryPolicy(backoff=0.05)) as client:
                target = new_target(client, "event")
                attachment = client.attach(target, path, progress=cut_soon)
                assert proxy.cuts == 1
                check_round_trip(client, target, attachment.id, path, tmp_path)
                assert [a.id for a in client.list_attachments(target)] == [attachment.id]
        finally:
            server.stop()


def test_server_restart_mid_upload_resumes(tmp_path: Path, make_file: MakeFile) -> None:
    server = ServerProcess(tmp_path / "data").start()
    restarted = threading.Event()
    try:
        path = make_file(20 * MiB, "restart.bin", seed=9)

        def restart(progress: Progress) -> None:
            if progress.done == 8 * MiB and not restarted.is_set():
                restarted.set()
                server.kill()
                threading.Thread(target=server.start, daemon=True).start()

        retry = RetryPolicy(attempts=10, backoff=0.2, max_backoff=2)
        with graph_client(server, retry=retry) as client:
            target = new_target(client, "message")
            attachment = client.attach(target, path, progress=restart)
            assert restarted.is_set()
            check_round_trip(client, target, attachment.id, path, tmp_path)
    finally:
        server.stop()


def test_expired_session_is_reported_and_can_restart(tmp_path: Path, make_file: MakeFile) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        path = make_file(9 * MiB, "late.bin", seed=3)

        def advance_clock(progress: Progress) -> None:
            if progress.done == 4 * MiB and progress.total == 9 * MiB and not advanced:
                advanced.append(True)
                import httpx

                httpx.post(f"{server.root}/_graphattach/clock", json={"advanceSeconds": 7 * 3600}).raise_for_status()

        advanced: list[bool] = []
        with graph_client(server) as client:
            target = new_target(client, "message")
            with pytest.raises(UploadSessionExpired) as info:
                client.attach(target, path, progress=advance_clock)
            assert info.value.status == 401
            assert client.list_attachments(target) == []
        advanced.clear()
        with Client(f"{server.root}/v1.0", GraphattachTokenProvider(server.root, ADELE, lifetime=86400)) as client:
            attachment = client.attach(target, path, progress=advance_clock, restart_expired=True)
            check_round_trip(client, target, attachment.id, path, tmp_path)
    finally:
        server.stop()


def test_resume_and_cancel_from_another_process(
    server_process: ServerProcess, make_file: MakeFile, tmp_path: Path
) -> None:
    import httpx

    path = make_file(7 * MiB, "handover.bin", seed=4)
    data = path.read_bytes()
    with graph_client(server_process) as client:
        target = new_target(client, "message")
        token = GraphattachTokenProvider(server_process.root, ADELE).get_token()
        for finish in ("resume", "cancel"):
            created = httpx.post(
                f"{client.graph_url}{target.path}/attachments/createUploadSession",
                json={"AttachmentItem": {"attachmentType": "file", "name": path.name, "size": len(data)}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201, created.text
            url = created.json()["uploadUrl"]
            first = httpx.put(
                url, content=data[: 3 * MiB], headers={"Content-Range": f"bytes 0-{3 * MiB - 1}/{len(data)}"}
            )
            assert first.status_code == 200
            if finish == "resume":
                attachment = client.resume(url, path, target=target)
                check_round_trip(client, target, attachment.id, path, tmp_path)
            else:
                client.cancel(url)
                with pytest.raises(NotFound):
                    client.resume(url, path)
        assert len(client.list_attachments(target)) == 1


@pytest.mark.slow
def test_150_mb_round_trips(server_process: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "big-150.bin"
    block = file_bytes(MiB, seed=150)
    with open(path, "wb") as f:
        for i in range(150):
            f.write(block[i:] + block[:i])
    with graph_client(server_process) as client:
        target = new_target(client, "message")
        attachment = client.attach(target, path)
        check_round_trip(client, target, attachment.id, path, tmp_path)


def test_memory_does_not_grow_with_the_file(server_process: ServerProcess, make_file: MakeFile) -> None:
    """Ranges are read from disk while they are sent: the client never holds even one whole range."""
    import tracemalloc

    path = make_file(30 * MiB, "memory.bin", seed=30)
    with graph_client(server_process) as client:
        target = new_target(client, "message")
        tracemalloc.start()
        try:
            client.attach(target, path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 2 * MiB  # a 4 MiB range is never in memory at once, let alone the 30 MiB file


async def test_async_client_round_trip(server_process: ServerProcess, make_file: MakeFile, tmp_path: Path) -> None:
    from graphattach.client import AsyncClient

    path = make_file(9 * MiB + 1, "async.bin", seed=91)
    token = GraphattachTokenProvider(server_process.root, ADELE)
    async with AsyncClient(f"{server_process.root}/v1.0", token) as client:
        target = await client.create_event(subject="async", start="2030-02-01T09:00:00", end="2030-02-01T10:00:00")
        results = await client.attach_many(target, [path, make_file(1000, "small.txt")])
        assert all(r.ok for r in results)
        attachment = results[0].attachment
        assert attachment is not None
        copy = tmp_path / "async-copy.bin"
        assert await client.download(target, attachment, copy) == path.stat().st_size
    assert sha256_of(copy) == sha256_of(path)
