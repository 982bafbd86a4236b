"""The web UI's small parsers: where a login may send you, download file names."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from graphattach.web.mail import content_disposition
from graphattach.web.security import safe_next, same


@given(st.text())
def test_after_login_you_stay_on_this_server(value: str) -> None:
    target = safe_next(value)
    assert target.startswith("/") and not target.startswith("//") and "\\" not in target


def test_local_paths_are_kept() -> None:
    assert safe_next("/mail/adele@contoso.onmicrosoft.com?q=x") == "/mail/adele@contoso.onmicrosoft.com?q=x"
    assert safe_next("https://evil.example/") == "/" and safe_next("//evil.example") == "/"


@given(st.text(min_size=1))
def test_a_download_name_never_breaks_the_header(name: str) -> None:
    header = content_disposition("attachment", name)
    assert header.isascii() and "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert ";" not in fallback and len(fallback) == len(name)


@given(st.text(), st.text())
def test_secrets_compare_in_any_characters(a: str, b: str) -> None:
    assert same(a, b) == (a == b)
