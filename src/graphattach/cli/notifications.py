"""``graphattach notifications listen``: a change-notification receiver that prints what arrives."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


def register(cli: click.Group) -> None:
    @cli.group()
    def notifications() -> None:
        """Receive change notifications (a webhook receiver for subscriptions)."""

    @notifications.command()
    @click.option("--port", type=int, default=8766, show_default=True, help="Port to listen on.")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--status", type=int, default=202, show_default=True, help="Status to answer notifications with.")
    def listen(port: int, host: str, status: int) -> None:
        """Answer the validation handshake and print each notification POST as one JSON line."""
        from graphattach.testing.receiver import Receiver

        receiver = Receiver(host, port, path="/")

        def show(body: Any) -> None:
            click.echo(json.dumps(body, separators=(",", ":")))
            sys.stdout.flush()

        receiver.behaviour.status = status
        receiver.behaviour.on_notification = show
        click.echo(f"listening on http://{host}:{receiver.port}/ (use it as notificationUrl); Ctrl-C stops")
        sys.stdout.flush()
        try:
            receiver.serve_forever()
        except KeyboardInterrupt:
            pass
