"""``graphattach.testing.GraphServer``: in-process on real sockets, and ``connect()`` to a running server."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphattach.testing import ADELE, ALEX, MEGAN, GraphServer, GraphServerError
from tests.helpers import running_server


@pytest.fixture(scope="module")
def server() -> Iterator[GraphServer]:
    with GraphServer() as graph:
        yield graph


@pytest.fixture
def graph(server: GraphServer) -> GraphServer:
    server.reset()
    return server


def _me(graph: GraphServer, token: str) -> httpx.Response:
    return httpx.get(f"{graph.url}/me", headers={"Authorization": f"Bearer {token}"})


def test_it_serves_graph_on_a_free_loopback_port(graph: GraphServer) -> None:
    host, port = graph.root_url.removeprefix("http://").split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert graph.url == f"{graph.root_url}/v1.0"
    assert graph.upload_origin == f"http://localhost:{port}"
    assert graph.token_endpoint == f"{graph.root_url}/{graph.tenant_id}/oauth2/v2.0/token"
    info = graph.info()
    assert info["store"] == "memory:" and info["profile"] == "outlook"
    assert _me(graph, graph.token()).json()["userPrincipalName"] == ADELE


def test_tokens_for_users_and_apps(graph: GraphServer) -> None:
    assert _me(graph, graph.token(MEGAN)).json()["userPrincipalName"] == MEGAN
    narrow = graph.token(ADELE, scopes=["Mail.Read"])
    created = httpx.post(
        f"{graph.url}/me/messages", json={"subject": "x"}, headers={"Authorization": f"Bearer {narrow}"}
    )
    assert created.status_code == 403
    users = httpx.get(f"{graph.url}/users", headers={"Authorization": f"Bearer {graph.app_token()}"})
    assert sorted(u["userPrincipalName"] for u in users.json()["value"]) == [ADELE, ALEX, MEGAN]
    denied = httpx.get(
        f"{graph.url}/users", headers={"Authorization": f"Bearer {graph.app_token(roles=['Mail.Read'])}"}
    )
    assert denied.status_code == 403


def test_added_users_get_a_mailbox_and_go_away_on_reset(graph: GraphServer) -> None:
    zoe = graph.add_user("zoe@contoso.onmicrosoft.com", "Zoe Example", max_message_size=1_000_000)
    assert zoe.display_name == "Zoe Example" and zoe.max_message_size == 1_000_000
    with graph.httpx_client("zoe@contoso.onmicrosoft.com") as client:
        folders = client.get("me/mailFolders").json()["value"]
    assert "Inbox" in {f["displayName"] for f in folders}
    with pytest.raises(GraphServerError) as taken:
        graph.add_user("zoe@contoso.onmicrosoft.com")
    assert taken.value.status == 400
    graph.reset()
    assert [u.upn for u in graph.users()] == [ADELE, ALEX, MEGAN]
    with pytest.raises(GraphServerError) as gone:
        graph.token("zoe@contoso.onmicrosoft.com")
    assert gone.value.code == "ErrorInvalidUser"


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_tokens_signed_in_process_follow_the_users_and_the_clock(graph: GraphServer) -> None:
    """``token()`` signs in the test's thread, from a cache of users that their changes invalidate."""
    zoe = "zoe@contoso.onmicrosoft.com"
    first = graph.add_user(zoe, "Zoe Example")
    assert _claims(graph.token(zoe))["oid"] == first.id
    renamed = httpx.patch(f"{graph.root_url}/_graphattach/users/{zoe}", json={"displayName": "Zoe Renamed"})
    assert renamed.status_code == 200  # not through GraphServer: the store says the users changed
    assert _claims(graph.token(zoe))["name"] == "Zoe Renamed"
    graph.reset()
    again = graph.add_user(zoe, "Zoe Again")
    assert again.id != first.id
    token = graph.token(zoe, scopes="Mail.Read Mail.ReadWrite")
    claims = _claims(token)
    assert (claims["oid"], claims["name"], claims["scp"]) == (again.id, "Zoe Again", "Mail.Read Mail.ReadWrite")
    assert _me(graph, token).json()["id"] == again.id
    graph.clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    assert _claims(graph.token(lifetime=60))["exp"] == int(datetime(2030, 1, 1, tzinfo=UTC).timestamp()) + 60
    assert _claims(graph.app_token(app_id="my-daemon"))["appid"] == "my-daemon"
    # what the admin API would refuse is refused by it
    with pytest.raises(GraphServerError) as bad:
        graph.token(lifetime=0)
    assert bad.value.status == 400
    # only that one was a request: the others were signed here
    assert [r.status for r in graph.requests_matching(operation="admin.token")] == [400]


