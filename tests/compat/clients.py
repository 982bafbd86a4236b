"""Real third-party clients pointed at a graphattach server with a static token.

The recipes point msgraph-sdk and O365 at a local base URL with a static token:
nothing here patches the clients; only the base URL and the token source change.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from O365 import Account
from O365.connection import MSGraphProtocol
from O365.utils.token import BaseTokenBackend
from tests.helpers import ADELE
from tests.schema import ConformanceLog


def mint_token(root: str, user: str = ADELE, scopes: list[str] | None = None) -> str:
    """A delegated token from the admin API."""
    body: dict[str, Any] = {"user": user}
    if scopes is not None:
        body["scopes"] = scopes
    response = httpx.post(f"{root}/_graphattach/token", json=body, timeout=30)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


class StaticTokenProvider(AccessTokenProvider):
    """Hands out one token to the allowed hosts (bare host names), nothing to others."""

    def __init__(self, token: str, hosts: list[str]) -> None:
        self._token = token
        self._validator = AllowedHostsValidator(hosts)

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:  # noqa: B006 - the abstract signature
        return self._token if self._validator.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


def graph_client(root: str, token: str, log: ConformanceLog | None = None) -> GraphServiceClient:
    """msgraph-sdk's ``GraphServiceClient`` on ``{root}/v1.0``, the token sent to the Graph host only."""
    host = urlsplit(root).hostname or "127.0.0.1"
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticTokenProvider(token, [host])))
    adapter.base_url = f"{root}/v1.0"
    if log is not None:
        adapter._http_client.event_hooks["response"].append(log.async_hook)
    return GraphServiceClient(request_adapter=adapter)


class StaticTokenBackend(BaseTokenBackend):
    """An O365 token backend that always has one valid access token and never refreshes."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    @property
    def has_data(self) -> bool:
        return True

    def load_token(self) -> bool:
        return True

    def save_token(self, force: bool = False) -> bool:
        return True

    def get_access_token(self, *, username: str | None = None) -> dict[str, str]:
        return {"secret": self._token, "expires_on": str(2**31 - 1)}

    def get_refresh_token(self, *, username: str | None = None) -> None:
        return None

    def token_is_expired(self, *, username: str | None = None) -> bool:
        return False

    def get_account(self, *, username: str | None = None, home_account_id: str | None = None) -> None:
        return None


def o365_account(root: str, token: str, user: str = ADELE, log: ConformanceLog | None = None) -> Account:
    """An O365 ``Account`` whose protocol points at ``{root}/v1.0/`` and whose resource is ``users/{user}``."""

    class LocalGraphProtocol(MSGraphProtocol):
        _protocol_url = f"{root}/"

    resource = f"users/{user}"
    protocol = LocalGraphProtocol(api_version="v1.0", default_resource=resource, timezone="UTC")
    account = Account(
        ("graphattach-compat", "unused"),
        protocol=protocol,
        token_backend=StaticTokenBackend(token),
        main_resource=resource,
        timeout=(30, 600),
        # O365 sleeps this long between requests by default (200 ms); nothing to pace here.
        requests_delay=0,
    )
    if log is not None:
        con = account.con
        con.session = con.get_session(load_token=True)
        con.naive_session = con.get_naive_session()
        for session in (con.session, con.naive_session):
            session.hooks["response"].append(log.requests_hook)
    return account
