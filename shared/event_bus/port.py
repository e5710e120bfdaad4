"""Event bus port: publish a JSON message with attributes to a topic."""

from __future__ import annotations

from typing import Protocol


class EventBus(Protocol):
    def publish(self, topic: str, data: dict, attributes: dict[str, str] | None = None) -> str: ...
