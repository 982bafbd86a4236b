"""What importing the client library loads: httpx and the client, not httpx's CLI.

Every check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a new interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_client_import_leaves_out_httpx_cli() -> None:
    loaded = loaded_after("import graphattach.client")
    assert {"httpx", "graphattach.client._sync"} <= loaded
    assert not loaded & {"httpx._main", "click", "rich", "pygments"}


def test_httpx_cli_still_runs_after_the_client_import() -> None:
    code = "import graphattach.client, httpx\nhttpx.main(['--help'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Usage: httpx" in done.stdout


def test_httpx_imported_first_is_left_alone() -> None:
    code = "import httpx, httpx._main\nimport graphattach.client\nassert httpx.main is httpx._main.main"
    subprocess.run([sys.executable, "-c", code], check=True)
