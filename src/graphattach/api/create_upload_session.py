"""Graph route: ``POST .../attachments/createUploadSession`` (also ``microsoft.graph.createUploadSession``)
on the attachments of every message and event path form."""

from __future__ import annotations

from starlette.responses import Response

from graphattach.api.call import GraphCall, Routes
from graphattach.api.responses import graph_json
from graphattach.protocol.endpoints import Endpoint
from graphattach.protocol.upload_sessions import create_response
from graphattach.services import uploads


async def create_upload_session(call: GraphCall) -> Response:
    created = await uploads.create_session(call.ctx, call.principal, call.path, await call.json())
    return graph_json(create_response(call.service_root, created.upload_url, created.session.expires), status=201)


ROUTES: Routes = {
    (Endpoint.CREATE_UPLOAD_SESSION, "POST"): create_upload_session,
}
