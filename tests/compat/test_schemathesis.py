"""schemathesis against a real server, driven by /openapi.json: no 5xx, and every response matches the
document (status codes, content types, body schemas). Bounded: a few examples per operation.

Path parameters are bound to objects that exist (a draft, an event, their attachments, the default
calendar and calendar group), so the generated requests reach the handlers instead of 404s.
``scripts/schemathesis`` runs the same with more examples against a fresh server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from tests.compat.clients import mint_token
from tests.helpers import ADELE, ServerProcess

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def existing_objects(root: str, token: str) -> dict[str, str]:
    """Ids for every path parameter of the document, made fresh for the run."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{root}/v1.0", headers=auth, timeout=60) as http:

        def post(path: str, body: dict[str, Any]) -> str:
            response = http.post(path, json=body)
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        message = post("/me/messages", {"subject": "fuzz"})
        event = post(
            "/me/events",
            {
                "subject": "fuzz",
                "start": {"dateTime": "2031-11-01T09:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2031-11-01T10:00:00", "timeZone": "UTC"},
            },
        )
        file = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": "YWJj"}
        attachment = post(f"/me/messages/{message}/attachments", file)
        event_attachment = post(f"/me/events/{event}/attachments", file)
        calendar = http.get("/me/calendar").json()["id"]
        groups = http.get("/me/calendarGroups").json()["value"]
    return {
        "user-id": ADELE,
        "message-id": message,
        "event-id": event,
        "attachment-id": attachment,
        "mailFolder-id": "drafts",
        "calendar-id": calendar,
        "calendarGroup-id": groups[0]["id"] if groups else "none",
        "event-attachment-id": event_attachment,
    }


def run_schemathesis(
    server: ServerProcess, tmp_path: Path, examples: int, seed: int
) -> subprocess.CompletedProcess[str]:
    token = mint_token(server.root, ADELE)
    bindings = existing_objects(server.root, token)
    config = tmp_path / "schemathesis.toml"
    event_attachment = bindings.pop("event-attachment-id")
    global_bindings = "".join(f'"path.{name}" = "{value}"\n' for name, value in bindings.items())
    event_bindings = ", ".join(
        f'"path.{name}" = "{event_attachment if name == "attachment-id" else value}"'
        for name, value in bindings.items()
    )
    config.write_text(
        'headers = { Authorization = "Bearer ${GRAPHATTACH_FUZZ_TOKEN}" }\n\n'
        f"[parameters]\n{global_bindings}\n"
        f'[[operations]]\ninclude-path-regex = "/events/"\nparameters = {{ {event_bindings} }}\n'
    )
    cli = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [
            str(cli),
            "--config-file",
            str(config),
            "run",
            f"{server.root}/openapi.json",
            "--include-path-regex",
            "^/v1.0/",
            # Keep the bound objects alive for the whole run: no DELETE, no send (it moves the draft).
            "--exclude-method",
            "DELETE",
            "--exclude-path-regex",
            "/send$",
            "--max-examples",
            str(examples),
            "--seed",
            str(seed),
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--checks",
            CHECKS,
            "--workers",
            "1",
            "--no-color",
        ],
        cwd=tmp_path,
        env={**os.environ, "GRAPHATTACH_FUZZ_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    outlook_server: ServerProcess, tmp_path: Path
) -> None:
    result = run_schemathesis(outlook_server, tmp_path, examples=3, seed=20311101)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "Tested: " in result.stdout and " passed" in result.stdout, report
