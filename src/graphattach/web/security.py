"""Headers, the admin-key login cookie and CSRF tokens of the web UI."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from graphattach.services.context import Context

#: Pages: scripts, styles, frames and fetches from this origin only; no inline script or style.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " frame-src 'self'; object-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
#: Untrusted documents (message bodies, attachment bytes): a sandbox (no script, a unique origin)
#: that may show inline styles and data: images and load nothing.
SANDBOX_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
#: A PDF shown by the browser's viewer: a sandboxed response cannot be shown by Chromium's viewer,
#: so PDFs load nothing else and stay framed by this origin only.
PDF_CSP = "default-src 'none'; object-src 'self'; frame-ancestors 'self'"

PAGE_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "SAMEORIGIN",
    "cache-control": "no-store",
}

ADMIN_COOKIE = "graphattach_ui"
CSRF_COOKIE = "graphattach_csrf"
CSRF_FIELD = "csrf"


def admin_cookie_value(key: str) -> str:
    """What the login cookie holds: derived from the admin key, never the key itself."""
    return hmac.new(key.encode(), b"graphattach web ui", hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two strings, any characters (``compare_digest`` on ``str``
    accepts ASCII only)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def is_open(ctx: Context, request: Request) -> bool:
    """True when the server has no admin key or the request carries the login cookie (or the key)."""
    key = ctx.settings.admin_key
    if not key:
        return True
    header = request.headers.get("x-graphattach-admin-key", "")
    if header and same(header, key):
        return True
    return same(request.cookies.get(ADMIN_COOKIE, ""), admin_cookie_value(key))


def csrf_token(request: Request) -> tuple[str, bool]:
    """The request's CSRF token and whether it is new (to be set as a cookie)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) >= 32:
        return current, False
    return secrets.token_urlsafe(32), True


def csrf_ok(request: Request, submitted: str) -> bool:
    """Double-submit check: the form's token equals the cookie's, and a browser's Origin, when
    sent, is this server's."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if len(cookie) < 32 or not same(cookie, submitted):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        return origin.split("://", 1)[-1] == host
    return True


def safe_next(value: str | None) -> str:
    """A local path to go back to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
