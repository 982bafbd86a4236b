"""Where graphattach may send HTTP requests on a subscriber's behalf, and the validation handshake.

graphattach calls the ``notificationUrl`` and ``lifecycleNotificationUrl`` its callers give it: a
server-side request forgery vector if any URL were allowed. By default only loopback receivers
(``localhost``, ``127.0.0.0/8``, ``::1``) are called; ``--notification-hosts`` adds host names or
addresses (``*`` wildcards, ``hooks.example.com``, ``*.internal``). Names are matched as written,
never resolved to decide; the server's own port on loopback and any ``/_graphattach`` path are
always refused (an admin API would otherwise be reachable through a subscription), and redirects
are never followed.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import secrets
import time
from urllib.parse import quote, urlsplit

from graphattach._httpx import httpx
from graphattach.domain.errors import GraphError
from graphattach.domain.subscriptions import VALIDATION_TIMEOUT
from graphattach.protocol.errors import SubscriptionInvalidRequest, SubscriptionValidationFailed
from graphattach.settings import Settings


def refused(message: str) -> GraphError:
    return SubscriptionInvalidRequest(message)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_receiver(settings: Settings, url: str, *, what: str = "NotificationUrl") -> None:
    """Refuse (400) a receiver URL graphattach must not call."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refused(f"{what} '{url}' is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refused(f"{what} scheme='{parts.scheme}' is not supported.")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    if parts.path.lower().startswith("/_graphattach"):
        # another graphattach on this machine: its admin API must not be reachable through us
        raise refused(f"{what} '{url}' points at a graphattach admin API: graphattach does not call it.")
    if _is_loopback(host):
        if port == settings.port:
            raise refused(f"{what} '{url}' points at this server: graphattach does not send notifications to itself.")
        return
    for pattern in settings.notification_hosts:
        if fnmatch.fnmatchcase(host.lower(), pattern.lower()):
            return
    raise refused(
        f"{what} host '{host}' is not allowed: graphattach only calls loopback receivers unless the server "
        "is started with --notification-hosts (e.g. --notification-hosts '{host}')."
    )


def http_client(settings: Settings, timeout: float) -> httpx.AsyncClient:
    """A client for receivers: no redirects followed, self-signed certificates only when allowed."""
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, verify=not settings.notification_insecure_tls, trust_env=False
    )


def new_validation_token() -> str:
    """An opaque token with characters that need URL encoding, like the ones Graph sends."""
    return f"Validation: Testing client application reachability for subscription Request-Id: {secrets.token_hex(16)}"


async def validate_endpoint(settings: Settings, url: str) -> float:
    """POST ``url?validationToken=...`` and require the token back as text/plain within 10 s
    (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks#notificationurl-validation).
    Returns the round trip in milliseconds; raises Graph's errors otherwise."""
    token = new_validation_token()
    target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token, safe='')}"
    started = time.perf_counter()
    try:
        async with http_client(settings, VALIDATION_TIMEOUT) as client:
            response = await client.post(target, headers={"Content-Type": "text/plain; charset=utf-8"}, content=b"")
    except httpx.TimeoutException:
        # github.com/microsoftgraph/nodejs-webhooks-sample/issues/350 quotes this message
        raise refused("Subscription validation request timed out.") from None
    except httpx.HTTPError:
        raise _failed("Notification endpoint must respond with 200 OK to validation request.") from None
    if response.status_code != 200:
        raise _failed("Notification endpoint must respond with 200 OK to validation request.")
    content_type = response.headers.get("content-type", "")
    if response.text != token or not content_type.lower().startswith("text/plain"):
        # github.com/microsoftgraph/java-spring-webhooks-sample/issues/82 quotes this message
        raise _failed("Response must exactly match validationToken query parameter.")
    return (time.perf_counter() - started) * 1000


def _failed(reason: str) -> GraphError:
    # github.com/splunk/azure-functions-splunk/issues/26 quotes code and message
    return SubscriptionValidationFailed(reason=reason)
