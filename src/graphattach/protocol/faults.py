"""Fault rules on the wire: parse and print rules, the error bodies a ``status`` fault answers,
and what a rule can match on in a request (operation name, users), from the request alone.

A rule::

    {"match": {"method": "PUT", "path": "*AttachmentSessions*", "nth": 3},
     "action": {"type": "status", "status": 503, "retryAfter": 2}}

Every error names the field (``match.nth``, ``action.retryAfter``) in ``FaultRuleError.field``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from typing import Any

from graphattach.domain.errors import GraphError
from graphattach.domain.faults import ACTION_TYPES, Action, FaultRuleError, Match, RequestFacts, Rule, RuleState
from graphattach.protocol.errors import (
    BadGateway,
    BadRequest,
    ErrorKind,
    ExchangeInternalError,
    GatewayTimeout,
    QuotaExceeded,
    ServiceNotAvailable,
    TooManyRequests,
    graph_error_body,
)
from graphattach.protocol.operations import (
    ADMIN_OPERATION_PREFIX,
    BATCH_OPERATION,
    TOKEN_OPERATION,
    UNKNOWN_OPERATION,
    all_operations,
    graph_operation,
    upload_operation,
)
from graphattach.protocol.paths import parse_graph_path
from graphattach.protocol.upload_sessions import UPLOAD_PREFIX, parse_upload_path

_MATCH_FIELDS = {"method", "path", "operation", "user", "nth", "every", "times", "probability", "seed"}
_ACTION_FIELDS: dict[str, set[str]] = {
    "status": {"status", "retryAfter", "body", "code", "message", "after"},
    "delay": {"ms", "minMs", "maxMs"},
    "drop": set(),
    "cut": {"afterBytes"},
    "bandwidth": {"bytesPerSecond"},
    "expireSession": set(),
    "expireToken": set(),
}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
#: The statuses Graph's fault sets use (Dev Proxy's GraphRandomErrorPlugin: 429/500/502/503/504,
#: and 507 on writes); any 4xx/5xx is accepted, with a generic body.
_LIMIT_MS = 10 * 60 * 1000


def _int(obj: dict[str, Any], key: str, where: str, *, minimum: int, default: int | None = None) -> int | None:
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultRuleError(f"{where}.{key}", "must be an integer")
    if value < minimum:
        raise FaultRuleError(f"{where}.{key}", f"must be at least {minimum}")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FaultRuleError(f"{where}.{key}", "must be a non-empty string")
    return value


def _unknown(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise FaultRuleError(f"{where}.{key}", "is not a known field")


def parse_match(obj: Any) -> Match:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise FaultRuleError("match", "must be an object")
    _unknown(obj, _MATCH_FIELDS, "match")
    method = _str(obj, "method", "match")
    if method is not None and method.upper() not in _METHODS:
        raise FaultRuleError("match.method", f"must be one of {', '.join(sorted(_METHODS))}")
    operation = _str(obj, "operation", "match")
    if operation is not None and not any(ch in operation for ch in "*?[") and not _known_operation(operation):
        raise FaultRuleError("match.operation", f"'{operation}' is not an operation name (see docs/faults.md)")
    probability = obj.get("probability")
    if probability is not None:
        if isinstance(probability, bool) or not isinstance(probability, (int, float)):
            raise FaultRuleError("match.probability", "must be a number")
        if not 0 < probability <= 1 or math.isnan(probability):
            raise FaultRuleError("match.probability", "must be greater than 0 and at most 1")
    seed = obj.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise FaultRuleError("match.seed", "must be an integer")
    return Match(
        method=method.upper() if method else None,
        path=_str(obj, "path", "match"),
        operation=operation,
        user=_str(obj, "user", "match"),
        nth=_int(obj, "nth", "match", minimum=1),
        every=_int(obj, "every", "match", minimum=1),
        times=_int(obj, "times", "match", minimum=1),
        probability=float(probability) if probability is not None else None,
        seed=seed,
    )


def _known_operation(name: str) -> bool:
    return name in all_operations() or name.startswith(ADMIN_OPERATION_PREFIX) or name == UNKNOWN_OPERATION


def parse_action(obj: Any) -> Action:
    if not isinstance(obj, dict):
        raise FaultRuleError("action", "must be an object")
    kind = obj.get("type")
    if kind not in ACTION_TYPES:
        raise FaultRuleError("action.type", f"must be one of {', '.join(ACTION_TYPES)}")
    _unknown(obj, _ACTION_FIELDS[kind] | {"type"}, "action")
    if kind == "status":
        status = _int(obj, "status", "action", minimum=400)
        if status is None:
            raise FaultRuleError("action.status", "is required")
        if status > 599:
            raise FaultRuleError("action.status", "must be a 4xx or 5xx status")
        retry_after = obj.get("retryAfter")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1
        ):
            # Decimal Retry-After values crash O365 (urllib3) and kiota < 1.15: whole seconds only.
            raise FaultRuleError("action.retryAfter", "must be an integer number of seconds, at least 1")
        body = obj.get("body", "json")
        if body not in ("json", "empty", "html"):
            raise FaultRuleError("action.body", "must be json, empty or html")
        after = obj.get("after", False)
        if not isinstance(after, bool):
            raise FaultRuleError("action.after", "must be true or false")
        return Action(
            type="status",
            status=status,
            retry_after=retry_after,
            body=body,
            code=_str(obj, "code", "action"),
            message=_message(obj),
            after=after,
        )
    if kind == "delay":
        ms = _int(obj, "ms", "action", minimum=0)
        low = _int(obj, "minMs", "action", minimum=0)
        high = _int(obj, "maxMs", "action", minimum=0)
        if ms is None and (low is None or high is None):
            raise FaultRuleError("action.ms", "give ms, or minMs and maxMs")
        if ms is not None and (low is not None or high is not None):
            raise FaultRuleError("action.minMs", "give ms, or minMs and maxMs, not both")
        if low is not None and high is not None and low > high:
            raise FaultRuleError("action.maxMs", "must be at least minMs")
        if max(ms or 0, high or 0) > _LIMIT_MS:
            raise FaultRuleError("action.ms" if ms is not None else "action.maxMs", "must be at most 600000")
        return Action(type="delay", ms=ms, min_ms=low, max_ms=high)
    if kind == "cut":
        after_bytes = _int(obj, "afterBytes", "action", minimum=0)
        if after_bytes is None:
            raise FaultRuleError("action.afterBytes", "is required")
        return Action(type="cut", after_bytes=after_bytes)
    if kind == "bandwidth":
        rate = _int(obj, "bytesPerSecond", "action", minimum=1)
        if rate is None:
            raise FaultRuleError("action.bytesPerSecond", "is required")
        return Action(type="bandwidth", bytes_per_second=rate)
    return Action(type=kind)


def _message(obj: dict[str, Any]) -> str | None:
    value = obj.get("message")
    if value is not None and not isinstance(value, str):
        raise FaultRuleError("action.message", "must be a string")
    return value


def parse_rule(obj: Any) -> Rule:
    """A rule from its JSON; ``FaultRuleError`` naming the field when it is not valid."""
    if not isinstance(obj, dict):
        raise FaultRuleError("rule", "must be an object with match and action")
    _unknown(obj, {"match", "action", "id", "matched", "fired"}, "rule")
    if "action" not in obj:
        raise FaultRuleError("action", "is required")
    return Rule(parse_match(obj.get("match")), parse_action(obj["action"]))


def parse_rules_document(value: Any) -> list[Rule]:
    """The rules of a ``--faults`` file: a list of rules, or ``{"rules": [...]}``."""
    if isinstance(value, dict) and "rules" in value:
        value = value["rules"]
    if not isinstance(value, list):
        raise FaultRuleError("rules", "must be a list of rules")
    rules = []
    for index, item in enumerate(value):
        try:
            rules.append(parse_rule(item))
        except FaultRuleError as exc:
            raise FaultRuleError(f"rules[{index}].{exc.field}", exc.message) from None
    return rules


def rules_document(text: str, *, yaml: bool = False) -> Any:
    """The JSON value of a rules file's text (YAML when ``yaml`` and PyYAML is installed)."""
    if yaml:
        try:
            import yaml as pyyaml
        except ImportError:  # pragma: no cover - PyYAML is in the test extra
            raise FaultRuleError("rules", "YAML files need PyYAML (pip install pyyaml); use JSON") from None
        try:
            return pyyaml.safe_load(text)
        except pyyaml.YAMLError as exc:
            raise FaultRuleError("rules", f"not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FaultRuleError("rules", f"not valid JSON: {exc}") from None


def is_yaml_path(path: str) -> bool:
    return path.lower().endswith((".yaml", ".yml"))


def bad_rule(exc: FaultRuleError) -> GraphError:
    return BadRequest(f"Invalid fault rule: '{exc.field}' {exc.message}.")


def match_json(match: Match) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("method", "path", "operation", "user", "nth", "every", "times", "probability"):
        value = getattr(match, key)
        if value is not None:
            out[key] = value
    if match.probability is not None or match.seed:
        out["seed"] = match.seed
    return out


def action_json(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"type": action.type}
    if action.type == "status":
        out["status"] = action.status
        if action.retry_after is not None:
            out["retryAfter"] = action.retry_after
        out["body"] = action.body
        if action.code is not None:
            out["code"] = action.code
        if action.message is not None:
            out["message"] = action.message
        out["after"] = action.after
    elif action.type == "delay":
        if action.ms is not None:
            out["ms"] = action.ms
        else:
            out["minMs"], out["maxMs"] = action.min_ms, action.max_ms
    elif action.type == "cut":
        out["afterBytes"] = action.after_bytes
    elif action.type == "bandwidth":
        out["bytesPerSecond"] = action.bytes_per_second
    return out


def rule_json(state: RuleState) -> dict[str, Any]:
    return {
        "id": state.id,
        "match": match_json(state.rule.match),
        "action": action_json(state.rule.action),
        "matched": state.matched,
        "fired": state.fired,
    }


# what a status fault answers ----------------------------------------------------------------------

#: The catalogue entry and default Retry-After a ``status`` fault answers with, per status: what
#: Graph answers (https://learn.microsoft.com/graph/errors, https://learn.microsoft.com/graph/throttling;
#: the throttling page's sample 429 and every capture carry an integer Retry-After).
STATUS_ERRORS: dict[int, tuple[ErrorKind, int | None]] = {
    429: (TooManyRequests, 1),
    500: (ExchangeInternalError, None),
    502: (BadGateway, None),
    503: (ServiceNotAvailable, 1),
    504: (GatewayTimeout, None),
    507: (QuotaExceeded, None),
}

#: The IIS/ARR front end's page for a 503 (no JSON, no Retry-After).
HTML_PAGE = (
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Service Unavailable</title></head>'
    b"<body><h2>Service Unavailable</h2><hr><p>HTTP Error %d. The service is unavailable.</p></body></html>\r\n"
)


def status_retry_after(action: Action) -> int | None:
    """The Retry-After a status fault sends: the rule's, else Graph's default for the status
    (JSON bodies only: the front end's empty and HTML answers carry none unless the rule says)."""
    if action.retry_after is not None:
        return action.retry_after
    if action.body != "json":
        return None
    default = STATUS_ERRORS.get(action.status)
    return default[1] if default else None


def status_response(
    action: Action, *, request_id: str, client_request_id: str, now: datetime
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Body and headers of a ``status`` fault's answer."""
    headers: list[tuple[bytes, bytes]] = []
    if action.body == "empty":
        body = b""
        headers.append((b"content-type", b"text/plain"))
    elif action.body == "html":
        body = HTML_PAGE % action.status
        headers.append((b"content-type", b"text/html"))
    else:
        kind = STATUS_ERRORS[action.status][0] if action.status in STATUS_ERRORS else None
        code, message = (kind.code, kind.message) if kind is not None else ("UnknownError", "")
        # A fault rule says its own status, code and message (the user's, not the catalogue's).
        error = GraphError(
            action.message if action.message is not None else message,
            status=action.status,
            code=action.code or code,
        )
        body = graph_error_body(
            error,
            request_id=request_id,
            client_request_id=client_request_id,
            now=now,
        )
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    retry_after = status_retry_after(action)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return body, headers


# what a rule matches on ----------------------------------------------------------------------------


def unverified_claims(token: str | None) -> dict[str, Any]:
    """The payload of a JWT, unverified: only to name the caller in fault and throttling keys.

    The endpoint that serves the request still verifies the token; a forged one only changes
    which rule or throttling bucket a request that is refused anyway is counted in."""
    if not token:
        return {}
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def request_facts(
    method: str, path: str, raw_path: str, authorization: str | None, authtoken: str | None
) -> tuple[RequestFacts, str | None]:
    """The facts of a request, and the mailbox it addresses (a user id or UPN as written, the
    signed-in user's id for ``/me``; None when it addresses no mailbox).

    The operation name is the one the server gives the request (protocol/operations.py): the
    Graph endpoint's name from the parsed path, the upload origin's by method."""
    method = method.upper()
    users: set[str] = set()
    mailbox: str | None = None
    operation = UNKNOWN_OPERATION
    if raw_path.startswith(UPLOAD_PREFIX):
        operation = upload_operation(method)
        parsed = parse_upload_path(raw_path[len(UPLOAD_PREFIX) :])
        if parsed is not None:
            mailbox = parsed.user_id
        claims = unverified_claims(authtoken or authorization)
    else:
        claims = unverified_claims(authorization)
        for version in ("v1.0", "beta"):
            prefix = f"/{version}/"
            if raw_path.startswith(prefix):
                if raw_path[len(prefix) :].strip("/").lower() in ("$batch", "%24batch"):
                    operation = BATCH_OPERATION  # each sub-request is matched under its own name
                    break
                try:
                    graph_path = parse_graph_path(version, raw_path[len(prefix) - 1 :])
                except GraphError:
                    break
                operation = graph_operation(graph_path.endpoint, method)
                mailbox = graph_path.user if graph_path.user is not None else _claim(claims, "oid")
                break
        else:
            if path.startswith("/_graphattach/"):
                operation = ADMIN_OPERATION_PREFIX + path[len("/_graphattach/") :].split("/", 1)[0]
            elif path.endswith("/oauth2/v2.0/token"):
                operation = TOKEN_OPERATION
    for key in ("oid", "upn"):
        if value := _claim(claims, key):
            users.add(value.lower())
    if mailbox:
        users.add(mailbox.lower())
    return RequestFacts(method=method, path=path, operation=operation, users=frozenset(users)), mailbox


def _claim(claims: dict[str, Any], key: str) -> str | None:
    value = claims.get(key)
    return value if isinstance(value, str) and value else None


def caller_app_id(authorization: str | None, authtoken: str | None = None) -> str:
    """The app id a request is made by (``appid``/``azp`` of its token, unverified), or ``""``."""
    claims = unverified_claims(authtoken or authorization)
    return _claim(claims, "appid") or _claim(claims, "azp") or ""
