"""What the Pub/Sub-triggered entry points share: decode the envelope, drop
poison messages (acknowledge: a retry cannot fix them), let the rest raise so
Pub/Sub redelivers."""

from __future__ import annotations

from shared.errors import PoisonMessage
from shared.event_bus.messages import BusMessage, message_from_cloud_event
from shared.structured_logging import get_logger

log = get_logger("events")


def decode(cloud_event) -> BusMessage | None:
    try:
        return message_from_cloud_event(cloud_event.data, cloud_event["id"], cloud_event.get("time"))
    except PoisonMessage as error:
        log.error("message dropped", extra={"fields": {"reason": error.message, "event_id": cloud_event["id"]}})
        return None
