"""A small Entra ID look-alike so standard libraries can fetch tokens from the server.

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (and ``/adfs/...`` for msal's ROPC path),
- ``GET /{tenant}/discovery/v2.0/keys`` (JWKS),
- ``POST /{tenant}/oauth2/v2.0/token`` with ``client_credentials`` or ``password``,
- ``GET /common/userrealm/{upn}`` (msal asks it before a password grant).

azure-identity and msal insist on https for the authority: run ``graphattach serve --tls``
(azure-identity's and msal's authority validation; tests/api/test_tls_oauth.py). Errors use the OAuth shape (``error``,
``error_description``), not Graph's.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from graphattach.api.call import read_body
from graphattach.auth.permissions import DEFAULT_APP_ROLES, DEFAULT_DELEGATED_SCOPES
from graphattach.auth.secrets import same_secret
from graphattach.auth.team import check_user_password
from graphattach.services.context import Context
from graphattach.services.users import find_user

#: The client secret every app of the local tenant shares (``GRAPHATTACH_CLIENT_SECRET`` overrides).
DEFAULT_CLIENT_SECRET = "graphattach-secret"
_GRAPH_SCOPE_PREFIXES = ("https://graph.microsoft.com/", "https://graph.microsoft.com//")


def _oauth_error(status: int, error: str, description: str) -> Response:
    code = description.split(":", 1)[0]
    return JSONResponse(
        {
            "error": error,
            "error_description": description,
            "error_codes": [int(code[5:]) if code[5:].isdigit() else 0],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
        status_code=status,
    )


def _authority(request: Request, ctx: Context) -> str:
    return ctx.settings.root_url


async def openid_configuration(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    tenant = request.path_params.get("tenant", "adfs")
    base = f"{_authority(request, ctx)}/{tenant}"
    issuer = f"{ctx.settings.root_url}/{ctx.tenant_id}/v2.0"
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "grant_types_supported": ["client_credentials", "password"],
            "tenant_region_scope": "NA",
        }
    )


async def jwks(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    return JSONResponse(ctx.tokens.jwks())


async def user_realm(request: Request) -> Response:
    upn = request.path_params["upn"]
    return JSONResponse(
        {
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": upn.partition("@")[2],
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        }
    )


def _requested_scopes(raw: str, default: tuple[str, ...]) -> list[str]:
    scopes: list[str] = []
    for scope in raw.split():
        lowered = scope.lower()
        if lowered in ("openid", "profile", "offline_access", "email"):
            continue
        for prefix in _GRAPH_SCOPE_PREFIXES:
            if lowered.startswith(prefix):
                scope = scope[len(prefix) :]
                break
        if scope.lower() == ".default" or scope.endswith("/.default"):
            return list(default)
        scopes.append(scope)
    return scopes or list(default)


async def token(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    form = dict(parse_qsl((await read_body(request, 64 * 1024)).decode("utf-8", "replace"), keep_blank_values=True))
    grant = str(form.get("grant_type", ""))
    client_id = str(form.get("client_id", ""))
    secret = str(form.get("client_secret", ""))
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except Exception:
            return _oauth_error(401, "invalid_client", "AADSTS7000216: Malformed client credentials.")
    if not client_id:
        return _oauth_error(
            400,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        )
    now = ctx.clock.now().timestamp()
    registration = ctx.team.apps.get(client_id)
    if ctx.team.registered_apps_only and registration is None:
        # Entra's answer to a client id the tenant does not know.
        return _oauth_error(
            400,
            "unauthorized_client",
            f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory.",
        )
    if grant == "client_credentials":
        if registration is not None:
            valid = registration.check_secret(secret)
        else:
            valid = same_secret(secret, ctx.settings.client_secret or DEFAULT_CLIENT_SECRET)
        if not valid:
            return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        scope = str(form.get("scope", ""))
        if not scope.rstrip("/").endswith(".default"):
            return _oauth_error(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid. "
                "Client credential flows must have a scope value with /.default.",
            )
        roles = list(registration.roles) if registration is not None else list(DEFAULT_APP_ROLES)
        access = ctx.tokens.mint_app(roles=roles, app_id=client_id, now=now)
        return JSONResponse(
            {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": access}
        )
    if grant == "password":
        user = await find_user(ctx, str(form.get("username", "")))
        password = str(form.get("password", ""))
        if user is None or not check_user_password(user.data, password):
            return _oauth_error(
                400,
                "invalid_grant",
                "AADSTS50126: Error validating credentials due to invalid username or password.",
            )
        scopes = _requested_scopes(str(form.get("scope", "")), tuple(DEFAULT_DELEGATED_SCOPES))
        access = ctx.tokens.mint_delegated(
            user_id=user.id,
            upn=user.user_principal_name,
            name=user.display_name,
            scopes=scopes,
            app_id=client_id,
            now=now,
        )
        issuer = f"{ctx.settings.root_url}/{ctx.tenant_id}/v2.0"
        id_token = ctx.tokens.mint_id_token(
            audience=client_id,
            user_id=user.id,
            upn=user.user_principal_name,
            name=user.display_name,
            issuer=issuer,
        )
        client_info = base64.urlsafe_b64encode(json.dumps({"uid": user.id, "utid": ctx.tenant_id}).encode()).decode()
        return JSONResponse(
            {
                "token_type": "Bearer",
                "scope": " ".join(scopes),
                "expires_in": 3600,
                "ext_expires_in": 3600,
                "access_token": access,
                "refresh_token": f"graphattach.{uuid.uuid4().hex}",
                "id_token": id_token,
                "client_info": client_info.rstrip("="),
            }
        )
    return _oauth_error(
        400, "unsupported_grant_type", f"AADSTS70003: The app requested an unsupported grant type '{grant}'."
    )


ROUTES = [
    Route("/common/userrealm/{upn}", user_realm, methods=["GET"]),
    Route("/adfs/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/{tenant}/discovery/v2.0/keys", jwks, methods=["GET"]),
    Route("/{tenant}/discovery/keys", jwks, methods=["GET"]),
    Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
]
