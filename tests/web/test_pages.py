"""The web UI over HTTP: headers, forms with CSRF protection, tokens, downloads, bounded pages."""

from __future__ import annotations

import re
import uuid

import httpx
import jwt
import pytest

from tests.web.conftest import UiServer
from tests.web.seed import ADELE, GraphSession

pytestmark = pytest.mark.server  # a real graphattach serve process


def _csrf(http: httpx.Client) -> str:
    page = http.get("/")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def http(ui: UiServer) -> httpx.Client:
    return httpx.Client(base_url=ui.root, headers={"accept": "text/html"}, timeout=30)


def test_pages_carry_a_strict_content_security_policy(ui: UiServer, http: httpx.Client) -> None:
    page = http.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    body = http.get(f"/mail/{ADELE}/messages/{ui.seeded.ids['hostile']}/body")
    assert body.headers["content-security-policy"].startswith("sandbox;")
    assert "script" not in body.headers["content-security-policy"]


def test_forms_need_the_csrf_token(ui: UiServer, http: httpx.Client) -> None:
    token = _csrf(http)
    upn = f"n{uuid.uuid4().hex[:8]}@contoso.onmicrosoft.com"
    assert http.post("/users", data={"upn": upn}).status_code == 403  # no token
    assert http.post("/users", data={"upn": upn, "csrf": "x" * 43}).status_code == 403  # not the cookie's
    foreign = http.post("/users", data={"upn": upn, "csrf": token}, headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert upn not in http.get("/").text
    added = http.post("/users", data={"upn": upn, "name": "Nestor <b>W</b>", "csrf": token})
    assert added.status_code == 201
    assert "Nestor &lt;b&gt;W&lt;/b&gt;" in added.text
    assert http.get(f"/mail/{upn}").status_code == 200


def test_state_never_changes_on_get(http: httpx.Client) -> None:
    for path in ("/users", "/token", "/controls/reset", "/controls/clock", "/logout"):
        assert http.get(path).status_code == 405, path


def test_the_token_form_mints_the_chosen_scopes_and_roles(http: httpx.Client) -> None:
    token = _csrf(http)
    page = http.post(
        "/token", data={"kind": "user", "user": ADELE, "scopes": ["Mail.Read", "Calendars.Read"], "csrf": token}
    )
    assert page.status_code == 200
    minted = re.search(r'<textarea id="token"[^>]*>([^<]+)</textarea>', page.text)
    assert minted is not None
    delegated = minted.group(1)
    claims = jwt.decode(delegated, options={"verify_signature": False})
    assert claims["scp"] == "Mail.Read Calendars.Read" and claims["upn"] == ADELE
    app = http.post("/token", data={"kind": "app", "roles": "Mail.Read", "csrf": token})
    minted = re.search(r'<textarea id="token"[^>]*>([^<]+)</textarea>', app.text)
    assert minted is not None
    assert jwt.decode(minted.group(1), options={"verify_signature": False})["roles"] == ["Mail.Read"]
    # and the token works on Graph
    graph = http.get("/v1.0/me/messages?$top=1", headers={"authorization": f"Bearer {delegated}"})
    assert graph.status_code == 200


def test_downloads_are_attachments_and_previews_are_sandboxed(ui: UiServer, http: httpx.Client) -> None:
    s = ui.seeded
    base = f"/attachments/{ADELE}/{s.ids['hostile']}/{s.attachments['hostile']}"
    download = http.get(f"{base}/download")
    assert download.content == b"<script>alert(3)</script>\n"
    assert download.headers["content-disposition"].startswith("attachment;")
    inline = http.get(f"{base}/content")
    assert inline.headers["content-type"].startswith("text/plain")  # stored as text/html
    assert inline.headers["content-security-policy"].startswith("sandbox;")
    mime = http.get(f"/mail/{ADELE}/messages/{s.ids['report']}/mime")
    assert mime.headers["content-type"].startswith("text/plain")
    assert b"Subject: Quarterly report" in mime.content and b'filename="menu.txt"' in mime.content


def test_a_reference_to_a_script_url_is_not_linked(ui: UiServer, http: httpx.Client) -> None:
    adele = GraphSession(ui.root, ADELE)
    try:
        draft = adele.post("/me/messages", {"subject": "links"})
        response = adele.beta.post(
            f"/me/messages/{draft['id']}/attachments",
            json={
                "@odata.type": "#microsoft.graph.referenceAttachment",
                "name": "click me",
                "sourceUrl": "javascript:alert(1)",
            },
        )
    finally:
        adele.close()
    if response.status_code >= 400:
        pytest.skip("Graph refuses the URL itself")
    page = http.get(f"/attachments/{ADELE}/{draft['id']}/{response.json()['id']}")
    assert page.status_code == 200
    assert 'href="javascript:' not in page.text
    assert "javascript:alert(1)" in page.text  # shown as text


def test_pages_are_bounded(ui: UiServer, http: httpx.Client) -> None:
    adele = GraphSession(ui.root, ADELE)
    try:
        folder = adele.post("/me/mailFolders", {"displayName": f"Bulk {uuid.uuid4().hex[:6]}"})
        for index in range(55):
            adele.post(f"/me/mailFolders/{folder['id']}/messages", {"subject": f"bulk {index:02d}"})
    finally:
        adele.close()
    first = http.get(f"/mail/{ADELE}/folders/{folder['id']}")
    assert first.text.count('<tr class="">') + first.text.count('<tr class="unread">') == 50
    assert "bulk 54" in first.text and "bulk 04" not in first.text  # newest first
    assert 'rel="next"' in first.text
    second = http.get(f"/mail/{ADELE}/folders/{folder['id']}?skip=50")
    assert "bulk 04" in second.text and "bulk 00" in second.text and 'rel="next"' not in second.text
    found = http.get(f"/mail/{ADELE}/folders/{folder['id']}?q=bulk%2042")
    assert "bulk 42" in found.text and "bulk 41" not in found.text


def test_controls_advance_the_clock_and_reset(ui: UiServer, http: httpx.Client) -> None:
    token = _csrf(http)
    before = httpx.get(f"{ui.root}/_graphattach/clock").json()["offsetSeconds"]
    moved = http.post("/controls/clock", data={"seconds": "60", "action": "advance", "csrf": token})
    assert moved.status_code == 303
    assert httpx.get(f"{ui.root}/_graphattach/clock").json()["offsetSeconds"] == before + 60
    refused = http.post("/controls/reset", data={"confirm": "yes", "csrf": token})
    assert refused.status_code == 400
    http.post("/controls/clock", data={"action": "reset", "csrf": token})
    assert httpx.get(f"{ui.root}/_graphattach/clock").json()["offsetSeconds"] == 0
    # last in this module: the reset empties the seeded mailbox and brings the demo users back
    reset = http.post("/controls/reset", data={"confirm": "reset", "csrf": token})
    assert reset.status_code == 303
    assert http.get(f"/mail/{ADELE}/messages/{ui.seeded.ids['report']}").status_code == 404
    assert ADELE in http.get("/").text


def test_without_an_admin_key_the_login_page_sends_you_on(http: httpx.Client) -> None:
    answer = http.get("/login?next=/uploads")
    assert answer.status_code == 303 and answer.headers["location"] == "/uploads"
    assert http.get("/login?next=//evil.example/").headers["location"] == "/"


def test_static_files_are_served_from_the_package_with_etags(http: httpx.Client) -> None:
    css = http.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    again = http.get("/static/app.css", headers={"if-none-match": css.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert http.get("/static/nothing.css").status_code == 404
    assert http.get("/static/..%2Fviews.py").status_code == 404


def test_a_form_token_in_any_characters_is_refused_not_an_error(http: httpx.Client) -> None:
    _csrf(http)
    assert http.post("/users", data={"upn": "x@contoso.onmicrosoft.com", "csrf": "é" * 43}).status_code == 403


def test_fault_rules_and_throttling_from_the_controls(ui: UiServer, http: httpx.Client) -> None:
    token = _csrf(http)
    page = http.get("/controls")
    default = re.search(r'<textarea name="rule"[^>]*>([^<]+)</textarea>', page.text)
    assert default is not None
    rule = default.group(1).replace("&#34;", '"')
    added = http.post("/controls/faults", data={"action": "add", "rule": rule, "csrf": token})
    assert added.status_code == 303
    rules = httpx.get(f"{ui.root}/_graphattach/faults").json()["value"]
    assert [r["match"]["operation"] for r in rules] == ["uploadSession.put"]
    assert "uploadSession.put" in http.get("/controls").text
    refused = http.post("/controls/faults", data={"action": "add", "rule": '{"match": 1}', "csrf": token})
    assert refused.status_code == 400
    http.post("/controls/faults", data={"action": "remove", "rule_id": rules[0]["id"], "csrf": token})
    assert httpx.get(f"{ui.root}/_graphattach/faults").json()["value"] == []
    http.post("/controls/throttling", data={"action": "outlook", "csrf": token})
    assert httpx.get(f"{ui.root}/_graphattach/throttling").json()["enabled"] is True
    assert "concurrency=" in http.get("/controls").text
    http.post("/controls/throttling", data={"action": "off", "csrf": token})
    assert httpx.get(f"{ui.root}/_graphattach/throttling").json()["enabled"] is False
    # the Controls reset takes the fault rules with everything else, as the admin API's reset does
    http.post("/controls/faults", data={"action": "add", "rule": rule, "csrf": token})
    assert http.post("/controls/reset", data={"confirm": "reset", "csrf": token}).status_code == 303
    assert httpx.get(f"{ui.root}/_graphattach/faults").json()["value"] == []
