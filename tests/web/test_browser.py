"""The web UI in a real browser: headless Chromium (Debian's package) against ``graphattach serve``."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphattach.client import Client, GraphattachTokenProvider, Message
from graphattach.domain import ids
from tests.engines import stack_server_args
from tests.helpers import ServerProcess
from tests.web.cdp import Browser, Page
from tests.web.conftest import ADMIN_KEY, UiServer
from tests.web.seed import ADELE, ALEX, HOSTILE_NAME, HOSTILE_SUBJECT, MEGAN, GraphSession

pytestmark = pytest.mark.server  # a real graphattach serve process (and Chromium)

ADELE_MAIL = f"/mail/{ADELE}"


def assert_clean(page: Page, start: int, url: str) -> None:
    problems = page.problems(start)
    assert problems.console == [], f"{url}: console errors {problems.console}"
    assert problems.failed == [], f"{url}: failed requests {problems.failed}"
    assert problems.dialogs == [], f"{url}: dialogs {problems.dialogs}"


def views(ui: UiServer) -> dict[str, str]:
    s = ui.seeded
    report, event = s.ids["report"], s.ids["event"]
    attachment = f"/attachments/{ADELE}/{report}"
    return {
        "tenant": "/",
        "inbox": f"/mail/{ALEX}",
        "sent": f"{ADELE_MAIL}/folders/sentitems",
        "nested folder": f"{ADELE_MAIL}/folders/{s.ids['q4']}",
        "search": f"{ADELE_MAIL}/folders/drafts?q=supplier",
        "message": f"{ADELE_MAIL}/messages/{report}",
        "raw MIME": f"{ADELE_MAIL}/messages/{report}/mime",
        "text attachment": f"{attachment}/{s.attachments['menu']}",
        "image attachment": f"{attachment}/{s.attachments['chart']}",
        "pdf attachment": f"{attachment}/{s.attachments['pdf']}",
        "item attachment": f"{attachment}/{s.attachments['forwarded']}",
        "reference attachment": f"{attachment}/{s.attachments['link']}",
        "calendar": f"/calendar/{ADELE}",
        "event": f"/calendar/{ADELE}/events/{event}",
        "attendee calendar": f"/calendar/{MEGAN}",
        "uploads": "/uploads",
        "controls": "/controls",
    }


def test_every_view_loads_without_console_errors_or_failed_requests(ui: UiServer, page: Page) -> None:
    for name, url in views(ui).items():
        start = page.goto(ui.root + url)
        assert page.eval("document.readyState") == "complete", name
        assert_clean(page, start, f"{name} ({url})")
        if url.endswith("/mime"):
            assert "Subject: Quarterly report" in page.eval("document.body.innerText")
        else:
            assert page.eval("document.querySelector('main') !== null"), name


def test_views_show_the_mailbox(ui: UiServer, page: Page) -> None:
    s = ui.seeded
    page.goto(f"{ui.root}/mail/{ALEX}")
    subjects = page.eval("[...document.querySelectorAll('table.messages tbody a')].map(a => a.textContent)")
    assert "Quarterly report" in subjects  # delivered by the send
    page.goto(f"{ui.root}{ADELE_MAIL}/folders/drafts")
    tree = page.eval("[...document.querySelectorAll('nav.tree a')].map(a => a.textContent)")
    assert {"Inbox", "Projects", "2026", "Q4 launch"} <= set(tree)  # childFolders at any depth
    page.goto(f"{ui.root}{ADELE_MAIL}/folders/drafts?q=supplier")
    found = page.eval("[...document.querySelectorAll('table.messages tbody a')].map(a => a.textContent)")
    assert len(found) == 7 and all("supplier" in f for f in found)
    page.goto(f"{ui.root}/attachments/{ADELE}/{s.ids['report']}/{s.attachments['chart']}")
    assert page.wait_for("document.querySelector('img.preview').complete") is True
    assert page.eval("document.querySelector('img.preview').naturalWidth") == 320
    page.goto(f"{ui.root}/attachments/{ADELE}/{s.ids['report']}/{s.attachments['menu']}")
    assert page.eval("document.querySelector('pre.body').textContent") == s.text_bytes.decode()
    page.goto(f"{ui.root}/attachments/{ADELE}/{s.ids['report']}/{s.attachments['forwarded']}")
    assert page.eval("document.querySelector('.embedded .subject').textContent") == "Budget approved"
    page.goto(f"{ui.root}/attachments/{ADELE}/{s.ids['report']}/{s.attachments['link']}")
    link = page.eval("document.querySelector('main a[target=_blank]').href")
    assert link.startswith("https://contoso.sharepoint.com/")
    page.goto(f"{ui.root}/calendar/{ADELE}/events/{s.ids['event']}")
    copies = page.eval("[...document.querySelectorAll('a.attendee-copy')].map(a => a.getAttribute('href'))")
    assert sorted(c.split("/")[2] for c in copies) == [ALEX, MEGAN]
    page.goto(ui.root + copies[0])  # the attendee's copy links back to the organizer's event
    assert page.eval("document.querySelector('h1.subject').textContent").startswith("Q4 review")


def test_hostile_names_subjects_and_bodies_are_inert(ui: UiServer, page: Page) -> None:
    s = ui.seeded
    httpx.post(
        f"{ui.root}/_graphattach/users",
        json={
            "userPrincipalName": f"x{uuid.uuid4().hex[:6]}@contoso.onmicrosoft.com",
            "displayName": "<img src=x onerror=alert(4)>",
        },
    ).raise_for_status()
    start = page.goto(f"{ui.root}/")
    assert page.problems(start).dialogs == []
    assert "<img src=x onerror=alert(4)>" in page.eval("document.querySelector('#users').textContent")

    url = f"{ui.root}{ADELE_MAIL}/messages/{s.ids['hostile']}"
    start = page.goto(url, settle=1.0)
    problems = page.problems(start)
    assert problems.dialogs == []
    # what the browser reports is the sandbox blocking the body's script and its image
    for message in problems.console:
        assert re.search(r"sandboxed and the 'allow-scripts' permission is not set|Content Security Policy", message), (
            message
        )
    assert page.eval("document.title") != "pwned"
    assert page.eval("document.querySelector('h1.subject').firstChild.textContent.trim()") == HOSTILE_SUBJECT
    assert page.eval("document.querySelector('a.attachment-name').textContent") == HOSTILE_NAME
    # nothing from the data became markup in the page: its only script is ours, no img[src=x]
    assert page.eval("[...document.scripts].map(s => s.getAttribute('src'))") == ["/static/app.js"]
    assert page.eval("document.querySelectorAll('img[src=x], b').length") == 0
    assert page.eval("document.querySelector('iframe.body').getAttribute('sandbox')") == ""

    start = page.goto(f"{ui.root}/attachments/{ADELE}/{s.ids['hostile']}/{s.attachments['hostile']}", settle=0.5)
    assert_clean(page, start, "hostile attachment")
    assert page.eval("document.querySelector('h1.subject').textContent").endswith(HOSTILE_NAME)
    assert page.eval("document.querySelector('pre.body').textContent") == "<script>alert(3)</script>\n"
    start = page.goto(
        f"{ui.root}/attachments/{ADELE}/{s.ids['hostile']}/{s.attachments['hostile']}/content", settle=0.5
    )
    assert page.problems(start).dialogs == []
    assert page.eval("document.contentType") == "text/plain"


def _download(browser: Browser, page: Page, selector: str) -> bytes:
    start = len(browser._events)
    page.eval(f"document.querySelector({json.dumps(selector)}).click()")
    begin = browser.wait_event("Browser.downloadWillBegin", start=start, timeout=30)
    guid = begin["params"]["guid"]
    done = browser.wait_event(
        "Browser.downloadProgress",
        lambda e: e["params"]["guid"] == guid and e["params"]["state"] in ("completed", "canceled"),
        start=start,
        timeout=120,
    )
    assert done["params"]["state"] == "completed"
    path = Path(done["params"].get("filePath") or browser.downloads / guid)
    data = path.read_bytes()
    path.unlink()
    return data


def test_a_download_from_the_ui_is_byte_identical(ui: UiServer, browser: Browser, page: Page) -> None:
    s = ui.seeded
    page.goto(f"{ui.root}{ADELE_MAIL}/messages/{s.ids['report']}")
    menu = _download(browser, page, "a.download[href*='" + s.attachments["menu"] + "']")
    assert menu == s.text_bytes


def test_a_20_mb_upload_moves_live_and_ends_linked_to_its_attachment(
    ui: UiServer, browser: Browser, page: Page, tmp_path: Path
) -> None:
    name = f"video-{uuid.uuid4().hex[:8]}.bin"
    source = tmp_path / name
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    start = page.goto(f"{ui.root}/uploads")
    seen: list[int] = []

    def shown_live(progress: Any) -> None:
        # every acknowledged range must reach the open page before the next one is sent
        if progress.method == "session" and 0 < progress.done < progress.total:
            seen.append(int(page.wait_for(_js_row(name, progress.done), timeout=20)))

    provider = GraphattachTokenProvider(ui.root, ADELE)
    with Client(f"{ui.root}/v1.0", provider) as client:
        draft = client.create_draft(subject="Big video")
        client.attach(Message(draft.id), source, progress=shown_live)
    assert len(seen) >= 3 and seen == sorted(seen) and len(set(seen)) == len(seen), seen
    final = page.wait_for(f"(() => {{ const r = {_row_expr(name)}; return r && r.link ? r : null; }})()", timeout=20)
    assert final["state"] == "completed" and final["value"] == 20 * 1024 * 1024
    assert_clean(page, start, "uploads")
    page.goto(final["link"])  # the completed session's attachment
    assert page.eval("document.querySelector('h1.subject').textContent").endswith(name)
    assert _download(browser, page, "a.download.button") == source.read_bytes()


def _row_expr(name: str) -> str:
    return (
        "(() => { const row = [...document.querySelectorAll('#sessions tbody tr')]"
        f".find(r => r.cells[0] && r.cells[0].textContent.includes({json.dumps(name)}));"
        " return row ? {value: row.querySelector('progress').value, state: row.cells[2].textContent.trim(),"
        " link: (row.querySelector('a.attachment-link') || {}).href || null} : null; })()"
    )


def _js_row(name: str, done: int) -> str:
    """Truthy (the bar's value) once the page's bar for ``name`` shows ``done`` bytes."""
    return f"(() => {{ const r = {_row_expr(name)}; return r && r.value === {done} ? r.value : 0; }})()"


def test_with_an_admin_key_the_ui_stays_closed_without_it(locked: Any, page: Page) -> None:
    root = locked.root
    for path in ("/", f"/mail/{ADELE}", "/uploads", "/controls"):
        start = page.goto(root + path)
        assert page.eval("location.pathname") == "/login", path
        assert page.eval("document.querySelector('#users, table.list') === null"), path
        assert_clean(page, start, path)
    with httpx.Client(base_url=root) as http:
        assert http.get("/uploads/live", headers={"accept": "text/event-stream"}).status_code == 401
        assert http.get(f"/mail/{ADELE}", headers={"accept": "text/html"}).status_code == 303
        assert http.get(f"/mail/{ADELE}").status_code == 401
        assert http.post("/controls/reset", data={"confirm": "reset"}).status_code == 401
    page.goto(f"{root}/login?next=/uploads")
    page.eval(
        "document.querySelector('input[name=key]').value = 'wrong'; document.querySelector('form[action=\"/login\"]').submit()"
    )
    page.browser.wait_event("Page.loadEventFired", lambda e: e.get("sessionId") == page.session, start=page.mark() - 1)
    page.wait_for("document.querySelector('.error') !== null")
    assert page.eval("location.pathname") == "/login"
    start = page.mark()
    page.eval(
        f"document.querySelector('input[name=key]').value = {json.dumps(ADMIN_KEY)};"
        " document.querySelector('form[action=\"/login\"]').submit()"
    )
    page.wait_for("location.pathname === '/uploads' && document.querySelector('#sessions') !== null")
    page.browser.pump(0.3)
    assert page.problems(start).dialogs == []
    page.goto(root + "/")
    assert page.eval("document.querySelector('#users') !== null")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_requests_appear_live_and_open_with_secrets_redacted(ui: UiServer, page: Page) -> None:
    if httpx.get(f"{ui.root}/requests", headers={"accept": "text/html"}).status_code == 404:
        pytest.skip("this build keeps no request journal")
    start = page.goto(f"{ui.root}/requests?user={ADELE}")
    missing = ids.new_id("message")  # a request that no other test makes: a message that is not there
    token = httpx.post(f"{ui.root}/_graphattach/token", json={"user": ADELE}).json()["access_token"]
    answer = httpx.get(f"{ui.root}/v1.0/me/messages/{missing}", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 404
    href = page.wait_for(
        "(() => { const row = [...document.querySelectorAll('#requests tbody tr')]"
        f".find(r => r.cells[2] && r.cells[2].textContent.includes({json.dumps(missing)}));"
        " return row ? row.querySelector('a').getAttribute('href') : null; })()"
    )
    assert_clean(page, start, "requests")
    page.goto(ui.root + href)
    text = page.eval("document.querySelector('main').innerText")
    assert "messages.get" in text and "404" in text and answer.headers["request-id"] in text
    assert token not in text and "(redacted)" in text


def test_a_token_minted_in_the_page_can_be_copied(ui: UiServer, page: Page) -> None:
    start = page.goto(f"{ui.root}/")
    page.eval("document.querySelector('#mint').submit()")
    token = page.wait_for("document.querySelector('#token') && document.querySelector('#token').value")
    assert token.count(".") == 2  # a JWT
    # The field is there while the page still parses; the click handler comes with app.js, a
    # deferred script: click once the page has loaded (a click before it does nothing).
    assert page.wait_for("document.readyState === 'complete'")
    page.eval("document.querySelector('button[data-copy-from=token]').click()")
    assert page.wait_for("document.querySelector('button[data-copy-from=token]').dataset.copied === '1'")
    assert_clean(page, start, "tenant, token minted")


def _session(root: str, name: str) -> str:
    adele = GraphSession(root, ADELE)
    try:
        draft = adele.post("/me/messages", {"subject": name})
        created = adele.post(
            f"/me/messages/{draft['id']}/attachments/createUploadSession",
            {"AttachmentItem": {"attachmentType": "file", "name": name, "size": 3 * 1024 * 1024}},
        )
    finally:
        adele.close()
    return str(created["uploadUrl"])


def test_ended_sessions_are_listed_after_a_restart(request: pytest.FixtureRequest, tmp_path: Path, page: Page) -> None:
    """The store keeps how a session ended: no page was open when it ended, and the process that
    saw it is gone, yet the page lists it (and its upload URL still answers as Graph does)."""
    args, env = stack_server_args(request)
    server = ServerProcess(tmp_path / "data", *args, env=env).start()
    try:
        cancelled, expired = f"cancel-{uuid.uuid4().hex[:6]}.bin", f"expire-{uuid.uuid4().hex[:6]}.bin"
        cancel_url = _session(server.root, cancelled)
        part = 320 * 1024
        put = httpx.put(
            cancel_url,
            content=b"x" * part,
            headers={"Content-Range": f"bytes 0-{part - 1}/{3 * 1024 * 1024}"},
        )
        assert put.status_code == 200
        assert httpx.delete(cancel_url).status_code == 204
        _session(server.root, expired)
        httpx.post(f"{server.root}/_graphattach/clock", json={"advanceSeconds": 6 * 3600 + 60}).raise_for_status()
        httpx.post(f"{server.root}/_graphattach/sweep").raise_for_status()
        httpx.delete(f"{server.root}/_graphattach/clock").raise_for_status()
        server.stop()
        server.start()

        start = page.goto(f"{server.root}/uploads")
        assert page.eval(_row_expr(cancelled)) == {"value": part, "state": "cancelled", "link": None}
        assert page.eval(_row_expr(expired)) == {"value": 0, "state": "expired", "link": None}
        assert_clean(page, start, "uploads after a restart")
        # to Graph, the cancelled session is gone, as before the restart
        assert httpx.get(cancel_url).status_code == 404
        again = httpx.put(
            cancel_url, content=b"x" * part, headers={"Content-Range": f"bytes {part}-{2 * part - 1}/{3 * 1024 * 1024}"}
        )
        assert again.status_code == 404
    finally:
        server.stop()


def test_cancelled_and_expired_sessions_are_shown_so(ui: UiServer, page: Page) -> None:
    start = page.goto(f"{ui.root}/uploads")
    cancelled, expiring = f"cancel-{uuid.uuid4().hex[:6]}.bin", f"expire-{uuid.uuid4().hex[:6]}.bin"
    url = _session(ui.root, cancelled)
    page.wait_for(f"(() => {{ const r = {_row_expr(cancelled)}; return r && r.state === 'active'; }})()")
    assert httpx.delete(url).status_code == 204
    page.wait_for(f"(() => {{ const r = {_row_expr(cancelled)}; return r && r.state === 'cancelled'; }})()")
    _session(ui.root, expiring)
    page.wait_for(f"(() => {{ const r = {_row_expr(expiring)}; return r && r.state === 'active'; }})()")
    lifetime = 6 * 3600 + 60
    httpx.post(f"{ui.root}/_graphattach/clock", json={"advanceSeconds": lifetime}).raise_for_status()
    try:
        page.wait_for(f"(() => {{ const r = {_row_expr(expiring)}; return r && r.state === 'expired'; }})()")
    finally:
        httpx.delete(f"{ui.root}/_graphattach/clock").raise_for_status()
    assert_clean(page, start, "uploads")
