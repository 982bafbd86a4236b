"""`graphattach serve --tls` and a standard library fetching tokens from the server's authority.

azure-identity (the `graphattach[azure]` extra) insists on https for an authority and asks the
OpenID configuration before the token endpoint (azure-identity 1.27, msal 1.39).
"""

from __future__ import annotations

from pathlib import Path

import httpx
from azure.identity import ClientSecretCredential

from tests.helpers import running_server


def test_azure_identity_client_secret_against_the_tls_authority(data_dir: Path) -> None:
    with running_server(data_dir, "--tls") as server:
        root = f"https://127.0.0.1:{server.port}"
        cert = data_dir / "tls-cert.pem"
        assert cert.exists()
        with httpx.Client(verify=str(cert), timeout=30) as http:
            tenant = http.get(f"{root}/_graphattach/info").json()["tenantId"]
            credential = ClientSecretCredential(
                tenant,
                "my-app",
                "graphattach-secret",
                authority=root,
                disable_instance_discovery=True,
                connection_verify=str(cert),
            )
            token = credential.get_token("https://graph.microsoft.com/.default").token
            users = http.get(f"{root}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
            assert users.status_code == 200, users.text
            assert any(u["userPrincipalName"].startswith("adele@") for u in users.json()["value"])
            wrong = ClientSecretCredential(
                tenant,
                "my-app",
                "not-the-secret",
                authority=root,
                disable_instance_discovery=True,
                connection_verify=str(cert),
            )
            try:
                wrong.get_token("https://graph.microsoft.com/.default")
            except Exception as exc:  # azure-identity raises ClientAuthenticationError
                assert "AADSTS7000215" in str(exc)
            else:
                raise AssertionError("a wrong client secret must not get a token")
