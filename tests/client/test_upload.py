"""attach(): one POST or an upload session, and every way an upload can be disturbed (blocking client)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from graphattach.client import (
    Attachment,
    Client,
    Conflict,
    Event,
    FileChanged,
    Forbidden,
    InvalidInput,
    Message,
    NotFound,
    Progress,
    ProtocolError,
    RetryPolicy,
    ServerError,
    Throttled,
    TransportError,
    Unauthorized,
    UploadSessionExpired,
)
from graphattach.client._core import FileSpec
from tests.client.conftest import MiB, Sleeps
from tests.client.fakegraph import (
    GRAPH,
    NO_SCOPE_TOKEN,
    TOKEN,
    UPLOAD_HOST,
    FakeGraph,
    cut_after,
    cut_before,
    status,
    upload_put,
    upload_put_at,
)

MakeFile = Callable[..., Path]


def stored(fake: FakeGraph, kind: str, item_id: str, attachment: Attachment) -> bytes:
    return fake.attachments(kind, item_id)[attachment.id].data


def put_ranges(fake: FakeGraph) -> list[str]:
    return [r.headers["content-range"] for r in fake.calls("PUT", UPLOAD_HOST)]


# --- the choice between one POST and a session ------------------------------------------------------


def test_single_post_size_is_exact() -> None:
    spec = FileSpec("report.pdf", "application/pdf", inline=True, content_id="cid-1")
    for size in (0, 1, 2, 3, 4, 1000, 3_000_001):
        assert spec.post_size(size) == len(spec.post_body(os.urandom(size)))


def test_largest_single_post_is_3145611_bytes() -> None:
    # The name leaves room for the 4 MiB body: the raw limit Graph enforces decides.
    spec = FileSpec("file-3145611.bin", "application/octet-stream")
    assert spec.fits_single_post(3_145_611)
    assert not spec.fits_single_post(3_145_612)
    assert spec.post_size(3_145_611) <= 4 * MiB


def test_a_long_name_moves_the_boundary_down_to_the_4_mib_body() -> None:
    spec = FileSpec("n" * 400 + ".bin", "application/octet-stream")
    largest = max(n for n in range(3_145_000, 3_145_612) if spec.fits_single_post(n))
    assert spec.post_size(largest) <= 4 * MiB < spec.post_size(largest + 3)
    assert largest < 3_145_611


def test_small_file_is_one_post(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(1024, "notes.txt")
    attachment = client.attach(Message(item), path)
    assert attachment.name == "notes.txt"
    assert attachment.content_type == "text/plain"
    assert attachment.kind == "file"
    assert stored(fake, "message", item, attachment) == path.read_bytes()
    posts = fake.calls("POST")
    assert len(posts) == 1 and posts[0].url.path.endswith("/attachments")
    body = json.loads(posts[0].content)
    assert body["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert not fake.calls(host=UPLOAD_HOST)


def test_3145611_bytes_is_one_post_and_3145612_a_session(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    small = client.attach(Message(item), make_file(3_145_611))
    assert len(fake.calls("POST")) == 1 and not fake.sessions
    assert all(len(r.content) <= 4 * MiB for r in fake.calls("POST"))
    large_path = make_file(3_145_612)
    large = client.attach(Message(item), large_path)
    assert len(fake.sessions) == 1
    assert stored(fake, "message", item, large) == large_path.read_bytes()
    assert small.id != large.id


def test_over_150_mb_is_refused_before_any_request(client: Client, fake: FakeGraph, tmp_path: Path) -> None:
    fake.add_message()
    path = tmp_path / "huge.bin"
    with open(path, "wb") as f:
        f.truncate(150 * MiB + 1)
    with pytest.raises(InvalidInput, match="150 MB") as info:
        client.attach(Message("AAMkAGI2TG93AAA="), path)
    assert info.value.code == "FileTooLarge"
    assert fake.requests == []


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_bad_paths_are_refused(client: Client, fake: FakeGraph, tmp_path: Path, what: str) -> None:
    path = tmp_path / "nope.bin" if what == "missing" else tmp_path
    with pytest.raises(InvalidInput) as info:
        client.attach(Message(fake.add_message()), path)
    assert info.value.code == ("FileNotFound" if what == "missing" else "IsADirectory")
    assert fake.requests == []


# --- upload sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("range_key", ["nextExpectedRanges", "NextExpectedRanges"])
@pytest.mark.parametrize("range_form", ["N", "N-", "N-M"])
def test_session_follows_every_range_form(make_file: MakeFile, sleeps: Sleeps, range_form: str, range_key: str) -> None:
    fake = FakeGraph(range_form=range_form, range_key=range_key)
    item = fake.add_message()
    path = make_file(10 * MiB + 5)
    with Client(GRAPH, TOKEN, transport=fake.transport, sleep=sleeps) as client:
        attachment = client.attach(Message(item), path)
    assert stored(fake, "message", item, attachment) == path.read_bytes()
    assert put_ranges(fake) == [
        f"bytes 0-{4 * MiB - 1}/{10 * MiB + 5}",
        f"bytes {4 * MiB}-{8 * MiB - 1}/{10 * MiB + 5}",
        f"bytes {8 * MiB}-{10 * MiB + 4}/{10 * MiB + 5}",
    ]
    assert sleeps == []


def test_session_requests_on_the_wire(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_event()
    path = make_file(5 * MiB, "flower.jpg")
    attachment = client.attach(Event(item), path, inline=True, content_id="my_inline_picture")
    create = next(r for r in fake.calls("POST") if r.url.path.endswith("createUploadSession"))
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(create.content) == {
        "AttachmentItem": {
            "attachmentType": "file",
            "name": "flower.jpg",
            "size": 5 * MiB,
            "contentType": "image/jpeg",
            "isInline": True,
            "contentId": "my_inline_picture",
        }
    }
    for put in fake.calls("PUT"):
        assert put.url.host == UPLOAD_HOST
        assert "authorization" not in put.headers
        assert put.headers["content-type"] == "application/octet-stream"
        assert int(put.headers["content-length"]) == len(put.content)
    assert fake.token_on_upload == 0
    assert attachment.is_inline and attachment.content_type == "image/jpeg"
    assert stored(fake, "event", item, attachment) == path.read_bytes()


def test_chunk_size_is_configurable(fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(3 * MiB + 10)
    with Client(GRAPH, TOKEN, transport=fake.transport, chunk_size=1 * MiB) as client:
        attachment = client.attach(Message(item), path)
    assert len(fake.calls("PUT")) == 4
    assert max(len(r.content) for r in fake.calls("PUT")) == MiB
    assert stored(fake, "message", item, attachment) == path.read_bytes()


def test_progress_reports_confirmed_bytes(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    seen: list[Progress] = []
    client.attach(Message(fake.add_message()), make_file(9 * MiB), progress=seen.append)
    assert [p.done for p in seen] == [0, 4 * MiB, 8 * MiB, 9 * MiB]
    assert {p.total for p in seen} == {9 * MiB} and {p.method for p in seen} == {"session"}


def test_a_range_with_an_end_limits_the_next_put(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(6 * MiB)

    def partial(request: httpx.Request, proceed: Callable[[], httpx.Response]) -> httpx.Response:
        proceed()  # stores 0..4 MiB; pretend the service wants 4 MiB..5 MiB first
        return httpx.Response(200, json={"nextExpectedRanges": [f"{4 * MiB}-{5 * MiB - 1}"]})

    fake.script(upload_put_at(0), partial)
    attachment = client.attach(Message(item), path)
    assert put_ranges(fake)[1] == f"bytes {4 * MiB}-{5 * MiB - 1}/{6 * MiB}"
    assert stored(fake, "message", item, attachment) == path.read_bytes()


# --- throttling, errors, interruptions -----------------------------------------------------------------


@pytest.mark.parametrize(("header", "seconds"), [("3", 3.0), ("2.128", 2.128)])
def test_429_honours_retry_after(
    client: Client, fake: FakeGraph, sleeps: Sleeps, make_file: MakeFile, header: str, seconds: float
) -> None:
    item = fake.add_message()
    path = make_file(6 * MiB)
    fake.script(upload_put_at(4 * MiB), status(429, retry_after=header))
    fake.script(lambda r: r.url.path.endswith("createUploadSession"), status(429, retry_after=header))
    attachment = client.attach(Message(item), path)
    assert sleeps == [seconds, seconds]
    assert stored(fake, "message", item, attachment) == path.read_bytes()


def test_429_on_the_single_post_is_retried(
    client: Client, fake: FakeGraph, sleeps: Sleeps, make_file: MakeFile
) -> None:
    item = fake.add_message()
    fake.script(lambda r: r.method == "POST", status(429, retry_after="1"), times=2)
    attachment = client.attach(Message(item), make_file(100))
    assert sleeps == [1.0, 1.0]
    assert list(fake.attachments("message", item)) == [attachment.id]


def test_503s_back_off_exponentially_with_jitter(
    client: Client, fake: FakeGraph, sleeps: Sleeps, retry: RetryPolicy, make_file: MakeFile
) -> None:
    item = fake.add_message()
    path = make_file(6 * MiB)
    fake.script(upload_put_at(0), status(503), times=3)
    attachment = client.attach(Message(item), path)
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        full = min(retry.backoff * 2**attempt, retry.max_backoff)
        assert full * (1 - retry.jitter) <= delay <= full
    assert stored(fake, "message", item, attachment) == path.read_bytes()


def test_retries_give_up_and_cancel_the_session(
    client: Client, fake: FakeGraph, sleeps: Sleeps, make_file: MakeFile
) -> None:
    item = fake.add_message()
    fake.script(upload_put_at(4 * MiB), status(503), times=100)
    with pytest.raises(ServerError) as info:
        client.attach(Message(item), make_file(6 * MiB))
    assert info.value.status == 503 and info.value.request_id
    assert len(sleeps) == 4
    assert fake.calls("DELETE", UPLOAD_HOST) and not fake.sessions
    assert fake.attachments("message", item) == {}
    assert info.value.upload_url is None  # cancelled, nothing to resume


def test_throttled_for_good_is_throttled(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    fake.script(lambda r: r.method == "POST", status(429, retry_after="1"), times=100)
    with pytest.raises(Throttled) as info:
        client.attach(Message(fake.add_message()), make_file(10))
    assert info.value.code == "ApplicationThrottled" and info.value.status == 429


@pytest.mark.parametrize("status_get", [True, False])
def test_connection_cut_mid_upload_resumes(make_file: MakeFile, sleeps: Sleeps, status_get: bool) -> None:
    fake = FakeGraph(status_get=status_get)
    item = fake.add_message()
    path = make_file(13 * MiB)
    fake.script(upload_put_at(4 * MiB), cut_after())  # the service stored the chunk, the answer was lost
    fake.script(upload_put_at(8 * MiB), cut_before())  # then the network is down for a moment
    with Client(GRAPH, TOKEN, transport=fake.transport, sleep=sleeps) as client:
        attachment = client.attach(Message(item), path)
    assert stored(fake, "message", item, attachment) == path.read_bytes()
    assert len(sleeps) == 2
    if status_get:
        assert len(fake.calls("GET", UPLOAD_HOST)) == 2
        assert put_ranges(fake).count(f"bytes {4 * MiB}-{8 * MiB - 1}/{13 * MiB}") == 1
    else:
        # The service's answer to the same range again says where to continue.
        assert put_ranges(fake).count(f"bytes {4 * MiB}-{8 * MiB - 1}/{13 * MiB}") == 2


def test_lost_answer_to_the_final_put_finds_the_attachment(
    client: Client, fake: FakeGraph, make_file: MakeFile
) -> None:
    item = fake.add_message()
    path = make_file(5 * MiB, "final.bin")
    fake.script(upload_put_at(4 * MiB), cut_after())
    attachment = client.attach(Message(item), path)
    assert list(fake.attachments("message", item)) == [attachment.id]
    assert attachment.name == "final.bin"
    assert stored(fake, "message", item, attachment) == path.read_bytes()


def test_create_session_retried_after_connect_error(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    fake.script(lambda r: r.url.path.endswith("createUploadSession"), cut_before(), times=2)
    attachment = client.attach(Message(item), make_file(4 * MiB))
    assert attachment.id in fake.attachments("message", item)


def test_single_post_cut_after_sending_is_not_repeated(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    """A POST whose answer was lost may have created the attachment: no blind duplicate."""
    item = fake.add_message()
    fake.script(lambda r: r.method == "POST", cut_after())
    with pytest.raises(TransportError):
        client.attach(Message(item), make_file(100))
    assert len(fake.calls("POST")) == 1


def test_unreachable_service_is_a_transport_error(
    client: Client, fake: FakeGraph, sleeps: Sleeps, make_file: MakeFile
) -> None:
    fake.script(lambda r: True, cut_before(), times=100)
    with pytest.raises(TransportError) as info:
        client.attach(Message("x"), make_file(100))
    assert info.value.code == "NetworkError" and "graph.fake" in info.value.message
    assert len(sleeps) == 4


def test_expired_session_is_a_clear_error(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()

    def expire(request: httpx.Request, proceed: Callable[[], httpx.Response]) -> httpx.Response:
        response = proceed()
        fake.expire_all()
        return response

    fake.script(upload_put_at(0), expire)
    with pytest.raises(UploadSessionExpired) as info:
        client.attach(Message(item), make_file(6 * MiB))
    assert info.value.status == 404
    assert info.value.upload_url and UPLOAD_HOST in info.value.upload_url
    assert fake.attachments("message", item) == {}


def test_expired_session_restarts_from_scratch_when_asked(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(6 * MiB)

    def expire(request: httpx.Request, proceed: Callable[[], httpx.Response]) -> httpx.Response:
        response = proceed()
        fake.expire_all()
        return response

    fake.script(upload_put_at(0), expire)
    attachment = client.attach(Message(item), path, restart_expired=True)
    assert len(fake.sessions) == 2
    assert put_ranges(fake).count(f"bytes 0-{4 * MiB - 1}/{6 * MiB}") == 2
    assert stored(fake, "message", item, attachment) == path.read_bytes()


def test_file_changing_size_cancels_the_session(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(9 * MiB)

    def grow(progress: Progress) -> None:
        if progress.done == 4 * MiB:
            with open(path, "ab") as f:
                f.write(b"more")

    with pytest.raises(FileChanged, match="changed size"):
        client.attach(Message(item), path, progress=grow)
    assert fake.calls("DELETE", UPLOAD_HOST)
    assert fake.sessions == {} and fake.attachments("message", item) == {}


def test_interrupt_cancels_the_session(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()

    def interrupt(progress: Progress) -> None:
        if progress.done == 4 * MiB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.attach(Message(item), make_file(9 * MiB), progress=interrupt)
    assert len(fake.calls("DELETE", UPLOAD_HOST)) == 1 and fake.sessions == {}


def test_unknown_message_is_not_found(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    with pytest.raises(NotFound) as info:
        client.attach(Message("AAMkNOPE="), make_file(100))
    error = info.value
    assert error.code == "ErrorItemNotFound" and error.status == 404 and error.request_id
    assert "ErrorItemNotFound" in str(error) and error.request_id in str(error)


def test_token_without_scope_is_forbidden(fake: FakeGraph, make_file: MakeFile) -> None:
    with Client(GRAPH, NO_SCOPE_TOKEN, transport=fake.transport) as client:
        with pytest.raises(Forbidden) as info:
            client.attach(Message(fake.add_message()), make_file(5 * MiB))
    assert info.value.code == "ErrorAccessDenied" and info.value.status == 403


def test_bad_token_is_unauthorized_after_one_refresh(fake: FakeGraph, make_file: MakeFile) -> None:
    asked: list[int] = []

    def token() -> str:
        asked.append(1)
        return "expired"

    with Client(GRAPH, token, transport=fake.transport) as client:
        with pytest.raises(Unauthorized) as info:
            client.attach(Message(fake.add_message()), make_file(10))
    assert info.value.code == "InvalidAuthenticationToken"
    assert len(asked) == 2 and len(fake.calls("POST")) == 2


def test_refreshed_token_is_used_after_a_401(fake: FakeGraph, make_file: MakeFile) -> None:
    tokens = iter(["stale", TOKEN])
    with Client(GRAPH, lambda: next(tokens), transport=fake.transport) as client:
        attachment = client.attach(Message(item := fake.add_message()), make_file(10))
    assert attachment.id in fake.attachments("message", item)


@pytest.mark.parametrize("where", ["post", "create", "put"])
def test_garbage_answers_are_protocol_errors(client: Client, fake: FakeGraph, make_file: MakeFile, where: str) -> None:
    item = fake.add_message()
    garbage = status(200, body=b"<html>gateway says hi</html>")
    if where == "post":
        fake.script(lambda r: r.method == "POST", garbage)
        size = 100
    elif where == "create":
        fake.script(lambda r: r.url.path.endswith("createUploadSession"), garbage)
        size = 5 * MiB
    else:
        fake.script(upload_put, garbage)
        size = 5 * MiB
    with pytest.raises(ProtocolError, match="not JSON"):
        client.attach(Message(item), make_file(size))
    if where == "put":
        assert fake.calls("DELETE", UPLOAD_HOST) and not fake.sessions
    assert fake.attachments("message", item) == {}


def test_an_unreadable_range_is_a_protocol_error(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    fake.script(upload_put, lambda r, p: httpx.Response(200, json={"nextExpectedRanges": ["soon"]}))
    with pytest.raises(ProtocolError, match="soon"):
        client.attach(Message(fake.add_message()), make_file(5 * MiB))
    assert fake.sessions == {}


def test_out_of_order_answer_without_state_is_a_conflict(make_file: MakeFile) -> None:
    fake = FakeGraph(status_get=False)
    fake.script(
        upload_put_at(0),
        lambda r, p: httpx.Response(416, json={"error": {"code": "ErrorInvalidRange", "message": "no"}}),
    )
    with Client(GRAPH, TOKEN, transport=fake.transport) as client:
        with pytest.raises(Conflict) as info:
            client.attach(Message(fake.add_message()), make_file(5 * MiB))
    assert info.value.code == "ErrorInvalidRange" and info.value.status == 416


# --- resume and cancel -----------------------------------------------------------------------------------


def _start_session_by_hand(fake: FakeGraph, item: str, data: bytes, sent: int) -> str:
    with httpx.Client(transport=fake.transport) as http:
        created = http.post(
            f"{GRAPH}/me/messages/{item}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": len(data)}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        url = created.json()["uploadUrl"]
        put = http.put(url, content=data[:sent], headers={"Content-Range": f"bytes 0-{sent - 1}/{len(data)}"})
        assert put.status_code == 200
    return str(url)


def test_resume_continues_another_process_session(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(10 * MiB)
    url = _start_session_by_hand(fake, item, path.read_bytes(), 3 * MiB)
    attachment = client.resume(url, path)
    assert put_ranges(fake)[1] == f"bytes {3 * MiB}-{7 * MiB - 1}/{10 * MiB}"
    assert stored(fake, "message", item, attachment) == path.read_bytes()


def test_resume_with_target_reads_the_metadata(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(5 * MiB)
    url = _start_session_by_hand(fake, item, path.read_bytes(), MiB)
    attachment = client.resume(url, path, target=Message(item))
    assert attachment.name == "big.bin" and attachment.size == 5 * MiB + 158


def test_resume_a_finished_session_is_not_found(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(5 * MiB)
    url = _start_session_by_hand(fake, item, path.read_bytes(), MiB)
    client.resume(url, path)
    with pytest.raises(NotFound) as info:
        client.resume(url, path)
    assert info.value.code == "UploadSessionNotFound"


def test_cancel_deletes_the_session(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    path = make_file(5 * MiB)
    url = _start_session_by_hand(fake, item, path.read_bytes(), MiB)
    client.cancel(url)
    assert fake.sessions == {}
    assert "authorization" not in fake.calls("DELETE")[0].headers
    with pytest.raises(NotFound):
        client.cancel(url)


# --- several files ------------------------------------------------------------------------------------------


def test_attach_many_with_one_bad_file(client: Client, fake: FakeGraph, make_file: MakeFile, tmp_path: Path) -> None:
    item = fake.add_message()
    files: list[Path] = [make_file(10 * (i + 1), f"small-{i}.txt", seed=i) for i in range(3)]
    files.append(make_file(5 * MiB, "large.bin"))
    files.append(tmp_path / "missing.bin")
    results = client.attach_many(Message(item), files)
    assert [r.ok for r in results] == [True, True, True, True, False]
    assert isinstance(results[-1].error, InvalidInput)
    for result, path in zip(results[:4], files[:4], strict=True):
        assert result.attachment is not None
        assert stored(fake, "message", item, result.attachment) == path.read_bytes()


def test_attach_many_keeps_at_most_four_requests_in_flight(fake: FakeGraph, make_file: MakeFile) -> None:
    import threading
    import time

    item = fake.add_message()
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]

    def counting(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            time.sleep(0.01)
            return fake.handle(request)
        finally:
            with lock:
                in_flight[0] -= 1

    files = [make_file(100 + i, f"f{i}.txt", seed=i) for i in range(10)]
    with Client(GRAPH, TOKEN, transport=httpx.MockTransport(counting)) as client:
        results = client.attach_many(Message(item), files)
    assert all(r.ok for r in results)
    assert len(fake.attachments("message", item)) == 10
    assert 1 <= peak[0] <= 4


def test_interrupting_attach_many_cancels_the_uploads_in_flight(
    client: Client, fake: FakeGraph, make_file: MakeFile
) -> None:
    import os
    import signal
    import threading

    item = fake.add_message()
    files = [make_file(9 * MiB, f"f{i}.bin", seed=i) for i in range(3)]
    interrupted: list[bool] = []
    taken = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        taken.set()  # the main thread is handling Ctrl-C now
        raise KeyboardInterrupt

    def interrupt(progress: Progress) -> None:
        if progress.done == 4 * MiB and not interrupted:
            interrupted.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the main thread is waiting for the uploads
            # this upload goes on only once the main thread has taken it (bounded, however loaded the machine)
            taken.wait(30)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with pytest.raises(KeyboardInterrupt):
            client.attach_many(Message(item), files, concurrency=3, progress=interrupt)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert taken.is_set()
    attached = len(fake.attachments("message", item))
    cancelled = len(fake.calls("DELETE", UPLOAD_HOST))
    assert cancelled >= 1
    assert attached + cancelled == len(fake.calls("POST"))  # every session finished or was cancelled
    assert all(s.done for s in fake.sessions.values())


def test_a_file_cut_short_while_a_range_is_read(make_file: MakeFile) -> None:
    from graphattach.client._files import FileSlice, FileSource

    path = make_file(3 * MiB)
    with FileSource(path) as source:
        piece = FileSlice(source, MiB, 2 * MiB)
        with open(path, "r+b") as f:
            f.truncate(MiB + 1000)
        with pytest.raises(FileChanged, match="short"):
            b"".join(piece)
        with pytest.raises(FileChanged, match="changed size"):
            source.check()


def test_a_session_that_never_advances_is_a_protocol_error(
    client: Client, fake: FakeGraph, make_file: MakeFile, retry: RetryPolicy
) -> None:
    fake.script(upload_put, lambda r, p: httpx.Response(200, json={"nextExpectedRanges": ["0"]}), times=100)
    with pytest.raises(ProtocolError, match="keeps asking for byte 0"):
        client.attach(Message(fake.add_message()), make_file(5 * MiB))
    assert len(fake.calls("PUT")) == retry.attempts + 1 and fake.sessions == {}


def test_the_next_range_named_in_an_out_of_order_error_is_followed(make_file: MakeFile) -> None:
    """Without GET on the upload URL, a 416 that names the next expected range still tells where to go."""
    fake = FakeGraph(status_get=False)
    item = fake.add_message()
    path = make_file(9 * MiB)

    def lost_answer_then_overlap(request: httpx.Request, proceed: Callable[[], httpx.Response]) -> httpx.Response:
        proceed()  # stored 4..8 MiB
        raise httpx.ReadError("reset", request=request)

    fake.script(upload_put_at(4 * MiB), lost_answer_then_overlap)
    body = {"error": {"code": "invalidRange", "message": f"Overlap. The next expected range is '{8 * MiB}'."}}
    fake.script(upload_put_at(4 * MiB), lambda r, p: httpx.Response(416, json=body))
    with Client(GRAPH, TOKEN, transport=fake.transport, sleep=lambda s: None) as client:
        attachment = client.attach(Message(item), path)
    assert put_ranges(fake)[-1] == f"bytes {8 * MiB}-{9 * MiB - 1}/{9 * MiB}"
    assert stored(fake, "message", item, attachment) == path.read_bytes()


@pytest.mark.parametrize("size", [1000, 5 * MiB])
def test_a_binary_file_object_can_be_attached(client: Client, fake: FakeGraph, size: int) -> None:
    import io

    data = os.urandom(size)
    item = fake.add_message()
    attachment = client.attach(Message(item), io.BytesIO(data), name="stream.bin")
    assert attachment.name == "stream.bin"
    assert stored(fake, "message", item, attachment) == data
    with pytest.raises(InvalidInput, match="name"):
        client.attach(Message(item), io.BytesIO(data))
