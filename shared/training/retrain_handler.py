"""The retrain request handler: validate, deduplicate, launch the training job;
and what that job trains for a request, exactly once.

- Requests older than RETRAIN_MAX_EVENT_AGE_SECONDS are dropped (a poisoned
  message cannot retry forever).
- The dedupe key is the drift report id when there is one (two requests for
  the same drift train once), else the message id. A key marked done is
  acknowledged without training; a key whose job is still within its time
  limit is acknowledged without a second launch.
- The training runs in the training job (`shared.training.job`), which takes
  the lease (so two different requests never train over each other) and
  calls `train_for_request`; see that module for why no timeout there can
  strand a lease or lose the request.
- What it trains on, and the baseline the new model carries, follow the
  policy in `training_data`.
- Bad data is recorded as a failed run and acknowledged: retrying cannot help.
  A champion that cannot be loaded raises `ChampionUnavailable`: redelivered later.
- A decision to promote goes through the request's outbox entry
  (`training.promotion`): a delivery that finds an open entry finishes the
  promotion instead of training again, so a crash at any step promotes once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from shared.config import Settings
from shared.errors import TrainingDataError
from shared.event_bus.messages import BusMessage
from shared.governance.change_control import ChangeBounds
from shared.stores.metadata.port import EXPERIMENTS, PROCESSED_EVENTS, PROMOTIONS, TRAINING_REQUESTS
from shared.structured_logging import current_trace_id, get_logger
from shared.training.promotion import complete_promotion
from shared.training.promotion_gate import GateRules
from shared.training.runs import TrainingOptions, run_training, settle_experiment
from shared.training.training_data import TrainingData, assemble_training_data, baseline_population

log = get_logger("retraining")
# Cloud Run retries a failed task this many times (infra/training_job.tf sets the same).
TRAINING_JOB_MAX_RETRIES = 1


def training_options(settings: Settings) -> TrainingOptions:
    return TrainingOptions(
        seed=settings.training_seed, families=settings.families, budget_seconds=settings.search_budget_seconds,
        gate=gate_rules(settings), rare_class_min_recall=settings.rare_class_min_recall,
        change_bounds=ChangeBounds.from_settings(settings),
    )


def gate_rules(settings: Settings) -> GateRules:
    return GateRules(min_macro_f1=settings.promotion_min_macro_f1, f1_tolerance=settings.promotion_f1_tolerance,
                     max_recall_drop=settings.promotion_max_recall_drop)


def load_training_data(predictions, settings: Settings, artifacts=None,
                       now: datetime | None = None) -> TrainingData:
    """The labelled production window, topped up with reference rows while it is
    small (the policy is `training_data`'s)."""
    return assemble_training_data(
        predictions=predictions, artifacts=artifacts, window_days=settings.training_window_days,
        min_rows=settings.training_min_rows, half_life_days=settings.training_half_life_days,
        reference_rows=settings.training_rows, seed=settings.training_seed,
        now=now or datetime.now(timezone.utc))


def handle_retrain_message(message: BusMessage, *, metadata, launcher, settings: Settings,
                           now: datetime | None = None, **_unused) -> dict:
    """Validate and deduplicate a retrain request, then launch the training job.

    Returns within seconds whatever training costs, so no function timeout or
    ack deadline bounds a training. Raises (so Pub/Sub redelivers) only when
    the launch itself fails.
    """
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
    launched = metadata.get(TRAINING_REQUESTS, key)
    if launched is not None and launched["status"] == "launched" and not _stale(launched, settings, now):
        log.info("retrain request already launched", extra={"fields": {
            "key": key, "execution": launched.get("execution")}})
        return {"status": "already_launched", "key": key, "execution": launched.get("execution")}
    request = {"key": key, "requested_at": message.publish_time.isoformat(), "trace_id": current_trace_id(),
               "data": message.data,  # the triggering window: the new model's baseline
               "trigger": {"message_id": message.message_id, "reason": message.data.get("reason"),
                           "report_id": message.data.get("report_id")}}
    execution = launcher.launch(request)
    metadata.put(TRAINING_REQUESTS, key, {"created_at": now.isoformat(), "status": "launched",
                                          "execution": execution, "request": request})
    log.info("training job launched", extra={"fields": {"key": key, "execution": execution}})
    return {"status": "launched", "key": key, "execution": execution}


def _stale(launched: dict, settings: Settings, now: datetime) -> bool:
    """A launch that should long be over (every attempt of the job timed out) yet
    marked nothing done: the job died without a trace, so launch it again."""
    attempts = 1 + TRAINING_JOB_MAX_RETRIES
    started = datetime.fromisoformat(launched["created_at"])
    return (now - started).total_seconds() > attempts * settings.training_job_timeout_seconds


def train_for_request(request_data: dict, *, key: str, trigger: dict, predictions, artifacts, metadata, bus,
                      settings: Settings, now: datetime) -> dict:
    """Train, gate and promote for one request; the training job calls this under
    the lease. An open outbox entry is finished instead of training again."""
    def publish(data: dict, attributes: dict) -> str:
        return bus.publish(settings.model_promoted_topic, data, attributes)

    intent = metadata.get(PROMOTIONS, key)
    if intent is not None:  # an earlier delivery decided and crashed before marking the request done
        closed = complete_promotion(intent, store=artifacts, metadata=metadata, publish=publish)
        settle_experiment(artifacts, metadata, closed)
        return _mark_done(metadata, key, now, closed["run_id"], closed["status"] == "done", closed["version"],
                          status="resumed")
    run_id = uuid.uuid4().hex
    try:
        data = load_training_data(predictions, settings, artifacts, now)
        sources = data.record
        population, sources["baseline"] = baseline_population(
            request_data, predictions=predictions, artifacts=artifacts,
            default_hours=settings.drift_window_hours, now=now)
        if len(population) < settings.drift_min_samples:
            sources["baseline"]["fallback"] = "too few inputs in the window: the training rows instead"
            population = None
        record = run_training(data.X, data.y, store=artifacts, metadata=metadata,
                              options=training_options(settings), actor="retrain", data_sources=sources,
                              trigger=trigger, run_id=run_id,
                              baseline_population=population, sample_weight=data.weights,
                              outcome_reference=data.production,
                              labelled_share=sources["baseline"].get("labelled_share_by_prediction"),
                              promotion_key=key, publish_promoted=publish)
    except TrainingDataError as error:
        failure = {"run_id": run_id, "created_at": now.isoformat(), "status": "failed", "reason": error.message,
                   "trigger": trigger, "promotion": {"promoted": False, "reasons": [error.message]},
                   "winner": {"family": None, "version": None}}
        metadata.put(EXPERIMENTS, run_id, failure)
        metadata.put(PROCESSED_EVENTS, key, {"created_at": now.isoformat(), "status": "failed",
                                             "run_id": run_id, "reason": error.message})
        log.error("retrain failed on its data; champion untouched", extra={"fields": {"reason": error.message}})
        return {"status": "failed", "reason": error.message, "run_id": run_id}
    return _mark_done(metadata, key, now, run_id, record["promotion"]["promoted"], record["winner"]["version"],
                      status="trained")


def _mark_done(metadata, key: str, now: datetime, run_id: str, promoted: bool, version: str, *, status: str) -> dict:
    """The request's done-marker: the last step, so a crash before it redoes only what is missing."""
    metadata.put(PROCESSED_EVENTS, key, {"created_at": now.isoformat(), "status": "done", "run_id": run_id,
                                         "promoted": promoted, "version": version})
    return {"status": status, "run_id": run_id, "promoted": promoted, "version": version}
