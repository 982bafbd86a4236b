"""A shared deployment (issue 14, item 7): app registrations with their own ids, secrets and
roles; users with their own passwords; no demo tenant. The zero-config default is tested by the
rest of the suite (the published secret and demo password)."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from graphattach.auth.team import ConfigError, check_user_password, hash_password, load_team_config
from graphattach.cli.main import cli
from graphattach.settings import Settings
from tests.conftest import inprocess
from tests.helpers import ADELE, Graph

READER = str(uuid.uuid4())
WRITER = str(uuid.uuid4())
DEV = "dev1@team.example"


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture
def team_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEAM_READER_SECRET", "reader-secret-0123456789")
    monkeypatch.setenv("DEV1_PASSWORD", "correct horse battery staple")
    path = tmp_path / "team.json"
    path.write_text(
        json.dumps(
            {
                "apps": [
                    {"clientId": READER, "clientSecret": "env:TEAM_READER_SECRET", "roles": ["Mail.Read"]},
                    {"clientId": WRITER, "clientSecret": "writer-secret-0123456789", "roles": ["Mail.ReadWrite"]},
                ],
                "users": [{"userPrincipalName": DEV, "displayName": "Dev One", "password": "env:DEV1_PASSWORD"}],
            }
        )
    )
    return path


async def _token(graph: Graph, **form: str) -> Any:
    response = await graph.http.post(f"{graph.root}/common/oauth2/v2.0/token", data=form)
    return response


async def test_only_registered_apps_get_tokens_with_their_own_roles(settings: Settings, team_file: Path) -> None:
    team = dataclasses.replace(settings, demo_tenant=False, config_file=str(team_file))
    async with inprocess(team) as graph:
        scope = "https://graph.microsoft.com/.default"
        # the published secret of the zero-config default opens nothing
        anyone = await _token(
            graph,
            grant_type="client_credentials",
            client_id=str(uuid.uuid4()),
            client_secret="graphattach-secret",
            scope=scope,
        )
        assert anyone.status_code == 400 and anyone.json()["error"] == "unauthorized_client"
        wrong = await _token(
            graph, grant_type="client_credentials", client_id=READER, client_secret="graphattach-secret", scope=scope
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        reader = await _token(
            graph,
            grant_type="client_credentials",
            client_id=READER,
            client_secret="reader-secret-0123456789",
            scope=scope,
        )
        assert reader.status_code == 200, reader.text
        token = reader.json()["access_token"]
        assert _claims(token)["roles"] == ["Mail.Read"]
        assert (await graph.get(f"/users/{DEV}/messages", token=token)).status_code == 200
        denied = await graph.post(f"/users/{DEV}/messages", json={"subject": "x"}, token=token)
        assert denied.status_code == 403
        writer = await _token(
            graph,
            grant_type="client_credentials",
            client_id=WRITER,
            client_secret="writer-secret-0123456789",
            scope=scope,
        )
        created = await graph.post(f"/users/{DEV}/messages", json={"subject": "x"}, token=writer.json()["access_token"])
        assert created.status_code == 201, created.text


async def test_team_users_have_their_own_passwords_and_no_demo_users(settings: Settings, team_file: Path) -> None:
    team = dataclasses.replace(settings, demo_tenant=False, config_file=str(team_file))
    async with inprocess(team) as graph:
        users = [u["userPrincipalName"] for u in (await graph.admin("GET", "/users")).json()["value"]]
        assert users == [DEV]
        form = {"grant_type": "password", "client_id": READER, "scope": "Mail.Read"}
        demo = await _token(graph, **form, username=ADELE, password="graphattach")
        assert demo.status_code == 400 and demo.json()["error"] == "invalid_grant"
        demo_password = await _token(graph, **form, username=DEV, password="graphattach")
        assert demo_password.status_code == 400
        ok = await _token(graph, **form, username=DEV, password="correct horse battery staple")
        assert ok.status_code == 200, ok.text
        assert _claims(ok.json()["access_token"])["upn"] == DEV
        unregistered = await _token(
            graph, **{**form, "client_id": str(uuid.uuid4())}, username=DEV, password="correct horse battery staple"
        )
        assert unregistered.status_code == 400 and unregistered.json()["error"] == "unauthorized_client"
        # a user the admin API adds without a password cannot sign in with the demo one
        added = await graph.admin("POST", "/users", json={"userPrincipalName": "new@team.example"})
        assert added.status_code == 201
        nobody = await _token(graph, **form, username="new@team.example", password="graphattach")
        assert nobody.status_code == 400
        # passwords are kept hashed
        stored = await graph.ctx.metadata.get_user_by_upn(DEV)
        assert "password" not in stored.data and stored.data["passwordHash"].startswith("scrypt$")


def test_password_hashes() -> None:
    stored = hash_password("s3cret-ünïcode")
    assert check_user_password({"passwordHash": stored}, "s3cret-ünïcode")
    assert not check_user_password({"passwordHash": stored}, "s3cret-unicode")
    assert not check_user_password({"passwordHash": "garbage"}, "x")
    assert check_user_password({"password": "graphattach"}, "graphattach")
    assert not check_user_password({}, "graphattach")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"apps": [{"clientId": "a", "clientSecret": "short"}]}, "at least 16"),
        ({"apps": [{"clientId": "a", "clientSecret": "env:NOT_SET_ANYWHERE_42"}]}, "not set"),
        ({"apps": [{"clientId": "a", "clientSecret": "0123456789abcdefgh", "roles": ["Root"]}]}, "unknown roles"),
        ({"users": [{"userPrincipalName": "u@x.example", "password": "short"}]}, "at least 12"),
        ({"tenants": []}, "unknown keys"),
    ],
)
def test_a_wrong_config_is_refused_before_the_server_starts(
    tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    path = tmp_path / "team.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        load_team_config(path)
    result = CliRunner().invoke(cli, ["serve", "--in-memory", "--config", str(path)])
    assert result.exit_code == 2
    assert message in result.output
