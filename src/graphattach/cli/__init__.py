"""The ``graphattach`` command."""

import sys


def main() -> None:
    """The ``graphattach`` command (the console script and ``python -m graphattach``).

    Said plainly when the command line's own dependency is missing: ``graphattach-client``
    installs it only with its ``[cli]`` extra (docs/packaging.md).
    """
    try:
        from graphattach.cli.main import main as run
    except ModuleNotFoundError as exc:
        if exc.name != "click":
            raise
        sys.stderr.write(
            "graphattach: the command line needs click, which this install lacks: "
            "pip install 'graphattach-client[cli]' (or the whole server: pip install graphattach)\n"
        )
        raise SystemExit(2) from None
    run()
