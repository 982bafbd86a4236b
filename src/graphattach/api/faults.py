"""Failures on demand: fault rules and Outlook throttling, as an ASGI layer, and their admin API.

Nothing here runs unless a user turns it on: with no rule, no throttling and no pending
Retry-After, ``FaultLayer`` hands every request straight to the app.

- ``FaultLayer`` sits inside ``GraphMiddleware`` (so its answers carry ``request-id`` and the
  other Graph headers) and in front of every route but the admin API, which is never faulted.
- Rules and counters live in the server process (``FaultEngine``); with ``--workers N`` or
  several processes each keeps its own (docs/faults.md).
- Admin API: ``GET|POST|DELETE /_graphattach/faults``, ``DELETE /_graphattach/faults/{id}``,
  ``GET|POST|DELETE /_graphattach/throttling``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphattach.api.admin import ADMIN_PREFIX, _json
from graphattach.api.admin import require_admin_key as admin_context
from graphattach.api.responses import empty, graph_json
from graphattach.domain.errors import ConnectionDropped
from graphattach.domain.faults import Action, Decision, FaultRuleError, Rule, Rulebook
from graphattach.domain.throttling import (
    Key,
    Refusal,
    ThrottleLimits,
    Throttler,
    ThrottlingSpecError,
    limits_from_values,
    limits_spec,
    parse_throttling,
)
from graphattach.protocol.errors import (
    ApplicationThrottled,
    BadRequest,
    FaultRuleNotFound,
    TokenExpired,
    TooManyRequests,
    graph_error_body,
)
from graphattach.protocol.faults import (
    bad_rule,
    caller_app_id,
    is_yaml_path,
    parse_rule,
    parse_rules_document,
    request_facts,
    rule_json,
    rules_document,
    status_response,
)
from graphattach.protocol.operations import OPERATION_KEY
from graphattach.protocol.upload_sessions import UPLOAD_PREFIX, parse_upload_path
from graphattach.services import journal
from graphattach.services.context import Context

log = logging.getLogger("graphattach.faults")

#: Operations on Outlook resources: what Outlook's per-mailbox limits count.
OUTLOOK_RESOURCES = ("messages.", "mailFolders.", "events.", "calendars.", "calendarGroups.", "attachments.")
UPLOAD_OPERATIONS_PREFIX = "uploadSession."
#: ``cut`` and ``drop`` answers on servers whose connection cannot be aborted (granian): a head
#: that promises a body that never comes, so every client sees a broken response.
_PROMISED = str(1024 * 1024).encode()


def load_rules_file(path: str | Path) -> list[Rule]:
    """The rules of a ``--faults`` file: JSON, or YAML (``.yaml``/``.yml``) when PyYAML is installed."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_rules_document(rules_document(text, yaml=is_yaml_path(str(path))))


def throttling_json(limits: ThrottleLimits | None) -> dict[str, Any] | None:
    return limits_spec(limits) if limits is not None else None


