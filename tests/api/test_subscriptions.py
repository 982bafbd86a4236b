"""Subscriptions: POST/GET/PATCH/DELETE /subscriptions, the validation handshake, where graphattach
may call, permissions and Graph's errors (https://learn.microsoft.com/graph/api/resources/subscription)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from graphattach.settings import Settings
from graphattach.testing.receiver import Receiver
from tests.api.notification_support import about, server_now, subscribe, wait_for
from tests.conftest import inprocess
from tests.helpers import ADELE, ALEX, Graph, assert_graph_error


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def body_for(url: str, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "changeType": "created",
        "notificationUrl": url,
        "resource": "me/mailFolders('inbox')/messages",
        "expirationDateTime": "",
        "clientState": "secretClientValue",
    }
    body.update(changes)
    return body


async def in_minutes(graph: Graph, minutes: float) -> str:
    return ((await server_now(graph)) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_create_get_list_renew_delete(graph: Graph, receiver: Receiver) -> None:
    expires = await in_minutes(graph, 120)
    response = await graph.post("/subscriptions", json=body_for(receiver.url, expirationDateTime=expires))
    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["@odata.context"] == f"{graph.v1}/$metadata#subscriptions/$entity"
    assert sub["resource"] == "me/mailFolders('inbox')/messages"
    assert sub["changeType"] == "created"
    assert sub["clientState"] == "secretClientValue"
    assert sub["notificationUrl"] == receiver.url
    assert sub["latestSupportedTlsVersion"] == "v1_2"
    assert sub["lifecycleNotificationUrl"] is None
    assert sub["expirationDateTime"].endswith("Z") and len(sub["expirationDateTime"].split(".")[1]) == 8
    assert sub["expirationDateTime"][:19] == expires[:19]
    me = (await graph.get("/me")).json()
    assert sub["creatorId"] == me["id"]
    # the handshake: one POST with the token, answered before the 201
    assert len(receiver.validations) == 1
    token = receiver.validations[0].validation_token
    assert token is not None and " " in token  # sent URL-encoded, echoed decoded

    got = (await graph.get(f"/subscriptions/{sub['id']}")).json()
    assert {k: v for k, v in got.items() if k != "@odata.context"} == {
        k: v for k, v in sub.items() if k != "@odata.context"
    }
    listed = (await graph.get("/subscriptions")).json()
    assert listed["@odata.context"] == f"{graph.v1}/$metadata#subscriptions"
    mine = [s for s in listed["value"] if s["id"] == sub["id"]]
    assert len(mine) == 1 and mine[0]["clientState"] is None  # the list hides clientState

    later = await in_minutes(graph, 600)
    renewed = await graph.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": later})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["expirationDateTime"][:19] == later[:19]
    assert len(receiver.validations) == 1  # renewal alone does not validate again

    assert (await graph.delete(f"/subscriptions/{sub['id']}")).status_code == 204
    assert_graph_error(await graph.get(f"/subscriptions/{sub['id']}"), 404, "ResourceNotFound")
    assert_graph_error(await graph.delete(f"/subscriptions/{sub['id']}"), 404, "ResourceNotFound")


async def test_beta_and_resources(graph: Graph, receiver: Receiver) -> None:
    created = []
    for resource, version in [
        ("me/messages", "beta"),
        ("me/events", "v1.0"),
        ("/me/mailfolders('Inbox')/messages", "v1.0"),
        ("me/mailFolders/sentitems/messages", "v1.0"),
        ("me/calendar/events", "v1.0"),
        (f"users/{ADELE}/messages", "v1.0"),
    ]:
        response = await graph.post(
            "/subscriptions",
            json=body_for(receiver.url, resource=resource, expirationDateTime=await in_minutes(graph, 30)),
            version=version,
        )
        assert response.status_code == 201, (resource, response.text)
        created.append(response.json()["id"])
    for sub_id in created:
        assert (await graph.delete(f"/subscriptions/{sub_id}")).status_code == 204


async def test_patch_to_a_new_url_validates_it(graph: Graph, receiver: Receiver) -> None:
    sub = await subscribe(graph, receiver)
    with Receiver() as other:
        moved = await graph.patch(f"/subscriptions/{sub['id']}", json={"notificationUrl": other.url})
        assert moved.status_code == 200, moved.text
        assert moved.json()["notificationUrl"] == other.url
        assert len(other.validations) == 1
        other.behaviour.validate = False
        with Receiver() as third:
            third.behaviour.validate = False
            refused = await graph.patch(f"/subscriptions/{sub['id']}", json={"notificationUrl": third.url})
            assert_graph_error(refused, 400, "ValidationError")
    got = (await graph.get(f"/subscriptions/{sub['id']}")).json()
    assert got["notificationUrl"] == other.url  # a failed move changes nothing
    assert_graph_error(await graph.patch(f"/subscriptions/{sub['id']}", json={}), 400, "InvalidRequest")
    await graph.delete(f"/subscriptions/{sub['id']}")


async def test_validation_failures(graph: Graph, receiver: Receiver) -> None:
    expires = await in_minutes(graph, 30)
    receiver.behaviour.validate = False
    error = assert_graph_error(
        await graph.post("/subscriptions", json=body_for(receiver.url, expirationDateTime=expires)),
        400,
        "ValidationError",
    )
    assert "validationToken" in error["message"]
    # nothing listens there
    with Receiver() as gone:
        url = gone.url
    error = assert_graph_error(
        await graph.post("/subscriptions", json=body_for(url, expirationDateTime=expires)), 400, "ValidationError"
    )
    assert "200 OK" in error["message"]
    # the lifecycle URL is validated too
    receiver.behaviour.validate = True
    body = body_for(receiver.url, expirationDateTime=expires, lifecycleNotificationUrl=url)
    assert_graph_error(await graph.post("/subscriptions", json=body), 400, "ValidationError")
    listed = (await graph.get("/subscriptions")).json()["value"]
    assert all(s["notificationUrl"] not in (url,) for s in listed)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://example.com/hook", "is not allowed"),
        ("http://10.0.0.1:8080/hook", "is not allowed"),
        ("ftp://127.0.0.1/hook", "scheme"),
        ("not a url", "scheme"),
    ],
)
async def test_only_allowed_hosts_are_called(graph: Graph, url: str, fragment: str) -> None:
    body = body_for(url, expirationDateTime=await in_minutes(graph, 30))
    error = assert_graph_error(await graph.post("/subscriptions", json=body), 400, "InvalidRequest")
    assert fragment in error["message"]


async def test_the_server_never_calls_itself(graph: Graph) -> None:
    own = f"{graph.root}/v1.0/me/messages"
    body = body_for(own, expirationDateTime=await in_minutes(graph, 30))
    error = assert_graph_error(await graph.post("/subscriptions", json=body), 400, "InvalidRequest")
    assert "this server" in error["message"]
    # nor another graphattach's admin API on this machine
    body = body_for("http://127.0.0.1:1/_graphattach/reset", expirationDateTime=await in_minutes(graph, 30))
    error = assert_graph_error(await graph.post("/subscriptions", json=body), 400, "InvalidRequest")
    assert "admin API" in error["message"]


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"changeType": None}, 400, "InvalidRequest"),
        ({"changeType": "created,moved"}, 400, "InvalidRequest"),
        ({"resource": None}, 400, "InvalidRequest"),
        ({"resource": "me/contacts"}, 400, "InvalidRequest"),
        ({"resource": "me/messages?$filter=isRead eq false"}, 400, "InvalidRequest"),
        ({"resource": "users/nobody@contoso.onmicrosoft.com/messages"}, 400, "InvalidRequest"),
        ({"expirationDateTime": None}, 400, "InvalidRequest"),
        ({"expirationDateTime": "tomorrow"}, 400, "BadRequest"),
        ({"clientState": "x" * 129}, 400, "InvalidRequest"),
        ({"latestSupportedTlsVersion": "v2_0"}, 400, "InvalidRequest"),
        ({"includeResourceData": True}, 400, "InvalidRequest"),
        ({"unknownProperty": 1}, 400, "BadRequest"),
    ],
)
async def test_bad_requests(graph: Graph, receiver: Receiver, changes: dict, status: int, code: str) -> None:
    body = body_for(receiver.url, expirationDateTime=await in_minutes(graph, 30))
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    assert_graph_error(await graph.post("/subscriptions", json=body), status, code)
    assert receiver.validations == []  # refused before calling anyone


async def test_expiration_limits(graph: Graph, receiver: Receiver) -> None:
    too_far = await in_minutes(graph, 10_071)
    error = assert_graph_error(
        await graph.post("/subscriptions", json=body_for(receiver.url, expirationDateTime=too_far)),
        400,
        "ExtensionError",
    )
    assert error["message"] == "Subscription expiration can only be 10070 minutes in the future."
    past = await in_minutes(graph, -1)
    assert_graph_error(
        await graph.post("/subscriptions", json=body_for(receiver.url, expirationDateTime=past)), 400, "ExtensionError"
    )
    sub = await subscribe(graph, receiver, minutes=10_069)
    assert_graph_error(
        await graph.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": too_far}), 400, "ExtensionError"
    )
    await graph.delete(f"/subscriptions/{sub['id']}")


async def test_permissions(graph: Graph, receiver: Receiver) -> None:
    expires = await in_minutes(graph, 30)
    # a delegated token without mail permissions
    body = body_for(receiver.url, expirationDateTime=expires)
    assert_graph_error(await graph.post("/subscriptions", json=body, scopes="User.Read"), 403, "ExtensionError")
    # events need calendar permissions, messages mail ones
    events = body_for(receiver.url, expirationDateTime=expires, resource="me/events")
    assert_graph_error(await graph.post("/subscriptions", json=events, scopes="Mail.Read"), 403, "ExtensionError")
    ok = await graph.post("/subscriptions", json=body, scopes="Mail.ReadBasic")
    assert ok.status_code == 201, ok.text
    # delegated: only the signed-in user's mailbox
    other = body_for(receiver.url, expirationDateTime=expires, resource=f"users/{ALEX}/messages")
    assert_graph_error(await graph.post("/subscriptions", json=other), 403, "ExtensionError")
    # an app token: any mailbox, never /me
    app_sub = await graph.post("/subscriptions", json=other, app=True, user=None)
    assert app_sub.status_code == 201, app_sub.text
    assert_graph_error(await graph.post("/subscriptions", json=body, app=True, user=None), 400)
    # each caller sees its own: the app's subscription is not Adele's, Adele's not Alex's
    adele = {s["id"] for s in (await graph.get("/subscriptions")).json()["value"]}
    assert ok.json()["id"] in adele and app_sub.json()["id"] not in adele
    assert_graph_error(await graph.get(f"/subscriptions/{ok.json()['id']}", user=ALEX), 404, "ResourceNotFound")
    assert_graph_error(await graph.delete(f"/subscriptions/{ok.json()['id']}", user=ALEX), 404, "ResourceNotFound")
    apps = {s["id"] for s in (await graph.get("/subscriptions", app=True, user=None)).json()["value"]}
    assert app_sub.json()["id"] in apps
    assert (await graph.delete(f"/subscriptions/{app_sub.json()['id']}", app=True, user=None)).status_code == 204
    assert (await graph.delete(f"/subscriptions/{ok.json()['id']}", scopes="Mail.ReadBasic")).status_code == 204


async def test_reauthorize(graph: Graph, receiver: Receiver) -> None:
    sub = await subscribe(graph, receiver)
    response = await graph.post(f"/subscriptions/{sub['id']}/reauthorize")
    assert response.status_code == 204, response.text
    assert_graph_error(await graph.post("/subscriptions/00000000-0000-0000-0000-000000000000/reauthorize"), 404)
    await graph.delete(f"/subscriptions/{sub['id']}")


async def test_admin_lists_every_subscription(graph: Graph, receiver: Receiver) -> None:
    sub = await subscribe(graph, receiver, user=ALEX)
    listed = (await graph.admin("GET", "/subscriptions")).json()["value"]
    mine = [s for s in listed if s["id"] == sub["id"]]
    assert mine and mine[0]["clientState"] == "secret-state" and mine[0]["state"] == "active"
    await graph.delete(f"/subscriptions/{sub['id']}", user=ALEX)


async def test_self_signed_https_receivers_need_the_flag(tmp_path: Path, settings: Settings) -> None:
    from graphattach.cli.server import _tls_files

    cert, key = _tls_files(tmp_path, "127.0.0.1")
    with Receiver(tls=(str(cert), str(key))) as receiver:
        assert receiver.url.startswith("https://")
        async with inprocess(settings) as graph:
            body = body_for(receiver.url, expirationDateTime=await in_minutes(graph, 30))
            assert_graph_error(await graph.post("/subscriptions", json=body), 400, "ValidationError")
        async with inprocess(dataclasses.replace(settings, notification_insecure_tls=True)) as graph:
            body = body_for(receiver.url, expirationDateTime=await in_minutes(graph, 30))
            response = await graph.post("/subscriptions", json=body)
            assert response.status_code == 201, response.text
            draft = (await graph.post("/me/mailFolders/inbox/messages", json={"subject": "tls"})).json()
            await wait_for(receiver, about(draft["id"]))


async def test_notification_hosts_allow_more(settings: Settings) -> None:
    allowed = dataclasses.replace(settings, notification_hosts=("*.example.com", "hooks.test"))
    async with inprocess(allowed) as graph:
        expires = await in_minutes(graph, 30)
        for url in ("https://a.example.com/hook", "https://hooks.test/x"):
            # allowed, so graphattach tries: the name does not resolve here, so the handshake fails
            error = assert_graph_error(
                await graph.post("/subscriptions", json=body_for(url, expirationDateTime=expires)),
                400,
                "ValidationError",
            )
            assert "200 OK" in error["message"]
        error = assert_graph_error(
            await graph.post("/subscriptions", json=body_for("https://example.com/x", expirationDateTime=expires)),
            400,
            "InvalidRequest",
        )
        assert "--notification-hosts" in error["message"]
