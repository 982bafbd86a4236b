"""O365 (python-o365) against graphattach: message and event attachments, small (inline POST) and
large (O365's own upload session), ``save_draft``, ``Event.save()``, ``download_attachments``.

O365 inlines files up to and including 3 MiB and uses an upload session above (python-o365 2.1.10, seen on the wire).
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from tests.helpers import ADELE, ServerProcess

MiB = 1024 * 1024
O365_INLINE_LIMIT = 3 * MiB  # O365's UPLOAD_SIZE_LIMIT_SIMPLE: inline POST up to and including this


def write(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(random.Random(name).randbytes(size))
    return path


def graph_attachments(server: ServerProcess, token: str, kind: str, item_id: str) -> list[dict[str, Any]]:
    """The item's attachments as Graph lists them (with contentBytes), read with plain requests."""
    response = requests.get(
        f"{server.root}/v1.0/users/{ADELE}/{kind}/{item_id}/attachments",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert isinstance(value, list)
    return value


def new_draft(account: Any) -> Any:
    message = account.mailbox().new_message()
    message.subject = f"O365 draft {uuid.uuid4().hex[:6]}"
    message.to.add("alex@contoso.onmicrosoft.com")
    message.body = "Numbers attached."
    assert message.save_draft() is True
    assert message.object_id
    return message


async def test_o365_message_small_and_large_attachments_with_save_draft(
    make_o365: Callable[..., Any], outlook_server: ServerProcess, tokens: Callable[..., str], tmp_path: Path
) -> None:
    account = make_o365()
    message = new_draft(account)
    small = write(tmp_path, "notes.txt", 2_000)
    large = write(tmp_path, "scan.pdf", 3 * MiB + 500_000)  # > 3 MiB: O365 opens an upload session
    message.attachments.add([small, large])
    assert message.save_draft() is True

    listed = graph_attachments(outlook_server, tokens(outlook_server), "messages", message.object_id)
    by_name = {a["name"]: a for a in listed}
    assert sorted(by_name) == ["notes.txt", "scan.pdf"]
    assert base64.b64decode(by_name["notes.txt"]["contentBytes"]) == small.read_bytes()
    assert by_name["notes.txt"]["contentType"] == "text/plain"  # O365 sends none: inferred from the name
    assert base64.b64decode(by_name["scan.pdf"]["contentBytes"]) == large.read_bytes()
    assert by_name["scan.pdf"]["contentType"] == "application/pdf"

    # Saving again uploads nothing twice.
    message.subject = "renamed"
    assert message.save_draft() is True
    assert len(graph_attachments(outlook_server, tokens(outlook_server), "messages", message.object_id)) == 2


async def test_o365_download_attachments(make_o365: Callable[..., Any], tmp_path: Path) -> None:
    account = make_o365()
    message = new_draft(account)
    small = write(tmp_path, "menu.txt", 20)
    large = write(tmp_path, "flower.jpg", 3 * MiB + 1)
    message.attachments.add([small, large])
    assert message.save_draft() is True

    fetched = account.mailbox().get_message(message.object_id)
    assert fetched.has_attachments is True  # O365 downloads nothing unless the message says so
    assert fetched.attachments.download_attachments() is True
    assert sorted(a.name for a in fetched.attachments) == ["flower.jpg", "menu.txt"]
    out = tmp_path / "downloaded"
    out.mkdir()
    for attachment in fetched.attachments:
        assert attachment.attachment_id
        assert attachment.save(location=out) is True
    assert (out / "menu.txt").read_bytes() == small.read_bytes()
    assert (out / "flower.jpg").read_bytes() == large.read_bytes()


async def test_o365_remove_attachment_deletes_it(
    make_o365: Callable[..., Any], outlook_server: ServerProcess, tokens: Callable[..., str], tmp_path: Path
) -> None:
    account = make_o365()
    message = new_draft(account)
    message.attachments.add([write(tmp_path, "a.txt", 10), write(tmp_path, "b.txt", 10)])
    assert message.save_draft() is True
    fetched = account.mailbox().get_message(message.object_id, download_attachments=True)
    fetched.attachments.remove(["a.txt"])
    assert fetched.save_draft() is True
    listed = graph_attachments(outlook_server, tokens(outlook_server), "messages", message.object_id)
    assert [a["name"] for a in listed] == ["b.txt"]


def create_event(server: ServerProcess, token: str) -> str:
    """An event made with plain HTTP (see ``test_o365_event_save_creates_an_event`` for O365's own create)."""
    response = requests.post(
        f"{server.root}/v1.0/users/{ADELE}/events",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "subject": f"O365 event {uuid.uuid4().hex[:6]}",
            "start": {"dateTime": "2031-09-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2031-09-01T10:00:00", "timeZone": "UTC"},
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    event_id = response.json()["id"]
    assert isinstance(event_id, str)
    return event_id


@pytest.mark.parametrize("profile", ["outlook", "lenient"])
async def test_o365_event_attachments_with_event_save_make_no_duplicates(
    make_o365: Callable[..., Any],
    outlook_server: ServerProcess,
    lenient_server: ServerProcess,
    tokens: Callable[..., str],
    tmp_path: Path,
    profile: str,
) -> None:
    """``Event.save()`` uploads each new attachment, then PATCHes the event with the same files inline."""
    server = outlook_server if profile == "outlook" else lenient_server
    account = make_o365(server)
    event = account.schedule().get_default_calendar().get_event(create_event(server, tokens(server)))
    assert event is not None and event.has_attachments is False
    small = write(tmp_path, "agenda.txt", 1_000)
    minutes = write(tmp_path, "minutes.pdf", 1 * MiB)
    event.attachments.add([small, minutes])
    assert event.save() is True  # POSTs both, then PATCHes {"attachments": [both, inline]}: nothing twice

    listed = graph_attachments(server, tokens(server), "events", event.object_id)
    assert sorted(a["name"] for a in listed) == ["agenda.txt", "minutes.pdf"]
    by_name = {a["name"]: a for a in listed}
    assert base64.b64decode(by_name["agenda.txt"]["contentBytes"]) == small.read_bytes()
    assert base64.b64decode(by_name["minutes.pdf"]["contentBytes"]) == minutes.read_bytes()

    event.subject = "moved"
    assert event.save() is True
    assert len(graph_attachments(server, tokens(server), "events", event.object_id)) == 2
    again = account.schedule().get_default_calendar().get_event(event.object_id)
    assert again.subject == "moved" and again.has_attachments is True


async def test_o365_event_save_with_a_large_attachment_uploads_it_then_hits_the_request_cap(
    make_o365: Callable[..., Any], outlook_server: ServerProcess, tokens: Callable[..., str], tmp_path: Path
) -> None:
    """``Event.save()`` uploads a 4 MiB file through a session, then repeats it inline in its PATCH, whose
    5.6 MB body passes Graph's 4 MB request cap: 413 after the upload succeeded (a known client issue)."""
    account = make_o365()
    event = account.schedule().get_default_calendar().get_event(create_event(outlook_server, tokens(outlook_server)))
    deck = write(tmp_path, "deck.pdf", 4 * MiB)
    event.attachments.add([deck])
    with pytest.raises(requests.HTTPError) as info:
        event.save()
    assert info.value.response is not None
    assert info.value.response.request.method == "PATCH"
    assert info.value.response.status_code == 413
    assert info.value.response.json()["error"]["code"] == "RequestEntityTooLarge"
    listed = graph_attachments(outlook_server, tokens(outlook_server), "events", event.object_id)
    assert [(a["name"], base64.b64decode(a["contentBytes"])) for a in listed] == [("deck.pdf", deck.read_bytes())]


async def test_o365_event_save_creates_an_event(make_o365: Callable[..., Any]) -> None:
    """O365 writes every boolean of a new event through its casing function: ``"isOnlineMeeting": "false"``
    (O365/calendar.py ``to_api_data``). Graph's OData reader converts such strings to Edm.Boolean, so
    ``Event.save()`` works in production, and must here."""
    account = make_o365()
    event = account.schedule().new_event()
    event.subject = f"O365 event {uuid.uuid4().hex[:6]}"
    event.start = dt.datetime(2031, 9, 1, 9, 0, tzinfo=ZoneInfo("UTC"))
    event.end = dt.datetime(2031, 9, 1, 10, 0, tzinfo=ZoneInfo("UTC"))
    assert event.save() is True
    assert event.object_id
    fetched = account.schedule().get_default_calendar().get_event(event.object_id)
    assert fetched.subject == event.subject and fetched.is_online_meeting is False


async def test_o365_inline_threshold_exceeds_the_real_4_mib_request_cap(
    make_o365: Callable[..., Any], outlook_server: ServerProcess, tokens: Callable[..., str], tmp_path: Path
) -> None:
    """O365 POSTs a file of exactly 3 MiB inline; its base64 JSON passes Graph's 4 MiB cap: 413, as in production."""
    account = make_o365()
    message = new_draft(account)
    message.attachments.add([write(tmp_path, "edge.bin", O365_INLINE_LIMIT)])
    with pytest.raises(requests.HTTPError) as info:
        message.save_draft()
    assert info.value.response is not None
    assert info.value.response.status_code == 413
    assert info.value.response.json()["error"]["code"] == "RequestEntityTooLarge"
    assert graph_attachments(outlook_server, tokens(outlook_server), "messages", message.object_id) == []


async def test_o365_inline_post_of_the_largest_file_that_fits(
    make_o365: Callable[..., Any], outlook_server: ServerProcess, tokens: Callable[..., str], tmp_path: Path
) -> None:
    """3,145,611 raw bytes: O365's JSON body (no contentType, no size) stays within 4 MiB."""
    account = make_o365()
    message = new_draft(account)
    edge = write(tmp_path, "fits.bin", 3_145_611)
    message.attachments.add([edge])
    assert message.save_draft() is True
    listed = graph_attachments(outlook_server, tokens(outlook_server), "messages", message.object_id)
    assert [base64.b64decode(a["contentBytes"]) for a in listed] == [edge.read_bytes()]
