"""OData query options (``$select``, ``$expand``, ``$top``, ``$skip``, ``$count``...) and
``@odata.context`` / ``@odata.nextLink`` construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import parse_qsl, quote, urlencode

from graphattach.domain import limits
from graphattach.protocol.errors import BadRequest
from graphattach.protocol.paths import Step

T = TypeVar("T")

#: System query options we understand. ``$filter``, ``$orderby`` and ``$search`` are parsed so
#: that each endpoint can decide (Graph ignores ``$filter`` on attachments, known-issues.md).
SYSTEM_OPTIONS = frozenset(
    {
        "$select",
        "$expand",
        "$top",
        "$skip",
        "$count",
        "$filter",
        "$orderby",
        "$search",
        "$skiptoken",
        "$deltatoken",
        "$format",
    }
)


MAX_INT32 = 2**31 - 1


@dataclass(slots=True)
class QueryOptions:
    select: list[str] | None = None
    expand: list[str] | None = None
    top: int | None = None
    skip: int | None = None
    count: bool = False
    filter: str | None = None
    orderby: str | None = None
    search: str | None = None
    skiptoken: str | None = None
    deltatoken: str | None = None
    #: Non-system parameters, kept for endpoints that take them (e.g. ``authtoken``).
    extra: dict[str, str] = field(default_factory=dict)

    def selects(self, prop: str) -> bool:
        """True when ``prop`` is to be returned (no ``$select`` means every default property)."""
        return self.select is None or prop.lower() in {s.lower() for s in self.select}


def _int_option(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid value '{value}' for query option '{name}'.") from None
    if number < 0:
        raise BadRequest(f"Invalid value '{value}' for query option '{name}': it must be non-negative.")
    if number > MAX_INT32:
        # Graph's $top/$skip are Edm.Int32; larger values are refused, not overflowed into the store.
        raise BadRequest(f"Invalid value '{value}' for query option '{name}': it must be at most {MAX_INT32}.")
    return number


def _list_option(value: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [i for i in items if i]


def parse_query(query_string: str, *, strict: bool = True, allowed_extra: frozenset[str] = frozenset()) -> QueryOptions:
    """Parse a raw query string. Unknown ``$`` options are refused; other unknown parameters are
    refused in strict mode (``--loose`` ignores them) unless listed in ``allowed_extra``."""
    options = QueryOptions()
    seen: set[str] = set()
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The query string is not valid UTF-8.") from None
    for raw_name, value in pairs:
        name = raw_name.strip()
        lowered = name.lower()
        if lowered.startswith("$"):
            if lowered not in SYSTEM_OPTIONS:
                raise BadRequest(
                    f"Query option '{name}' is not allowed. To allow it, set the 'AllowedQueryOptions' "
                    f"property on EnableQueryAttribute or QueryValidationSettings."
                )
            if lowered in seen:
                raise BadRequest(
                    f"Query option '{name}' was specified more than once, but it must be specified at most once."
                )
            seen.add(lowered)
            if lowered == "$select":
                options.select = _list_option(value)
            elif lowered == "$expand":
                options.expand = _list_option(value)
            elif lowered == "$top":
                options.top = _int_option(name, value)
            elif lowered == "$skip":
                options.skip = _int_option(name, value)
            elif lowered == "$count":
                if value.lower() not in ("true", "false"):
                    raise BadRequest(f"Invalid value '{value}' for query option '$count'.")
                options.count = value.lower() == "true"
            elif lowered == "$filter":
                options.filter = value
            elif lowered == "$orderby":
                options.orderby = value
            elif lowered == "$search":
                options.search = value
            elif lowered == "$skiptoken":
                options.skiptoken = value
            elif lowered == "$deltatoken":
                options.deltatoken = value
        elif name in allowed_extra:
            options.extra[name] = value
        elif strict:
            raise BadRequest(
                f"Query parameter '{name}' is not supported. Start the server with --loose to ignore "
                f"unknown query parameters."
            )
    return options


def quote_key(key: str) -> str:
    """Percent-encode a key as Graph does inside @odata.context (``=`` → ``%3D``, ``@`` → ``%40``)."""
    return quote(key, safe="-_.~!$&*+,;:")


def context_path(user_id: str, steps: tuple[Step, ...]) -> str:
    """``users('{id}')/messages('{id%3D}')/attachments`` from the steps after the user.

    ``/me`` becomes ``users('{id}')`` as the real service writes it.
    """
    parts = [f"users('{quote_key(user_id)}')"]
    for step in steps:
        if step.name in ("me", "users"):
            continue
        parts.append(f"{step.name}('{quote_key(step.key)}')" if step.key is not None else step.name)
    return "/".join(parts)


def context_url(base_url: str, fragment: str) -> str:
    """``{base}/$metadata#{fragment}``; ``base_url`` is the service root with its version."""
    return f"{base_url}/$metadata#{fragment}"


def next_link(url_without_query: str, query_string: str, skip: int) -> str:
    """The same request with ``$skip`` advanced (other options kept)."""
    pairs = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k.lower() != "$skip"]
    pairs.append(("$skip", str(skip)))
    return f"{url_without_query}?{urlencode(pairs, safe='$,()/')}"


def page_bounds(query: QueryOptions) -> tuple[int, int]:
    """``$skip`` and ``$top`` of a collection request (10 by default, 1000 at most, as Graph)."""
    top = query.top if query.top is not None else limits.DEFAULT_PAGE_SIZE
    if top > limits.MAX_PAGE_SIZE:
        raise BadRequest(
            f"The limit of '{limits.MAX_PAGE_SIZE}' for Top query has been exceeded. "
            f"The value from the incoming request is '{top}'."
        )
    return query.skip or 0, top


def page(items: list[T], skip: int, top: int | None) -> tuple[list[T], int | None]:
    """The items of one page and the ``$skip`` of the next page (None on the last one)."""
    chosen = items[skip:] if top is None else items[skip : skip + top]
    following = skip + top if top is not None and skip + top < len(items) else None
    return chosen, following
