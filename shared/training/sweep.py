"""The hourly sweep: no retrain request or promotion left half-done.

A training job that dies after the champion pointer switched leaves an open
promotion intent (no `champion_history` entry, no `model-promoted` notice);
one that dies without a retry leaves a request that no longer beats. Nothing
else would look at either until the same request came again. The hourly
drift-check trigger therefore also runs this sweep: each open intent and
each stranded request goes back on the retrain topic *by reference*
(`{"request_id": key}`); the retrain function relaunches it (at most
`retrain_handler.MAX_LAUNCHES` times, then settles it as failed, alerted),
and the job finishes the open promotion instead of training again.
"""

from __future__ import annotations

from datetime import datetime, timezone

from shared.stores.metadata.port import PROCESSED_EVENTS, PROMOTIONS, TRAINING_REQUESTS
from shared.structured_logging import get_logger
from shared.training.heartbeat import HEARTBEAT_SECONDS, stranded

log = get_logger("sweep")
SWEEP_LIMIT = 50  # newest documents looked at per collection and sweep: the work stays bounded


def sweep_stranded_training(metadata, bus, settings, *, now: datetime | None = None,
                            heartbeat_seconds: float = HEARTBEAT_SECONDS) -> list[str]:
    """Republish each stranded request and each request with an open promotion
    intent; returns their keys."""
    now = now or datetime.now(timezone.utc)
    keys = []
    for request in metadata.list(TRAINING_REQUESTS, limit=SWEEP_LIMIT):
        key = request.get("request", {}).get("key")
        if key and stranded(request, now, heartbeat_seconds) and metadata.get(PROCESSED_EVENTS, key) is None:
            keys.append(key)
    for intent in metadata.list(PROMOTIONS, limit=SWEEP_LIMIT):
        key = intent.get("key")
        if intent.get("status") not in ("done", "superseded") and key and key not in keys:
            request = metadata.get(TRAINING_REQUESTS, key)
            if request is not None and metadata.get(PROCESSED_EVENTS, key) is None \
                    and (request.get("status") not in ("launching", "launched") or stranded(request, now,
                                                                                            heartbeat_seconds)):
                keys.append(key)
    for key in keys:
        bus.publish(settings.retrain_topic, {"request_id": key, "source": "sweep"}, {})
        log.warning("stranded training request put back on the retrain topic", extra={"fields": {"key": key}})
    return keys
