"""Exactly-once promotion of a training run's winner, whichever step a crash interrupts.

A decision to promote is first written as an intent in the `promotions`
outbox, created only if absent and keyed by the request (the retrain
request's dedupe key, or the run id). Then, each step safe to repeat:
1. the champion pointer switch: done if the pointer already names the
   version; otherwise a compare-and-swap from the intent's expected champion
   (if someone else switched in between, the intent is closed as superseded);
2. the `champion_history` audit entry: create-if-absent under an id fixed by
   the switch itself, so a retry never writes a second entry;
3. the `model-promoted` event, carrying `promotion_id` = the key: a crash
   after the publish but before step 4 publishes it again with the same id,
   which subscribers use to drop the duplicate (Pub/Sub is at-least-once anyway);
4. the intent closed as `done`.
A redelivered request finds the open intent and runs `complete_promotion`
instead of training again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from shared.errors import PromotionConflict
from shared.models import registry
from shared.stores.artifacts.port import ArtifactStore
from shared.stores.metadata.port import PROMOTIONS, MetadataStore
from shared.structured_logging import get_logger

log = get_logger("promotion")

Publish = Callable[[dict, dict], object]


def open_intent(metadata: MetadataStore, key: str, *, version: str, expected_version: str | None, reason: str,
                actor: str, run_id: str, now: datetime | None = None) -> dict:
    """Record the decision to promote; a second call for the same key returns the first intent."""
    now = now or datetime.now(timezone.utc)
    metadata.create(PROMOTIONS, key, {
        "key": key, "created_at": now.isoformat(), "version": version, "expected_version": expected_version,
        "reason": reason, "actor": actor, "run_id": run_id, "status": "pending",
        # fixed now, so the pointer document and the audit id are the same on a retry
        "switched_at": now.isoformat(),
    })
    return metadata.get(PROMOTIONS, key)


def complete_promotion(intent: dict, *, store: ArtifactStore, metadata: MetadataStore,
                       publish: Publish | None = None) -> dict:
    """Finish every step the intent still lacks; returns the closed intent
    (`status` done, or superseded when another switch won)."""
    if intent["status"] in ("done", "superseded"):
        return intent
    pointer, generation = registry.read_champion(store)
    current = pointer["version"] if pointer else None
    if current == intent["version"] and pointer.get("promotion_id") == intent["key"]:
        document = pointer  # switched before the crash
    elif current == intent["expected_version"]:
        try:
            document = registry.switch_champion(
                store, intent["version"], reason=intent["reason"], actor=intent["actor"],
                expected=(pointer, generation), now=datetime.fromisoformat(intent["switched_at"]),
                promotion_id=intent["key"])
        except PromotionConflict as conflict:
            return _close(metadata, intent, "superseded", conflict.message)
    else:
        return _close(metadata, intent, "superseded",
                      f"the champion moved to {current} before {intent['version']} could replace "
                      f"{intent['expected_version']}; decide again on a new request")
    registry.record_switch(metadata, document)
    if publish is not None:
        publish({"version": intent["version"], "previous_version": intent["expected_version"],
                 "run_id": intent["run_id"], "promotion_id": intent["key"]},
                {"promotion_id": intent["key"]})
    return _close(metadata, intent, "done")


def _close(metadata: MetadataStore, intent: dict, status: str, reason: str | None = None) -> dict:
    closed = dict(intent, status=status, closed_at=datetime.now(timezone.utc).isoformat())
    if reason:
        closed["closing_reason"] = reason
        log.warning("promotion superseded", extra={"fields": {"key": intent["key"], "reason": reason}})
    metadata.put(PROMOTIONS, intent["key"], closed)
    return closed
