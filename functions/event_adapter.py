"""What the Pub/Sub-triggered entry points share: decode the envelope, run the
handler, and decide what Pub/Sub should do with the message.

A message is redelivered only when a retry can help: a dependency that is
down (`ServiceUnavailable`, network and Google API errors), a training lease
held by another run, a concurrent write. Anything else -- a field of the wrong
type, a window that makes no sense, whatever exception type it raises -- is
acknowledged and logged with its reason: retrying it would only fill the
dead-letter topic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from shared import wiring
from shared.errors import LeaseHeld, PoisonMessage, PreconditionFailed, ServiceError, ServiceUnavailable
from shared.event_bus.messages import BusMessage, message_from_cloud_event
from shared.structured_logging import get_logger, trace_context

log = get_logger("events")


def decode(cloud_event) -> BusMessage | None:
    try:
        return message_from_cloud_event(cloud_event.data, cloud_event["id"], cloud_event.get("time"))
    except PoisonMessage as error:
        log.error("message dropped", extra={"fields": {"reason": error.message, "event_id": cloud_event["id"]}})
        return None


def handle_event(cloud_event, handler: Callable[[BusMessage], object]) -> None:
    """Decode and handle one event; raise (so Pub/Sub redelivers) only when a retry can help."""
    message = decode(cloud_event)
    if message is None:
        return
    try:
        handler(message)
    except Exception as error:
        if retry_can_help(error):
            raise
        fields = {"event_id": cloud_event["id"], "message_id": message.message_id, "error": type(error).__name__,
                  "reason": error.message if isinstance(error, ServiceError) else str(error)[:500]}
        if isinstance(error, ServiceError):
            fields["field"] = error.field
            log.error("message dropped: retrying cannot fix it", extra={"fields": fields})
        else:  # not raised on purpose: keep the stack trace for whoever reads the log
            log.exception("message dropped: retrying cannot fix it", extra={"fields": fields})


def retry_can_help(error: Exception) -> bool:
    from google.api_core.exceptions import GoogleAPICallError

    if isinstance(error, (ServiceUnavailable, LeaseHeld, PreconditionFailed)):
        return True
    if isinstance(error, ServiceError):
        return False
    return isinstance(error, (OSError, GoogleAPICallError))


def traced(handler):
    """Log the handler's lines under the trace the message carries (its
    `traceparent` attribute, or the CloudEvent's), so a retrain is followed
    from the request that caused it."""

    @functools.wraps(handler)
    def wrapper(cloud_event):
        data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
        message = data.get("message") if isinstance(data.get("message"), dict) else {}
        carriers = dict(message.get("attributes") or {})
        if cloud_event.get("traceparent") and "traceparent" not in carriers:
            carriers["traceparent"] = cloud_event.get("traceparent")
        with trace_context(carriers, wiring.trace_project(handler.__name__)):
            return handler(cloud_event)

    return wrapper
