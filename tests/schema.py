"""Check JSON bodies against Microsoft's published Graph v1.0 metadata.

The types come from ``tests/data/graph-v1.0-types.json``, a trimmed copy of the CSDL in
microsoftgraph/msgraph-metadata (``scripts/regen-graph-schemas`` writes it; its ``source`` says
which commit). A body conforms when every property is declared on its type (or a base type),
spelled with the declared casing, and has the declared EDM type and nullability. OData control
annotations (``@odata.context``, ``@odata.type``, ``@odata.etag``, ``@odata.mediaContentType``,
``item@odata.context``...) are allowed; ``@odata.type`` selects the derived type to check
against and must name one.

Use in tests::

    from tests.schema import assert_conforms
    assert_conforms(response.json())                      # type inferred from @odata.context
    assert_conforms(body, "microsoft.graph.fileAttachment")
    assert_conforms(body, "Collection(microsoft.graph.attachment)")   # {"value": [...]}
    assert_conforms(response)                              # an httpx.Response: errors as ODataError

``ConformanceLog`` checks every response of an httpx client through an event hook.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

DATA = Path(__file__).resolve().parent / "data" / "graph-v1.0-types.json"
ERROR_TYPE = "microsoft.graph.ODataErrors.ODataError"

#: Annotations allowed on any object (OData JSON format 4.01, section 4.5: control information).
INSTANCE_ANNOTATIONS = frozenset(
    {
        "context",
        "type",
        "id",
        "etag",
        "editLink",
        "readLink",
        "mediaContentType",
        "mediaEditLink",
        "mediaReadLink",
        "mediaEtag",
    }
)
#: Annotations allowed in front of a collection or navigation property name (``item@odata.context``).
PROPERTY_ANNOTATIONS = frozenset({"context", "type", "count", "nextLink", "navigationLink", "associationLink"})
#: Top-level keys of a collection response besides ``value``.
COLLECTION_ANNOTATIONS = frozenset({"context", "count", "nextLink", "deltaLink"})

_INT_RANGES = {
    "Edm.Byte": (0, 255),
    "Edm.SByte": (-128, 127),
    "Edm.Int16": (-(2**15), 2**15 - 1),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}
_PATTERNS = {
    "Edm.DateTimeOffset": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$"),
    "Edm.Date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "Edm.TimeOfDay": re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?$"),
    "Edm.Duration": re.compile(r"^-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"),
    "Edm.Guid": re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*(/[A-Za-z_][\w.]*)*$")


@dataclass(frozen=True)
class Model:
    types: dict[str, dict[str, Any]]
    enums: dict[str, dict[str, Any]]
    container: dict[str, str]
    source: dict[str, Any]

    def chain(self, name: str) -> list[dict[str, Any]]:
        """The type and its base types, most derived first."""
        out = []
        current: str | None = name
        while current:
            entry = self.types[current]
            out.append(entry)
            current = entry.get("base")
        return out

    def properties(self, name: str) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = {}
        for entry in reversed(self.chain(name)):
            props.update(entry.get("properties", {}))
            # Dynamic properties the real service sends on an open type (listed, with sources, in the data).
            props.update(entry.get("dynamicProperties", {}))
        return props

    def navigation(self, name: str) -> dict[str, dict[str, Any]]:
        nav: dict[str, dict[str, Any]] = {}
        for entry in reversed(self.chain(name)):
            nav.update(entry.get("navigation", {}))
        return nav

    def is_a(self, name: str, ancestor: str) -> bool:
        current: str | None = name
        while current:
            if current == ancestor:
                return True
            current = self.types.get(current, {}).get("base")
        return False


@cache
def model() -> Model:
    data = json.loads(DATA.read_text())
    return Model(data["types"], data["enums"], data.get("container", {}), data["source"])


def _element(type_name: str) -> str | None:
    return type_name[11:-1] if type_name.startswith("Collection(") and type_name.endswith(")") else None


def _hint(key: str, known: list[str]) -> str:
    same = [k for k in known if k.lower() == key.lower()]
    return f" (wrong casing: the metadata spells it {same[0]!r})" if same else ""


class _Checker:
    def __init__(self, m: Model) -> None:
        self.m = m
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def value(self, value: Any, type_name: str, nullable: bool, path: str) -> None:
        if value is None:
            if not nullable:
                self.fail(path, f"null, but {type_name} is declared Nullable=false")
            return
        element = _element(type_name)
        if element is not None:
            if not isinstance(value, list):
                self.fail(path, f"expected a JSON array for {type_name}, got {type(value).__name__}")
                return
            for i, item in enumerate(value):
                self.value(item, element, False, f"{path}[{i}]")
            return
        if type_name.startswith("Edm."):
            self.primitive(value, type_name, path)
        elif type_name in self.m.enums:
            self.enum(value, type_name, path)
        elif type_name in self.m.types:
            self.object(value, type_name, path)
        elif not isinstance(value, dict):
            # A navigation target outside the trimmed metadata: only its JSON shape is known.
            self.fail(path, f"expected a JSON object for {type_name}")

    def primitive(self, value: Any, type_name: str, path: str) -> None:
        if type_name == "Edm.String":
            ok = isinstance(value, str)
        elif type_name == "Edm.Boolean":
            ok = isinstance(value, bool)
        elif type_name in _INT_RANGES:
            low, high = _INT_RANGES[type_name]
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        elif type_name in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in ("NaN", "INF", "-INF")
        elif type_name == "Edm.Binary":
            ok = isinstance(value, str) and _is_base64(value)
        elif type_name in _PATTERNS:
            ok = isinstance(value, str) and bool(_PATTERNS[type_name].match(value))
        elif type_name in ("Edm.Untyped", "Edm.PrimitiveType"):
            ok = True
        else:
            self.fail(path, f"{type_name} cannot appear in a JSON body")
            return
        if not ok:
            self.fail(path, f"{json.dumps(value)[:80]} is not a valid {type_name}")

    def enum(self, value: Any, type_name: str, path: str) -> None:
        enum = self.m.enums[type_name]
        members = enum["members"]
        parts = value.split(",") if isinstance(value, str) and enum["isFlags"] else [value]
        for part in parts:
            if not isinstance(part, str) or part.strip() not in members:
                hint = _hint(part, members) if isinstance(part, str) else ""
                self.fail(path, f"{json.dumps(value)} is not a member of {type_name} {members}{hint}")
                return

    def object(self, obj: Any, type_name: str, path: str) -> None:
        if not isinstance(obj, dict):
            self.fail(path, f"expected a JSON object for {type_name}, got {type(obj).__name__}")
            return
        actual = type_name
        odata_type = obj.get("@odata.type")
        if odata_type is not None:
            name = odata_type[1:] if isinstance(odata_type, str) and odata_type.startswith("#") else None
            if name is None:
                self.fail(path, f"@odata.type {odata_type!r} must be '#' + a qualified type name")
            elif name not in self.m.types:
                known = [k for k in self.m.types if k.lower() == name.lower()]
                hint = f" (wrong casing: {known[0]!r})" if known else ""
                self.fail(path, f"@odata.type {odata_type!r} is not a type in the metadata{hint}")
            elif not self.m.is_a(name, type_name):
                self.fail(path, f"@odata.type {odata_type!r} is not {type_name} or derived from it")
            else:
                actual = name
        if self.m.types[actual].get("abstract") and odata_type is None:
            self.fail(path, f"{actual} is abstract: the object needs @odata.type naming its concrete type")
        props = self.m.properties(actual)
        nav = self.m.navigation(actual)
        # Graph declares message, event and user OpenType, but Outlook sends no dynamic properties:
        # only the hand-written error type (whose innerError really is open) accepts unknown keys.
        open_type = self.m.types[actual].get("openType") and actual.startswith("microsoft.graph.ODataErrors.")
        for key, val in obj.items():
            where = f"{path}.{key}"
            if "@" in key:
                self.annotation(key, val, props, nav, where)
            elif key in props:
                self.value(val, props[key]["type"], props[key]["nullable"], where)
            elif key in nav:
                self.value(val, nav[key]["type"], True, where)
            elif not open_type:
                self.fail(where, f"{actual} has no property {key!r}{_hint(key, [*props, *nav])}")

    def annotation(self, key: str, val: Any, props: dict[str, Any], nav: dict[str, Any], path: str) -> None:
        target, _, term = key.partition("@")
        if key == "@removed" and isinstance(val, dict) and set(val) == {"reason"}:
            return  # a delta page's removed entry (delta-query-overview: "@removed": {"reason": ...})
        if not term.startswith("odata."):
            self.fail(path, f"annotation {key!r} is not OData control information")
            return
        term = term[len("odata.") :]
        if target:
            if target not in props and target not in nav:
                self.fail(path, f"annotation {key!r} is on an undeclared property")
            elif term not in PROPERTY_ANNOTATIONS:
                self.fail(path, f"{term!r} is not a property annotation OData defines")
            elif term in ("count", "nextLink") and _element({**props, **nav}[target]["type"]) is None:
                self.fail(path, f"@odata.{term} applies to collection-valued properties only")
        elif term not in INSTANCE_ANNOTATIONS:
            self.fail(path, f"@odata.{term} is not an instance annotation OData defines")
        if term in ("context", "type", "etag", "mediaContentType", "nextLink", "id") and not isinstance(val, str):
            self.fail(path, f"{key} must be a string")
        if term == "count" and not (isinstance(val, int) and not isinstance(val, bool)):
            self.fail(path, f"{key} must be an integer")

    def collection(self, body: Any, element: str, path: str) -> None:
        if not isinstance(body, dict):
            self.fail(path, "a collection response is a JSON object with 'value'")
            return
        if "value" not in body:
            self.fail(path, "a collection response needs 'value'")
        for key, val in body.items():
            if key == "value":
                self.value(val, f"Collection({element})", False, f"{path}.value")
            elif key.startswith("@odata.") and key[len("@odata.") :] in COLLECTION_ANNOTATIONS:
                if key == "@odata.count" and not (isinstance(val, int) and not isinstance(val, bool)):
                    self.fail(f"{path}.{key}", "must be an integer")
                elif key != "@odata.count" and not isinstance(val, str):
                    self.fail(f"{path}.{key}", "must be a string")
            else:
                self.fail(f"{path}.{key}", f"not allowed in a collection of {element}{_hint(key, ['value'])}")


def _is_base64(value: str) -> bool:
    """Standard (Graph's) or URL-safe (OData's) base64, with correct padding."""
    if len(value) % 4:
        return False
    try:
        if "-" in value or "_" in value:
            base64.urlsafe_b64decode(value.encode("ascii"))
        else:
            base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    return True


def type_from_context(context: str) -> str:
    """The expected type of a body from its ``@odata.context``: ``T`` or ``Collection(T)``.

    Handles the forms Graph writes: ``$metadata#users('id')/messages('id')/attachments/$entity``,
    ``$metadata#users/{id}/events/{id}/attachments/$entity`` (keys as segments),
    ``$metadata#me/messages(subject,from)`` (a projection), ``$metadata#microsoft.graph.uploadSession``
    and ``$metadata#Collection(microsoft.graph.x)``.
    """
    m = model()
    if "$metadata#" not in context:
        raise ValueError(f"not an @odata.context URL: {context!r}")
    fragment = unquote(context.split("$metadata#", 1)[1])
    if fragment in m.types:
        return fragment
    if _element(fragment) in m.types:
        return fragment
    segments = _split_fragment(fragment)
    if not segments or segments[0][0] not in m.container:
        raise ValueError(f"@odata.context {context!r} does not start at an entity set or singleton")
    name, key = segments[0]
    current = m.container[name]
    collection = name != "me" and key is None
    for name, key in segments[1:]:
        if name == "$entity":
            collection = False
            continue
        if collection:
            # A key written as its own segment: users/{id}/...
            collection = False
            if key is None and name not in m.navigation(current):
                continue
        if name in m.types and m.is_a(name, current):
            current = name  # a type cast segment
            continue
        nav = m.navigation(current)
        if name not in nav:
            raise ValueError(f"@odata.context {context!r}: {current} has no navigation property {name!r}")
        target = nav[name]["type"]
        element = _element(target)
        current = element or target
        collection = element is not None and key is None
    return f"Collection({current})" if collection else current


def _split_fragment(fragment: str) -> list[tuple[str, str | None]]:
    """``users('a/b')/messages(subject,from)`` → [("users", "a/b"), ("messages", None)] (projections dropped)."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(fragment):
        j = i
        while j < len(fragment) and fragment[j] not in "/(":
            j += 1
        name = fragment[i:j]
        key: str | None = None
        if j < len(fragment) and fragment[j] == "(":
            depth, k, quoted = 0, j, False
            while k < len(fragment):
                c = fragment[k]
                if c == "'":
                    quoted = not quoted
                elif not quoted and c == "(":
                    depth += 1
                elif not quoted and c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            inner = fragment[j + 1 : k]
            is_projection = all(_IDENTIFIER.match(p.strip()) for p in inner.split(",")) and "'" not in inner
            if not is_projection:
                key = inner.strip("'")
            j = k + 1
        out.append((name, key))
        i = j + 1 if j < len(fragment) and fragment[j] == "/" else j
    return [s for s in out if s[0]]


