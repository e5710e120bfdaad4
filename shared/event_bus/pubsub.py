"""Event bus on Google Cloud Pub/Sub (the emulator when PUBSUB_EMULATOR_HOST is set)."""

from __future__ import annotations

import functools
import json


class PubSubEventBus:
    def __init__(self, project: str, client=None, timeout: float = 30.0):
        self.project = project
        if client is not None:
            self.client = client
        self.timeout = timeout

    @functools.cached_property
    def client(self):
        from google.cloud import pubsub_v1

        return pubsub_v1.PublisherClient()

    def publish(self, topic: str, data: dict, attributes: dict[str, str] | None = None) -> str:
        from google.api_core import exceptions

        from shared.errors import ServiceUnavailable
        from shared.structured_logging import traceparent

        path = self.client.topic_path(self.project, topic)
        try:
            future = self.client.publish(path, json.dumps(data).encode(), **traceparent(), **(attributes or {}))
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
