"""Event bus port: publish a JSON message with attributes to a topic.

Adapters:
- `PubSubEventBus`: Google Cloud Pub/Sub (the emulator when
  PUBSUB_EMULATOR_HOST is set).
- `LocalEventBus`: in-process; hands each message to the topic's subscribed
  handler on a background thread, redelivering on failure like Pub/Sub does,
  so `make run` shows the whole loop with no cloud at all.

`BusMessage` is what a handler receives, whichever way the message came
(a Pub/Sub push as a CloudEvent, or the local bus).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from shared.errors import ServiceError
from shared.structured_logging import get_logger

log = get_logger("event_bus")


class PoisonMessage(ServiceError):
    """A message that can never be processed; acknowledged and dropped."""

    code = "poison_message"


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


class EventBus(Protocol):
    def publish(self, topic: str, data: dict, attributes: dict[str, str] | None = None) -> str: ...


class LocalEventBus:
    """Delivers to subscribed handlers in the background, retrying failures."""

    def __init__(self, subscribers: dict[str, Callable[[BusMessage], object]] | None = None,
                 max_attempts: int = 5, backoff_seconds: float = 1.0):
        self.subscribers = subscribers or {}
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.published: list[tuple[str, BusMessage]] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, data: dict, attributes: dict[str, str] | None = None) -> str:
        message = BusMessage(data=json.loads(json.dumps(data)), attributes=dict(attributes or {}),
                             message_id=uuid.uuid4().hex)
        with self._lock:
            self.published.append((topic, message))
        handler = self.subscribers.get(topic)
        if handler is not None:
            thread = threading.Thread(target=self._deliver, args=(topic, handler, message), daemon=True,
                                      name=f"deliver-{topic}")
            with self._lock:
                self._threads.append(thread)
            thread.start()
        return message.message_id

    def _deliver(self, topic: str, handler, message: BusMessage) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                handler(message)
                return
            except Exception as error:  # noqa: BLE001 -- mirror Pub/Sub: nack and redeliver
                log.warning("local delivery failed; will retry" if attempt < self.max_attempts
                            else "local delivery failed; giving up (dead letter)",
                            extra={"fields": {"topic": topic, "attempt": attempt, "error": repr(error)}})
                time.sleep(self.backoff_seconds * attempt)

    def join(self, timeout: float | None = None) -> None:
        """Wait for deliveries in flight (the CLI and tests use it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [thread for thread in self._threads if thread.is_alive()]
            if not pending:
                return
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            pending[0].join(remaining)
            if deadline is not None and time.monotonic() >= deadline:
                return


class PubSubEventBus:
    def __init__(self, project: str, client=None, timeout: float = 30.0):
        self.project = project
        self._client = client
        self.timeout = timeout

    @property
    def client(self):
        if self._client is None:
            from google.cloud import pubsub_v1

            self._client = pubsub_v1.PublisherClient()
        return self._client

    def publish(self, topic: str, data: dict, attributes: dict[str, str] | None = None) -> str:
        from google.api_core import exceptions

        from shared.errors import ServiceUnavailable

        path = self.client.topic_path(self.project, topic)
        try:
            future = self.client.publish(path, json.dumps(data).encode(), **(attributes or {}))
            return future.result(timeout=self.timeout)
        except (exceptions.GoogleAPICallError, TimeoutError) as error:
            raise ServiceUnavailable(f"could not publish to {topic}: {type(error).__name__}") from None


def create_topics(project: str, topics: list[str]) -> list[str]:
    """Create missing topics (for the emulator; Terraform does it in the cloud)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    created = []
    for topic in topics:
        try:
            publisher.create_topic(name=publisher.topic_path(project, topic))
            created.append(topic)
        except AlreadyExists:
            pass
    return created
