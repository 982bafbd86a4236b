"""Test helpers: a Graph test client over a real socket or in-process, and a server process runner."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ADELE = "adele@contoso.onmicrosoft.com"
ALEX = "alex@contoso.onmicrosoft.com"
MEGAN = "megan@contoso.onmicrosoft.com"


def loaded_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a new interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


#: An event to attach things to (one definition for every suite).
EVENT = {
    "subject": "Planning",
    "start": {"dateTime": "2030-04-15T12:00:00", "timeZone": "Pacific Standard Time"},
    "end": {"dateTime": "2030-04-15T14:00:00", "timeZone": "Pacific Standard Time"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A real ``graphattach serve`` process on a free port."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.args = list(args)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    @property
    def root(self) -> str:
        scheme = "https" if "--tls" in self.args else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "graphattach",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        log = open(self.log_path, "ab")
        # Own process group: granian serves from worker children, and a crash must take them too.
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(self.env or {})}, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                # the self-signed certificate is checked by the tests that use --tls, not here
                if httpx.get(f"{self.root}/_graphattach/health", timeout=1, verify=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the server and its workers: no clean shutdown."""
        if self.proc:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(10)
        if self.proc:
            self._signal_group(signal.SIGKILL)  # stray workers, if any


@contextmanager
def running_server(data_dir: Path, *args: str, **kwargs: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, *args, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


class Graph:
    """An async Graph client for tests: ``await graph.get("/me/messages", user=ADELE)``.

    Tokens are minted through the admin API and cached per (user, scopes).
    """

    def __init__(self, http: httpx.AsyncClient, root: str, mode: str) -> None:
        self.http = http
        self.root = root.rstrip("/")
        self.mode = mode
        self._tokens: dict[Any, str] = {}
        #: The server's Context when in-process (None against a server process).
        self.ctx: Any = None

    @property
    def v1(self) -> str:
        return f"{self.root}/v1.0"

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, f"{self.root}/_graphattach{path}", **kwargs)

    async def token(
        self,
        user: str | None = ADELE,
        scopes: str | list[str] | None = None,
        *,
        app: bool = False,
        roles: str | list[str] | None = None,
        lifetime: int = 3600,
    ) -> str:
        key = (user, str(scopes), app, str(roles), lifetime)
        if key not in self._tokens:
            body: dict[str, Any] = {"lifetime": lifetime}
            body.update({"app": True, "roles": roles} if app else {"user": user, "scopes": scopes})
            response = await self.admin("POST", "/token", json=body)
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    def forget_tokens(self) -> None:
        self._tokens.clear()

    async def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = ADELE,
        scopes: Any = None,
        token: str | None = None,
        app: bool = False,
        roles: Any = None,
        version: str = "v1.0",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """``path`` is relative to the service root (``/me/messages``) or an absolute URL."""
        all_headers = dict(headers or {})
        if "Authorization" not in all_headers:
            if token is None and (user is not None or app):
                token = await self.token(None if app else user, scopes, app=app, roles=roles)
            if token is not None:
                all_headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("http") else f"{self.root}/{version}{path}"
        return await self.http.request(method, url, headers=all_headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)


def assert_graph_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is Graph's error shape with this status (and code); returns the ``error`` object."""
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text[:500]}"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code, error
    if "innerError" in error:
        inner = error["innerError"]
        assert inner["request-id"] == response.headers["request-id"]
        assert inner["client-request-id"] == response.headers["client-request-id"]
        assert len(inner["date"]) == 19 and "Z" not in inner["date"]
    return error
