"""Generic JSON shaping: ``$select`` projection and collection envelopes."""

from __future__ import annotations

from typing import Any

from graphattach.protocol.errors import BadRequest

#: Annotations and keys that ``$select`` never removes (the seed's ``$select`` response keeps them).
ALWAYS_KEPT = ("@odata.type", "@odata.mediaContentType", "@odata.etag", "id")


def project(
    entity: dict[str, Any],
    select: list[str] | None,
    *,
    known: set[str] | None = None,
    always: tuple[str, ...] = ALWAYS_KEPT,
) -> dict[str, Any]:
    """Keep the selected properties (case-insensitive) and the annotations Graph always sends.

    With ``known`` given, a selected name that is not a property of the type is a 400, as Graph
    answers "Could not find a property named 'x' on type 'microsoft.graph.message'."
    """
    if select is None or "*" in select:
        return entity
    wanted = {s.lower() for s in select}
    if known is not None:
        lowered = {k.lower() for k in known}
        for name in select:
            if name.lower() not in lowered and not name.startswith("@"):
                raise BadRequest(f"Could not find a property named '{name}' on the type.")
    return {
        k: v
        for k, v in entity.items()
        if k in always or k.startswith("@odata.context") or k.lower() in wanted or k.split("@", 1)[0].lower() in wanted
    }


def collection(
    context: str, values: list[dict[str, Any]], *, count: int | None = None, next_link: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.context": context}
    if count is not None:
        body["@odata.count"] = count
    body["value"] = values
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return body