@dataclass(slots=True)
class FaultEngine:
    """The fault rules, the throttler and the Retry-After tracker of one server process."""

    rulebook: Rulebook = field(default_factory=Rulebook)
    throttler: Throttler = field(default_factory=lambda: Throttler(None))
    #: Lower-cased user id or UPN → user id (mailbox keys), filled as requests name them.
    mailboxes: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: The limits the server was started with (``--throttling``): a reset goes back to them.
    start_limits: ThrottleLimits | None = None

    @classmethod
    def from_settings(cls, faults_file: str | None, throttling: str | None) -> FaultEngine:
        engine = cls()
        if faults_file:
            for rule in load_rules_file(faults_file):
                engine.rulebook.add(rule)
        if throttling:
            engine.throttler.limits = engine.start_limits = parse_throttling(throttling)
        return engine

    @property
    def active(self) -> bool:
        return bool(self.rulebook.rules) or self.throttler.limits is not None or bool(self.throttler.blocks)

    def reset(self) -> None:
        """``POST /_graphattach/reset``: rules go, counters and violations restart, and the limits
        are those the server was started with again (limits set at run time do not outlive a test)."""
        self.rulebook.clear()
        self.throttler.limits = self.start_limits
        self.throttler.reset()
        self.mailboxes.clear()

    async def mailbox_id(self, ctx: Context, mailbox: str) -> str | None:
        """The user id of the mailbox a request names (by id or userPrincipalName), cached."""
        identity = await self.identity(ctx, mailbox)
        return identity[0] if identity else None

    async def identity(self, ctx: Context, mailbox: str) -> tuple[str, str] | None:
        """(user id, userPrincipalName), lower-cased, of the mailbox's owner; None if unknown."""
        key = mailbox.lower()
        found = self.mailboxes.get(key)
        if found is None:
            from graphattach.services.users import find_user

            user = await find_user(ctx, mailbox)
            if user is None:
                return None
            found = self.mailboxes[key] = (user.id.lower(), user.user_principal_name.lower())
        return found


def _throttled_body(refusal: Refusal, *, request_id: str, client_request_id: str, now: Any) -> bytes:
    limit = refusal.original if refusal.limit == "RetryAfter" else refusal.limit
    # Outlook's own 429 for its limits (ApplicationThrottled, no innerError), Graph's otherwise.
    outlook = limit in ("MailboxConcurrency", "RequestRate", "IncomingBytes")
    error = ApplicationThrottled(limit=limit) if outlook else TooManyRequests()
    return graph_error_body(error, request_id=request_id, client_request_id=client_request_id, now=now)


async def _discard(message: Message) -> None:
    return None


def _describe(decision: Decision) -> str:
    """What fired, for the request journal: ``rule 2: status 503``, ``rules 1,3: delay, drop``."""
    actions = [*decision.modifiers, *([decision.terminal] if decision.terminal is not None else [])]
    kinds = ", ".join(f"status {a.status}" if a.type == "status" else a.type for a in actions)
    ids = ",".join(decision.rule_ids)
    return f"{'rules' if len(decision.rule_ids) > 1 else 'rule'} {ids}: {kinds}"


