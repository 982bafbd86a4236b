"""``seed``: a scripted session gives byte-identical bodies on every run (with the clock frozen)."""

from __future__ import annotations

import base64
import socket

import httpx

from graphattach.testing import ADELE, ALEX, GraphServer

FROZEN = "2026-05-04T10:00:00Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session(graph: GraphServer) -> list[tuple[int, bytes, str]]:
    """Every response of a scripted session: status, body and request-id."""
    out: list[tuple[int, bytes, str]] = []
    with httpx.Client(timeout=60) as http:

        def call(method: str, url: str, **kwargs: object) -> httpx.Response:
            response = http.request(method, url, **kwargs)  # type: ignore[arg-type]
            out.append((response.status_code, response.content, response.headers.get("request-id", "")))
            return response

        token = call("POST", f"{graph.root_url}/_graphattach/token", json={"user": ADELE}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        call("GET", f"{graph.url}/me", headers=auth)
        draft = call(
            "POST",
            f"{graph.url}/me/messages",
            headers=auth,
            json={
                "subject": "same every time",
                "toRecipients": [{"emailAddress": {"address": ALEX}}],
            },
        ).json()
        call(
            "POST",
            f"{graph.url}/me/messages/{draft['id']}/attachments",
            headers=auth,
            json={
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "a.txt",
                "contentBytes": base64.b64encode(b"hello").decode(),
            },
        )
        session = call(
            "POST",
            f"{graph.url}/me/messages/{draft['id']}/attachments/createUploadSession",
            headers=auth,
            json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": 3_000_000}},
        ).json()
        for start in range(0, 3_000_000, 1_500_000):
            end = start + 1_500_000 - 1
            call(
                "PUT",
                session["uploadUrl"],
                content=b"b" * 1_500_000,
                headers={"Content-Range": f"bytes {start}-{end}/3000000"},
            )
        call("GET", f"{graph.url}/me/messages/{draft['id']}?$expand=attachments", headers=auth)
        call("POST", f"{graph.url}/me/messages/{draft['id']}/send", headers=auth)
        app = call("POST", f"{graph.root_url}/_graphattach/token", json={"app": True}).json()["access_token"]
        call("GET", f"{graph.url}/users/{ALEX}/mailFolders/inbox/messages", headers={"Authorization": f"Bearer {app}"})
        call("GET", f"{graph.url}/me/events", headers=auth)
        call(
            "POST",
            graph.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "client_id": "app",
                "client_secret": "graphattach-secret",
                "scope": "https://graph.microsoft.com/.default",
            },
        )
    return out


def test_two_runs_with_the_same_seed_are_byte_identical() -> None:
    port = _free_port()
    runs = []
    for _ in range(2):
        with GraphServer(seed=1234, frozen_clock=FROZEN, port=port) as graph:
            runs.append((graph.tenant_id, [u.id for u in graph.users()], _session(graph)))
    first, second = runs
    assert first[0] == second[0] and first[1] == second[1]
    assert len(first[2]) == len(second[2]) == 13
    for one, two in zip(first[2], second[2], strict=True):
        assert one == two
    assert all(status < 400 for status, _, _ in first[2]), [s for s, _, _ in first[2]]


def test_a_reset_starts_the_sequence_again_and_another_seed_differs() -> None:
    port = _free_port()
    with GraphServer(seed=1234, frozen_clock=FROZEN, port=port) as graph:
        graph.reset()
        once = _session(graph)
        graph.reset()
        graph.clock.now()  # admin calls mint from a stream of their own: Graph ids do not move
        graph.messages(ADELE)
        again = _session(graph)
        admin = {0, 9}  # the two tokens minted through the admin API: its stream moved
        assert [r for i, r in enumerate(again) if i not in admin] == [r for i, r in enumerate(once) if i not in admin]
        graph.reset()
        assert _session(graph) == once
    with GraphServer(seed=99, frozen_clock=FROZEN, port=port) as other:
        different = _session(other)
    assert [b for _, b, _ in different] != [b for _, b, _ in once]


def test_without_a_seed_ids_differ() -> None:
    port = _free_port()
    bodies = []
    for _ in range(2):
        with GraphServer(frozen_clock=FROZEN, port=port) as graph:
            bodies.append(_session(graph)[2][1])  # the draft
    assert bodies[0] != bodies[1]
