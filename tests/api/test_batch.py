"""JSON batching: POST /v1.0/$batch and /beta/$batch (https://learn.microsoft.com/graph/json-batching)."""

from __future__ import annotations

import base64
import dataclasses
import os

from graphattach.settings import Settings
from tests.api.test_messages import unique
from tests.api.test_move_copy import attachment_bytes
from tests.conftest import inprocess
from tests.helpers import ALEX, Graph, assert_graph_error


def by_id(body: dict) -> dict[str, dict]:
    return {r["id"]: r for r in body["responses"]}


async def test_batch_runs_each_request_with_its_own_status(graph: Graph) -> None:
    draft = (await graph.post("/me/messages", json={"subject": unique("batch")})).json()
    response = await graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/me/messages?$select=subject&$top=2"},
                {"id": "2", "method": "GET", "url": f"me/messages/{draft['id']}?$select=subject"},
                {"id": "3", "method": "GET", "url": "/me/messages/AAMkAGI2TAAAAAAAAAA="},
                {
                    "id": "4",
                    "method": "POST",
                    "url": "/me/mailFolders",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"displayName": unique("folder")},
                },
                {"id": "5", "method": "GET", "url": f"/users/{ALEX}/messages"},
                {"id": "6", "method": "GET", "url": "/nothing/here"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    results = by_id(response.json())
    assert [r["id"] for r in response.json()["responses"]] == ["1", "2", "3", "4", "5", "6"]
    assert results["1"]["status"] == 200
    assert results["1"]["headers"]["Content-Type"].startswith("application/json")
    assert results["1"]["headers"]["OData-Version"] == "4.0"
    assert not {"Request-Id", "request-id", "Content-Length"} & set(results["1"]["headers"])
    assert results["2"]["headers"]["ETag"].startswith('W/"')
    assert len(results["1"]["body"]["value"]) <= 2
    assert results["2"]["body"]["subject"] == draft["subject"]
    assert results["3"]["status"] == 404
    assert results["3"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert results["4"]["status"] == 201 and results["4"]["body"]["displayName"]
    # the same auth as a direct call: a delegated token does not reach another mailbox
    assert results["5"]["status"] == 403
    assert results["6"]["status"] == 400


async def test_batch_uses_the_scopes_of_the_outer_token(graph: Graph) -> None:
    response = await graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "a", "method": "GET", "url": "/me/messages?$top=1"},
                {
                    "id": "b",
                    "method": "POST",
                    "url": "/me/messages",
                    "headers": {"Content-Type": "application/json", "Authorization": "Bearer forged"},
                    "body": {"subject": "no"},
                },
            ]
        },
        scopes="Mail.Read",
    )
    results = by_id(response.json())
    assert results["a"]["status"] == 200
    assert results["b"]["status"] == 403
    # the batch itself needs a token
    unauthenticated = await graph.post(
        "/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/me"}]}, user=None
    )
    assert unauthenticated.status_code == 401