class FaultLayer:
    """The ASGI layer that applies fault rules and throttling (see the module docstring)."""

    def __init__(self, app: ASGIApp, engine: FaultEngine, context: Callable[[], Context]) -> None:
        self.app = app
        self.engine = engine
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.engine.active or scope["path"].startswith(ADMIN_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.engine
        ctx = self.context()
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        authtoken = None
        if raw_path.startswith(UPLOAD_PREFIX):
            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("authtoken")
            authtoken = values[0] if values else None
        method = scope["method"]
        facts, mailbox = request_facts(method, scope["path"], raw_path, authorization, authtoken)
        state = scope.setdefault("state", {})
        request_id = str(state.get("request_id", ""))
        # A request answered here never reaches the Graph endpoint that names it: name it now.
        state[OPERATION_KEY] = facts.operation

        key: Key | None = None
        counted = False
        throttler = engine.throttler
        outlook = facts.operation.startswith(OUTLOOK_RESOURCES + (UPLOAD_OPERATIONS_PREFIX,))
        if mailbox and outlook:  # the key also serves Retry-After compliance of fault rules' 429s
            mailbox_id = await engine.mailbox_id(ctx, mailbox)
            if mailbox_id is not None:
                key = (caller_app_id(authorization, authtoken), mailbox_id)
                upload = _declared_length(headers) if method.upper() in ("PATCH", "POST", "PUT") else 0
                refusal = throttler.admit(
                    key,
                    ctx.clock.now().timestamp(),
                    upload,
                    method=method,
                    path=scope["path"],
                    operation=facts.operation,
                    request_id=request_id,
                )
                if refusal is not None:
                    journal.note_fault(
                        f"throttled: {refusal.limit}"
                        + (
                            f" (Retry-After not honoured, {refusal.violation.early_by:.3f} s early)"
                            if refusal.violation
                            else ""
                        )
                    )
                    if refusal.violation is not None:
                        log.warning(
                            "Retry-After not honoured: %s %s came %.3f s early (app %s, mailbox %s)",
                            method,
                            scope["path"],
                            refusal.violation.early_by,
                            key[0] or "-",
                            key[1],
                        )
                    await _drain(receive, ctx.settings.max_upload_chunk)
                    body = _throttled_body(
                        refusal,
                        request_id=request_id,
                        client_request_id=str(state.get("client_request_id", request_id)),
                        now=ctx.clock.now(),
                    )
                    await _answer(
                        send,
                        429,
                        body,
                        [(b"content-type", b"application/json"), (b"retry-after", str(refusal.retry_after).encode())],
                    )
                    return
                counted = throttler.limits is not None
        try:
            if mailbox and any(r.rule.match.user for r in engine.rulebook.rules):
                # A rule names a user: the mailbox by id and by userPrincipalName both match.
                identity = await engine.identity(ctx, mailbox)
                if identity is not None:
                    facts = dataclasses.replace(facts, users=facts.users | set(identity))
            decision = engine.rulebook.decide(facts) if engine.rulebook.rules else None
            if not decision:
                await self.app(scope, receive, send)
                return
            state["faults"] = list(decision.rule_ids)
            journal.note_fault(_describe(decision))
            await self._apply(decision, scope, receive, send, ctx, key)
        finally:
            if counted and key is not None:
                throttler.release(key)

    async def _apply(
        self, decision: Decision, scope: Scope, receive: Receive, send: Send, ctx: Context, key: Key | None
    ) -> None:
        if decision.expire_session:
            await _expire_session(ctx, scope)
        delay = decision.delay_ms(self.engine.rulebook.delay_rng)
        if delay:
            await asyncio.sleep(delay / 1000)
        rate = decision.bandwidth()
        if rate:
            receive, send = _paced(receive, rate), _paced_send(send, rate)
        action = decision.terminal
        if action is None:
            await self.app(scope, receive, send)
        elif action.type == "status":
            await self._status(action, scope, receive, send, ctx, key)
        elif action.type == "expireToken":
            await _drain(receive, ctx.settings.max_upload_chunk)
            await self._expired_token(scope, send, ctx)
        elif action.type == "drop":
            # The lost acknowledgement: the work is done and committed, the answer never arrives.
            await self._work(scope, receive)
            await _abort(scope, send)
        else:  # cut
            await self._work(scope, _cut(receive, action.after_bytes))
            await _abort(scope, send)

    async def _work(self, scope: Scope, receive: Receive) -> None:
        """Serve the request and throw the answer away."""
        try:
            await self.app(scope, receive, _discard)
        except Exception:  # the work's own failure is as lost as its answer
            log.debug("faulted request failed", exc_info=True)

    async def _status(
        self, action: Action, scope: Scope, receive: Receive, send: Send, ctx: Context, key: Key | None
    ) -> None:
        if action.after:
            await self._work(scope, receive)  # the work is done, and still an error comes back
        else:
            # Read (and drop) the body first, so the client reads the error instead of a reset.
            await _drain(receive, ctx.settings.max_upload_chunk)
        state = scope["state"]
        body, headers = status_response(
            action,
            request_id=str(state.get("request_id", "")),
            client_request_id=str(state.get("client_request_id", "")),
            now=ctx.clock.now(),
        )
        await _answer(send, action.status, body, headers, content_length=False)
        if action.status == 429 and key is not None:
            retry_after = next((int(v) for k, v in headers if k == b"retry-after"), None)
            if retry_after:
                self.engine.throttler.note_retry_after(
                    key,
                    ctx.clock.now().timestamp(),
                    retry_after,
                    "fault:" + ",".join(state.get("faults", [])),
                    scope["method"],
                    scope["path"],
                )

    async def _expired_token(self, scope: Scope, send: Send, ctx: Context) -> None:
        state = scope["state"]
        body = graph_error_body(
            TokenExpired(),
            request_id=str(state.get("request_id", "")),
            client_request_id=str(state.get("client_request_id", "")),
            now=ctx.clock.now(),
        )
        headers = [(b"content-type", b"application/json")]
        if not scope["path"].startswith(UPLOAD_PREFIX):
            from graphattach.api.graph import WWW_AUTHENTICATE

            headers.append((b"www-authenticate", WWW_AUTHENTICATE.encode()))
        await _answer(send, 401, body, headers)


def _declared_length(headers: dict[bytes, bytes]) -> int:
    try:
        return max(0, int(headers.get(b"content-length", b"0") or b"0"))
    except ValueError:
        return 0


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], *, content_length: bool = True
) -> None:
    if content_length:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop the request body, up to ``limit`` bytes."""
    read = 0
    while read <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _expire_session(ctx: Context, scope: Scope) -> None:
    raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    if not raw.startswith(UPLOAD_PREFIX):
        return
    parsed = parse_upload_path(raw[len(UPLOAD_PREFIX) :])
    if parsed is not None:
        await ctx.metadata.set_session_state(parsed.session_id, "expired")


def _cut(receive: Receive, after_bytes: int) -> Receive:
    """The request body as the app sees it when the connection breaks after ``after_bytes``:
    those bytes, never the end of the body, then a disconnect."""
    seen = 0
    broken = False

    async def cut_receive() -> Message:
        nonlocal seen, broken
        if broken:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] != "http.request":
            return message
        body = message.get("body", b"")
        room = after_bytes - seen
        if len(body) >= room or not message.get("more_body", False):
            broken = True
            return {"type": "http.request", "body": body[: max(room, 0)], "more_body": True}
        seen += len(body)
        return message

    return cut_receive


def _paced(receive: Receive, rate: int) -> Receive:
    started = time.monotonic()
    total = 0

    async def paced_receive() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            wait = total / rate - (time.monotonic() - started)
            if wait > 0:
                await asyncio.sleep(wait)
        return message

    return paced_receive


def _paced_send(send: Send, rate: int) -> Send:
    started = 0.0
    total = 0

    async def paced_send(message: Message) -> None:
        nonlocal total, started
        if message["type"] == "http.response.start":
            started = time.monotonic()
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            # Large bodies go out in pieces, each at the rate.
            piece = max(1024, rate // 10)
            more = message.get("more_body", False)
            for offset in range(0, max(len(body), 1), piece):
                chunk = body[offset : offset + piece]
                total += len(chunk)
                last = offset + piece >= len(body)
                await send({"type": "http.response.body", "body": chunk, "more_body": more or not last})
                wait = total / rate - (time.monotonic() - started)
                if wait > 0:
                    await asyncio.sleep(wait)
            return
        await send(message)

    return paced_send


def _transport_of(send: Any) -> Any:
    """The asyncio transport behind an ASGI ``send`` (uvicorn's is a bound method of the request
    cycle, which Starlette's error middleware wraps in a closure); None for other servers."""
    pending, looked = [send], 0
    while pending and looked < 8:
        candidate = pending.pop()
        looked += 1
        transport = getattr(getattr(candidate, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            return transport
        for cell in getattr(candidate, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if callable(value):
                pending.append(value)
    return None


async def _abort(scope: Scope, send: Send) -> None:
    """Close the client's connection with no answer (uvicorn), or with a head whose body never
    comes (servers that give no way to abort: granian, in-process transports)."""
    transport = _transport_of(scope.get("state", {}).get("server_send"))
    if transport is not None:
        transport.abort()
        await asyncio.sleep(0)  # let the server see the connection lost before the app returns
        return
    await send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", _PROMISED)]})
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    raise ConnectionDropped("connection dropped by a fault rule")


# admin API ---------------------------------------------------------------------------------------


def engine_of(request: Request) -> FaultEngine:
    engine: FaultEngine = request.app.state.faults
    return engine


async def list_faults(request: Request) -> Response:
    admin_context(request)
    return graph_json({"value": [rule_json(r) for r in engine_of(request).rulebook.rules]})


async def add_fault(request: Request) -> Response:
    admin_context(request)
    body = await _json_value(request)
    engine = engine_of(request)
    try:
        if isinstance(body, list) or (isinstance(body, dict) and "rules" in body):
            rules = parse_rules_document(body)
            added = [engine.rulebook.add(rule) for rule in rules]
            return graph_json({"value": [rule_json(r) for r in added]}, status=201)
        rule = parse_rule(body)
    except FaultRuleError as exc:
        raise bad_rule(exc) from None
    return graph_json(rule_json(engine.rulebook.add(rule)), status=201)


async def _json_value(request: Request) -> Any:
    import json

    from graphattach.api.call import read_body

    raw = await read_body(request, 1024 * 1024)
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None


async def clear_faults(request: Request) -> Response:
    admin_context(request)
    engine_of(request).rulebook.clear()
    return empty(204)


async def delete_fault(request: Request) -> Response:
    admin_context(request)
    if not engine_of(request).rulebook.remove(request.path_params["rule"]):
        raise FaultRuleNotFound()
    return empty(204)


def _throttling_state(engine: FaultEngine) -> dict[str, Any]:
    throttler = engine.throttler
    return {
        "enabled": throttler.limits is not None,
        "limits": throttling_json(throttler.limits),
        # What counts against the concurrency limit now: lets a test wait until its requests are
        # admitted instead of sleeping.
        "inFlight": [
            {"appId": app_id, "mailbox": mailbox, "requests": count}
            for (app_id, mailbox), count in sorted(throttler.inflight.items())
        ],
        "violations": [
            {
                "at": _iso(v.at),
                "appId": v.app_id,
                "mailbox": v.mailbox,
                "method": v.method,
                "path": v.path,
                "operation": v.operation,
                "requestId": v.request_id,
                "retryAfter": v.retry_after,
                "earlyBySeconds": round(v.early_by, 3),
                "limit": v.limit,
            }
            for v in throttler.violations
        ],
    }


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


async def throttling(request: Request) -> Response:
    """``GET`` the limits and the Retry-After violations; ``POST`` limits (``{"preset": "outlook"}``,
    ``{"spec": "concurrency=2,..."}`` or the spec's keys); ``DELETE`` turns throttling off."""
    admin_context(request)
    engine = engine_of(request)
    if request.method == "POST":
        body = await _json(request)
        try:
            if "spec" in body:
                if not isinstance(body["spec"], str):
                    raise ThrottlingSpecError("spec", "must be a string")
                limits = parse_throttling(body["spec"])
            else:
                limits = limits_from_values(body)
        except ThrottlingSpecError as exc:
            raise BadRequest(f"Invalid throttling: '{exc.field}' {exc.message}.") from None
        engine.throttler.limits = limits
        engine.throttler.reset()
    elif request.method == "DELETE":
        engine.throttler.limits = None
        engine.throttler.reset()
        return empty(204)
    return graph_json(_throttling_state(engine))


ROUTES: list[Any] = [
    Route(f"{ADMIN_PREFIX}/faults", list_faults, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/faults", add_fault, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/faults", clear_faults, methods=["DELETE"]),
    Route(f"{ADMIN_PREFIX}/faults/{{rule}}", delete_fault, methods=["DELETE"]),
    Route(f"{ADMIN_PREFIX}/throttling", throttling, methods=["GET", "POST", "DELETE"]),
]

__all__ = ["ROUTES", "ConnectionDropped", "FaultEngine", "FaultLayer", "load_rules_file"]
