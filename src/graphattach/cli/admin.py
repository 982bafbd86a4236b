"""``graphattach token``, ``users``, ``reset`` and ``clock``: talk to a running server's admin API.

Which server: ``--graph-url`` (or ``GRAPHATTACH_GRAPH_URL``), the same service root every
command takes; the admin API lives beside it, under ``/_graphattach/`` of the same origin.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from graphattach._httpx import httpx

#: A local server's service root (``graphattach serve`` with its defaults).
DEFAULT_LOCAL_GRAPH_URL = "http://127.0.0.1:8765/v1.0"

#: Exit codes shared with the client commands (docs/client.md).
EXIT_ERROR, EXIT_USAGE, EXIT_NETWORK, EXIT_PROTOCOL = 1, 2, 3, 4


def server_root(graph_url: str) -> str:
    """``scheme://host:port`` of a service root: ``http://127.0.0.1:8765/v1.0`` → ``http://127.0.0.1:8765``."""
    root = graph_url.strip().rstrip("/")
    for version in ("/v1.0", "/beta"):
        if root.lower().endswith(version):
            return root[: -len(version)]
    return root


def server_options(f: Any) -> Any:
    """``--graph-url``, ``--admin-key`` and ``--ca-bundle``: which graphattach server, and how to talk to it."""
    options = [
        click.option(
            "--graph-url",
            envvar="GRAPHATTACH_GRAPH_URL",
            show_envvar=True,
            default=DEFAULT_LOCAL_GRAPH_URL,
            show_default=True,
            help="The server's service root, as every graphattach command takes it; its admin API is /_graphattach/ there.",
        ),
        # Before --graph-url, admin commands took the origin alone; still accepted, not shown.
        click.option("--base-url", envvar="GRAPHATTACH_BASE_URL", default=None, hidden=True),
        click.option(
            "--admin-key",
            envvar="GRAPHATTACH_ADMIN_KEY",
            show_envvar=True,
            default=None,
            help="The key of a server started with --admin-key (sent as X-Graphattach-Admin-Key).",
        ),
        click.option(
            "--ca-bundle",
            envvar="GRAPHATTACH_CA_BUNDLE",
            show_envvar=True,
            default=None,
            help="CA certificate file to trust (a server started with --tls prints its certificate's path).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


class Server:
    """A graphattach server's admin API at one origin."""

    def __init__(self, graph_url: str, base_url: str | None, admin_key: str | None, ca_bundle: str | None) -> None:
        self.root = (base_url or server_root(graph_url)).rstrip("/")
        if not self.root.startswith(("http://", "https://")):
            raise click.UsageError(f"--graph-url must start with http:// or https://: {graph_url!r}")
        if self.root.lower().rstrip("/").endswith("graph.microsoft.com"):
            # e.g. `--token-command "graphattach token …"` beside a client command left on its default
            raise click.UsageError(
                f"{graph_url} is Microsoft Graph, which has no graphattach admin API: name the graphattach "
                "server with --graph-url (or GRAPHATTACH_GRAPH_URL), e.g. http://127.0.0.1:8765/v1.0"
            )
        self.admin_key = admin_key
        self.verify: Any = ca_bundle or True

    def where(self) -> str:
        from graphattach.client._core import host_port

        return host_port(self.root)

    def fail(self, message: str, code: int) -> NoReturn:
        click.echo(f"graphattach: {message}", err=True)
        sys.exit(code)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request to ``/_graphattach{path}``; no retries (the server is here or it is not)."""
        headers = {"X-Graphattach-Admin-Key": self.admin_key} if self.admin_key else {}
        url = f"{self.root}/_graphattach{path}"
        try:
            response = httpx.request(method, url, json=body, headers=headers, timeout=30, verify=self.verify)
        except httpx.ConnectError as exc:
            refused = "refused" in str(exc).lower()
            why = "connection refused (nothing listens there)" if refused else str(exc)
            self.fail(
                f"cannot reach the graphattach server at {self.where()}: {why}. "
                "Is `graphattach serve` running there? (--graph-url or GRAPHATTACH_GRAPH_URL says which server)",
                EXIT_NETWORK,
            )
        except httpx.HTTPError as exc:
            self.fail(f"{method} {url}: {type(exc).__name__}: {exc}", EXIT_NETWORK)
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
            if response.status_code < 400:
                self.fail(
                    f"not a graphattach answer from {self.where()}: HTTP {response.status_code} "
                    f"{response.text[:120]!r}. Is --graph-url a graphattach server?",
                    EXIT_PROTOCOL,
                )
        if response.status_code >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                self.fail(f"HTTP {response.status_code} {error.get('code')}: {error.get('message')}", EXIT_ERROR)
            self.fail(
                f"not a graphattach answer from {self.where()}: HTTP {response.status_code} "
                f"{response.text[:120]!r}. Is --graph-url a graphattach server?",
                EXIT_PROTOCOL,
            )
        return data


def _server(options: dict[str, Any]) -> Server:
    return Server(options["graph_url"], options["base_url"], options["admin_key"], options["ca_bundle"])


EPILOG = "Exit codes: 0 ok; 1 the server answered an error; 2 usage; 3 network; 4 not a graphattach server."


def register(cli: click.Group) -> None:
    @cli.command(epilog=EPILOG)
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
    @server_options
    def token(user: str | None, scopes: str | None, app: bool, roles: str | None, lifetime: int, **server: Any) -> None:
        """Print a bearer token minted by the running server."""
        if app == bool(user):
            raise click.UsageError("give exactly one of --user UPN|ID and --app")
        body: dict[str, Any] = {"lifetime": lifetime}
        if app:
            body.update(app=True, roles=roles)
        else:
            body.update(user=user, scopes=scopes)
        click.echo(_server(server).call("POST", "/token", body)["access_token"])

    @cli.group(epilog=EPILOG)
    def users() -> None:
        """List and add users of the server's tenant."""

    @users.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @server_options
    def list_users(as_json: bool, **server: Any) -> None:
        """List users."""
        values = _server(server).call("GET", "/users")["value"]
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
    @server_options
    def add_user(upn: str, name: str | None, password: str | None, max_message_size: int | None, **server: Any) -> None:
        """Add a user (with a mailbox and a calendar)."""
        body: dict[str, Any] = {"userPrincipalName": upn, "displayName": name, "password": password}
        if max_message_size:
            body["maxMessageSize"] = max_message_size
        user = _server(server).call("POST", "/users", body)
        click.echo(f"{user['id']}  {user['userPrincipalName']}  {user['displayName']}")

    @cli.command(epilog=EPILOG)
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @server_options
    def reset(yes: bool, **server: Any) -> None:
        """Delete every message, event and attachment; keep the tenant; re-create the demo users."""
        target = _server(server)
        if not yes:
            click.confirm(f"Delete everything stored by the server at {target.where()}?", abort=True, err=True)
        target.call("POST", "/reset")
        click.echo(f"reset the server at {target.where()}")

    @cli.command(epilog=EPILOG)
    @click.option("--advance", type=float, default=None, help="Move the server's clock forward by SECONDS.")
    @click.option("--real", is_flag=True, help="Back to the real time (undo every --advance).")
    @server_options
    def clock(advance: float | None, real: bool, **server: Any) -> None:
        """Show the server's clock, move it forward (expire upload sessions and tokens in tests), or reset it."""
        if advance is not None and real:
            raise click.UsageError("give one of --advance and --real")
        target = _server(server)
        if advance is not None:
            state = target.call("POST", "/clock", {"advanceSeconds": advance})
        elif real:
            state = target.call("DELETE", "/clock")
        else:
            state = target.call("GET", "/clock")
        click.echo(f"{state['now']}  (offset {state['offsetSeconds']:g} s)")