async def test_depends_on_runs_in_order_and_a_failure_gives_424(graph: Graph) -> None:
    subject = unique("serial")
    draft = (await graph.post("/me/messages", json={"subject": subject})).json()
    response = await graph.post(
        "/$batch",
        version="beta",
        json={
            "requests": [
                {
                    "id": "1",
                    "method": "PATCH",
                    "url": f"/me/messages/{draft['id']}",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"subject": subject + "-2"},
                },
                {"id": "2", "dependsOn": ["1"], "method": "GET", "url": f"/me/messages/{draft['id']}?$select=subject"},
                {"id": "3", "dependsOn": ["2"], "method": "DELETE", "url": "/me/messages/AAMkAGI2TAAAAAAAAAA="},
                {"id": "4", "dependsOn": ["3"], "method": "GET", "url": "/me"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    results = by_id(response.json())
    assert results["1"]["status"] == 200
    assert results["2"]["body"]["subject"] == subject + "-2"
    assert results["3"]["status"] == 404
    assert results["4"]["status"] == 424
    assert results["4"]["body"]["error"]["code"] == "FailedDependency"


async def test_base64_bodies_and_bodyless_answers(graph: Graph) -> None:
    draft = (await graph.post("/me/messages", json={"subject": unique("b64")})).json()
    content = os.urandom(300)
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "x.bin",
        "contentBytes": base64.b64encode(content).decode(),
    }
    import json

    encoded = base64.b64encode(json.dumps(attachment).encode()).decode()
    response = await graph.post(
        "/$batch",
        json={
            "requests": [
                {
                    "id": "1",
                    "method": "POST",
                    "url": f"/me/messages/{draft['id']}/attachments",
                    "headers": {"Content-Type": "application/json"},
                    "body": encoded,
                },
                {"id": "2", "dependsOn": ["1"], "method": "DELETE", "url": f"/me/messages/{draft['id']}"},
            ]
        },
    )
    results = by_id(response.json())
    assert results["1"]["status"] == 201, results["1"]
    assert results["2"]["status"] == 204
    assert "body" not in results["2"]
    # a non-JSON answer comes back as base64
    other = (await graph.post("/me/messages", json={"subject": unique("b64")})).json()
    created = await graph.post(f"/me/messages/{other['id']}/attachments", json=attachment)
    value_url = f"/me/messages/{other['id']}/attachments/{created.json()['id']}/$value"
    response = await graph.post("/$batch", json={"requests": [{"id": "v", "method": "GET", "url": value_url}]})
    item = response.json()["responses"][0]
    assert item["status"] == 200
    assert base64.b64decode(item["body"]) == content
    assert await attachment_bytes(graph, other["id"]) == [content]


async def test_batch_level_errors(graph: Graph) -> None:
    get = {"method": "GET", "url": "/me"}
    too_many = {"requests": [{"id": str(i), **get} for i in range(21)]}
    error = assert_graph_error(await graph.post("/$batch", json=too_many), 400, "BadRequest")
    assert error["message"] == "Number of requests inside batch exceeds the limit."
    twenty = {"requests": [{"id": str(i), **get} for i in range(20)]}
    assert (await graph.post("/$batch", json=twenty)).status_code == 200
    duplicate = {"requests": [{"id": "a", **get}, {"id": "A", **get}]}
    error = assert_graph_error(await graph.post("/$batch", json=duplicate), 400, "BadRequest")
    assert error["message"] == "Request Id A has to be unique in a batch."
    unknown = {"requests": [{"id": "1", **get}, {"id": "2", "dependsOn": ["9"], **get}]}
    assert "Invalid dependency" in assert_graph_error(await graph.post("/$batch", json=unknown), 400)["message"]
    later = {"requests": [{"id": "1", "dependsOn": ["2"], **get}, {"id": "2", **get}]}
    assert_graph_error(await graph.post("/$batch", json=later), 400, "BadRequest")
    mixed = {"requests": [{"id": "1", **get}, {"id": "2", **get}, {"id": "3", "dependsOn": ["2"], **get}]}
    error = assert_graph_error(await graph.post("/$batch", json=mixed), 400, "BadRequest")
    assert error["message"] == "Batch should be either fully sequential or fully parallel."
    same = {
        "requests": [{"id": "1", **get}, {"id": "2", "dependsOn": ["1"], **get}, {"id": "3", "dependsOn": ["1"], **get}]
    }
    assert (await graph.post("/$batch", json=same)).status_code == 200
    no_type = {"requests": [{"id": "1", "method": "POST", "url": "/me/messages", "body": {}}]}
    error = assert_graph_error(await graph.post("/$batch", json=no_type), 400, "BadRequest")
    assert error["message"] == "Write request with id '1' does not contain a Content-Type header."
    bodyless = {"requests": [{"id": "1", "method": "POST", "url": "/me/messages/AAMkAGI2TAAAAAAAAAA=/send"}]}
    error = assert_graph_error(await graph.post("/$batch", json=bodyless), 400, "BadRequest")
    assert error["message"] == "Write request id : 1 does not contain Content-Type header or body."
    assert_graph_error(await graph.post("/$batch", json={"requests": [{"id": "1", "url": "/me"}]}), 400)
    assert_graph_error(await graph.post("/$batch", json={"requests": [{"id": "1", "method": "GET"}]}), 400)
    assert_graph_error(await graph.post("/$batch", json={"nothing": []}), 400)
    assert_graph_error(await graph.post("/$batch", content=b"[1,2"), 400)
    absolute = {"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"}]}
    assert by_id((await graph.post("/$batch", json=absolute)).json())["1"]["status"] == 200  # as msgraph-core sends
    elsewhere = {"requests": [{"id": "1", "method": "GET", "url": "https://example.com/me"}]}
    assert_graph_error(await graph.post("/$batch", json=elsewhere), 400)
    assert_graph_error(await graph.get("/$batch"), 405)
    big = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": "/me/messages",
                "headers": {"Content-Type": "application/json"},
                "body": {"subject": "x" * (4 * 1024 * 1024)},
            }
        ]
    }
    assert_graph_error(await graph.post("/$batch", json=big), 413)
    nested = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": "/$batch",
                "headers": {"Content-Type": "application/json"},
                "body": {"requests": []},
            }
        ]
    }
    assert by_id((await graph.post("/$batch", json=nested)).json())["1"]["status"] == 400


