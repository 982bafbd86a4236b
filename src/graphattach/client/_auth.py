"""Where Graph tokens come from.

A token provider is any object with ``get_token(refresh: bool = False) -> str``. ``refresh=True``
asks for a new token (after a 401). Strings and plain callables are wrapped for you:

- ``StaticToken("eyJ…")``: one token, as given;
- ``CallableToken(fn)``: ``fn()`` is called for every request that needs a token (cache in ``fn``);
- ``CommandToken("graphattach token --user adele@contoso.onmicrosoft.com")``: a command's output;
- ``GraphattachTokenProvider(base_url, user)``: a graphattach server's admin API mints tokens;
- ``AzureIdentityToken(credential)``, ``device_code_token(client_id)``, ``client_secret_token(…)``,
  ``interactive_token(client_id)``: Microsoft Entra ID through azure-identity, installed with the
  optional extra ``pip install 'graphattach[azure]'``.

Tokens go only to the Graph service root; upload URLs are pre-authenticated and never get one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from graphattach._httpx import httpx
from graphattach.client._errors import AuthError

__all__ = [
    "AzureIdentityToken",
    "CallableToken",
    "CommandToken",
    "GraphattachTokenProvider",
    "StaticToken",
    "TokenProvider",
    "as_token_provider",
    "client_secret_token",
    "device_code_token",
    "interactive_token",
]

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
#: Refresh a cached token this many seconds before it expires.
EXPIRY_MARGIN = 60.0


@runtime_checkable
class TokenProvider(Protocol):
    def get_token(self, refresh: bool = False) -> str: ...


class StaticToken:
    def __init__(self, token: str) -> None:
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise AuthError("the token is empty")
        self._token = token

    def get_token(self, refresh: bool = False) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(…)"


class CallableToken:
    def __init__(self, fn: Callable[[], str]) -> None:
        self._fn = fn

    def get_token(self, refresh: bool = False) -> str:
        try:
            token = self._fn()
        except Exception as exc:  # the caller's code: report it as an auth failure
            raise AuthError(f"the token callable failed: {exc}") from exc
        if not isinstance(token, str) or not token.strip():
            raise AuthError("the token callable returned no token")
        return token.strip()


class _Cached:
    """Caches ``(token, expires_at)`` from ``_fetch`` until shortly before it expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def _fetch(self) -> tuple[str, float | None]:
        raise NotImplementedError

    def get_token(self, refresh: bool = False) -> str:
        with self._lock:
            now = time.time()
            if refresh or self._token is None or now >= self._expires_at - EXPIRY_MARGIN:
                token, expires_at = self._fetch()
                self._token = token
                self._expires_at = expires_at if expires_at is not None else now + 3600
            return self._token


