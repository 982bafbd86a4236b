"""The client commands (attach, attachments, upload) with click's CliRunner against the fake Graph."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from graphattach.cli import client as cli_client
from graphattach.cli.main import cli
from graphattach.client import Client, RetryPolicy
from tests.client.conftest import MiB, file_bytes
from tests.client.fakegraph import (
    GRAPH,
    NO_SCOPE_TOKEN,
    TOKEN,
    UPLOAD_HOST,
    FakeGraph,
    cut_before,
    status,
    upload_put_at,
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    fake = FakeGraph()
    factory = functools.partial(
        Client, transport=fake.transport, sleep=lambda s: None, retry=RetryPolicy(attempts=2, backoff=0)
    )
    monkeypatch.setattr(cli_client, "client_factory", factory)
    for var in (
        "GRAPHATTACH_TOKEN",
        "GRAPHATTACH_TOKEN_COMMAND",
        "GRAPHATTACH_AZURE_CLIENT_ID",
        "GRAPHATTACH_GRAPH_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    return fake


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    def make(size: int, name: str | None = None, seed: int = 0) -> Path:
        path = tmp_path / (name or f"file-{size}.bin")
        path.write_bytes(file_bytes(size, seed))
        return path

    return make


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def base(*args: str) -> list[str]:
    return [*args, "--graph-url", GRAPH, "--token", TOKEN]


def test_attach_small_and_large_with_json(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    small, large = make_file(100, "a.txt"), make_file(5 * MiB, "b.bin")
    result = run(*base("attach", str(small), str(large), "--message", item, "--json", "-q"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["ok"] for d in data] == [True, True]
    stored = fake.attachments("message", item)
    assert {stored[d["attachment"]["id"]].data for d in data} == {small.read_bytes(), large.read_bytes()}
    assert data[1]["attachment"]["name"] == "b.bin"


def test_attach_plain_output_and_progress_lines(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_event()
    path = make_file(9 * MiB, "deck.pdf")
    result = run(*base("attach", str(path), "--event", item, "--calendar", "default"))
    assert result.exit_code == 0, result.output
    assert f"{path}: attached  AAMkATT" in result.stdout
    assert "deck.pdf: 4194304/9437184 bytes (44%)" in result.stderr
    assert "deck.pdf: 9437184/9437184 bytes (100%)" in result.stderr
    assert fake.calls("POST")[0].url.path == f"/v1.0/me/calendar/events/{item}/attachments/createUploadSession"


def test_attach_to_a_folder_of_another_user(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    result = run(
        *base(
            "attach",
            str(make_file(10)),
            "--message",
            item,
            "--user",
            "alex@contoso.onmicrosoft.com",
            "--folder",
            "inbox/sub",
            "-q",
        )
    )
    assert result.exit_code == 0, result.output
    assert fake.calls("POST")[0].url.path.startswith(
        "/v1.0/users/alex@contoso.onmicrosoft.com/mailFolders/inbox/childFolders/sub/"
    )


def test_token_from_environment_and_graph_url_from_environment(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    result = run(
        "attach",
        str(make_file(10)),
        "--message",
        item,
        "-q",
        env={"GRAPHATTACH_TOKEN": TOKEN, "GRAPHATTACH_GRAPH_URL": GRAPH},
    )
    assert result.exit_code == 0, result.output
    assert fake.calls("POST")[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_token_command(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    command = f"{sys.executable} -c \"print('{TOKEN}')\""
    result = run(
        "attach", str(make_file(10)), "--message", item, "--graph-url", GRAPH, "--token-command", command, "-q"
    )
    assert result.exit_code == 0, result.output
    failing = f'{sys.executable} -c "import sys; sys.exit(7)"'
    result = run("attach", str(make_file(10)), "--message", item, "--graph-url", GRAPH, "--token-command", failing)
    assert result.exit_code == 5
    assert "AuthError" in result.stderr and "exit code 7" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of --message ID and --event ID"),
        (("--message", "m", "--event", "e"), "exactly one of"),
        (("--event", "e", "--folder", "inbox"), "--folder goes with --message"),
    ],
)
def test_usage_errors(fake: FakeGraph, make_file: Callable[..., Path], args: tuple[str, ...], message: str) -> None:
    result = run(*base("attach", str(make_file(10)), *args))
    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.requests == []


def test_no_token_is_a_usage_error(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    result = run("attach", str(make_file(10)), "--message", "m", "--graph-url", GRAPH)
    assert result.exit_code == 2 and "no token" in result.stderr


def test_missing_file_and_directory(fake: FakeGraph, tmp_path: Path) -> None:
    item = fake.add_message()
    result = run(*base("attach", str(tmp_path / "nope.pdf"), "--message", item))
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"graphattach: {tmp_path / 'nope.pdf'}: FileNotFound: {tmp_path / 'nope.pdf'}: no such file"
    )
    result = run(*base("attach", str(tmp_path), "--message", item))
    assert result.exit_code == 2 and "IsADirectory" in result.stderr
    assert fake.requests == []


def test_file_over_150_mb(fake: FakeGraph, tmp_path: Path) -> None:
    path = tmp_path / "huge.iso"
    with open(path, "wb") as f:
        f.truncate(150 * MiB + 1)
    result = run(*base("attach", str(path), "--message", fake.add_message()))
    assert result.exit_code == 2 and "FileTooLarge" in result.stderr
    assert fake.requests == []


def test_unknown_message_is_one_line_with_code_and_request_id(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    result = run(*base("attach", str(make_file(10)), "--message", "AAMkNOPE="))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "ErrorItemNotFound: The specified object was not found in the store. (HTTP 404, request-id " in lines[0]


def test_token_without_scope(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    result = run("attach", str(make_file(5 * MiB)), "--message", item, "--graph-url", GRAPH, "--token", NO_SCOPE_TOKEN)
    assert result.exit_code == 1 and "ErrorAccessDenied" in result.stderr
    assert fake.sessions == {} and fake.attachments("message", item) == {}


def test_network_down_is_exit_3(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    fake.script(lambda r: True, cut_before(), times=100)
    result = run(*base("attach", str(make_file(10)), "--message", "m"))
    assert result.exit_code == 3 and "NetworkError: cannot reach graph.fake" in result.stderr


def test_garbage_is_exit_4_and_nothing_is_left(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    fake.script(upload_put_at(4 * MiB), status(200, body=b"\x00\x01 not json"))
    result = run(*base("attach", str(make_file(6 * MiB)), "--message", item))
    assert result.exit_code == 4 and "ProtocolError" in result.stderr
    assert fake.calls("DELETE", UPLOAD_HOST) and fake.sessions == {}
    assert fake.attachments("message", item) == {}


def test_one_bad_file_among_several(fake: FakeGraph, make_file: Callable[..., Path], tmp_path: Path) -> None:
    item = fake.add_message()
    good = make_file(10, "good.txt")
    result = run(*base("attach", str(good), str(tmp_path / "missing.txt"), "--message", item, "--json", "-q"))
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert [d["ok"] for d in data] == [True, False]
    assert data[1]["error"]["code"] == "FileNotFound"
    assert len(fake.attachments("message", item)) == 1


def test_attachments_ls_get_download_rm(fake: FakeGraph, make_file: Callable[..., Path], tmp_path: Path) -> None:
    item = fake.add_message()
    path = make_file(5 * MiB, "data.bin")
    attached = json.loads(run(*base("attach", str(path), "--message", item, "--json", "-q")).stdout)[0]["attachment"]
    result = run(*base("attachments", "ls", "--message", item, "--json"))
    assert result.exit_code == 0
    assert [a["id"] for a in json.loads(result.stdout)] == [attached["id"]]
    result = run(*base("attachments", "ls", "--message", item))
    assert result.stdout.startswith(attached["id"]) and "data.bin" in result.stdout
    result = run(*base("attachments", "get", attached["id"], "--message", item, "--select", "name,size", "--json"))
    assert json.loads(result.stdout)["name"] == "data.bin"
    out = tmp_path / "dl"
    out.mkdir()
    result = run(*base("attachments", "download", attached["id"], "--message", item, "-o", str(out)))
    assert result.exit_code == 0, result.output
    assert (out / "data.bin").read_bytes() == path.read_bytes()
    result = run(*base("attachments", "rm", attached["id"], "--message", item))
    assert result.exit_code == 0 and fake.attachments("message", item) == {}
    result = run(*base("attachments", "rm", attached["id"], "--message", item))
    assert result.exit_code == 1 and "ErrorItemNotFound" in result.stderr


def _session(fake: FakeGraph, item: str, data: bytes, sent: int) -> str:
    with httpx.Client(transport=fake.transport) as http:
        created = http.post(
            f"{GRAPH}/me/messages/{item}/attachments/createUploadSession",
            json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": len(data)}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        url: str = created.json()["uploadUrl"]
        http.put(url, content=data[:sent], headers={"Content-Range": f"bytes 0-{sent - 1}/{len(data)}"})
    return url


def test_upload_resume_and_cancel(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    path = make_file(6 * MiB)
    url = _session(fake, item, path.read_bytes(), MiB)
    result = run("upload", "resume", url, str(path), "--json", "-q")
    assert result.exit_code == 0, result.output
    attachment_id = json.loads(result.stdout)[0]["attachment"]["id"]
    assert fake.attachments("message", item)[attachment_id].data == path.read_bytes()
    url = _session(fake, item, path.read_bytes(), MiB)
    result = run("upload", "cancel", url)
    assert result.exit_code == 0 and result.stdout.strip() == "cancelled"
    assert [s.done for s in fake.sessions.values()] == [True]  # only the finished one is left
    result = run("upload", "cancel", url)
    assert result.exit_code == 1 and "HTTP 404" in result.stderr


def test_resume_with_a_different_file_fails_cleanly(fake: FakeGraph, make_file: Callable[..., Path]) -> None:
    item = fake.add_message()
    url = _session(fake, item, file_bytes(6 * MiB), MiB)
    other = make_file(7 * MiB, "other.bin")
    result = run("upload", "resume", url, str(other))
    assert result.exit_code != 0
    assert fake.attachments("message", item) == {}


def test_exit_code_table_is_documented() -> None:
    result = run("attach", "--help")
    assert "Exit codes: 0 ok; 1 Graph error; 2 usage or bad input; 3 network" in " ".join(result.stdout.split())


def test_rich_progress_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphattach.client import Progress

    shown = cli_client.RichProgress()
    with shown:
        shown(Progress("a.bin", 0, 100, "session"))
        shown(Progress("a.bin", 100, 100, "session"))
    task: Any = next(iter(shown._progress.tasks))
    assert task.completed == 100 and task.total == 100 and task.description == "a.bin"


@pytest.mark.server
def test_cli_against_a_real_server_with_the_token_command(
    server_process: Any, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented recipe: --graph-url a local server, --token-command "graphattach token --user …"."""
    import hashlib

    from tests.helpers import ADELE

    for var in ("GRAPHATTACH_TOKEN", "GRAPHATTACH_TOKEN_COMMAND", "GRAPHATTACH_GRAPH_URL"):
        monkeypatch.delenv(var, raising=False)
    root = server_process.root
    token = httpx.post(f"{root}/_graphattach/token", json={"user": ADELE}).json()["access_token"]
    item = httpx.post(
        f"{root}/v1.0/me/messages", json={"subject": "cli"}, headers={"Authorization": f"Bearer {token}"}
    ).json()["id"]
    command = f"{sys.executable} -m graphattach token --user {ADELE} --base-url {root}"
    options = ["--graph-url", f"{root}/v1.0", "--token-command", command]
    path = make_file(5 * MiB + 7, "cli.bin")
    result = run("attach", str(path), "--message", item, "--json", "-q", *options)
    assert result.exit_code == 0, result.output
    attachment_id = json.loads(result.stdout)[0]["attachment"]["id"]
    out = tmp_path / "back.bin"
    result = run("attachments", "download", attachment_id, "--message", item, "-o", str(out), *options)
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()
