"""`BusMessage`, what a handler receives, whichever way the message came (a
Pub/Sub push as a CloudEvent, or the local bus), and the push envelope codec."""

from __future__ import annotations

import base64
import json
import re
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
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


MAX_DATA_BYTES = 64 * 1024  # a message's decoded data: ours are a few hundred bytes
MAX_JSON_DEPTH = 32  # nesting of objects and arrays, checked before parsing
MAX_MESSAGE_ID_CHARS = 128
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `text` nests objects/arrays deeper than `limit`, found without
    parsing it (a parser recurses: 100,000 levels raise RecursionError)."""
    depth = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def message_from_cloud_event(event_data, event_id: str | None = None, event_time: str | None = None) -> BusMessage:
    """Decode the Pub/Sub envelope {"message": {"data": base64, ...}}; any
    field of the wrong type or size is a `PoisonMessage`, never a crash."""
    if not isinstance(event_data, dict) or not isinstance(event_data.get("message"), dict):
        raise PoisonMessage("the event is not a Pub/Sub message envelope")
    message = event_data["message"]
    raw = message.get("data") or ""
    if not isinstance(raw, str) or len(raw) > MAX_DATA_BYTES * 4 // 3 + 4:
        raise PoisonMessage(f"the message data must be base64 text of at most {MAX_DATA_BYTES} bytes decoded")
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8") if raw else ""
    except (ValueError, UnicodeDecodeError):
        raise PoisonMessage("the message data is not base64-encoded UTF-8 JSON") from None
    if json_too_deep(text):
        raise PoisonMessage(f"the message data nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        raise PoisonMessage("the message data is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise PoisonMessage("the message data must be a JSON object")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or len(attributes) > 32 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 256 and len(v) <= 1024
            for k, v in attributes.items()):
        raise PoisonMessage("the message attributes must be an object of at most 32 short strings")
    publish_time = message.get("publishTime", message.get("publish_time"))
    if publish_time is not None and not isinstance(publish_time, str):
        raise PoisonMessage("the message publishTime must be an RFC 3339 time")
    publish_time = parse_timestamp(publish_time) if publish_time else None
    if publish_time is None and message.get("publishTime", message.get("publish_time")):
        raise PoisonMessage("the message publishTime must be an RFC 3339 time")
    publish_time = publish_time or parse_timestamp(event_time) or datetime.now(timezone.utc)
    message_id = message.get("messageId") or message.get("message_id") or event_id or ""
    if not isinstance(message_id, (str, int)) or isinstance(message_id, bool) \
            or len(str(message_id)) > MAX_MESSAGE_ID_CHARS:
        raise PoisonMessage(f"the message id must be a string of at most {MAX_MESSAGE_ID_CHARS} characters")
    return BusMessage(data=data, attributes=dict(attributes), message_id=str(message_id),
                      publish_time=publish_time)


def envelope(data: dict, attributes: dict | None = None, message_id: str | None = None,
             publish_time: datetime | None = None) -> dict:
    """The Pub/Sub push envelope for `data` (what Eventarc wraps in a CloudEvent)."""
    publish_time = publish_time or datetime.now(timezone.utc)
    return {"message": {"data": base64.b64encode(json.dumps(data).encode()).decode(),
                        "attributes": attributes or {}, "messageId": message_id or uuid.uuid4().hex,
                        "publishTime": publish_time.isoformat().replace("+00:00", "Z")},
            "subscription": "projects/local/subscriptions/local"}
