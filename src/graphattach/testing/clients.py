"""Third-party Graph clients pointed at a ``GraphServer`` (imported only when asked for).

msgraph-sdk: the request adapter's base URL becomes the server's service root and the token goes
to the server's host only, so upload URLs (on the upload origin, another host name) get no Graph
token, as against outlook.office.com. Nothing in the SDK is patched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphattach.testing.server import GraphServer

MSGRAPH_MISSING = (
    "graph.msgraph_client() needs msgraph-sdk, which is not installed: "
    "pip install msgraph-sdk (or pip install 'graphattach[msgraph]')"
)


def msgraph_client(server: GraphServer, user: str | None, scopes: Any, roles: Any) -> Any:
    try:
        from kiota_abstractions.authentication import (
            AccessTokenProvider,
            AllowedHostsValidator,
            BaseBearerTokenAuthenticationProvider,
        )
        from msgraph import GraphRequestAdapter, GraphServiceClient
    except ImportError as exc:
        raise RuntimeError(MSGRAPH_MISSING) from exc
    from graphattach.testing.server import hostname

    class ServerTokenProvider(AccessTokenProvider):  # type: ignore[misc]  # kiota ships no stubs here
        """A token of the server for its own host, minted again when the server's clock was moved."""

        def __init__(self) -> None:
            self._validator = AllowedHostsValidator([hostname(server.root_url)])

        async def get_authorization_token(
            self,
            uri: str,
            additional_authentication_context: dict[str, Any] = {},  # noqa: B006 - the abstract signature
        ) -> str:
            if not self._validator.is_url_host_valid(uri):
                return ""
            return server._current_token(user, scopes, roles)

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return self._validator

    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(ServerTokenProvider()))
    adapter.base_url = server.url
    if server.ca_bundle:
        import httpx

        adapter._http_client = httpx.AsyncClient(verify=server.ca_bundle, timeout=60)
    return GraphServiceClient(request_adapter=adapter)
