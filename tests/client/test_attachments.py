"""Reading, downloading and removing attachments; item and reference attachments; drafts and events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from graphattach.client import Client, Event, Message, NotFound, TransportError
from tests.client.conftest import MiB
from tests.client.fakegraph import GRAPH, TOKEN, FakeGraph, cut_after, status

MakeFile = Callable[..., Path]


def test_list_get_delete(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    a = client.attach(Message(item), make_file(10, "a.txt"))
    b = client.attach(Message(item), make_file(20, "b.txt", seed=1))
    listed = client.list_attachments(Message(item))
    assert {x.id for x in listed} == {a.id, b.id}
    list_call = fake.calls("GET")[-1]
    assert "$select=id,name,contentType,size,isInline,lastModifiedDateTime" in str(list_call.url)
    assert all("contentBytes" not in x.raw for x in listed)
    got = client.get_attachment(Message(item), a.id, select=["name", "size"])
    assert got.id == a.id and got.name == "a.txt" and got.content_type is None
    client.delete_attachment(Message(item), a.id)
    assert [x.id for x in client.list_attachments(Message(item))] == [b.id]
    with pytest.raises(NotFound):
        client.get_attachment(Message(item), a.id)


def test_download_streams_to_a_file(client: Client, fake: FakeGraph, make_file: MakeFile, tmp_path: Path) -> None:
    item = fake.add_event()
    source = make_file(6 * MiB, "slides.pdf")
    attachment = client.attach(Event(item), source)
    out = tmp_path / "out"
    out.mkdir()
    count = client.download(Event(item), attachment, out)
    assert count == 6 * MiB
    assert (out / "slides.pdf").read_bytes() == source.read_bytes()
    assert fake.calls("GET")[-1].url.path.endswith(f"/attachments/{attachment.id}/$value")
    count = client.download(Event(item), attachment.id, out / "named.bin")
    assert (out / "named.bin").read_bytes() == source.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["named.bin", "slides.pdf"]


def test_download_retries_a_cut_and_leaves_nothing_on_failure(
    client: Client, fake: FakeGraph, make_file: MakeFile, tmp_path: Path
) -> None:
    item = fake.add_message()
    source = make_file(1000)
    attachment = client.attach(Message(item), source)
    fake.script(lambda r: r.url.path.endswith("$value"), cut_after())
    client.download(Message(item), attachment, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    fake.script(lambda r: r.url.path.endswith("$value"), cut_after(), times=100)
    with pytest.raises(TransportError):
        client.download(Message(item), attachment, tmp_path / "never.bin")
    assert not (tmp_path / "never.bin").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_download_of_an_unknown_attachment(client: Client, fake: FakeGraph, tmp_path: Path) -> None:
    item = fake.add_message()
    with pytest.raises(NotFound):
        client.download(Message(item), "AAMkNOPE=", tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []


def test_item_attachment(client: Client, fake: FakeGraph) -> None:
    item = fake.add_event()
    attachment = client.add_item_attachment(
        Event(item),
        {"subject": "Holiday event", "start": {"dateTime": "2026-12-24T10:00:00", "timeZone": "UTC"}},
        kind="event",
    )
    assert attachment.kind == "item" and attachment.name == "Holiday event"
    body = fake.calls("POST")[-1].read()
    assert b'"@odata.type":"#microsoft.graph.itemAttachment"' in body
    assert b'"@odata.type":"microsoft.graph.event"' in body


def test_reference_attachment_goes_to_beta(client: Client, fake: FakeGraph) -> None:
    item = fake.add_message()
    attachment = client.add_reference_attachment(
        Message(item),
        "Plan",
        "https://contoso.sharepoint.com/plan.docx",
        provider_type="oneDriveBusiness",
        permission="edit",
    )
    post = fake.calls("POST")[-1]
    assert post.url.path.startswith("/beta/me/messages/")
    assert attachment.kind == "reference" and attachment.raw["sourceUrl"] == "https://contoso.sharepoint.com/plan.docx"


def test_create_draft_and_event_then_attach(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    draft = client.create_draft(subject="Report", body="See attached", to=["megan@contoso.onmicrosoft.com"])
    event = client.create_event(
        subject="Review", start="2026-12-01T10:00:00", end="2026-12-01T11:00:00", calendar="default"
    )
    assert fake.calls("POST")[-1].url.path == "/v1.0/me/calendar/events"
    assert client.attach(draft, make_file(5 * MiB)).id in fake.attachments("message", draft.id)
    assert client.attach(event, make_file(10)).id in fake.attachments("event", event.id)
    client.send_draft(draft)
    assert fake.calls("POST")[-1].url.path.endswith("/send")


def test_other_users_and_folders(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_message()
    target = Message(item, user="alex@contoso.onmicrosoft.com", folder=("inbox", "AAMkF/1="))
    client.attach(target, make_file(10))
    path = fake.calls("POST")[-1].url.raw_path.decode()
    assert path == (
        f"/v1.0/users/alex%40contoso.onmicrosoft.com/mailFolders/inbox/childFolders/AAMkF%2F1%3D/messages/"
        f"{item.replace('=', '%3D')}/attachments"
    )


def test_path_string_targets(client: Client, fake: FakeGraph, make_file: MakeFile) -> None:
    item = fake.add_event()
    attachment = client.attach(f"/me/calendars/AAMkCAL=/events/{item}", make_file(10))
    assert fake.calls("POST")[-1].url.path == f"/v1.0/me/calendars/AAMkCAL=/events/{item}/attachments"
    listed = client.list_attachments(f"https://graph.microsoft.com/v1.0/me/events/{item}/attachments")
    assert [a.id for a in listed] == [attachment.id]


def test_list_follows_next_links(fake: FakeGraph) -> None:
    pages = {
        "1": {"value": [{"id": "a", "name": "a"}], "@odata.nextLink": f"{GRAPH}/me/messages/m/attachments?page=2"},
        "2": {"value": [{"id": "b", "name": "b"}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages["2" if "page=2" in str(request.url) else "1"])

    with Client(GRAPH, TOKEN, transport=httpx.MockTransport(handler)) as client:
        assert [a.id for a in client.list_attachments(Message("m"))] == ["a", "b"]


def test_gateway_errors_without_graph_body(client: Client, fake: FakeGraph, sleeps: list[float]) -> None:
    item = fake.add_message()
    fake.script(lambda r: r.method == "GET", status(502, body=b"<html>Bad gateway</html>"), times=100)
    with pytest.raises(Exception) as info:
        client.list_attachments(Message(item))
    error = info.value
    assert getattr(error, "code", None) == "BadGateway" and getattr(error, "status", None) == 502
    assert len(sleeps) == 4
