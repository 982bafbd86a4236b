"""Controls for fault rules and throttling (docs/faults.md): see them, add or remove rules, turn
Outlook's throttling on and off. The same engine the admin API ``/_graphattach/faults`` drives."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from graphattach.domain.faults import FaultRuleError
from graphattach.domain.throttling import ThrottlingSpecError, limits_spec, parse_throttling
from graphattach.protocol.faults import parse_rule, parse_rules_document, rule_json
from graphattach.web.pages import PageError, form_of, view


def engine_of(request: Request) -> Any:
    """The app's fault engine (``api/faults.py``)."""
    engine = getattr(request.app.state, "faults", None)
    if engine is None:
        raise PageError(404, "This server has no fault engine.")
    return engine


def fault_state(request: Request) -> dict[str, Any]:
    """What the Controls page shows: the rules (as JSON text) and the throttling limits."""
    engine = getattr(request.app.state, "faults", None)
    if engine is None:
        return {"available": False}
    rules = []
    for state in engine.rulebook.rules:
        shown = rule_json(state)
        rules.append(
            {
                "id": shown["id"],
                "match": orjson.dumps(shown["match"]).decode(),
                "action": orjson.dumps(shown["action"]).decode(),
                "matched": shown["matched"],
                "fired": shown["fired"],
            }
        )
    limits = engine.throttler.limits
    return {
        "available": True,
        "rules": rules,
        "throttling": ", ".join(f"{k}={v}" for k, v in limits_spec(limits).items()) if limits is not None else None,
        "violations": len(engine.throttler.violations),
    }


@view("controls.faults")
async def faults(request: Request) -> Response:
    form = await form_of(request)
    engine = engine_of(request)
    action = form.get("action")
    if action == "add":
        try:
            value = orjson.loads(str(form.get("rule") or ""))
            added = (
                parse_rules_document(value)
                if isinstance(value, list) or (isinstance(value, dict) and "rules" in value)
                else [parse_rule(value)]
            )
        except orjson.JSONDecodeError:
            raise PageError(400, "The rule is not valid JSON.") from None
        except FaultRuleError as exc:
            raise PageError(400, f"Invalid fault rule: {exc}") from None
        for rule in added:
            engine.rulebook.add(rule)
    elif action == "remove":
        engine.rulebook.remove(str(form.get("rule_id") or ""))
    elif action == "clear":
        engine.rulebook.clear()
    else:
        raise PageError(400, "Add, remove or clear rules.")
    return RedirectResponse("/controls?done=faults", status_code=303)


@view("controls.throttling")
async def throttling(request: Request) -> Response:
    form = await form_of(request)
    engine = engine_of(request)
    if form.get("action") == "off":
        engine.throttler.limits = None
    else:
        spec = "outlook" if form.get("action") == "outlook" else str(form.get("spec") or "").strip()
        try:
            engine.throttler.limits = parse_throttling(spec)
        except ThrottlingSpecError as exc:
            raise PageError(400, f"Invalid throttling: '{exc.field}' {exc.message}.") from None
    engine.throttler.reset()
    return RedirectResponse("/controls?done=throttling", status_code=303)
