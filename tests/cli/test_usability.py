"""The CLI explains itself: which server, what is retried, why it fails, with the documented exit codes.

Real processes (``python -m graphattach``) against a real ``graphattach serve``, a port where
nothing listens, and a web server that is not Graph.
"""

from __future__ import annotations

import http.server
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphattach.cli.main import cli
from graphattach.client import Client, Message, Retrying, RetryPolicy
from tests.client.fakegraph import GRAPH, TOKEN, FakeGraph, status
from tests.helpers import ADELE, ServerProcess, free_port

pytestmark = pytest.mark.server


def graphattach(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHATTACH_")}
    return subprocess.run(
        [sys.executable, "-m", "graphattach", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("usability") / "data").start()
    yield server
    server.stop()


def graph_url(server: ServerProcess) -> str:
    return f"{server.root}/v1.0"


def test_every_command_takes_the_server_from_one_option_or_variable(server: ServerProcess) -> None:
    by_flag = graphattach("token", "--user", ADELE, "--graph-url", graph_url(server))
    by_env = graphattach("token", "--user", ADELE, env={"GRAPHATTACH_GRAPH_URL": graph_url(server)})
    assert by_flag.returncode == 0 and by_flag.stdout.count(".") == 2, by_flag.stderr
    assert by_env.returncode == 0 and by_env.stdout.count(".") == 2, by_env.stderr
    # a token command given as documented asks the server --graph-url names, not the default port
    env = {"GRAPHATTACH_TOKEN_COMMAND": f"graphattach token --user {ADELE}"}
    draft = graphattach("draft", "--subject", "flag only", "--graph-url", graph_url(server), env=env)
    assert draft.returncode == 0 and draft.stdout.strip().startswith("AAMk"), draft.stderr
    for command in (["token"], ["users", "list"], ["reset"], ["clock"], ["attach"], ["draft"], ["event"], ["send"]):
        shown = graphattach(*command, "--help").stdout
        assert "--graph-url" in shown and "GRAPHATTACH_GRAPH_URL" in shown, command
    attach_help = graphattach("attach", "--help").stdout
    assert "GRAPHATTACH_TOKEN_COMMAND" in attach_help and "--retries" in attach_help


def test_the_documented_token_command_works_without_graphattach_on_path(server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("hello")
    env = {"PATH": "/usr/bin:/bin", "GRAPHATTACH_GRAPH_URL": graph_url(server)}
    token_command = f"graphattach token --user {ADELE}"
    draft = graphattach("draft", "--token-command", token_command, env=env)
    assert draft.returncode == 0, draft.stderr
    done = graphattach(
        "attach", str(path), "--message", draft.stdout.strip(), "--token-command", token_command, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "attached" in done.stdout


def test_drafts_events_sending_clock_and_reset(server: ServerProcess) -> None:
    env = {"GRAPHATTACH_GRAPH_URL": graph_url(server), "GRAPHATTACH_TOKEN_COMMAND": f"graphattach token --user {ADELE}"}
    message = graphattach("draft", "--subject", "s", "--to", "alex@contoso.onmicrosoft.com", "--json", env=env)
    assert message.returncode == 0, message.stderr
    message_id = json.loads(message.stdout)["id"]
    event = graphattach(
        "event", "--subject", "e", "--start", "2026-12-01T10:00:00", "--end", "2026-12-01T11:00:00", env=env
    )
    assert event.returncode == 0 and event.stdout.strip(), event.stderr
    assert graphattach("send", message_id, env=env).returncode == 0
    moved = graphattach("clock", "--advance", "90", env=env)
    assert moved.returncode == 0 and "offset 90 s" in moved.stdout, moved.stderr
    assert "offset 0 s" in graphattach("clock", "--real", env=env).stdout
    reset = graphattach("reset", "--yes", env=env)
    assert reset.returncode == 0, reset.stderr
    # everything is gone, and the demo users are back
    listed = graphattach("attachments", "ls", "--message", message_id, env=env)
    assert listed.returncode == 1 and "ErrorItemNotFound" in listed.stderr, listed.stderr
    assert ADELE in graphattach("users", "list", env=env).stdout


def test_a_server_that_is_down_fails_at_once_naming_host_and_port(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 10)
    done = graphattach(
        "attach", str(path), "--message", "AAMk", "--token", "t", "--graph-url", f"http://127.0.0.1:{port}/v1.0"
    )
    assert done.returncode == 3, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "connection refused" in done.stderr
    assert "retry" not in done.stderr  # nothing listens there: no retry can help
    token = graphattach("token", "--user", ADELE, "--graph-url", f"http://127.0.0.1:{port}/v1.0")
    assert token.returncode == 3 and f"127.0.0.1:{port}" in token.stderr


class NotGraph(http.server.BaseHTTPRequestHandler):
    """A web server that is not Graph: HTML errors, as python -m http.server answers."""

    def do_GET(self) -> None:
        self.send_error(404)

    def do_POST(self) -> None:
        self.send_error(501)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_graph() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotGraph)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1.0"
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_is_not_graph_exits_4(not_graph: str, tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 10)
    attach = graphattach("attach", str(path), "--message", "AAMk", "--token", "t", "--graph-url", not_graph)
    assert attach.returncode == 4, attach.stderr
    assert "not a Graph answer" in attach.stderr
    listed = graphattach("attachments", "ls", "--message", "AAMk", "--token", "t", "--graph-url", not_graph)
    assert listed.returncode == 4, listed.stderr
    token = graphattach("token", "--user", ADELE, "--graph-url", not_graph)
    assert token.returncode == 4 and "not a graphattach" in token.stderr, token.stderr


def test_each_retry_is_announced_as_it_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphattach.cli import client as cli_client

    fake = FakeGraph()
    item = fake.add_message()
    fake.script(lambda r: r.method == "GET", status(503, body=b'{"error":{"code":"x","message":"busy"}}'), times=2)
    monkeypatch.setattr(
        cli_client, "client_factory", lambda *a, **k: Client(*a, **k, transport=fake.transport, sleep=lambda s: None)
    )
    result = CliRunner().invoke(
        cli, ["attachments", "ls", "--message", item, "--graph-url", GRAPH, "--token", TOKEN, "--retries", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "retry" in line]
    assert len(lines) == 2 and lines[0].startswith("graphattach: retry 1 of 3 in ")
    assert "HTTP 503 Service Unavailable to GET" in lines[0] and ":443" in lines[0]
    # --retries 0: the first 503 is the answer
    fake.script(lambda r: r.method == "GET", status(503, body=b'{"error":{"code":"x","message":"busy"}}'), times=1)
    result = CliRunner().invoke(
        cli, ["attachments", "ls", "--message", item, "--graph-url", GRAPH, "--token", TOKEN, "--retries", "0"]
    )
    assert result.exit_code == 1 and "retry" not in result.stderr


def test_the_library_tells_on_retry(tmp_path: Path) -> None:
    fake = FakeGraph()
    item = fake.add_message()
    fake.script(
        lambda r: r.method == "GET",
        status(429, retry_after="2", body=b'{"error":{"code":"TooMany","message":"slow"}}'),
        times=1,
    )
    seen: list[Retrying] = []
    with Client(
        GRAPH,
        TOKEN,
        transport=fake.transport,
        sleep=lambda s: None,
        on_retry=seen.append,
        retry=RetryPolicy(attempts=2),
    ) as client:
        assert client.list_attachments(Message(item)) == []
    assert len(seen) == 1 and seen[0].delay == 2 and seen[0].attempt == 1 and seen[0].attempts == 2
    assert "HTTP 429" in seen[0].reason and "Retry-After: 2" in seen[0].reason


def test_a_second_server_on_the_same_port_is_refused_before_its_banner(server: ServerProcess, tmp_path: Path) -> None:
    done = graphattach("serve", "--port", str(server.port), "--data-dir", str(tmp_path / "other"))
    assert done.returncode == 1
    assert f"port {server.port} on 127.0.0.1 is in use" in done.stderr
    assert "serving" not in done.stdout
    assert not (tmp_path / "other").exists()  # refused before the store was touched


def test_help_without_token_options_where_no_token_is_needed_and_with_serve_defaults() -> None:
    for command in (["upload", "resume"], ["upload", "cancel"]):
        shown = graphattach(*command, "--help").stdout
        assert "--token" not in shown and "--azure-client-id" not in shown, command
        assert "--retries" in shown
    serve = " ".join(graphattach("serve", "--help").stdout.split())
    assert "lifetime in seconds. [default: 21600" in serve and "in bytes. [default: 62914560]" in serve


def test_downloads_get_the_umask_mode(server: ServerProcess, tmp_path: Path) -> None:
    env = {"GRAPHATTACH_GRAPH_URL": graph_url(server), "GRAPHATTACH_TOKEN_COMMAND": f"graphattach token --user {ADELE}"}
    source = tmp_path / "source.txt"
    source.write_text("umask")
    message = graphattach("draft", env=env).stdout.strip()
    attached = json.loads(graphattach("attach", str(source), "--message", message, "--json", env=env).stdout)
    attachment_id = attached[0]["attachment"]["id"]
    old = os.umask(0o027)
    try:
        done = graphattach(
            "attachments", "download", attachment_id, "--message", message, "-o", str(tmp_path / "copy.txt"), env=env
        )
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "copy.txt").stat().st_mode) == 0o640


def test_a_local_token_command_beside_the_real_graph_fails_at_once_and_says_why() -> None:
    # the client commands default to https://graph.microsoft.com/v1.0; the token command is run
    # with that URL, and a graphattach server's token has no business there
    done = graphattach("draft", "--token-command", f"graphattach token --user {ADELE}")
    assert done.returncode == 5, done.stderr
    assert "is Microsoft Graph, which has no graphattach admin API" in done.stderr
    assert "retry" not in done.stderr
