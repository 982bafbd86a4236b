"""Client commands: ``attach``, ``attachments``, ``upload`` (built on graphattach.client)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add the client commands to ``cli``."""
