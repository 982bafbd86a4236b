"""Seed data files (``--seed-data``, ``GraphServer(seed_data=...)``): JSON and YAML, errors that
name the file, the place and the problem, and a reset that returns to the seeded state."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from graphattach.protocol.seed_data import SeedDataError
from graphattach.services.seed_data import read_plan
from graphattach.testing import ADELE, ALEX, GraphServer

YAML = """
version: 1
users:
  - userPrincipalName: zoe@contoso.onmicrosoft.com
    displayName: Zoe Example
    folders: [Receipts]
    messages:
      - folder: inbox
        subject: Welcome
        from: {emailAddress: {address: alex@contoso.onmicrosoft.com}}
        attachments:
          - {name: hello.txt, text: "Hello!", contentType: text/plain}
          - {name: data.bin, path: files/data.bin}
      - folder: Receipts
        subject: Taxi
        attachments: [{name: r.pdf, contentBytes: JVBERi0xLjc=}]
      - subject: unfinished
    events:
      - subject: Review
        start: {dateTime: "2026-12-01T10:00:00", timeZone: UTC}
        end: {dateTime: "2026-12-01T11:00:00", timeZone: UTC}
        attachments: [{name: agenda.txt, text: "1. seed data"}]
  - userPrincipalName: adele@contoso.onmicrosoft.com
    messages:
      - {folder: inbox, subject: For Adele}
"""


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "data.bin").write_bytes(bytes(range(256)) * 100)
    path = tmp_path / "seed.yaml"
    path.write_text(YAML)
    return path


def _check_seeded(graph: GraphServer, data: bytes) -> None:
    zoe = "zoe@contoso.onmicrosoft.com"
    assert sorted(u.upn for u in graph.users()) == sorted([ADELE, ALEX, "megan@contoso.onmicrosoft.com", zoe])
    (welcome,) = graph.messages(zoe, folder="inbox")
    assert welcome.subject == "Welcome" and welcome.sender == ALEX and not welcome.is_draft
    assert welcome.attachment("hello.txt").sha256 == hashlib.sha256(b"Hello!").hexdigest()
    assert welcome.attachment("hello.txt").content_type == "text/plain"
    assert welcome.attachment("data.bin").sha256 == hashlib.sha256(data).hexdigest()
    assert graph.messages(zoe, folder="Receipts")[0].attachment("r.pdf").content_length == 8
    (draft,) = graph.messages(zoe, folder="drafts")
    assert draft.subject == "unfinished" and draft.is_draft
    (event,) = graph.events(zoe)
    assert event.attachment("agenda.txt").sha256 == hashlib.sha256(b"1. seed data").hexdigest()
    assert [m.subject for m in graph.messages(ADELE, folder="inbox")] == ["For Adele"]


def test_seed_data_is_there_on_start_and_after_every_reset(seed_file: Path) -> None:
    data = (seed_file.parent / "files" / "data.bin").read_bytes()
    with GraphServer(seed_data=seed_file) as graph:
        _check_seeded(graph, data)
        ids = [m.id for m in graph.messages("zoe@contoso.onmicrosoft.com")]
        with graph.httpx_client("zoe@contoso.onmicrosoft.com") as client:
            client.delete(f"me/messages/{ids[0]}")
        graph.add_user("extra@contoso.onmicrosoft.com")
        graph.reset()
        _check_seeded(graph, data)
        assert [m.id for m in graph.messages("zoe@contoso.onmicrosoft.com")] == ids  # the same ids again
        # a Graph client sees the seeded mail as received mail
        with graph.httpx_client("zoe@contoso.onmicrosoft.com") as client:
            inbox = client.get("me/mailFolders/inbox/messages").json()["value"]
        assert inbox[0]["isDraft"] is False and inbox[0]["receivedDateTime"]


def test_a_reset_reads_an_attachment_file_edited_since_the_last_seeding(seed_file: Path) -> None:
    data_file = seed_file.parent / "files" / "data.bin"
    with GraphServer(seed_data=seed_file) as graph:
        graph.reset()
        _check_seeded(graph, data_file.read_bytes())
        data_file.write_bytes(b"edited " * 1000)
        graph.reset()
        _check_seeded(graph, b"edited " * 1000)
        graph.reset()  # from the copy of the new seeding
        _check_seeded(graph, b"edited " * 1000)


def test_json_and_no_demo(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"demo": False, "users": [{"userPrincipalName": "solo@example.com"}]}))
    with GraphServer(seed_data=path) as graph:
        assert [u.upn for u in graph.users()] == ["solo@example.com"]
        graph.reset()
        assert [u.upn for u in graph.users()] == ["solo@example.com"]


@pytest.mark.parametrize(
    ("text", "name", "place", "problem"),
    [
        ("users: [{displayName: x}]", "s.yaml", "users[0].userPrincipalName", "non-empty string"),
        ("users:\n  - userPrincipalName: a@b.com\n    mesages: []", "s.yaml", "users[0]", "unknown key(s) mesages"),
        ("version: 2", "s.yaml", "version", "newer than this graphattach reads"),
        (
            "users: [{userPrincipalName: a@b.com, messages: [{folder: Nope}]}]",
            "s.yaml",
            "users[0].messages[0].folder",
            "no folder 'Nope'",
        ),
        (
            "users: [{userPrincipalName: a@b.com, messages: [{subject: 1, attachments: [{name: a}]}]}]",
            "s.yaml",
            "users[0].messages[0].attachments[0]",
            "exactly one of contentBytes",
        ),
        (
            "users: [{userPrincipalName: a@b.com, messages: [{attachments: [{name: a, path: missing.bin}]}]}]",
            "s.yaml",
            "users[0].messages[0].attachments[0].path",
            "no such file",
        ),
        (
            "users: [{userPrincipalName: a@b.com, messages: [{attachments: [{name: a, contentBytes: '***'}]}]}]",
            "s.yaml",
            "users[0].messages[0].attachments[0].contentBytes",
            "not valid base64",
        ),
        (
            "users: [{userPrincipalName: a@b.com, events: [{subject: x}]}]",
            "s.yaml",
            "users[0].events[0]",
            "'start' is required",
        ),
        (
            "users: [{userPrincipalName: a@b.com, messages: [{subjekt: x}]}]",
            "s.yaml",
            "users[0].messages[0]",
            "subjekt",
        ),
        ("users: [\n  {", "s.yaml", "line", "not valid YAML"),
        ('{"users": [}', "s.json", "line 1 column 12", "not valid JSON"),
    ],
)
def test_errors_name_the_file_the_place_and_the_problem(
    tmp_path: Path, text: str, name: str, place: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SeedDataError) as error:
        read_plan(path)
    message = str(error.value)
    assert message.startswith(str(path)), message
    assert place in message and problem in message, message


def test_a_bad_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("users: 3")
    with pytest.raises(SeedDataError, match=r"bad.yaml: users: expected a list"):
        GraphServer(seed_data=path).start()
    done = subprocess.run(
        [sys.executable, "-m", "graphattach", "serve", "--in-memory", "--port", "0", "--seed-data", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "bad.yaml: users: expected a list" in done.stderr


def test_a_seed_file_that_went_away_refuses_the_reset_and_keeps_everything(seed_file: Path) -> None:
    with GraphServer(seed_data=seed_file) as graph:
        graph.send_mail(subject="still here")
        (seed_file.parent / "files" / "data.bin").unlink()
        refused = httpx.post(f"{graph.root_url}/_graphattach/reset")
        assert refused.status_code == 400 and "data.bin" in refused.json()["error"]["message"]
        assert "still here" in [m.subject for m in graph.messages(ADELE)]
