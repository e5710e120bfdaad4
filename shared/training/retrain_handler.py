"""The retrain request handler: validate, deduplicate, launch the training job;
and what that job trains for a request, exactly once.

- The message was validated against the retrain schema (`event_bus.schemas`):
  it names its evidence, a drift report that must exist, or is an
  operator's (`reason: "manual"`, `requested_by`), or resumes a stored
  request (`request_id`, from the job's requeue or the hourly sweep).
- Requests older than RETRAIN_MAX_EVENT_AGE_SECONDS are dropped (a poisoned
  message cannot retry forever).
- The dedupe key is the drift report id when there is one (two requests for
  the same drift train once), else a digest of the message id. A key marked
  done is acknowledged without training; a key whose job still beats
  (`heartbeat`) is acknowledged without a second launch; one whose job
  stopped beating is launched again, at most MAX_LAUNCHES times, then
  settled as failed with an ERROR line (alerted on).
- Only validated fields are stored: the request document holds the key, the
  report's window, and who or what asked; the job gets only its id.
- The training runs in the training job (`jobs.train`, `training.job`), which takes
  the lease (so two different requests never train over each other) and
  calls `train_for_request`; see that module for why no timeout there can
  strand a lease or lose the request.
- What it trains on, and the baseline the new model carries, follow the
  policy in `training_data`. A drift request's trigger carries the report's
  `changed_since` (where input drift began, from the report's own record,
  not the message): labels from before then weigh less.
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
from shared.errors import TrainingDataError, ValidationError
from shared.event_bus.messages import BusMessage, parse_timestamp
from shared.event_bus.schemas import message_ref
from shared.governance.change_control import ChangeBounds
from shared.stores.metadata.port import DRIFT_REPORTS, EXPERIMENTS, PROCESSED_EVENTS, PROMOTIONS, TRAINING_REQUESTS
from shared.structured_logging import current_trace_id, get_logger
from shared.training.heartbeat import stranded
from shared.training.promotion import complete_promotion
from shared.training.promotion_gate import GateRules
from shared.training.runs import TrainingOptions, run_training, settle_experiment
from shared.training.training_data import TrainingData, assemble_training_data, baseline_population

log = get_logger("retraining")
# Cloud Run retries a failed task this many times (infra/training_job.tf sets the same).
TRAINING_JOB_MAX_RETRIES = 1
# A request whose job died (no heartbeat) is launched again, at most this many times in all.
MAX_LAUNCHES = 3


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
                       now: datetime | None = None, changed_since: datetime | None = None) -> TrainingData:
    """The labelled production window, topped up with reference rows while it is
    small (the policy is `training_data`'s); labels from before `changed_since`
    (a drift request's detected change) weigh less."""
    return assemble_training_data(
        predictions=predictions, artifacts=artifacts, window_days=settings.training_window_days,
        min_rows=settings.training_min_rows, half_life_days=settings.training_half_life_days,
        reference_rows=settings.training_rows, seed=settings.training_seed,
        max_caller_share=settings.training_max_caller_share, now=now or datetime.now(timezone.utc),
        changed_since=changed_since)


def handle_retrain_message(message: BusMessage, *, metadata, launcher, settings: Settings,
                           now: datetime | None = None, **_unused) -> dict:
    """Check a (schema-validated) retrain request's evidence, deduplicate it,
    store it, then launch the training job with the stored request's id.

    Returns within seconds whatever training costs, so no function timeout or
    ack deadline bounds a training. Raises (so Pub/Sub redelivers) only when
    the launch itself fails.
    """
    now = now or datetime.now(timezone.utc)
    age = (now - message.publish_time).total_seconds()
    if age > settings.retrain_max_event_age_seconds:
        log.warning("retrain request dropped: too old", extra={"fields": {
            "message_id": message_ref(message.message_id), "age_seconds": round(age, 1)}})
        return {"status": "dropped_too_old", "age_seconds": age}
    key, request = _request_for(message, metadata, now)
    done = metadata.get(PROCESSED_EVENTS, key)
    if done is not None:
        log.info("retrain request already handled", extra={"fields": {"key": key}})
        return {"status": "duplicate", "key": key, "previous": done}
    stored = metadata.get(TRAINING_REQUESTS, key)
    if stored is not None and stored.get("status") in ("launching", "launched") and not stranded(stored, now):
        log.info("retrain request already launched", extra={"fields": {
            "key": key, "execution": stored.get("execution")}})
        return {"status": "already_launched", "key": key, "execution": stored.get("execution")}
    launches = int((stored or {}).get("launches", 0)) + 1
    if launches > MAX_LAUNCHES:
        return give_up(metadata, key, stored, now)
    # Stored first: the job reads its request by this id (nothing rides on its command line).
    document = {**(stored or {}), "created_at": (stored or {}).get("created_at", now.isoformat()),
                "status": "launching", "launches": launches, "launched_at": now.isoformat(),
                "request": (stored or {}).get("request", request)}
    document.pop("heartbeat_at", None)
    metadata.put(TRAINING_REQUESTS, key, document)
    execution = launcher.launch(key)
    metadata.put(TRAINING_REQUESTS, key, dict(metadata.get(TRAINING_REQUESTS, key) or document,
                                              execution=execution))
    log.info("training job launched", extra={"fields": {"key": key, "execution": execution, "launch": launches}})
    return {"status": "launched", "key": key, "execution": execution}


def _request_for(message: BusMessage, metadata, now: datetime) -> tuple[str, dict]:
    """The dedupe key and the request to store, built only from validated
    fields and the evidence's own record: a drift request trains on its
    report's window; an operator's names who asked; a resume names a stored request."""
    data = message.data
    if data.get("request_id"):
        if metadata.get(TRAINING_REQUESTS, data["request_id"]) is None:
            raise ValidationError("'request_id' names no stored training request", field="request_id")
        return data["request_id"], {}
    report_id = data.get("report_id") or message.attributes.get("report_id")
    request = {"requested_at": message.publish_time.isoformat(), "trace_id": current_trace_id()}
    if report_id:
        report = metadata.get(DRIFT_REPORTS, report_id)
        if report is None:
            raise ValidationError("'report_id' names no drift report", field="report_id")
        key = f"retrain-{report_id}"
        window = {name: report[name] for name in ("source", "partition", "window_start", "window_end")
                  if report.get(name)}
        trigger = {"reason": "drift", "report_id": report_id}
        # a follow-up retrain (`monitoring.retrain_rules`) comes after its first
        # retrain's change, unless this report's own wait published too
        wait, follow_up = report.get("retrain_wait") or {}, report.get("retrain_follow_up") or {}
        own = wait.get("status") == "published"
        changed_since = ((wait.get("changed_since") if own else None) or follow_up.get("changed_since")
                         or wait.get("changed_since"))
        if changed_since:  # input drift began then: older labels weigh less (`training_data`)
            trigger["changed_since"] = changed_since
        return key, {**request, "key": key, "data": window,  # the report's window: the new model's baseline
                     "trigger": trigger}
    key = f"retrain-manual-{message_ref(message.message_id)}"
    return key, {**request, "key": key, "data": {},
                 "trigger": {"reason": "manual", "requested_by": data.get("requested_by")}}


def give_up(metadata, key: str, stored: dict | None, now: datetime) -> dict:
    """Every launch of this request died: settle it as failed, visibly (the
    console lists failed requests; the ERROR line is alerted on)."""
    reason = f"the training job died on each of {MAX_LAUNCHES} launches"
    metadata.put(TRAINING_REQUESTS, key, {**(stored or {}), "status": "failed", "reason": reason,
                                          "failed_at": now.isoformat()})
    metadata.put(PROCESSED_EVENTS, key, {"created_at": now.isoformat(), "status": "failed", "reason": reason})
    log.error("training request failed: its job died on every launch", extra={"fields": {
        "key": key, "launches": MAX_LAUNCHES}})
    return {"status": "failed", "key": key, "reason": reason}


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
        data = load_training_data(predictions, settings, artifacts, now,
                                  changed_since=parse_timestamp(trigger.get("changed_since")))
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
                              since_change=data.since_change,
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