def test_the_clock_drives_token_expiry_and_timestamps(graph: GraphServer) -> None:
    token = graph.token(lifetime=60)
    assert _me(graph, token).status_code == 200
    before = graph.clock.now()
    after = graph.clock.advance(minutes=2)
    assert 119 <= (after - before).total_seconds() < 130
    assert _me(graph, token).status_code == 401

    graph.clock.set(datetime(2030, 1, 2, 3, 4, 5), frozen=True)
    assert graph.clock.frozen
    assert graph.clock.now() == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with graph.httpx_client() as client:  # a token minted at the new time
        draft = client.post("me/messages", json={"subject": "frozen"}).json()
    assert draft["createdDateTime"] == "2030-01-02T03:04:05Z"
    graph.clock.advance(days=1)
    assert graph.clock.now() == datetime(2030, 1, 3, 3, 4, 5, tzinfo=UTC)

    graph.clock.reset()
    assert not graph.clock.frozen
    assert abs((graph.clock.now() - datetime.now(UTC)).total_seconds()) < 60


def test_mailbox_views_give_attachments_with_their_sha256(graph: GraphServer) -> None:
    payload = bytes(range(256)) * 40
    graph.send_mail(sender=ALEX, to=[ADELE, MEGAN], subject="report", attachments={"data.bin": payload})
    inbox = graph.messages(ADELE, folder="inbox")
    assert [m.subject for m in inbox] == ["report"]
    message = inbox[0]
    assert message.sender == ALEX and message.to == (ADELE, MEGAN) and not message.is_draft
    attachment = message.attachment("data.bin")
    assert attachment.sha256 == hashlib.sha256(payload).hexdigest()
    assert attachment.content_length == len(payload) and attachment.kind == "file"
    assert [m.folder for m in graph.messages(ALEX)] == ["sentitems"]
    assert graph.messages(MEGAN, folder="Inbox")[0].attachment("data.bin").sha256 == attachment.sha256
    assert graph.messages(ADELE, folder="drafts") == []

    with graph.httpx_client(MEGAN) as client:
        event = client.post(
            "me/events",
            json={
                "subject": "Review",
                "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
            },
        ).json()
        client.post(
            f"me/events/{event['id']}/attachments",
            json={
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "agenda.txt",
                "contentBytes": base64.b64encode(b"1. attachments").decode(),
            },
        )
    (seen,) = graph.events(MEGAN)
    assert seen.subject == "Review" and seen.folder == "calendar"
    assert seen.attachment("agenda.txt").sha256 == hashlib.sha256(b"1. attachments").hexdigest()
    with pytest.raises(GraphServerError) as unknown:
        graph.messages("nobody@contoso.onmicrosoft.com")
    assert unknown.value.status == 404


def test_two_servers_are_isolated(graph: GraphServer) -> None:
    with GraphServer(profile="lenient") as other:
        assert other.root_url != graph.root_url and other.profile == "lenient"
        other.send_mail(subject="only here")
        assert graph.messages(ADELE) == []
        assert [m.subject for m in other.messages(ADELE)] == ["only here"]
    with pytest.raises(GraphServerError):
        other.token()


def test_a_data_dir_keeps_the_mailbox_across_restarts(tmp_path: Path) -> None:
    with GraphServer(data_dir=tmp_path / "data") as first:
        first.send_mail(subject="kept", attachments={"a.txt": b"abc"})
        tenant = first.tenant_id
        assert first.info()["store"].startswith("sqlite:///")
    with GraphServer(data_dir=tmp_path / "data") as second:
        assert second.tenant_id == tenant
        assert second.messages(ADELE)[0].attachment("a.txt").sha256 == hashlib.sha256(b"abc").hexdigest()


def test_start_fails_clearly_on_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            GraphServer(port=taken.getsockname()[1]).start()


