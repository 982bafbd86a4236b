"""The default transport: http:// never loads the CA bundle; https:// is verified as httpx's default is."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphattach.client import Client, GraphattachTokenProvider, Message, RetryPolicy, TransportError
from tests.helpers import ADELE, ServerProcess, running_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("tls") / "data", "--tls") as server:
        yield server


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("plain") / "data") as server:
        yield server


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments of every ``httpx.HTTPTransport`` made from now on."""
    calls: list[dict[str, Any]] = []
    real = httpx.HTTPTransport

    def recording(**kwargs: Any) -> httpx.HTTPTransport:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(httpx, "HTTPTransport", recording)
    return calls


def test_plain_http_makes_no_tls_transport(
    plain_server: ServerProcess, made: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "plain.bin"
    path.write_bytes(b"x" * 5_000_000)
    with Client(f"{plain_server.root}/v1.0", GraphattachTokenProvider(plain_server.root, ADELE)) as client:
        draft = client.create_draft(subject="plain")
        attachment = client.attach(draft, path)  # an upload session: the upload URL too
        assert client.download(draft, attachment, io.BytesIO()) == 5_000_000
    assert made == [{"verify": False}]


def test_https_refuses_a_certificate_outside_the_bundle(tls_server: ServerProcess) -> None:
    with Client(f"{tls_server.root}/v1.0", "token", retry=RetryPolicy(attempts=0)) as client:
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            client.list_attachments(Message("AAMk"))


def test_https_honours_ssl_cert_file_like_httpx(
    tls_server: ServerProcess, made: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.data_dir / "tls-cert.pem"))
    path = tmp_path / "tls.bin"
    path.write_bytes(b"y" * 5_000_000)
    with Client(f"{tls_server.root}/v1.0", GraphattachTokenProvider(tls_server.root, ADELE)) as client:
        draft = client.create_draft(subject="tls")
        attachment = client.attach(draft, path)  # an upload session: the upload URL too
        assert client.download(draft, attachment, io.BytesIO()) == 5_000_000
    assert {"verify": True} in made
