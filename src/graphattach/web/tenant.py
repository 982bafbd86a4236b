"""The tenant page (users, adding a user, minting tokens), the controls and the login."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from graphattach.auth.permissions import DEFAULT_APP_ROLES, DEFAULT_DELEGATED_SCOPES
from graphattach.auth.tokens import CLI_APP_ID
from graphattach.domain.errors import GraphError
from graphattach.services import browse
from graphattach.services import tenant as tenant_service
from graphattach.services import users as user_service
from graphattach.services.context import Context
from graphattach.web import security
from graphattach.web.faults import fault_state
from graphattach.web.pages import ALL_ROLES, ALL_SCOPES, PageError, ctx_of, form_of, render, view

# ---- tenant ------------------------------------------------------------------------------------------


@view("tenant")
async def tenant(request: Request) -> Response:
    return await _tenant_page(request)


async def _tenant_page(request: Request, *, status: int = 200, **extra: Any) -> Response:
    ctx = ctx_of(request)
    summaries = await browse.user_summaries(ctx)
    return render(
        request,
        "tenant.html",
        status=status,
        summaries=summaries,
        tenant_id=ctx.tenant_id,
        graph_url=ctx.settings.service_root("v1.0"),
        upload_origin=ctx.settings.upload_root,
        token_endpoint=f"{ctx.settings.root_url}/{ctx.tenant_id}/oauth2/v2.0/token",
        profile=ctx.settings.profile,
        scopes=ALL_SCOPES,
        default_scopes=set(DEFAULT_DELEGATED_SCOPES),
        roles=ALL_ROLES,
        default_roles=set(DEFAULT_APP_ROLES),
        **{"token": None, "token_for": None, "token_error": None, "user_error": None, "added": None, **extra},
    )


@view("users.add")
async def add_user(request: Request) -> Response:
    form = await form_of(request)
    upn = str(form.get("upn") or "").strip()
    name = str(form.get("name") or "").strip() or None
    try:
        user = await user_service.create_user(ctx_of(request), upn, name)
    except GraphError as exc:
        return await _tenant_page(request, status=400, user_error=str(exc))
    return await _tenant_page(request, status=201, added=user)


def _chosen(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@view("token.mint")
async def mint_token(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await form_of(request)
    now = ctx.clock.now().timestamp()
    try:
        lifetime = int(str(form.get("lifetime") or "3600"))
        if lifetime <= 0:
            raise ValueError
    except ValueError:
        return await _tenant_page(request, status=400, token_error="The lifetime must be a positive number of seconds.")
    if form.get("kind") == "app":
        roles = _chosen(form.get("roles"))
        token = ctx.tokens.mint_app(
            roles=roles, app_id="00000000-0000-0000-0000-0000000a99a7", lifetime=lifetime, now=now
        )
        return await _tenant_page(request, token=token, token_for=f"the app, roles: {' '.join(roles) or '(none)'}")
    key = str(form.get("user") or "")
    user = await user_service.find_user(ctx, key)
    if user is None:
        return await _tenant_page(request, status=400, token_error=f"There is no user '{key}'.")
    scopes = _chosen(form.get("scopes"))
    token = ctx.tokens.mint_delegated(
        user_id=user.id,
        upn=user.user_principal_name,
        name=user.display_name,
        scopes=scopes,
        lifetime=lifetime,
        app_id=CLI_APP_ID,
        now=now,
    )
    return await _tenant_page(
        request, token=token, token_for=f"{user.user_principal_name}, scopes: {' '.join(scopes) or '(none)'}"
    )


# ---- controls ------------------------------------------------------------------------------------------


@view("controls")
async def controls(request: Request) -> Response:
    ctx = ctx_of(request)
    return render(
        request,
        "controls.html",
        offset=ctx.clock.offset.total_seconds(),
        faults=fault_state(request),
        done=request.query_params.get("done", ""),
        section="controls",
    )


@view("controls.reset")
async def controls_reset(request: Request) -> Response:
    form = await form_of(request)
    if form.get("confirm") != "reset":
        raise PageError(400, "Type 'reset' in the box to confirm.")
    await reset_everything(ctx_of(request))
    return RedirectResponse("/controls?done=reset", status_code=303)


async def reset_everything(ctx: Context) -> None:
    """What ``POST /_graphattach/reset`` does (services/tenant.reset): the seeded state back,
    fault rules and the journal cleared through the context's reset hooks."""
    await tenant_service.reset(ctx)


@view("controls.clock")
async def controls_clock(request: Request) -> Response:
    form = await form_of(request)
    ctx = ctx_of(request)
    if form.get("action") == "reset":
        ctx.clock.reset()
    else:
        try:
            seconds = float(str(form.get("seconds") or "0"))
            if seconds < 0 or seconds != seconds or seconds > 10 * 365 * 86400:
                raise ValueError
        except ValueError:
            raise PageError(400, "Advance by a non-negative number of seconds.") from None
        ctx.clock.advance(seconds)
    return RedirectResponse("/controls?done=clock", status_code=303)


# ---- login --------------------------------------------------------------------------------------------


@view("login", guarded=False)
async def login(request: Request) -> Response:
    ctx = ctx_of(request)
    target = security.safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if not ctx.settings.admin_key:
            return RedirectResponse(target, status_code=303)
        return render(request, "login.html", target=target, error=None)
    form = await form_of(request)
    target = security.safe_next(str(form.get("next") or "/"))
    key = ctx.settings.admin_key
    if not key:
        return RedirectResponse(target, status_code=303)
    if not security.same(str(form.get("key") or ""), key):
        return render(request, "login.html", status=401, target=target, error="That is not the admin key.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        security.ADMIN_COOKIE,
        security.admin_cookie_value(key),
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )
    return response


@view("logout", guarded=False)
async def logout(request: Request) -> Response:
    await form_of(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.ADMIN_COOKIE, path="/")
    return response
