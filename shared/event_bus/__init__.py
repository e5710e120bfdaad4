"""Event bus: `port.EventBus`, the message codec (`messages`), adapters `local` and `pubsub`."""

from shared.event_bus.port import EventBus

__all__ = ["EventBus"]