def test_connect_offers_the_same_api_through_the_admin_api(graph: GraphServer) -> None:
    remote = GraphServer.connect(graph.url)
    assert remote.external and remote.tenant_id == graph.tenant_id and remote.url == graph.url
    remote.send_mail(subject="via connect")
    assert graph.messages(ADELE)[0].subject == "via connect"
    remote.clock.advance(10)
    remote.reset()
    assert graph.messages(ADELE) == []
    remote.stop()  # lets go of the connection, the server keeps running
    assert _me(graph, graph.token()).status_code == 200
    with pytest.raises(GraphServerError):
        GraphServer.connect("http://127.0.0.1:9")


def test_connect_with_an_admin_key() -> None:
    with GraphServer(admin_key="s3cret") as keyed:
        with pytest.raises(GraphServerError) as refused:
            GraphServer.connect(keyed.root_url)
        assert refused.value.status == 403
        remote = GraphServer.connect(keyed.root_url, admin_key="s3cret")
        assert _me(keyed, remote.token()).status_code == 200
        remote.stop()


@pytest.mark.server
def test_connect_to_a_graphattach_serve_process(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", "--in-memory", "--seed", "3") as process:
        graph = GraphServer.connect(process.root)
        with GraphServer(seed=3) as same_seed:  # serve --seed mints what GraphServer(seed=) mints
            assert graph.tenant_id == same_seed.tenant_id
            assert [u.id for u in graph.users()] == [u.id for u in same_seed.users()]
        graph.send_mail(subject="to a process", attachments={"x.txt": b"x"})
        assert graph.messages(ADELE, folder="inbox")[0].attachment("x.txt").sha256 == hashlib.sha256(b"x").hexdigest()
        assert [r.operation for r in graph.requests_matching(operation="messages.")] == ["messages.sendMail"]
        graph.reset()
        assert graph.messages(ADELE) == [] and [u.upn for u in graph.users()] == [ADELE, ALEX, MEGAN]
        graph.stop()


@pytest.mark.skipif(importlib.util.find_spec("msgraph") is not None, reason="msgraph-sdk is installed here")
def test_msgraph_client_without_the_sdk_says_how_to_install_it(graph: GraphServer) -> None:
    with pytest.raises(RuntimeError, match=r"pip install msgraph-sdk"):
        graph.msgraph_client()


def test_httpx_clients_carry_a_token_minted_again_after_the_clock_moves(graph: GraphServer) -> None:
    with graph.httpx_client() as client:
        assert client.get("me").json()["userPrincipalName"] == ADELE
    graph.clock.advance(hours=2)  # the first token has expired on the server's clock
    with graph.httpx_client() as client:
        assert client.get("me").status_code == 200
    with graph.httpx_client(None, roles=["User.Read.All"]) as app:
        assert app.get("users").status_code == 200


def test_tls_and_an_azure_identity_credential() -> None:
    with GraphServer(tls=True) as secure:
        assert secure.root_url.startswith("https://") and secure.ca_bundle is not None
        token = secure.azure_credential().get_token("https://graph.microsoft.com/.default").token
        users = httpx.get(f"{secure.url}/users", headers={"Authorization": f"Bearer {token}"}, verify=secure.ca_bundle)
        assert users.status_code == 200
        with secure.httpx_client() as client:
            assert client.get("me").json()["userPrincipalName"] == ADELE
        wrong = secure.azure_credential(client_secret="not-the-secret")
        with pytest.raises(Exception, match="AADSTS7000215"):
            wrong.get_token("https://graph.microsoft.com/.default")
    with GraphServer() as plain, pytest.raises(GraphServerError, match="tls=True"):
        plain.azure_credential()


def test_reset_clears_fault_rules_and_throttling(graph: GraphServer) -> None:
    rule = {"match": {"operation": "messages.list"}, "action": {"type": "status", "status": 503}}
    for reset in (graph.reset, lambda: httpx.post(f"{graph.root_url}/_graphattach/reset").raise_for_status()):
        assert httpx.post(f"{graph.root_url}/_graphattach/faults", json=rule).status_code in (200, 201)
        with graph.httpx_client() as client:
            assert client.get("me/messages").status_code == 503
        reset()
        assert httpx.get(f"{graph.root_url}/_graphattach/faults").json()["value"] == []
        with graph.httpx_client() as client:
            assert client.get("me/messages").status_code == 200
        # the journal starts again after the reset: only the request that came after
        assert [r.status for r in graph.requests_matching(operation="messages.list")] == [200]


def test_the_journal_says_which_fault_or_limit_answered(graph: GraphServer) -> None:
    rule = {"match": {"operation": "messages.list", "nth": 2}, "action": {"type": "status", "status": 503}}
    created = httpx.post(f"{graph.root_url}/_graphattach/faults", json=rule)
    assert created.status_code in (200, 201)
    rule_id = created.json()["id"]
    with graph.httpx_client() as client:
        assert [client.get("me/messages").status_code for _ in range(3)] == [200, 503, 200]
    listed = graph.requests_matching(operation="messages.list")
    assert [(r.status, r.fault) for r in listed] == [(200, None), (503, f"rule {rule_id}: status 503"), (200, None)]
    throttled = httpx.post(f"{graph.root_url}/_graphattach/throttling", json={"spec": "requests=1/60"})
    assert throttled.status_code == 200, throttled.text
    with graph.httpx_client() as client:
        assert [client.get("me/events").status_code for _ in range(2)] == [200, 429]
    assert [r.fault for r in graph.requests_matching(operation="events.list")] == [None, "throttled: RequestRate"]


def test_fault_rules_and_throttling_through_the_server_api(graph: GraphServer, tmp_path: Path) -> None:
    def statuses(n: int) -> list[int]:
        with graph.httpx_client() as client:
            return [client.get("me/messages").status_code for _ in range(n)]

    listed = {"operation": "messages.list"}
    (first,) = graph.faults.add({"match": {**listed, "nth": 1}, "action": {"type": "status", "status": 503}})
    second = graph.faults.add(match={**listed, "nth": 2}, action={"type": "status", "status": 500})
    # the first rule that fails a request is the only one tried on it: the second counts from the next
    assert statuses(3) == [503, 200, 500]
    assert [(r["id"], r["matched"], r["fired"]) for r in graph.faults.list()] == [
        (first["id"], 3, 1),
        (second[0]["id"], 2, 1),
    ]
    graph.faults.remove(first["id"])
    assert [r["id"] for r in graph.faults.list()] == [second[0]["id"]]
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {match: {operation: events.list}, action: {type: status, status: 429, retryAfter: 2}}\n")
    graph.faults.add(rules)
    with graph.httpx_client() as client:
        refused = client.get("me/events")
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "2")
    graph.faults.clear()
    assert graph.faults.list() == [] and statuses(1) == [200]
    with pytest.raises(GraphServerError, match="'rules\\[0\\].action.status' is required"):
        graph.faults.add({"action": {"type": "status"}})

    state = graph.throttling.set("requests=2/60")
    assert state["enabled"] and state["limits"]["requests"] == "2/60"
    assert statuses(3) == [200, 200, 429]
    limits = graph.throttling.limits
    graph.throttling.off()
    assert graph.throttling.limits is None and statuses(3) == [200, 200, 200]
    assert graph.throttling.set(limits or {})["limits"] == limits  # what .limits gives can be set again
    graph.throttling.set("outlook")
    assert graph.throttling.limits == {"concurrency": 4, "requests": "10000/600", "upload": "157286400B/300"}
    graph.throttling.set("off")
    assert graph.throttling.state()["enabled"] is False and graph.throttling.violations == []


def test_faults_given_at_start_come_back_with_every_reset() -> None:
    rule = {"match": {"operation": "messages.list", "nth": 1}, "action": {"type": "status", "status": 503}}
    with GraphServer(faults=[rule], throttling="concurrency=3") as graph:
        for _ in range(2):
            with graph.httpx_client() as client:
                assert [client.get("me/messages").status_code for _ in range(2)] == [503, 200]
            graph.faults.clear()
            graph.reset()  # the rule again, counting from the start
        assert graph.throttling.limits is not None and graph.throttling.limits["concurrency"] == 3
    with pytest.raises(GraphServerError, match="'rules\\[0\\].match.nth' must be at least 1"):
        GraphServer(faults={"match": {"nth": 0}, "action": {"type": "drop"}})
