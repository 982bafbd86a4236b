"""``graphattach token`` and ``graphattach users``: talk to a running server's admin API."""

from __future__ import annotations

import json
import os
import sys
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


def _admin(base_url: str, method: str, path: str, body: Any = None) -> Any:
    headers = {}
    if key := os.environ.get("GRAPHATTACH_ADMIN_KEY"):
        headers["X-Graphattach-Admin-Key"] = key
    verify: Any = os.environ.get("GRAPHATTACH_CA_BUNDLE") or not base_url.startswith("https://")
    try:
        response = httpx.request(
            method,
            base_url.rstrip("/") + "/_graphattach" + path,
            json=body,
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
