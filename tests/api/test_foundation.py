"""Foundation: auth on every call, error shapes, headers, users, routing, admin and OAuth."""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import ADELE, ALEX, Graph, assert_graph_error


async def test_me_returns_the_signed_in_user(graph: Graph) -> None:
    response = await graph.get("/me")
    assert response.status_code == 200
    body = response.json()
    assert body["userPrincipalName"] == ADELE
    assert body["@odata.context"] == f"{graph.v1}/$metadata#users/$entity"
    assert response.headers["odata-version"] == "4.0"
    assert response.headers["content-type"].startswith("application/json;odata.metadata=minimal")


async def test_every_response_carries_request_ids(graph: Graph) -> None:
    response = await graph.get("/me", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    assert len(response.headers["request-id"]) == 36
    assert "x-ms-ags-diagnostic" in response.headers
    assert response.headers["cache-control"] == "private"


async def test_missing_token_is_401(graph: Graph) -> None:
    response = await graph.get("/me", user=None)
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token is empty."
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Bearer a.b.c", "Basic Zm9vOmJhcg=="])
async def test_malformed_token_is_401(graph: Graph, header: str) -> None:
    response = await graph.get("/me", headers={"Authorization": header})
    assert_graph_error(response, 401, "InvalidAuthenticationToken")


async def test_foreign_signed_token_is_401(graph: Graph) -> None:
    good = await graph.token(ADELE)
    head, payload, _ = good.split(".")
    forged = f"{head}.{payload}.{base64.urlsafe_b64encode(b'x' * 256).decode().rstrip('=')}"
    assert_graph_error(await graph.get("/me", token=forged), 401, "InvalidAuthenticationToken")


async def test_tampered_claims_are_401(graph: Graph) -> None:
    good = await graph.token(ADELE)
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scp"] = claims["scp"] + " Directory.ReadWrite.All"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert_graph_error(
        await graph.get("/me", token=f"{head}.{forged_payload}.{sig}"), 401, "InvalidAuthenticationToken"
    )


async def test_expired_token_is_401(graph: Graph) -> None:
    token = await graph.token(ADELE, lifetime=1)
    await graph.admin("POST", "/clock", json={"advanceSeconds": 5})
    try:
        error = assert_graph_error(await graph.get("/me", token=token), 401, "InvalidAuthenticationToken")
        assert "expired" in error["message"]
    finally:
        await graph.admin("DELETE", "/clock")


async def test_me_with_app_token_is_400(graph: Graph) -> None:
    response = await graph.get("/me/messages", app=True)
    error = assert_graph_error(response, 400, "BadRequest")
    assert error["message"] == "/me request is only valid with delegated authentication flow."


async def test_users_list_needs_directory_permission(graph: Graph) -> None:
    assert_graph_error(await graph.get("/users"), 403, "Authorization_RequestDenied")
    response = await graph.get("/users", app=True)
    assert response.status_code == 200
    upns = {u["userPrincipalName"] for u in response.json()["value"]}
    assert {ADELE, ALEX} <= upns


async def test_user_by_upn_and_id(graph: Graph) -> None:
    me = (await graph.get("/me")).json()
    by_upn = await graph.get(f"/users/{ADELE}")
    by_id = await graph.get(f"/users/{me['id']}")
    by_key = await graph.get(f"/users('{ADELE}')")
    assert by_upn.json()["id"] == by_id.json()["id"] == by_key.json()["id"] == me["id"]
    # a delegated token reads only its own entry without directory permission
    assert_graph_error(await graph.get(f"/users/{ALEX}"), 403)


async def test_select_on_user(graph: Graph) -> None:
    body = (await graph.get("/me?$select=displayName,mail")).json()
    assert set(body) == {"@odata.context", "displayName", "mail", "id"}


async def test_unknown_segment_is_400(graph: Graph) -> None:
    error = assert_graph_error(await graph.get("/me/nonsense"), 400, "BadRequest")
    assert "nonsense" in error["message"]


async def test_unknown_query_option_is_400_and_named(graph: Graph) -> None:
    error = assert_graph_error(await graph.get("/me?$frobnicate=1"), 400, "BadRequest")
    assert "$frobnicate" in error["message"]
    error = assert_graph_error(await graph.get("/me?colour=blue"), 400, "BadRequest")
    assert "colour" in error["message"]


async def test_router_404_is_graph_shaped(graph: Graph) -> None:
    response = await graph.http.get(f"{graph.root}/definitely/not/here")
    assert_graph_error(response, 404)


async def test_method_not_allowed_is_graph_shaped(graph: Graph) -> None:
    assert_graph_error(await graph.request("PUT", "/users"), 405)


async def test_unknown_user_in_mailbox_path(graph: Graph) -> None:
    response = await graph.get("/users/nobody@contoso.onmicrosoft.com/messages", app=True)
    assert_graph_error(response, 404, "ErrorInvalidUser")


async def test_admin_adds_users_and_rejects_duplicates(graph: Graph) -> None:
    import uuid

    upn = f"u{uuid.uuid4().hex[:8]}@contoso.onmicrosoft.com"
    created = await graph.admin("POST", "/users", json={"userPrincipalName": upn, "displayName": "Test User"})
    assert created.status_code == 201
    again = await graph.admin("POST", "/users", json={"userPrincipalName": upn.upper()})
    assert_graph_error(again, 400, "Request_BadRequest")
    bad = await graph.admin("POST", "/users", json={"userPrincipalName": "not an upn"})
    assert_graph_error(bad, 400)
    token = await graph.token(upn)
    assert (await graph.get("/me", token=token)).json()["userPrincipalName"] == upn


async def test_oauth_client_credentials_and_discovery(graph: Graph) -> None:
    info = (await graph.admin("GET", "/info")).json()
    tenant = info["tenantId"]
    config = (await graph.http.get(f"{graph.root}/{tenant}/v2.0/.well-known/openid-configuration")).json()
    assert config["token_endpoint"].endswith(f"/{tenant}/oauth2/v2.0/token")
    keys = (await graph.http.get(config["jwks_uri"])).json()["keys"]
    assert keys and keys[0]["kty"] == "RSA"
    response = await graph.http.post(
        config["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "client_id": "my-app",
            "client_secret": "graphattach-secret",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    users = await graph.get("/users", token=token)
    assert users.status_code == 200
    bad = await graph.http.post(
        config["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "client_id": "my-app",
            "client_secret": "wrong",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


async def test_oauth_password_grant(graph: Graph) -> None:
    info = (await graph.admin("GET", "/info")).json()
    response = await graph.http.post(
        info["tokenEndpoint"],
        data={
            "grant_type": "password",
            "client_id": "my-app",
            "username": ADELE,
            "password": "graphattach",
            "scope": "https://graph.microsoft.com/Mail.Read openid profile offline_access",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "Mail.Read"
    assert (await graph.get("/me", token=body["access_token"])).status_code == 200
    wrong = await graph.http.post(
        info["tokenEndpoint"],
        data={
            "grant_type": "password",
            "client_id": "my-app",
            "username": ADELE,
            "password": "nope",
            "scope": "Mail.Read",
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("option", ["$skip", "$top"])
async def test_huge_paging_values_are_400_not_500(graph: Graph, option: str) -> None:
    error = assert_graph_error(await graph.get(f"/me/messages?{option}=169147290359199206211584"), 400, "BadRequest")
    assert option in error["message"]
