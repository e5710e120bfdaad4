"""CloudEvents as Eventarc delivers Pub/Sub messages, in both HTTP modes."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from shared.event_bus.messages import envelope


def pubsub_cloud_event(data: dict, attributes: dict | None = None, message_id: str | None = None,
                       publish_time: datetime | None = None, structured: bool = False):
    """(headers, body) of a Pub/Sub message wrapped in a CloudEvent."""
    publish_time = publish_time or datetime.now(timezone.utc)
    event = CloudEvent({
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/demo/topics/test",
        "id": message_id or uuid.uuid4().hex,
        "time": publish_time.isoformat().replace("+00:00", "Z"),
    }, envelope(data, attributes, message_id, publish_time))
    return to_structured(event) if structured else to_binary(event)


def post_event(test_client, headers_and_body):
    headers, body = headers_and_body
    return test_client.post("/", headers=headers, data=body)
