"""Every served (endpoint, method) has an operation name, and no name is defined without a handler."""

from graphattach.api.graph import ROUTES
from graphattach.protocol.operations import (
    GRAPH_OPERATIONS,
    UNKNOWN_OPERATION,
    all_operations,
    graph_operation,
    upload_operation,
)


def test_every_graph_route_has_an_operation_name() -> None:
    missing = [key for key in ROUTES if key not in GRAPH_OPERATIONS]
    assert missing == []


def test_every_operation_name_has_a_handler() -> None:
    orphans = [key for key in GRAPH_OPERATIONS if key not in ROUTES]
    assert orphans == []


def test_operation_names_are_unique() -> None:
    names = list(GRAPH_OPERATIONS.values())
    assert len(names) == len(set(names))


def test_lookups() -> None:
    assert graph_operation("attachments", "post") == "attachments.create"
    assert graph_operation("attachments", "PUT") == UNKNOWN_OPERATION
    assert upload_operation("put") == "uploadSession.put"
    assert "uploadSession.put" in all_operations()
