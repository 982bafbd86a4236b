"""The web UI's routes, mounted at ``/`` after Graph, the upload origin, OAuth and the admin API."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from graphattach.web import assets, calendar, faults, live, mail, requests, tenant

U = "{user}"
ITEM = "{item}"
ATT = "/attachments/{user}/{item}/{attachment}"

ROUTES: list[Any] = [
    Route("/", tenant.tenant, methods=["GET"]),
    Route("/users", tenant.add_user, methods=["POST"]),
    Route("/token", tenant.mint_token, methods=["POST"]),
    Route("/login", tenant.login, methods=["GET", "POST"]),
    Route("/logout", tenant.logout, methods=["POST"]),
    Route(f"/mail/{U}", mail.mailbox, methods=["GET"]),
    Route(f"/mail/{U}/folders/{{folder}}", mail.mailbox, methods=["GET"]),
    Route(f"/mail/{U}/messages/{ITEM}", mail.message, methods=["GET"]),
    Route(f"/mail/{U}/messages/{ITEM}/body", mail.message_body, methods=["GET"]),
    Route(f"/mail/{U}/messages/{ITEM}/mime", mail.message_mime, methods=["GET"]),
    Route(f"/calendar/{U}", calendar.calendar, methods=["GET"]),
    Route(f"/calendar/{U}/calendars/{{calendar}}", calendar.calendar, methods=["GET"]),
    Route(f"/calendar/{U}/events/{ITEM}", calendar.event, methods=["GET"]),
    Route(f"/calendar/{U}/events/{ITEM}/body", mail.message_body, methods=["GET"]),
    Route(ATT, mail.attachment_page, methods=["GET"]),
    Route(f"{ATT}/download", mail.attachment_download, methods=["GET"]),
    Route(f"{ATT}/content", mail.attachment_content, methods=["GET"]),
    Route(f"{ATT}/body", mail.attachment_body, methods=["GET"]),
    Route("/uploads", live.uploads, methods=["GET"]),
    Route("/uploads/live", live.uploads_live, methods=["GET"]),
    Route("/requests", requests.requests_page, methods=["GET"]),
    Route("/requests/live", requests.requests_live, methods=["GET"]),
    Route("/requests/{seq}", requests.request_detail, methods=["GET"]),
    Route("/controls", tenant.controls, methods=["GET"]),
    Route("/controls/reset", tenant.controls_reset, methods=["POST"]),
    Route("/controls/clock", tenant.controls_clock, methods=["POST"]),
    Route("/controls/faults", faults.faults, methods=["POST"]),
    Route("/controls/throttling", faults.throttling, methods=["POST"]),
    Route("/static/{name}", assets.static, methods=["GET"]),
]