async def test_lenient_profile_takes_any_acyclic_dependencies(settings: Settings) -> None:
    async with inprocess(dataclasses.replace(settings, profile="lenient")) as graph:
        get = {"method": "GET", "url": "/me"}
        diamond = {
            "requests": [
                {"id": "4", "dependsOn": ["2", "3"], **get},
                {"id": "1", **get},
                {"id": "2", "dependsOn": ["1"], **get},
                {"id": "3", "dependsOn": ["1"], **get},
            ]
        }
        response = await graph.post("/$batch", json=diamond)
        assert [r["status"] for r in response.json()["responses"]] == [200, 200, 200, 200]
        draft = (
            await graph.post(
                "/me/messages", json={"subject": "x", "toRecipients": [{"emailAddress": {"address": ALEX}}]}
            )
        ).json()
        bodyless = {"requests": [{"id": "1", "method": "POST", "url": f"/me/messages/{draft['id']}/send"}]}
        assert (await graph.post("/$batch", json=bodyless)).json()["responses"][0]["status"] == 202
        cycle = {"requests": [{"id": "1", "dependsOn": ["2"], **get}, {"id": "2", "dependsOn": ["1"], **get}]}
        assert "cycle" in assert_graph_error(await graph.post("/$batch", json=cycle), 400)["message"]


async def test_sub_requests_stay_under_the_version(graph: Graph) -> None:
    draft = (await graph.post("/me/messages", json={"subject": unique("kept")})).json()
    escape = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": "/../_graphattach/reset",
                "headers": {"Content-Type": "application/json"},
                "body": {},
            },
            {"id": "2", "method": "GET", "url": "/%2E%2E/_graphattach/info"},
        ]
    }
    statuses = [r["status"] for r in (await graph.post("/$batch", json=escape)).json()["responses"]]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert (await graph.get(f"/me/messages/{draft['id']}")).status_code == 200  # nothing was reset


async def test_fault_rules_apply_to_sub_requests_as_to_direct_calls(graph: Graph) -> None:
    from tests.api.fault_support import add_rule, new_user, restore

    user = await new_user(graph)
    try:
        rule = {"match": {"operation": "messages.list", "user": user}, "action": {"type": "status", "status": 429}}
        await add_rule(graph, rule)
        body = {
            "requests": [
                {"id": "1", "method": "GET", "url": "/me/messages"},
                {"id": "2", "method": "GET", "url": "/me/mailFolders"},
            ]
        }
        response = await graph.post("/$batch", json=body, user=user)
        assert response.status_code == 200  # a throttled item leaves the batch's own status alone
        items = by_id(response.json())
        assert items["1"]["status"] == 429 and items["1"]["headers"]["Retry-After"] == "1"
        assert items["1"]["body"]["error"]["code"] == "TooManyRequests"
        assert items["2"]["status"] == 200
    finally:
        await restore(graph)
