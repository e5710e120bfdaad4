"""What the Pub/Sub-triggered entry points share: decode the envelope, run the
handler, and decide what Pub/Sub should do with the message.

A message is redelivered only when a retry can help: a dependency that is
down (`ServiceUnavailable`, network and Google API errors), a training lease
held by another run, a concurrent write. Anything else -- a field of the wrong
type, a window that makes no sense, whatever exception type it raises -- is
acknowledged and logged with its reason: retrying it would only fill the
dead-letter topic. Every such line reads "message dropped..." at ERROR: a
log-based metric counts them and alerts (infra/alerts.tf).

Before the framework parses a body at all, `refuse_unparseable_events`
answers 4xx to one it could not parse safely: larger than
`MAX_EVENT_BODY_BYTES`, not UTF-8, JSON nested deeper than `MAX_JSON_DEPTH`
(a parser recurses), or not JSON when it says it is. Nothing a publisher
chose is echoed into a log line: ids are logged as digests
(`schemas.message_ref`), reasons never quote a value.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import contextmanager

from functions.http_adapter import store_fault
from shared import wiring
from shared.errors import LeaseHeld, PoisonMessage, PreconditionFailed, ServiceError, ServiceUnavailable
from shared.event_bus.messages import MAX_JSON_DEPTH, BusMessage, json_too_deep, message_from_cloud_event
from shared.event_bus.schemas import Schema, message_ref, validate
from shared.structured_logging import get_logger, trace_context

log = get_logger("events")
EVENT_FUNCTIONS = frozenset({"drift_check", "retrain", "ingest_clinical", "ingest_reference"})
MAX_EVENT_BODY_BYTES = 128 * 1024  # a push envelope: base64 of at most 64 KiB of data, and headers


def _event_ref(cloud_event) -> str:
    return message_ref(str(cloud_event.get("id") or ""))


def decode(cloud_event, schema: Schema | None = None) -> BusMessage | None:
    """The message, validated against `schema` when given; None (logged) when it
    can never be processed."""
    try:
        message = message_from_cloud_event(cloud_event.data, cloud_event["id"], cloud_event.get("time"))
        return validate(message, schema) if schema is not None else message
    except (PoisonMessage, ServiceError) as error:
        if isinstance(error, ServiceError) and retry_can_help(error):
            raise
        log.error("message dropped", extra={"fields": {
            "reason": error.message, "field": error.field, "event_id": _event_ref(cloud_event)}})
        return None


def refuse_unparseable_events(app) -> None:
    """Answer 4xx, before functions-framework parses it, to an event body it
    cannot parse safely (it would crash with a 500, and Pub/Sub redeliver)."""
    import flask

    if app.name not in EVENT_FUNCTIONS or getattr(app, "_refuses_unparseable_events", False):
        return
    app._refuses_unparseable_events = True

    @app.before_request
    def check_body():
        request = flask.request
        if request.method.upper() != "POST":
            return None
        reason, status, field = _unparseable(request)
        if reason is None:
            return None
        log.error("message dropped: the event body cannot be parsed", extra={"fields": {
            "reason": reason, "field": field, "function": app.name}})
        body = json.dumps({"error": {"code": "invalid_event" if status == 400 else "payload_too_large",
                                     "message": reason, "field": field}})
        response = flask.Response(body, status=status, mimetype="application/json")
        if status == 413:
            response.headers["Connection"] = "close"
        return response


def _unparseable(request) -> tuple[str | None, int, str | None]:
    if request.content_length is not None and request.content_length > MAX_EVENT_BODY_BYTES:
        return f"the body is larger than {MAX_EVENT_BODY_BYTES} bytes", 413, "body"
    body = request.stream.read(MAX_EVENT_BODY_BYTES + 1)
    if len(body) > MAX_EVENT_BODY_BYTES:
        return f"the body is larger than {MAX_EVENT_BODY_BYTES} bytes", 413, "body"
    # put it back, where request.get_data() (the framework's read) finds it
    request._cached_data = body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8", 400, "body"
    if "json" in (request.mimetype or "") or not request.mimetype:
        if json_too_deep(text):
            return f"the body nests JSON deeper than {MAX_JSON_DEPTH} levels", 400, "body"
        if text.strip():
            try:
                json.loads(text)
            except ValueError:
                return "the body is not JSON", 400, "body"
    for name, value in request.headers.items():  # binary mode: the CloudEvent's attributes are headers
        if name.lower().startswith("ce-") and len(value) > 1024:
            return "a ce- header is longer than 1024 characters", 400, "headers"
    return None, 200, None


def handle_event(cloud_event, handler: Callable[[BusMessage], object]) -> None:
    """Decode and handle one event; raise (so Pub/Sub redelivers) only when a retry can help.
    The handler (a `wiring` runner) validates the message against its topic's schema."""
    message = decode(cloud_event)
    if message is None:
        return
    try:
        handler(message)
    except Exception as error:
        if retry_can_help(error):
            answer_for_a_retry(error)
        fields = {"event_id": _event_ref(cloud_event), "message_id": message_ref(message.message_id),
                  "error": type(error).__name__,
                  # the handler saw only validated fields, so its error cannot quote anything else
                  "reason": error.message if isinstance(error, ServiceError) else str(error)[:500]}
        if isinstance(error, ServiceError):
            fields["field"] = error.field
            log.error("message dropped: retrying cannot fix it", extra={"fields": fields})
        else:  # not raised on purpose: keep the stack trace for whoever reads the log
            log.exception("message dropped: retrying cannot fix it", extra={"fields": fields})