def schema_errors(body: Any, type_name: str | None = None) -> list[str]:
    """Every way ``body`` departs from ``type_name`` (inferred from ``@odata.context`` when None)."""
    m = model()
    if type_name is None:
        context = body.get("@odata.context") if isinstance(body, dict) else None
        if not isinstance(context, str):
            return ["$: no @odata.context to infer the type from; name the type"]
        try:
            type_name = type_from_context(context)
        except ValueError as exc:
            return [f"$: {exc}"]
    checker = _Checker(m)
    element = _element(type_name)
    if element is not None:
        if element not in m.types:
            return [f"$: {element} is not in the metadata"]
        checker.collection(body, element, "$")
    else:
        if type_name not in m.types:
            return [f"$: {type_name} is not in the metadata"]
        checker.object(body, type_name, "$")
    return checker.errors


def assert_conforms(body: Any, type_name: str | None = None) -> None:
    """Fail with every departure. ``body`` may be an ``httpx.Response``: a 4xx/5xx is checked as ODataError."""
    if hasattr(body, "status_code") and hasattr(body, "json"):
        if type_name is None and body.status_code >= 400:
            type_name = ERROR_TYPE
        body = body.json()
    errors = schema_errors(body, type_name)
    assert not errors, "does not conform to the Graph metadata:\n  " + "\n  ".join(errors)


