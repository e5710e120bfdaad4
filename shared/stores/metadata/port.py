"""Metadata store port: small JSON documents the loop keeps about itself.

Collections: `experiments` (training runs), `drift_reports`, `champion_history`
(the audit trail of every champion switch), `promotions` (the outbox of a
training run's promotion, keyed by its request), `processed_events`
(idempotency keys for at-least-once delivery), `drift_aggregates` (one hour
of predictions counted into the champion's bins), `training_requests` (which
retrain request launched which training job) and `leases` (so two trainings
never run over each other).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

EXPERIMENTS = "experiments"


DRIFT_REPORTS = "drift_reports"


CHAMPION_HISTORY = "champion_history"


PROCESSED_EVENTS = "processed_events"


PROMOTIONS = "promotions"


LEASES = "leases"


TRAINING_REQUESTS = "training_requests"


DRIFT_AGGREGATES = "drift_aggregates"


class MetadataStore(Protocol):
    def put(self, collection: str, document_id: str, document: dict) -> None: ...

    def get(self, collection: str, document_id: str) -> dict | None: ...

    def create(self, collection: str, document_id: str, document: dict) -> bool:
        """Write only if absent; True when this call created it."""

    def list(self, collection: str, limit: int = 50) -> list[dict]:
        """Newest first, by the document's `created_at`."""

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...
