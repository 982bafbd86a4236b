"""``graphattach requests`` and ``graphattach snapshot``: the test kit's admin API in a terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from graphattach._httpx import httpx
from graphattach.cli.admin import EPILOG, EXIT_ERROR, EXIT_NETWORK, Server, _server, server_options


def _get(server: Server, path: str, params: dict[str, str]) -> Any:
    """``GET /_graphattach{path}`` with query parameters (``Server.call`` takes none)."""
    headers = {"X-Graphattach-Admin-Key": server.admin_key} if server.admin_key else {}
    try:
        response = httpx.get(
            f"{server.root}/_graphattach{path}", params=params, headers=headers, timeout=60, verify=server.verify
        )
    except httpx.HTTPError as exc:
        server.fail(f"cannot reach the graphattach server at {server.where()}: {exc}", EXIT_NETWORK)
    return _answer(server, response)


def _answer(server: Server, response: Any) -> Any:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            server.fail(f"HTTP {response.status_code} {error['code']}: {error['message']}", EXIT_ERROR)
        except (ValueError, KeyError, TypeError):
            server.fail(f"HTTP {response.status_code}: {response.text[:200]}", EXIT_ERROR)
    return response.json()


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.1f} KB"
    return f"{count / 1_000_000:.1f} MB"


def _request_line(entry: dict[str, Any]) -> str:
    when = entry["time"][11:23]
    who = entry["user"] or (f"app {entry['appId']}" if entry["caller"] == "app" else entry["caller"] or "-")
    query = f"?{entry['query']}" if entry["query"] else ""
    return (
        f"{when}  {entry['method']:<6} {entry['status']}  {entry['operation']:<32} {who:<32} "
        f"{entry['permission'] or '-':<16} {entry['path']}{query}  {entry['durationMs']:.1f} ms  "
        f"in {_size(entry['bytesIn'])} out {_size(entry['bytesOut'])}"
    )


def register(cli: click.Group) -> None:
    @cli.command("requests", epilog=EPILOG)
    @click.option("--follow", "-f", is_flag=True, help="Keep printing requests as they are served (Ctrl-C stops).")
    @click.option("--operation", default=None, help="An operation name, or a prefix ending in '.' (attachments.).")
    @click.option("--status", default=None, help="A status code (404) or a class (4xx).")
    @click.option("--method", default=None, help="An HTTP method.")
    @click.option("--user", default=None, help="The signed-in user (UPN or id).")
    @click.option("--path", default=None, help="A part of the path.")
    @click.option("--limit", type=click.IntRange(min=0), default=None, help="Only the newest N.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    @click.option(
        "--har", "har", type=click.Path(dir_okay=False, writable=True), default=None, help="Write a HAR file."
    )
    @click.option(
        "--permissions", is_flag=True, help="Print the least privileged permissions that cover what each app did."
    )
    @click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds between polls (--follow).")
    @server_options
    def requests(
        follow: bool,
        operation: str | None,
        status: str | None,
        method: str | None,
        user: str | None,
        path: str | None,
        limit: int | None,
        as_json: bool,
        har: str | None,
        permissions: bool,
        interval: float,
        **options: Any,
    ) -> None:
        """Show the requests the running server served (its journal), or follow them.

        One line per request: time (server clock), method, status, operation, caller, the permission
        it needed, the path, duration and bytes in/out. The journal is in the server's memory and
        holds its last --journal-size requests.
        """
        server = _server(options)
        filters = {
            k: v
            for k, v in {
                "operation": operation,
                "status": status,
                "method": method,
                "user": user,
                "path": path,
                "limit": None if limit is None else str(limit),
            }.items()
            if v is not None
        }
        if har:
            Path(har).write_text(json.dumps(_get(server, "/requests.har", filters), indent=1))
            click.echo(f"wrote {har}")
            return
        if permissions:
            report = _get(server, "/permissions-report", filters)
            if as_json:
                click.echo(json.dumps(report, indent=2))
                return
            for group in report["value"]:
                click.echo(f"{group['caller']} app {group['appId']}: {group['requests']} requests")
                click.echo(f"  minimal: {' '.join(group['minimalPermissions']) or '(none)'}")
                click.echo(f"  granted: {' '.join(group['grantedPermissions']) or '(none)'}")
                click.echo(f"  excess:  {' '.join(group['excessPermissions']) or '(none)'}")
            return
        since = 0
        while True:
            body = _get(server, "/requests", {**filters, "since": str(since)})
            for entry in body["value"]:
                click.echo(json.dumps(entry) if as_json else _request_line(entry))
            since = max(since, int(body["lastSeq"]))
            if not follow:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return
            filters.pop("limit", None)  # after the first page a follower sees every new request

    @cli.group(epilog=EPILOG)
    def snapshot() -> None:
        """Export or import everything a running server holds (a streamed snapshot file)."""

    @snapshot.command("export")
    @click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
    @server_options
    def export_snapshot(file: Path, **options: Any) -> None:
        """Write the server's users, folders, items, attachments and upload sessions to FILE."""
        server = _server(options)
        headers = {"X-Graphattach-Admin-Key": server.admin_key} if server.admin_key else {}
        partial = file.with_name(file.name + ".partial")
        try:
            with httpx.stream(
                "GET", f"{server.root}/_graphattach/snapshot", headers=headers, timeout=600, verify=server.verify
            ) as response:
                if response.status_code != 200:
                    response.read()
                    _answer(server, response)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            server.fail(f"cannot reach the graphattach server at {server.where()}: {exc}", EXIT_NETWORK)
        partial.replace(file)
        click.echo(f"wrote {file} ({file.stat().st_size} bytes)")

    @snapshot.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @server_options
    def import_snapshot(file: Path, **options: Any) -> None:
        """Replace everything the server holds with FILE (all or nothing)."""
        server = _server(options)
        headers = {"X-Graphattach-Admin-Key": server.admin_key} if server.admin_key else {}

        def chunks() -> Any:
            with file.open("rb") as source:
                while block := source.read(1024 * 1024):
                    yield block

        try:
            response = httpx.post(
                f"{server.root}/_graphattach/snapshot",
                content=chunks(),
                headers=headers,
                timeout=600,
                verify=server.verify,
            )
        except httpx.HTTPError as exc:
            server.fail(f"cannot reach the graphattach server at {server.where()}: {exc}", EXIT_NETWORK)
        counts = _answer(server, response)
        click.echo("restored " + ", ".join(f"{n} {k}" for k, n in counts.items()))
