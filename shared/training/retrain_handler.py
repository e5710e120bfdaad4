"""The retrain request handler: at-least-once delivery made exactly-once.

- Requests older than RETRAIN_MAX_EVENT_AGE_SECONDS are dropped (a poisoned
  message cannot retry forever).
- The dedupe key is the drift report id when there is one (two requests for
  the same drift train once), else the message id. A key marked done is
  acknowledged without training.
- A lease in the metadata store (a Firestore transaction, or a SQLite
  transaction locally) keeps two different requests from training over each
  other; the loser raises `LeaseHeld`, so Pub/Sub redelivers it later.
- Bad data is recorded as a failed run and acknowledged: retrying cannot help.
  A crash half-way marks nothing done, so the next delivery completes it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import numpy as np

from shared.config import Settings
from shared.errors import LeaseHeld, TrainingDataError
from shared.event_bus.messages import BusMessage
from shared.stores.metadata.port import EXPERIMENTS, PROCESSED_EVENTS
from shared.structured_logging import get_logger
from shared.training.runs import TrainingOptions, run_training
from shared.training.synthetic_data import generate_reference_data

log = get_logger("retraining")
TRAINING_LEASE = "training"


def training_options(settings: Settings) -> TrainingOptions:
    return TrainingOptions(
        seed=settings.training_seed, families=settings.families, budget_seconds=settings.search_budget_seconds,
        f1_tolerance=settings.promotion_f1_tolerance, max_recall_drop=settings.promotion_max_recall_drop,
    )


def load_training_data(predictions, settings: Settings, artifacts=None,
                       today: date | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The reference data, every clinician-labelled production record, and --
    with TRAINING_LAKE_DAYS > 0 -- the lake's clinical partitions of those days."""
    X, y = generate_reference_data(settings.training_rows, seed=settings.training_seed)
    sources: dict = {}
    if settings.training_lake_days > 0 and artifacts is not None:
        from shared.ingestion import lake

        today = today or datetime.now(timezone.utc).date()
        first = today - timedelta(days=settings.training_lake_days - 1)
        days = [day for day in lake.partition_dates(artifacts) if first <= day <= today]
        X_lake, y_lake, parts = lake.read_clinical_training_data(artifacts, days)
        sources["lake_partitions"] = parts
        sources["lake_rows"] = int(len(y_lake))
        if len(y_lake):
            X, y = np.vstack([X, X_lake]), np.concatenate([y, y_lake])
    outcome_features, outcome_labels = [], []
    for chunk in predictions.iter_labelled():
        outcome_features.append(chunk.features)
        outcome_labels.extend(chunk.outcomes)
    sources.update({"reference_generator": {"rows": settings.training_rows, "seed": settings.training_seed},
                    "labelled_outcomes": {"rows": len(outcome_labels)}})
    if outcome_labels:
        X = np.vstack([X, *outcome_features])
        y = np.concatenate([y, np.asarray(outcome_labels, dtype=object)])
    return X, y, sources


def handle_retrain_message(message: BusMessage, *, predictions, artifacts, metadata, bus, settings: Settings,
                           now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    age = (now - message.publish_time).total_seconds()
    if age > settings.retrain_max_event_age_seconds:
        log.warning("retrain request dropped: too old", extra={"fields": {
            "message_id": message.message_id, "age_seconds": round(age, 1)}})
        return {"status": "dropped_too_old", "age_seconds": age}
    key = f"retrain-{message.data.get('report_id') or message.attributes.get('report_id') or message.message_id}"
    done = metadata.get(PROCESSED_EVENTS, key)
    if done is not None:
        log.info("retrain request already handled", extra={"fields": {"key": key}})
        return {"status": "duplicate", "key": key, "previous": done}
    holder = uuid.uuid4().hex
    if not metadata.acquire_lease(TRAINING_LEASE, holder, settings.training_lease_seconds, now):
        raise LeaseHeld("another training run holds the lease; retry later")
    try:
        done = metadata.get(PROCESSED_EVENTS, key)  # a twin may have finished while we waited
        if done is not None:
            return {"status": "duplicate", "key": key, "previous": done}
        run_id = uuid.uuid4().hex
        trigger = {"message_id": message.message_id, "reason": message.data.get("reason"),
                   "report_id": message.data.get("report_id")}
        try:
            X, y, sources = load_training_data(predictions, settings, artifacts)
            record = run_training(X, y, store=artifacts, metadata=metadata, options=training_options(settings),
                                  actor="retrain", data_sources=sources, trigger=trigger, run_id=run_id)
        except TrainingDataError as error:
            failure = {"run_id": run_id, "created_at": now.isoformat(), "status": "failed", "reason": error.message,
                       "trigger": trigger, "promotion": {"promoted": False, "reasons": [error.message]},
                       "winner": {"family": None, "version": None}}
            metadata.put(EXPERIMENTS, run_id, failure)
            metadata.put(PROCESSED_EVENTS, key, {"created_at": now.isoformat(), "status": "failed",
                                                 "run_id": run_id, "reason": error.message})
            log.error("retrain failed on its data; champion untouched", extra={"fields": {"reason": error.message}})
            return {"status": "failed", "reason": error.message, "run_id": run_id}
        promoted = record["promotion"]["promoted"]
        if promoted:
            bus.publish(settings.model_promoted_topic, {
                "version": record["winner"]["version"], "previous_version": record["champion_before"],
                "run_id": run_id, "family": record["winner"]["family"]})
        metadata.put(PROCESSED_EVENTS, key, {"created_at": now.isoformat(), "status": "done", "run_id": run_id,
                                             "promoted": promoted, "version": record["winner"]["version"]})
        return {"status": "trained", "run_id": run_id, "promoted": promoted, "version": record["winner"]["version"]}
    finally:
        metadata.release_lease(TRAINING_LEASE, holder)
