"""The event bus's contract, in process and on the Pub/Sub emulator: what is
published arrives with the same data and attributes; what cannot be sent is
refused the same way."""

from __future__ import annotations

import json
import os
import time

import pytest

from shared.event_bus.local import LocalEventBus
from tests.conftest import PROJECT

TOPIC = "contract-topic"


class LocalBusAndInbox:
    def __init__(self):
        self.received = []
        self.bus = LocalEventBus(subscribers={TOPIC: self.received.append}, backoff_seconds=0)

    def receive(self, expected: int):
        self.bus.join(timeout=10)
        return [(message.data, message.attributes) for message in self.received[:expected]]


class PubSubBusAndInbox:
    def __init__(self, emulator):
        from google.cloud import pubsub_v1

        from shared.event_bus.pubsub import PubSubEventBus, create_topics

        os.environ.update(emulator.env)
        self.topic = f"{TOPIC}-{time.monotonic_ns()}"
        create_topics(PROJECT, [self.topic])
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscription = self.subscriber.subscription_path(PROJECT, f"{self.topic}-sub")
        self.subscriber.create_subscription(name=self.subscription, topic=f"projects/{PROJECT}/topics/{self.topic}")
        self.bus = PubSubEventBus(PROJECT)

    def receive(self, expected: int):
        messages, deadline = [], time.monotonic() + 30
        while len(messages) < expected and time.monotonic() < deadline:
            response = self.subscriber.pull(subscription=self.subscription, max_messages=10, timeout=5)
            if response.received_messages:
                self.subscriber.acknowledge(subscription=self.subscription,
                                            ack_ids=[m.ack_id for m in response.received_messages])
            messages.extend(m.message for m in response.received_messages)
        return [(json.loads(m.data), dict(m.attributes)) for m in messages]


@pytest.fixture(params=["local", "pubsub"])
def bus_and_inbox(request):
    if request.param == "local":
        yield LocalBusAndInbox()
        return
    inbox = PubSubBusAndInbox(request.getfixturevalue("pubsub_emulator"))
    yield inbox
    inbox.subscriber.close()


def topic_of(inbox) -> str:
    return getattr(inbox, "topic", TOPIC)


def test_data_and_attributes_arrive_unchanged(bus_and_inbox):
    data = {"reason": "PSI 0.4 on temperature", "report_id": "r-1", "window_hours": 24.5, "labels": ["NO ENFERMO"],
            "note": "ENFERMEDAD CRÓNICA"}
    message_id = bus_and_inbox.bus.publish(topic_of(bus_and_inbox), data, {"report_id": "r-1"})
    assert isinstance(message_id, str) and message_id
    assert bus_and_inbox.receive(1) == [(data, {"report_id": "r-1"})]


def test_data_that_is_not_json_is_refused_before_sending(bus_and_inbox):
    with pytest.raises(TypeError):
        bus_and_inbox.bus.publish(topic_of(bus_and_inbox), {"when": object()})
