"""Wire format of change notifications: subscription requests and resources, notification payloads.

Shapes follow https://learn.microsoft.com/graph/api/resources/subscription,
https://learn.microsoft.com/graph/api/subscription-post-subscriptions and
https://learn.microsoft.com/graph/outlook-change-notifications-overview (the basic Outlook
notification), https://learn.microsoft.com/graph/change-notifications-lifecycle-events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graphattach.domain.errors import GraphError
from graphattach.domain.subscriptions import CHANGE_TYPES, MAX_CLIENT_STATE, Subscription
from graphattach.protocol.errors import BadRequest, SubscriptionInvalidRequest
from graphattach.protocol.jsonio import graph_datetime_7, parse_datetime

#: Properties a create may carry (read-only ones are refused, as other entities refuse them).
_WRITABLE = {
    "changeType",
    "notificationUrl",
    "resource",
    "expirationDateTime",
    "clientState",
    "lifecycleNotificationUrl",
    "latestSupportedTlsVersion",
    "includeResourceData",
    "encryptionCertificate",
    "encryptionCertificateId",
    "notificationQueryOptions",
    "notificationUrlAppId",
}
_TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")
_ODATA_TYPE = "#microsoft.graph.subscription"


def invalid_request(message: str) -> GraphError:
    return SubscriptionInvalidRequest(message)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    change_types: tuple[str, ...]
    notification_url: str
    resource: str
    expires: datetime
    client_state: str | None
    lifecycle_url: str | None
    latest_tls: str


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    expires: datetime | None
    notification_url: str | None


def _unknown(name: str) -> GraphError:
    return BadRequest(
        f"The property '{name}' does not exist on type 'microsoft.graph.subscription'. Make sure to only use "
        "property names that are defined by the type."
    )


def _string(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid_request(f"The property '{name}' is required to create a subscription.")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Cannot convert the value of property '{name}' to 'Edm.String'.")
    return value


def parse_change_types(value: str) -> tuple[str, ...]:
    """``created,updated`` → ("created", "updated"); Graph takes a comma-separated list."""
    found: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if name not in CHANGE_TYPES:
            raise invalid_request(
                f"'{part.strip()}' is not a valid changeType: use created, updated or deleted (comma-separated)."
            )
        if name not in found:
            found.append(name)
    return tuple(found)


def parse_create(body: dict[str, Any], *, strict: bool) -> CreateRequest:
    for name in body:
        if name.startswith("@odata."):
            if name == "@odata.type" and body[name] not in (_ODATA_TYPE, "microsoft.graph.subscription"):
                raise BadRequest(f"The type '{body[name]}' is not a subscription type.")
            continue
        if name not in _WRITABLE and strict:
            raise _unknown(name)
    change_type = _string(body, "changeType", required=True)
    url = _string(body, "notificationUrl", required=True)
    resource = _string(body, "resource", required=True)
    expires_raw = _string(body, "expirationDateTime", required=True)
    assert change_type is not None and url is not None and resource is not None and expires_raw is not None
    client_state = _string(body, "clientState", required=False)
    if client_state is not None and len(client_state) > MAX_CLIENT_STATE:
        raise invalid_request(f"clientState can be at most {MAX_CLIENT_STATE} characters long.")
    lifecycle = _string(body, "lifecycleNotificationUrl", required=False)
    tls = _string(body, "latestSupportedTlsVersion", required=False) or "v1_2"
    if tls not in _TLS_VERSIONS:
        raise invalid_request(f"'{tls}' is not a valid latestSupportedTlsVersion: use v1_0, v1_1, v1_2 or v1_3.")
    if body.get("includeResourceData"):
        # Rich notifications need an encryption certificate and encrypt resource data; not served.
        raise invalid_request("includeResourceData is not supported by this server: use basic notifications.")
    return CreateRequest(
        change_types=parse_change_types(change_type),
        notification_url=url,
        resource=resource,
        expires=parse_datetime(expires_raw),
        client_state=client_state,
        lifecycle_url=lifecycle,
        latest_tls=tls,
    )


def parse_update(body: dict[str, Any], *, strict: bool) -> UpdateRequest:
    for name in body:
        if name.startswith("@odata."):
            continue
        if name not in _WRITABLE and strict:
            raise _unknown(name)
    expires_raw = _string(body, "expirationDateTime", required=False)
    url = _string(body, "notificationUrl", required=False)
    if expires_raw is None and url is None:
        # github.com/microsoftgraph/msgraph-sdk-java/issues/2323 quotes the live message
        raise invalid_request(
            "Subscription must contain either the 'expirationDateTime' or 'notificationUrl' property and its value."
        )
    return UpdateRequest(None if expires_raw is None else parse_datetime(expires_raw), url)


def subscription_json(sub: Subscription) -> dict[str, Any]:
    """A subscription as Graph returns it from POST, GET and PATCH."""
    return {
        "id": sub.id,
        "resource": sub.data.get("resource"),
        "applicationId": sub.application_id,
        "changeType": ",".join(sub.change_types),
        "clientState": sub.client_state,
        "notificationUrl": sub.notification_url,
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": sub.lifecycle_url,
        "expirationDateTime": graph_datetime_7(sub.expires),
        "creatorId": sub.creator_id,
        "includeResourceData": None,
        "latestSupportedTlsVersion": sub.data.get("latestSupportedTlsVersion", "v1_2"),
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": None,
    }


def resource_path(user_id: str, item_kind: str, item_id: str) -> str:
    """``Users/{user id}/Messages/{id}``: the form of the basic Outlook notification example."""
    collection = "Messages" if item_kind == "message" else "Events"
    return f"Users/{user_id}/{collection}/{item_id}"


def change_notification(
    *, change_type: str, user_id: str, item_kind: str, item_id: str, change_key: str, tenant_id: str
) -> dict[str, Any]:
    """One ``changeNotification`` without its subscription's properties (added at delivery)."""
    path = resource_path(user_id, item_kind, item_id)
    return {
        "changeType": change_type,
        "resource": path,
        "resourceData": {
            # PascalCase as Graph writes it in Outlook notifications (outlook-change-notifications-overview)
            "@odata.type": "#Microsoft.Graph.Message" if item_kind == "message" else "#Microsoft.Graph.Event",
            "@odata.id": path,
            "@odata.etag": f'W/"{change_key}"',
            "id": item_id,
        },
        "tenantId": tenant_id,
    }


def lifecycle_notification(*, event: str, tenant_id: str) -> dict[str, Any]:
    """One lifecycle notification (``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``)."""
    return {"lifecycleEvent": event, "tenantId": tenant_id}


def delivered(body: dict[str, Any], sub: Subscription) -> dict[str, Any]:
    """A waiting notification completed with its subscription's properties, as it is POSTed."""
    rest = {k: v for k, v in body.items() if k != "tenantId"}
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": graph_datetime_7(sub.expires),
        **rest,
        "clientState": sub.client_state,
        "tenantId": body.get("tenantId"),
    }


def notification_collection(values: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``changeNotificationCollection`` POSTed to a receiver."""
    return {"value": values}
