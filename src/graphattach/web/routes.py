"""The web UI's routes, mounted at ``/`` after Graph, the upload origin, OAuth and the admin API."""

from __future__ import annotations

from typing import Any

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from graphattach.web import views

U = "{user}"
ITEM = "{item}"
ATT = "/attachments/{user}/{item}/{attachment}"

ROUTES: list[Any] = [
    Route("/", views.tenant, methods=["GET"]),
    Route("/users", views.add_user, methods=["POST"]),
    Route("/token", views.mint_token, methods=["POST"]),
    Route("/login", views.login, methods=["GET", "POST"]),
    Route("/logout", views.logout, methods=["POST"]),
    Route(f"/mail/{U}", views.mailbox, methods=["GET"]),
    Route(f"/mail/{U}/folders/{{folder}}", views.mailbox, methods=["GET"]),
    Route(f"/mail/{U}/messages/{ITEM}", views.message, methods=["GET"]),
    Route(f"/mail/{U}/messages/{ITEM}/body", views.message_body, methods=["GET"]),
    Route(f"/mail/{U}/messages/{ITEM}/mime", views.message_mime, methods=["GET"]),
    Route(f"/calendar/{U}", views.calendar, methods=["GET"]),
    Route(f"/calendar/{U}/calendars/{{calendar}}", views.calendar, methods=["GET"]),
    Route(f"/calendar/{U}/events/{ITEM}", views.event, methods=["GET"]),
    Route(f"/calendar/{U}/events/{ITEM}/body", views.message_body, methods=["GET"]),
    Route(ATT, views.attachment_page, methods=["GET"]),
    Route(f"{ATT}/download", views.attachment_download, methods=["GET"]),
    Route(f"{ATT}/content", views.attachment_content, methods=["GET"]),
    Route(f"{ATT}/body", views.attachment_body, methods=["GET"]),
    Route("/uploads", views.uploads, methods=["GET"]),
    Route("/uploads/live", views.uploads_live, methods=["GET"]),
    Route("/requests", views.requests_page, methods=["GET"]),
    Route("/requests/live", views.requests_live, methods=["GET"]),
    Route("/requests/{seq}", views.request_detail, methods=["GET"]),
    Route("/controls", views.controls, methods=["GET"]),
    Route("/controls/reset", views.controls_reset, methods=["POST"]),
    Route("/controls/clock", views.controls_clock, methods=["POST"]),
    Mount("/static", StaticFiles(packages=[("graphattach.web", "static")]), name="static"),
]
