"""``GET /openapi.json``: served, equal to docs/openapi.json, covering exactly the Graph route table,
and naming only properties Microsoft's metadata declares, with matching types."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from graphattach.api.graph import ROUTES
from graphattach.api.openapi import SCHEMAS, document, render
from graphattach.protocol.paths import parse_graph_path
from tests.helpers import Graph
from tests.schema import model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
METHODS = ("get", "post", "patch", "put", "delete")


async def test_openapi_is_served_without_a_token(graph: Graph) -> None:
    response = await graph.http.get(f"{graph.root}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(DOCS.read_text())
    assert response.json()["openapi"] == "3.1.0"


def test_openapi_docs_copy_is_current() -> None:
    """If this fails: python -m graphattach.api.openapi > docs/openapi.json"""
    assert DOCS.read_text() == render()


def graph_operations() -> list[tuple[str, str]]:  # also used by tests/compat/test_openapi_coverage.py
    """Every documented Graph operation as ``(endpoint, METHOD)`` of the server's dispatch table."""
    out = []
    for path, item in document()["paths"].items():
        if not path.startswith("/v1.0/"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "AAMkAGI1AAAt9AHjAAA=", path.removeprefix("/v1.0"))
        endpoint = parse_graph_path("v1.0", concrete).endpoint
        out.extend((endpoint, method.upper()) for method in METHODS if method in item)
    return out


def test_openapi_documents_every_route_the_server_has() -> None:
    undocumented = sorted(set(ROUTES) - set(graph_operations()))
    assert undocumented == []


def test_openapi_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for item in document()["paths"].values() for k, op in item.items() if k in METHODS]
    assert len(ids) == len(set(ids))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        return _resolve(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    return schema


def _json_types(schema: dict[str, Any]) -> set[str]:
    schema = _resolve(schema)
    kind = schema.get("type", "object")
    return {kind} if isinstance(kind, str) else set(kind) - {"null"}


EDM_JSON = {
    "Edm.String": "string",
    "Edm.Boolean": "boolean",
    "Edm.Int32": "integer",
    "Edm.Int64": "integer",
    "Edm.DateTimeOffset": "string",
    "Edm.Binary": "string",
    "Edm.Guid": "string",
}

GRAPH_TYPES = [
    "emailAddress",
    "recipient",
    "itemBody",
    "dateTimeTimeZone",
    "fileAttachment",
    "itemAttachment",
    "referenceAttachment",
    "attachmentItem",
    "uploadSession",
    "user",
    "message",
    "event",
    "mailFolder",
    "calendar",
    "calendarGroup",
    "subscription",
]


@pytest.mark.parametrize("name", GRAPH_TYPES)
def test_openapi_schema_properties_match_the_metadata(name: str) -> None:
    m = model()
    type_name = f"microsoft.graph.{name}"
    declared = {**m.properties(type_name), **m.navigation(type_name)}
    schema = SCHEMAS[name]
    for prop, prop_schema in schema["properties"].items():
        if "@" in prop:
            continue
        assert prop in declared, f"{name}.{prop} is not in the metadata"
        edm = declared[prop]["type"]
        element = edm[11:-1] if edm.startswith("Collection(") else None
        if element is not None:
            assert _json_types(prop_schema) == {"array"}, f"{name}.{prop}"
            edm = element
            prop_schema = _resolve(prop_schema)["items"]
        expected = EDM_JSON.get(edm, "string" if edm in m.enums else "object")
        assert _json_types(prop_schema) == {expected}, f"{name}.{prop}: {edm}"
        nullable = "null" in str(prop_schema.get("type", "")) or any(
            s.get("type") == "null" for s in prop_schema.get("anyOf", [])
        )
        if nullable:
            assert declared[prop].get("nullable", True), f"{name}.{prop} is Nullable=false in the metadata"
