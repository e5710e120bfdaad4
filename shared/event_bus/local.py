"""In-process event bus: hands each message to the topic's subscribed handler on
a background thread, redelivering on failure like Pub/Sub does, so `make run`
shows the whole loop with no cloud at all."""

from __future__ import annotations

import contextvars
import json
import threading
import time
import uuid
from collections.abc import Callable

from shared.errors import ValidationError
from shared.event_bus.messages import BusMessage
from shared.structured_logging import get_logger, traceparent

log = get_logger("event_bus")


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
        message = BusMessage(data=json.loads(json.dumps(data)), attributes={**traceparent(), **(attributes or {})},
                             message_id=uuid.uuid4().hex)
        with self._lock:
            self.published.append((topic, message))
        handler = self.subscribers.get(topic)
        if handler is not None:
            # the handler logs under the publisher's trace, as a push delivery would
            thread = threading.Thread(target=contextvars.copy_context().run,
                                      args=(self._deliver, topic, handler, message), daemon=True,
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
            except ValidationError as error:  # acknowledged, as the event functions do
                log.error("message dropped: retrying cannot fix it", extra={"fields": {
                    "topic": topic, "reason": error.message, "field": error.field}})
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
