"""The OpenAPI document describes the whole surface; once every feature is in, nothing it names is missing."""

from __future__ import annotations

from tests.api.test_openapi import graph_operations

from graphattach.api import upload_origin
from graphattach.api.graph import ROUTES


def test_openapi_documents_only_routes_the_server_has() -> None:
    assert sorted({op for op in graph_operations() if op not in ROUTES}) == []
    assert upload_origin.ROUTES
