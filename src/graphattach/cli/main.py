"""``graphattach``: serve the mailbox, mint tokens, manage users (and, with the client, attach files)."""

from __future__ import annotations

import click

from graphattach import __version__
from graphattach.cli import admin, client, server
from graphattach.cli.migrate import register as register_migrate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="graphattach")
def cli() -> None:
    """A self-hostable Microsoft Graph mailbox for Outlook attachments, and a client for it."""


server.register(cli)
admin.register(cli)
client.register(cli)
register_migrate(cli)


def main() -> None:
    cli(prog_name="graphattach")
