"""The test kit with the real msgraph-sdk: ``graph.msgraph_client()``, and the examples/ suites
(the sample app's pytest suite on the plugin, in-process and against a ``graphattach serve``
process, and its unittest variant), run as their users would run them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import running_server

from graphattach.testing import ADELE, ALEX, GraphServer

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "save_attachments"


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphServer]:
    # lenient: msgraph-core's LargeFileUploadTask needs it, as test_msgraph_uploads.py shows
    with GraphServer(profile="lenient") as server:
        yield server


def test_msgraph_client_reads_mail_and_uploads_through_a_session(graph: GraphServer) -> None:
    from msgraph.generated.models.attachment_item import AttachmentItem
    from msgraph.generated.models.attachment_type import AttachmentType
    from msgraph.generated.models.message import Message
    from msgraph.generated.users.item.messages.item.attachments.create_upload_session.create_upload_session_post_request_body import (
        CreateUploadSessionPostRequestBody,
    )
    from msgraph_core.tasks.large_file_upload import LargeFileUploadTask

    graph.reset()
    graph.send_mail(sender=ALEX, to=ADELE, subject="hello", attachments={"a.txt": b"abc"})
    client = graph.msgraph_client(ADELE)

    async def run() -> tuple[list[str], int]:
        inbox = await client.me.mail_folders.by_mail_folder_id("inbox").messages.get()
        subjects = [m.subject or "" for m in inbox.value or []]
        draft = await client.me.messages.post(Message(subject="big one"))
        assert draft is not None and draft.id is not None
        body = CreateUploadSessionPostRequestBody(
            attachment_item=AttachmentItem(attachment_type=AttachmentType.File, name="big.bin", size=12_000_000)
        )
        session = await client.me.messages.by_message_id(draft.id).attachments.create_upload_session.post(body)
        import io

        stream = io.BytesIO(b"z" * 12_000_000)
        result = await LargeFileUploadTask(session, client.request_adapter, stream).upload()
        assert result.upload_succeeded
        return subjects, len(stream.getvalue())

    subjects, size = asyncio.run(run())
    assert subjects == ["hello"]
    (draft,) = graph.messages(ADELE, folder="drafts")
    assert draft.attachment("big.bin").content_length == size
    puts = graph.requests_matching(operation="uploadSession.")
    assert len(puts) >= 3 and {r.operation for r in puts} == {"uploadSession.put"}
    # the SDK's Graph token went to the Graph host only: each PUT was authorised by the URL's own token
    assert {r.caller for r in puts} == {"upload"}
    assert {r.permission for r in graph.requests_matching(operation="attachments.createUploadSession")} == {
        "Mail.ReadWrite"
    }


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=SAMPLE,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_the_sample_apps_pytest_suite_on_the_plugin() -> None:
    done = _run("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_save_attachments.py")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout


def test_the_sample_apps_suite_against_a_running_server(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", "--in-memory") as server:
        done = _run(
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_save_attachments.py",
            env={"GRAPHATTACH_URL": server.root},
        )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout


def test_the_sample_apps_unittest_suite() -> None:
    done = _run("-m", "unittest", "-v", "test_save_attachments_unittest")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Ran 2 tests" in done.stderr and "OK" in done.stderr
