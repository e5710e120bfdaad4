"""`BusMessage`, what a handler receives, whichever way the message came (a
Pub/Sub push as a CloudEvent, or the local bus), and the push envelope codec."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from shared.errors import PoisonMessage


@dataclass
class BusMessage:
    data: dict
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    publish_time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def message_from_cloud_event(event_data, event_id: str | None = None, event_time: str | None = None) -> BusMessage:
    """Decode the Pub/Sub envelope {"message": {"data": base64, ...}}."""
    if not isinstance(event_data, dict) or not isinstance(event_data.get("message"), dict):
        raise PoisonMessage("the event is not a Pub/Sub message envelope")
    message = event_data["message"]
    raw = message.get("data") or ""
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8") if raw else ""
        data = json.loads(text) if text.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise PoisonMessage("the message data is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise PoisonMessage("the message data must be a JSON object")
    attributes = message.get("attributes") or {}
    publish_time = (parse_timestamp(message.get("publishTime") or message.get("publish_time"))
                    or parse_timestamp(event_time) or datetime.now(timezone.utc))
    message_id = str(message.get("messageId") or message.get("message_id") or event_id or "")
    return BusMessage(data=data, attributes={str(k): str(v) for k, v in attributes.items()},
                      message_id=message_id, publish_time=publish_time)


def envelope(data: dict, attributes: dict | None = None, message_id: str | None = None,
             publish_time: datetime | None = None) -> dict:
    """The Pub/Sub push envelope for `data` (what Eventarc wraps in a CloudEvent)."""
    publish_time = publish_time or datetime.now(timezone.utc)
    return {"message": {"data": base64.b64encode(json.dumps(data).encode()).decode(),
                        "attributes": attributes or {}, "messageId": message_id or uuid.uuid4().hex,
                        "publishTime": publish_time.isoformat().replace("+00:00", "Z")},
            "subscription": "projects/local/subscriptions/local"}
