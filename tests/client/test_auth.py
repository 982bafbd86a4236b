"""Token providers: static, callable, command, the graphattach admin API, azure-identity."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from graphattach.client import (
    AuthError,
    AzureIdentityToken,
    CallableToken,
    CommandToken,
    GraphattachTokenProvider,
    StaticToken,
    device_code_token,
)
from graphattach.client._auth import as_token_provider


def test_static_token_strips_bearer() -> None:
    assert StaticToken("Bearer abc ").get_token() == "abc"
    with pytest.raises(AuthError):
        StaticToken("  ")


def test_callable_token_failure_is_an_auth_error() -> None:
    def broken() -> str:
        raise RuntimeError("vault locked")

    with pytest.raises(AuthError, match="vault locked"):
        CallableToken(broken).get_token()
    assert isinstance(as_token_provider(lambda: "t"), CallableToken)
    assert as_token_provider(None) is None


def test_command_token_runs_once_and_caches() -> None:
    provider = CommandToken([sys.executable, "-c", "print('  tok-123  ')"])
    assert provider.get_token() == "tok-123"
    provider.command = [sys.executable, "-c", "print('other')"]
    assert provider.get_token() == "tok-123"
    assert provider.get_token(refresh=True) == "other"


def test_command_token_failure() -> None:
    with pytest.raises(AuthError, match="exit code 3: no such user"):
        CommandToken(
            [sys.executable, "-c", "import sys; print('no such user', file=sys.stderr); sys.exit(3)"]
        ).get_token()
    with pytest.raises(AuthError, match="could not run"):
        CommandToken("/nonexistent/graphattach-token").get_token()


def test_graphattach_token_provider() -> None:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), json.loads(request.content), request.headers.get("x-graphattach-admin-key")))
        return httpx.Response(200, json={"access_token": f"tok{len(seen)}", "expires_in": 3600})

    provider = GraphattachTokenProvider(
        "http://127.0.0.1:8765/v1.0",
        "adele@contoso.onmicrosoft.com",
        scopes="Mail.ReadWrite",
        admin_key="k",
        transport=httpx.MockTransport(handler),
    )
    assert provider.get_token() == "tok1"
    assert provider.get_token() == "tok1"
    assert provider.get_token(refresh=True) == "tok2"
    url, body, key = seen[0]
    assert url == "http://127.0.0.1:8765/_graphattach/token"
    assert body == {"lifetime": 3600, "user": "adele@contoso.onmicrosoft.com", "scopes": ["Mail.ReadWrite"]}
    assert key == "k"


def test_graphattach_token_provider_errors() -> None:
    refuse = httpx.MockTransport(
        lambda r: httpx.Response(
            404, json={"error": {"code": "ErrorInvalidUser", "message": "The user 'x' does not exist."}}
        )
    )
    with pytest.raises(AuthError, match="ErrorInvalidUser"):
        GraphattachTokenProvider("http://h", "x", transport=refuse).get_token()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AuthError, match="cannot reach"):
        GraphattachTokenProvider("http://h", "x", transport=httpx.MockTransport(down)).get_token()
    with pytest.raises(AuthError):
        GraphattachTokenProvider("http://h")


def test_azure_identity_token_uses_the_credential() -> None:
    calls: list[tuple[str, ...]] = []

    class Credential:
        def get_token(self, *scopes: str) -> Any:
            calls.append(scopes)
            return SimpleNamespace(token="entra-token", expires_on=4_000_000_000)

    provider = AzureIdentityToken(Credential())
    assert provider.get_token() == provider.get_token() == "entra-token"
    assert calls == [("https://graph.microsoft.com/.default",)]


def test_missing_azure_extra_has_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(AuthError, match=r"pip install 'graphattach\[azure\]'"):
        device_code_token("client-id")


def test_entra_id_credentials_are_built_lazily() -> None:
    import azure.identity

    from graphattach.client import client_secret_token, interactive_token

    device = device_code_token("11111111-2222-3333-4444-555555555555", "contoso.onmicrosoft.com")
    assert isinstance(device.credential, azure.identity.DeviceCodeCredential)
    assert device.scopes == [
        "https://graph.microsoft.com/Mail.ReadWrite",
        "https://graph.microsoft.com/Calendars.ReadWrite",
    ]
    browser = interactive_token("11111111-2222-3333-4444-555555555555")
    assert isinstance(browser.credential, azure.identity.InteractiveBrowserCredential)
    app = client_secret_token("contoso.onmicrosoft.com", "11111111-2222-3333-4444-555555555555", "s3cret")
    assert isinstance(app.credential, azure.identity.ClientSecretCredential)
    assert app.scopes == ["https://graph.microsoft.com/.default"]