@contextmanager
def faults_answered_for_a_retry():
    """For handlers that keep their own error handling (ingestion): a fault a retry
    can get past -- a store down, read-only or full -- answered 503/409 like every
    other event function instead of a 500; anything else propagates unchanged."""
    try:
        yield
    except Exception as error:
        if retry_can_help(error):
            answer_for_a_retry(error)
        raise


def retry_can_help(error: Exception) -> bool:
    from google.api_core.exceptions import GoogleAPICallError

    if isinstance(error, (ServiceUnavailable, LeaseHeld, PreconditionFailed)):
        return True
    if isinstance(error, ServiceError):
        return False
    return isinstance(error, (OSError, GoogleAPICallError)) or store_fault(error) is not None


def answer_for_a_retry(error: Exception):
    """Pub/Sub redelivers on any non-2xx; answer what happened -- 503 for a
    dependency or store that is down (a read-only or full disk included), 409
    for a lost race -- rather than let the framework crash with a 500. Only
    the error's class and our own message are logged."""
    import flask

    if not flask.has_request_context():  # called outside an HTTP delivery: the caller retries
        raise error
    conflict = isinstance(error, (LeaseHeld, PreconditionFailed))
    reason = error.message if isinstance(error, ServiceError) else type(error).__name__
    log.warning("message left for a redelivery", extra={"fields": {"reason": reason,
                                                                    "error": type(error).__name__}})
    flask.abort(409 if conflict else 503, description=f"retry later: {reason}"[:200])


def traced(handler):
    """Log the handler's lines under the trace the message carries (its
    `traceparent` attribute, or the CloudEvent's), so a retrain is followed
    from the request that caused it."""

    @functools.wraps(handler)
    def wrapper(cloud_event):
        data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
        message = data.get("message") if isinstance(data.get("message"), dict) else {}
        attributes = message.get("attributes")
        # a malformed envelope is decode()'s to refuse: here it only carries no trace
        carriers = {key: value for key, value in attributes.items() if key in ("traceparent", "tracestate")
                    and isinstance(value, str)} if isinstance(attributes, dict) else {}
        if isinstance(cloud_event.get("traceparent"), str) and "traceparent" not in carriers:
            carriers["traceparent"] = cloud_event.get("traceparent")
        with trace_context(carriers, wiring.trace_project(handler.__name__)):
            return handler(cloud_event)

    return wrapper
