"""What importing the client library loads: httpx and the client, not httpx's CLI nor the async driver.

Every check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import loaded_after


def test_client_import_leaves_out_httpx_cli_and_async_driver() -> None:
    loaded = loaded_after("import graphattach.client")
    assert {"httpx", "graphattach.client._sync"} <= loaded
    unwanted = {"httpx._main", "click", "rich", "pygments", "graphattach.client._async", "subprocess", "azure"}
    assert not loaded & unwanted


def test_async_client_is_imported_on_first_use() -> None:
    loaded = loaded_after("from graphattach.client import AsyncClient\nassert AsyncClient.__name__ == 'AsyncClient'")
    assert "graphattach.client._async" in loaded
    assert "httpx._main" not in loaded


def test_httpx_cli_still_runs_after_the_client_import() -> None:
    code = "import graphattach.client, httpx\nhttpx.main(['--help'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Usage: httpx" in done.stdout


def test_httpx_imported_first_is_left_alone() -> None:
    code = "import httpx, httpx._main\nimport graphattach.client\nassert httpx.main is httpx._main.main"
    subprocess.run([sys.executable, "-c", code], check=True)