@dataclass
class ConformanceLog:
    """Checks every JSON response body of an httpx client (``event_hooks``) and keeps what failed.

    ``classify(response)`` may name the type for a response (e.g. upload-URL answers, which are
    Outlook's and not Graph's), return ``""`` to skip it, or ``None`` to use the default rules:
    errors as ODataError, anything else from its ``@odata.context``.
    """

    classify: Callable[[Any], str | None] | None = None
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, response: Any, body: bytes) -> None:
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type or not body.strip():
            return
        type_name = self.classify(response) if self.classify else None
        if type_name == "":
            return
        where = f"{response.request.method} {response.request.url} -> {response.status_code}"
        try:
            parsed = json.loads(body)
        except ValueError:
            self.failures.append(f"{where}: the body is not JSON although the Content-Type says so")
            return
        if type_name is None and response.status_code >= 400:
            type_name = ERROR_TYPE
        self.checked += 1
        for error in schema_errors(parsed, type_name):
            self.failures.append(f"{where}: {error}")

    async def async_hook(self, response: Any) -> None:
        self.check(response, await response.aread())

    def sync_hook(self, response: Any) -> None:
        self.check(response, response.read())

    def requests_hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """For ``requests.Session.hooks["response"]``."""
        self.check(response, response.content)
        return response

    def assert_clean(self) -> None:
        assert not self.failures, "responses that do not conform to the Graph metadata:\n  " + "\n  ".join(
            self.failures
        )
