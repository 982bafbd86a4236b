"""Smoke tests of an installed distribution, run by scripts/package-check with the standard library only.

    python3 packaging/smoke.py server VENV            graphattach: serve, token, draft, event, attach, download
    python3 packaging/smoke.py client VENV GRAPH_URL  graphattach-client: the library against a running server
    python3 packaging/smoke.py client-cli VENV GRAPH_URL   graphattach-client[cli]: the commands against it
    python3 packaging/smoke.py count VENV             what the venv holds besides pip: packages and MB

``server`` leaves the server running when ``--keep`` is given and prints its Graph URL and pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ADELE = "adele@contoso.onmicrosoft.com"


def run(venv: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    if check and done.returncode != 0:
        sys.exit(f"smoke: {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(venv: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="graphattach-smoke-", suffix=".log")[1])
    proc = subprocess.Popen(
        [str(venv / "bin" / "graphattach"), "serve", "--port", str(port), "--in-memory"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"smoke: graphattach serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_graphattach/health", timeout=1) as answer:
                if json.load(answer).get("status") == "ok":
                    return proc, f"http://127.0.0.1:{port}/v1.0", log
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    sys.exit(f"smoke: graphattach serve did not answer:\n{log.read_text()}")


def a_file(size: int) -> Path:
    path = Path(tempfile.mkdtemp()) / "smoke.bin"
    path.write_bytes(os.urandom(size))
    return path


def server(venv: Path, keep: bool) -> None:
    version = run(venv, "python", "-m", "graphattach", "--version").stdout.strip()
    assert run(venv, "graphattach", "--version").stdout.strip() == version
    proc, graph_url, log = start_server(venv)
    try:
        env = {"GRAPHATTACH_GRAPH_URL": graph_url, "GRAPHATTACH_TOKEN_COMMAND": f"graphattach token --user {ADELE}"}
        if "Microsoft Graph" not in log.read_text():
            sys.exit(f"smoke: no banner from graphattach serve:\n{log.read_text()}")
        token = run(venv, "graphattach", "token", "--user", ADELE, env=env).stdout.strip()
        assert token.count(".") == 2, token
        message = run(venv, "graphattach", "draft", "--subject", "smoke", env=env).stdout.strip()
        event = run(
            venv, "graphattach", "event", "--subject", "smoke", "--start", "2026-12-01T10:00:00",
            "--end", "2026-12-01T11:00:00", env=env,
        ).stdout.strip()
        path = a_file(5_000_000)  # over 3 MB: an upload session
        for target in (["--message", message], ["--event", event]):
            out = run(venv, "graphattach", "attach", str(path), *target, "--json", "-q", env=env).stdout
            result = json.loads(out)
            assert result[0]["ok"], out
        listed = json.loads(run(venv, "graphattach", "attachments", "ls", "--message", message, "--json", env=env).stdout)
        copy = path.with_name("copy.bin")
        run(venv, "graphattach", "attachments", "download", listed[0]["id"], "--message", message, "-o", str(copy), env=env)
        assert copy.read_bytes() == path.read_bytes(), "downloaded bytes differ"
        second = subprocess.run(
            [str(venv / "bin" / "graphattach"), "serve", "--port", graph_url.split(":")[2].split("/")[0], "--in-memory"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode != 0 and "in use" in second.stderr, second
        print(f"smoke: {version}: serve, token, draft, event, attach (upload session), download, port in use: ok")
        if keep:
            print(f"GRAPH_URL={graph_url} SERVER_PID={proc.pid}")
            return
    finally:
        if not keep:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


CLIENT_SCRIPT = """
import json, sys, urllib.request
from graphattach.client import Client, GraphattachTokenProvider, Message
graph_url, path = sys.argv[1], sys.argv[2]
token = GraphattachTokenProvider(graph_url, "%s")
with Client(graph_url, token) as client:
    draft = client.create_draft(subject="client-only smoke")
    attachment = client.attach(draft, path)
    assert attachment.size and attachment.name == "smoke.bin", attachment
    assert [a.id for a in client.list_attachments(draft)] == [attachment.id]
server_modules = [m for m in sys.modules if m.startswith(("graphattach.api", "graphattach.storage", "starlette"))]
assert not server_modules, server_modules
print("ok")
""" % ADELE


def client(venv: Path, graph_url: str) -> None:
    path = a_file(4_000_000)
    out = run(venv, "python", "-c", CLIENT_SCRIPT, graph_url, str(path)).stdout.strip()
    assert out == "ok", out
    serve = run(venv, "graphattach", "serve", check=False)
    assert serve.returncode == 2 and "pip install" in serve.stderr, serve
    print("smoke: graphattach-client: Client.attach (upload session) against the server: ok; the command asks for [cli]")


def client_cli(venv: Path, graph_url: str) -> None:
    env = {"GRAPHATTACH_GRAPH_URL": graph_url, "GRAPHATTACH_TOKEN_COMMAND": f"graphattach token --user {ADELE}"}
    message = run(venv, "graphattach", "draft", "--subject", "client-cli smoke", env=env).stdout.strip()
    out = run(venv, "graphattach", "attach", str(a_file(100_000)), "--message", message, "--json", env=env).stdout
    assert json.loads(out)[0]["ok"], out
    serve = run(venv, "graphattach", "serve", check=False)
    assert serve.returncode == 2 and "pip install graphattach" in serve.stderr, serve
    print("smoke: graphattach-client[cli]: token, draft, attach: ok; serve says to install graphattach")


def count(venv: Path) -> None:
    """The distributions in a venv made without pip (scripts/package-check installs with --python)."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "list", "--format=json"],
        capture_output=True, text=True, check=True,
    ).stdout
    names = sorted(p["name"] for p in json.loads(listed))
    site = next((venv / "lib").glob("python3*/site-packages"))
    total = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    print(json.dumps({"packages": len(names), "names": names, "megabytes": round(total / 1e6, 1)}))


def main() -> None:
    what, venv = sys.argv[1], Path(sys.argv[2])
    if what == "server":
        server(venv, keep="--keep" in sys.argv)
    elif what == "client":
        client(venv, sys.argv[3])
    elif what == "client-cli":
        client_cli(venv, sys.argv[3])
    elif what == "count":
        count(venv)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
