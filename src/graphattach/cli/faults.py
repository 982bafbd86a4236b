"""``graphattach faults`` and ``graphattach throttling``: failures on demand in a running server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from graphattach.cli.admin import EPILOG, _server, server_options


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _read_rules(rule: str | None, file: Path | None) -> Any:
    if (rule is None) == (file is None):
        raise click.UsageError("give a rule as JSON, or --file FILE")
    if file is not None:
        from graphattach.domain.faults import FaultRuleError
        from graphattach.protocol.faults import is_yaml_path, rules_document

        try:
            return rules_document(file.read_text(encoding="utf-8"), yaml=is_yaml_path(str(file)))
        except (OSError, FaultRuleError) as exc:
            raise click.UsageError(f"{file}: {exc}") from None
    try:
        return json.loads(rule or "")
    except ValueError as exc:
        raise click.UsageError(f"the rule is not valid JSON: {exc}") from None


def register(cli: click.Group) -> None:
    @cli.group(epilog=EPILOG)
    def faults() -> None:
        """Add, list and clear fault rules of a running server."""

    @faults.command("add", epilog=EPILOG)
    @click.argument("rule", required=False)
    @click.option("--file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSON or YAML rules.")
    @server_options
    def add(rule: str | None, file: Path | None, **server: Any) -> None:
        """Add a rule, e.g. '{"match":{"operation":"uploadSession.put","nth":2},"action":{"type":"drop"}}'."""
        answer = _server(server).call("POST", "/faults", _read_rules(rule, file))
        for added in answer.get("value", [answer]):
            click.echo(_compact(added))

    @faults.command("list", epilog=EPILOG)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @server_options
    def list_rules(as_json: bool, **server: Any) -> None:
        """List rules, with how many requests each matched and fired on."""
        values = _server(server).call("GET", "/faults")["value"]
        if as_json:
            click.echo(json.dumps(values, indent=2))
            return
        for rule in values:
            click.echo(
                f"{rule['id']}  matched {rule['matched']}  fired {rule['fired']}  "
                f"match {_compact(rule['match'])}  action {_compact(rule['action'])}"
            )

    @faults.command("clear", epilog=EPILOG)
    @click.argument("ids", nargs=-1)
    @server_options
    def clear(ids: tuple[str, ...], **server: Any) -> None:
        """Remove the rules with these ids, or every rule."""
        if not ids:
            _server(server).call("DELETE", "/faults")
        for rule_id in ids:
            _server(server).call("DELETE", f"/faults/{rule_id}")

    @cli.command(epilog=EPILOG)
    @click.argument("spec", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @server_options
    def throttling(spec: str | None, as_json: bool, **server: Any) -> None:
        """Show or set Outlook throttling: outlook, off, or "concurrency=2,requests=100/60,upload=20MB/60"."""
        if spec is not None and spec.strip().lower() == "off":
            _server(server).call("DELETE", "/throttling")
            state = _server(server).call("GET", "/throttling")
        elif spec is not None:
            state = _server(server).call("POST", "/throttling", {"spec": spec})
        else:
            state = _server(server).call("GET", "/throttling")
        if as_json:
            click.echo(json.dumps(state, indent=2))
            return
        click.echo(f"limits: {_compact(state['limits']) if state['enabled'] else 'off'}")
        for v in state["violations"]:
            click.echo(
                f"violation: {v['at']}  {v['method']} {v['path']}  {v['earlyBySeconds']} s early "
                f"(Retry-After {v['retryAfter']}, {v['limit']}, request-id {v['requestId']})"
            )
