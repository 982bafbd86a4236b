"""``graphattach token``, ``users`` and ``requests``: talk to a running server's admin API."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from graphattach._httpx import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:8765"


def _base_url_option(f: Any) -> Any:
    return click.option(
        "--base-url",
        envvar="GRAPHATTACH_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="The running server (scheme://host:port).",
    )(f)


def _admin(
    base_url: str, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
) -> Any:
    headers = {}
    if key := os.environ.get("GRAPHATTACH_ADMIN_KEY"):
        headers["X-Graphattach-Admin-Key"] = key
    verify: Any = os.environ.get("GRAPHATTACH_CA_BUNDLE") or not base_url.startswith("https://")
    try:
        response = httpx.request(
            method,
            base_url.rstrip("/") + "/_graphattach" + path,
            json=body,
            params=params,
            headers=headers,
            timeout=30,
            verify=verify,
        )
    except httpx.HTTPError as exc:
        click.echo(
            f"graphattach: cannot reach the server at {base_url}: {exc}. Is `graphattach serve` running?",
            err=True,
        )
        sys.exit(3)
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            click.echo(f"graphattach: {response.status_code} {error['code']}: {error['message']}", err=True)
        except (ValueError, KeyError, TypeError):
            click.echo(f"graphattach: HTTP {response.status_code}: {response.text[:200]}", err=True)
        sys.exit(2)
    return response.json() if response.content else None


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--user", "user", default=None, help="userPrincipalName or id of the signed-in user.")
    @click.option(
        "--scopes",
        default=None,
        help='Delegated scopes, e.g. "Mail.ReadWrite Calendars.ReadWrite". [default: every mail and calendar scope]',
    )
    @click.option("--app", is_flag=True, help="An application token (roles) instead of a delegated one.")
    @click.option(
        "--roles",
        default=None,
        help="Application roles for --app. [default: Mail.ReadWrite Mail.Send Calendars.ReadWrite User.Read.All]",
    )
    @click.option("--lifetime", type=int, default=3600, show_default=True, help="Seconds until it expires.")
    @_base_url_option
    def token(user: str | None, scopes: str | None, app: bool, roles: str | None, lifetime: int, base_url: str) -> None:
        """Print a bearer token minted by the running server."""
        if app == bool(user):
            raise click.UsageError("give exactly one of --user UPN|ID and --app")
        body: dict[str, Any] = {"lifetime": lifetime}
        if app:
            body.update(app=True, roles=roles)
        else:
            body.update(user=user, scopes=scopes)
        click.echo(_admin(base_url, "POST", "/token", body)["access_token"])

    @cli.group()
    def users() -> None:
        """List and add users of the server's tenant."""

    @users.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @_base_url_option
    def list_users(as_json: bool, base_url: str) -> None:
        """List users."""
        values = _admin(base_url, "GET", "/users")["value"]
        if as_json:
            click.echo(json.dumps(values, indent=2))
            return
        for user in values:
            click.echo(f"{user['id']}  {user['userPrincipalName']}  {user['displayName']}")

    @users.command("add")
    @click.argument("upn")
    @click.option("--name", default=None, help="Display name.")
    @click.option("--password", default=None, help="Password for the token endpoint's password grant.")
    @click.option("--max-message-size", type=int, default=None, help="Mailbox maximum message size in bytes.")
    @_base_url_option
    def add_user(upn: str, name: str | None, password: str | None, max_message_size: int | None, base_url: str) -> None:
        """Add a user (with a mailbox and a calendar)."""
        body: dict[str, Any] = {"userPrincipalName": upn, "displayName": name, "password": password}
        if max_message_size:
            body["maxMessageSize"] = max_message_size
        user = _admin(base_url, "POST", "/users", body)
        click.echo(f"{user['id']}  {user['userPrincipalName']}  {user['displayName']}")

    _snapshot_commands(cli)

    @cli.command("requests")
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
    @_base_url_option
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
        base_url: str,
    ) -> None:
        """Show the requests the running server served (its journal), or follow them.

        One line per request: time (server clock), method, status, operation, caller, the permission
        it needed, the path, duration and bytes in/out. The journal is in the server's memory and
        holds its last --journal-size requests.
        """
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
            Path(har).write_text(json.dumps(_admin(base_url, "GET", "/requests.har", params=filters), indent=1))
            click.echo(f"wrote {har}")
            return
        if permissions:
            report = _admin(base_url, "GET", "/permissions-report", params=filters)
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
            body = _admin(base_url, "GET", "/requests", params={**filters, "since": str(since)})
            for entry in body["value"]:
                click.echo(json.dumps(entry) if as_json else _request_line(entry))
            since = max(since, int(body["lastSeq"]))
            if not follow:
                return
            sys.stdout.flush()
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return
            # after the first page, a follower sees every new request, however many
            filters.pop("limit", None)


def _snapshot_commands(cli: click.Group) -> None:
    @cli.group()
    def snapshot() -> None:
        """Export or import everything a running server holds (a streamed snapshot file)."""

    @snapshot.command("export")
    @click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
    @_base_url_option
    def export_snapshot(file: Path, base_url: str) -> None:
        """Write the server's users, folders, items, attachments and upload sessions to FILE."""
        headers = {"X-Graphattach-Admin-Key": key} if (key := os.environ.get("GRAPHATTACH_ADMIN_KEY")) else {}
        partial = file.with_name(file.name + ".partial")
        try:
            with httpx.stream(
                "GET", base_url.rstrip("/") + "/_graphattach/snapshot", headers=headers, timeout=600
            ) as r:
                if r.status_code != 200:
                    r.read()
                    click.echo(f"graphattach: HTTP {r.status_code}: {r.text[:300]}", err=True)
                    sys.exit(2)
                with partial.open("wb") as out:
                    for chunk in r.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            click.echo(f"graphattach: cannot reach the server at {base_url}: {exc}", err=True)
            sys.exit(3)
        partial.replace(file)
        click.echo(f"wrote {file} ({file.stat().st_size} bytes)")

    @snapshot.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @_base_url_option
    def import_snapshot(file: Path, base_url: str) -> None:
        """Replace everything the server holds with FILE (all or nothing)."""

        def chunks() -> Any:
            with file.open("rb") as source:
                while block := source.read(1024 * 1024):
                    yield block

        counts = _admin_content(base_url, "/snapshot", chunks())
        click.echo("restored " + ", ".join(f"{n} {k}" for k, n in counts.items()))


def _admin_content(base_url: str, path: str, content: Any) -> Any:
    headers = {"X-Graphattach-Admin-Key": key} if (key := os.environ.get("GRAPHATTACH_ADMIN_KEY")) else {}
    try:
        response = httpx.post(
            base_url.rstrip("/") + "/_graphattach" + path, content=content, headers=headers, timeout=600
        )
    except httpx.HTTPError as exc:
        click.echo(f"graphattach: cannot reach the server at {base_url}: {exc}", err=True)
        sys.exit(3)
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            click.echo(f"graphattach: {response.status_code} {error['code']}: {error['message']}", err=True)
        except (ValueError, KeyError, TypeError):
            click.echo(f"graphattach: HTTP {response.status_code}: {response.text[:200]}", err=True)
        sys.exit(2)
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
