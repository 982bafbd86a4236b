"""The ASGI application: Graph, the upload endpoint, OAuth, the admin API, the web UI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graphattach.api import admin, faults, oauth, openapi, testkit, upload_origin
from graphattach.api.graph import graph_beta, graph_v1
from graphattach.api.middleware import GraphMiddleware
from graphattach.api.request_scope import RequestScopeMiddleware
from graphattach.composition import close_context, open_context
from graphattach.protocol.errors import HttpError, MethodNotSupported, NotFound
from graphattach.services import notifications, sweeper
from graphattach.services.context import Context
from graphattach.settings import Settings
from graphattach.web import routes as web_routes
from graphattach.web.live import Watch

GRAPH_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


async def _http_exception(request: Request, exc: Exception) -> Response:
    """The router's 404 and 405 as Graph errors: raised, so the middleware renders them."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        raise MethodNotSupported(method=request.method)
    if exc.status_code == 404:
        raise NotFound(path=request.url.path)
    raise HttpError.with_status(exc.status_code)(detail=str(exc.detail))


def build_app(ctx: Context | None = None, settings: Settings | None = None) -> Starlette:
    """The app over an open ``ctx``, or one that opens and closes its stores with its lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = ctx is None
        context = ctx or await open_context(settings or Settings())
        app.state.ctx = context
        if engine.reset not in context.reset_hooks:  # fault rules go with everything else on a reset
            context.reset_hooks.append(engine.reset)
        background = sweeper.start_background(context)
        # delivers what the outbox holds from before a restart, without waiting for a new change
        dispatcher = notifications.dispatcher_of(context)
        dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()
            await sweeper.stop_background(background)
            if owned:
                await close_context(context)

    routes: list[Any] = [
        # first: the router tries routes in order, and upload ranges are the most frequent request
        *upload_origin.ROUTES,
        Route("/v1.0/{path:path}", graph_v1, methods=GRAPH_METHODS),
        Route("/beta/{path:path}", graph_beta, methods=GRAPH_METHODS),
        *admin.ROUTES,
        *testkit.ROUTES,
        *faults.ROUTES,
        *oauth.ROUTES,
        *openapi.ROUTES,
        *web_routes.ROUTES,
    ]

    def body_timeout() -> float:
        current: Context | None = getattr(app.state, "ctx", None)
        return current.settings.body_idle_timeout if current is not None else 0.0

    def context() -> Context:
        current: Context = app.state.ctx
        return current

    def now() -> datetime:
        return context().clock.now()

    configured = settings or (ctx.settings if ctx is not None else Settings())
    engine = faults.FaultEngine.from_settings(configured.faults_file, configured.throttling)
    app: Starlette = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestScopeMiddleware, context=context),
            Middleware(GraphMiddleware, now=now, body_timeout=body_timeout),
            Middleware(faults.FaultLayer, engine=engine, context=context),
        ],
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
    )
    app.state.faults = engine
    if ctx is not None:
        app.state.ctx = ctx
        ctx.reset_hooks.append(engine.reset)
    app.state.web_watch = Watch()
    return app