class CommandToken(_Cached):
    """Runs a command and uses its standard output (stripped) as the token, for an hour at most.

    A command whose first word is ``graphattach`` runs this installation's graphattach
    (``python -m graphattach``) when no ``graphattach`` is on ``PATH``: the documented
    ``"graphattach token --user …"`` works from a virtual environment that is not activated.
    ``env`` adds variables to the command's environment (the CLI passes ``GRAPHATTACH_GRAPH_URL``,
    so that ``graphattach token`` asks the server the files go to).
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        lifetime: float = 3000.0,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        import shlex  # here and in _fetch: only a token command needs them

        super().__init__()
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.command:
            raise AuthError("the token command is empty")
        self.lifetime = lifetime
        self.timeout = timeout
        self.env = dict(env or {})

    def _argv(self) -> list[str]:
        import shutil
        import sys

        if self.command[0] == "graphattach" and shutil.which("graphattach") is None and sys.executable:
            return [sys.executable, "-m", "graphattach", *self.command[1:]]
        return self.command

    def _fetch(self) -> tuple[str, float | None]:
        import os
        import shlex
        import subprocess

        env = {**os.environ, **self.env} if self.env else None
        try:
            done = subprocess.run(
                self._argv(), capture_output=True, text=True, timeout=self.timeout, check=False, env=env
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AuthError(f"the token command {shlex.join(self.command)!r} could not run: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise AuthError(
                f"the token command {shlex.join(self.command)!r} failed with exit code {done.returncode}"
                + (f": {detail[-1]}" if detail else "")
            )
        token = done.stdout.strip()
        if not token:
            raise AuthError(f"the token command {shlex.join(self.command)!r} printed nothing")
        return token.split()[-1], time.time() + self.lifetime


class GraphattachTokenProvider(_Cached):
    """Tokens from a graphattach server's admin API (``POST /_graphattach/token``).

    ``base_url`` is the server (``http://127.0.0.1:8765``; a ``/v1.0`` suffix is ignored). Not for
    the real Microsoft Graph.
    """

    def __init__(
        self,
        base_url: str,
        user: str | None = None,
        *,
        scopes: str | Sequence[str] | None = None,
        app: bool = False,
        roles: str | Sequence[str] | None = None,
        lifetime: int = 3600,
        admin_key: str | None = None,
        verify: Any = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__()
        if app == bool(user):
            raise AuthError("give exactly one of user=… and app=True")
        root = base_url.rstrip("/")
        for suffix in ("/v1.0", "/beta"):
            root = root.removesuffix(suffix)
        self.base_url = root
        self.body: dict[str, Any] = {"lifetime": lifetime}
        if app:
            self.body.update(app=True, roles=_names(roles))
        else:
            self.body.update(user=user, scopes=_names(scopes))
        self.headers = {"X-Graphattach-Admin-Key": admin_key} if admin_key else {}
        self.verify = verify
        self.transport = transport

    def _fetch(self) -> tuple[str, float | None]:
        url = f"{self.base_url}/_graphattach/token"
        try:
            with httpx.Client(transport=self.transport, verify=self.verify, timeout=30) as http:
                response = http.post(url, json=self.body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise AuthError(f"cannot reach the graphattach server at {self.base_url} for a token: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict) or "access_token" not in data:
            error = data.get("error") if isinstance(data, dict) else None
            detail = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else response.text[:200]
            raise AuthError(f"the graphattach server refused a token (HTTP {response.status_code}): {detail}")
        expires_in = data.get("expires_in")
        expires_at = time.time() + float(expires_in) if isinstance(expires_in, int | float) else None
        return str(data["access_token"]), expires_at


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(",", " ").split()
    return list(value)


_AZURE_HINT = "Microsoft Entra ID sign-in needs azure-identity: pip install 'graphattach[azure]'"


def _azure_identity() -> Any:
    try:
        import azure.identity
    except ImportError as exc:
        raise AuthError(_AZURE_HINT) from exc
    return azure.identity


class AzureIdentityToken(_Cached):
    """Any azure-identity credential (``get_token(*scopes)``), asked for Graph scopes."""

    def __init__(self, credential: Any, scopes: Sequence[str] = (GRAPH_SCOPE,)) -> None:
        super().__init__()
        self.credential = credential
        self.scopes = list(scopes)

    def _fetch(self) -> tuple[str, float | None]:
        try:
            access = self.credential.get_token(*self.scopes)
        except Exception as exc:  # azure-core raises ClientAuthenticationError and friends
            raise AuthError(f"Microsoft Entra ID sign-in failed: {exc}") from exc
        return access.token, float(access.expires_on)


def device_code_token(
    client_id: str,
    tenant_id: str = "organizations",
    *,
    scopes: Sequence[str] = ("Mail.ReadWrite", "Calendars.ReadWrite"),
    prompt: Callable[[str, str, Any], None] | None = None,
    **kwargs: Any,
) -> AzureIdentityToken:
    """Sign in with a device code (a public client app registration; delegated scopes)."""
    identity = _azure_identity()
    credential = identity.DeviceCodeCredential(
        client_id=client_id, tenant_id=tenant_id, prompt_callback=prompt, **kwargs
    )
    return AzureIdentityToken(credential, [_graph_scope(s) for s in scopes])


def interactive_token(
    client_id: str,
    tenant_id: str = "organizations",
    *,
    scopes: Sequence[str] = ("Mail.ReadWrite", "Calendars.ReadWrite"),
    **kwargs: Any,
) -> AzureIdentityToken:
    """Sign in in a browser (a public client app registration with a localhost redirect URI)."""
    identity = _azure_identity()
    credential = identity.InteractiveBrowserCredential(client_id=client_id, tenant_id=tenant_id, **kwargs)
    return AzureIdentityToken(credential, [_graph_scope(s) for s in scopes])


def client_secret_token(tenant_id: str, client_id: str, client_secret: str, **kwargs: Any) -> AzureIdentityToken:
    """An application token (client credentials; use ``/users/{id}`` targets, not ``/me``)."""
    identity = _azure_identity()
    credential = identity.ClientSecretCredential(tenant_id, client_id, client_secret, **kwargs)
    return AzureIdentityToken(credential, [GRAPH_SCOPE])


def _graph_scope(scope: str) -> str:
    return scope if "://" in scope else f"https://graph.microsoft.com/{scope}"


def as_token_provider(token: str | TokenProvider | Callable[[], str] | None) -> TokenProvider | None:
    """Accept a string, a provider or a callable."""
    if token is None:
        return None
    if isinstance(token, str):
        return StaticToken(token)
    if isinstance(token, TokenProvider):
        return token
    if callable(token):
        return CallableToken(token)
    raise AuthError(f"not a token, a token provider or a callable: {token!r}")
