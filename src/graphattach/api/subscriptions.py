"""Graph routes: ``/subscriptions``, ``/subscriptions/{id}``, ``/subscriptions/{id}/reauthorize``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
from starlette.responses import Response

from graphattach.api.call import GraphCall, Routes
from graphattach.api.responses import empty, graph_json
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.odata import context_url
from graphattach.protocol.subscriptions import parse_create, parse_update, subscription_json
from graphattach.services import subscriptions as service


def _subscription_id(call: GraphCall) -> str:
    key = call.path.steps[0].key
    assert key is not None
    return key


def token_expires(call: GraphCall) -> datetime | None:
    """``exp`` of the (already verified) bearer token: reauthorizationRequired goes out before it."""
    header = call.request.headers.get("authorization", "")
    try:
        payload = header.split(" ", 1)[1].split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (IndexError, KeyError, ValueError, TypeError, orjson.JSONDecodeError):
        return None


def _entity(call: GraphCall, body: dict[str, object], status: int = 200) -> Response:
    return graph_json(
        {"@odata.context": context_url(call.service_root, "subscriptions/$entity"), **body}, status=status
    )


async def create(call: GraphCall) -> Response:
    request = parse_create(await call.json(), strict=call.strict)
    sub = await service.create(call.ctx, call.principal, request, token_expires=token_expires(call))
    return _entity(call, subscription_json(sub), status=201)


async def list_subscriptions(call: GraphCall) -> Response:
    found = await service.list_for(call.ctx, call.principal)
    # the list returns clientState as null (https://learn.microsoft.com/graph/api/subscription-list)
    values = [{**subscription_json(s), "clientState": None} for s in found]
    return graph_json({"@odata.context": context_url(call.service_root, "subscriptions"), "value": values})


async def get(call: GraphCall) -> Response:
    sub = await service.get(call.ctx, call.principal, _subscription_id(call))
    return _entity(call, subscription_json(sub))


async def update(call: GraphCall) -> Response:
    request = parse_update(await call.json(), strict=call.strict)
    sub = await service.update(
        call.ctx, call.principal, _subscription_id(call), request, token_expires=token_expires(call)
    )
    return _entity(call, subscription_json(sub))


async def delete(call: GraphCall) -> Response:
    await service.delete(call.ctx, call.principal, _subscription_id(call))
    return empty()


async def reauthorize(call: GraphCall) -> Response:
    await service.reauthorize(call.ctx, call.principal, _subscription_id(call), token_expires=token_expires(call))
    return empty()


ROUTES: Routes = {
    (Endpoint.SUBSCRIPTIONS, "GET"): list_subscriptions,
    (Endpoint.SUBSCRIPTIONS, "POST"): create,
    (Endpoint.SUBSCRIPTION, "GET"): get,
    (Endpoint.SUBSCRIPTION, "PATCH"): update,
    (Endpoint.SUBSCRIPTION, "DELETE"): delete,
    (Endpoint.SUBSCRIPTION_REAUTHORIZE, "POST"): reauthorize,
}
