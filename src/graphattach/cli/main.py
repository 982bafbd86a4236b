"""``graphattach``: serve the mailbox, mint tokens, manage users (and, with the client, attach files).

A command's module is imported when that command runs or shows its own help: ``graphattach
serve`` never loads the client nor httpx, ``graphattach token`` never loads the server, and the
command list of ``graphattach --help`` loads none of them.
"""

from __future__ import annotations

import importlib

import click

from graphattach import __version__

#: Each command: the module under graphattach.cli whose ``register`` defines it, and the first
#: line of its docstring for the list in ``--help`` (tests/cli/test_main.py keeps them equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "attach": ("client", "Attach FILEs (any size up to 150 MB) to a message or an event."),
    "attachments": ("client", "List, read, download and remove attachments of a message or an event."),
    "clock": (
        "admin",
        "Show the server's clock, move it forward (expire upload sessions and tokens in tests), or reset it.",
    ),
    "draft": ("client", "Create a draft message in Drafts and print its id (for --message)."),
    "event": ("client", "Create an event and print its id (for --event)."),
    "faults": ("faults", "Add, list and clear fault rules of a running server."),
    "migrate": ("migrate", "Apply pending schema migrations to a metadata store."),
    "reset": ("admin", "Delete every message, event and attachment; keep the tenant; re-create the demo users."),
    "send": ("client", "Send a draft (it moves to Sent Items; recipients of this server find it in their Inbox)."),
    "serve": ("server", "Start the Graph server (embedded SQLite + files under --data-dir by default)."),
    "throttling": (
        "faults",
        'Show or set Outlook throttling: outlook, off, or "concurrency=2,requests=100/60,upload=20MB/60".',
    ),
    "token": ("admin", "Print a bearer token minted by the running server."),
    "upload": ("client", "Resume or cancel an upload session by its URL."),
    "users": ("admin", "List and add users of the server's tenant."),
}

#: Commands of the full ``graphattach`` distribution that ``graphattach-client`` leaves out.
SERVER_COMMANDS = frozenset({"serve", "migrate"})


class LazyGroup(click.Group):
    """A group that imports a command's module on first use (click's ``get_command`` hook)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS.keys() | self.commands.keys())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            try:
                module = importlib.import_module(f"graphattach.cli.{COMMANDS[cmd_name][0]}")
            except ModuleNotFoundError as exc:
                if cmd_name not in SERVER_COMMANDS or not (exc.name or "").startswith(("graphattach.", "starlette")):
                    raise
                # graphattach-client: the client without the server (docs/packaging.md)
                ctx.fail(
                    f"`graphattach {cmd_name}` needs the server, which this install lacks: pip install graphattach"
                )
            module.register(self)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list as click writes it, from the summaries above for commands not loaded."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="graphattach")
def cli() -> None:
    """A self-hostable Microsoft Graph mailbox for Outlook attachments, and a client for it."""


def main() -> None:
    cli(prog_name="graphattach")
