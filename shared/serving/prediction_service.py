"""Serving: predict and log, read the history, describe the model, record
clinicians' outcomes. Stores, committer and model are passed in by the caller."""

from __future__ import annotations

from datetime import datetime, timezone

from shared.errors import StoreUnavailable
from shared.event_bus.messages import parse_timestamp
from shared.models.loading import LoadedModel, ModelLoader
from shared.records import PredictionRecord, isoformat
from shared.schema import FEATURE_RANGES, FEATURES, Vitals
from shared.serving.group_commit import GroupCommitter
from shared.stores.predictions.ids import new_prediction_id
from shared.stores.predictions.port import PredictionStore
from shared.structured_logging import get_logger

log = get_logger("prediction_service")


def predict_and_log(
    instances: list[Vitals],
    *,
    loader: ModelLoader,
    store: PredictionStore,
    require_log: bool = True,
    batch: bool = False,
    now: datetime | None = None,
) -> dict:
    """Predict, then commit one record per instance before answering (for
    callers without an event loop: the loop simulation, tools).

    With `require_log` (the default) a store failure fails the request with
    503, so every answered prediction has its record. Without it the answer is
    served with `"logged": false`.
    """
    model = loader.get()
    records = predict_records(model, instances, now)
    response = answer(records, model, batch)
    try:
        store.save_predictions(records)
    except StoreUnavailable as error:
        _answer_unlogged(response, error, len(records), require_log)
    return response


async def predict_and_log_grouped(
    instances: list[Vitals],
    *,
    model: LoadedModel,
    committer: GroupCommitter,
    require_log: bool = True,
    batch: bool = False,
) -> dict:
    """`predict_and_log` for the `predict` endpoint's event loop: the records
    are committed in one transaction with the other requests waiting at the
    same time, and the answer waits for that commit. Same answer, same 503."""
    records = predict_records(model, instances)
    response = answer(records, model, batch)
    try:
        await committer.save(records)
    except StoreUnavailable as error:
        _answer_unlogged(response, error, len(records), require_log)
    return response


def _answer_unlogged(response: dict, error: StoreUnavailable, count: int, require_log: bool) -> None:
    if require_log:
        raise error
    log.warning("prediction served without a log record (REQUIRE_PREDICTION_LOG=false)",
                extra={"fields": {"reason": error.message, "count": count}})
    response["logged"] = False


def predict_records(model: LoadedModel, instances: list[Vitals], now: datetime | None = None) -> list[PredictionRecord]:
    results = model.predict([vitals.as_row() for vitals in instances])
    now = now or datetime.now(timezone.utc)
    return [
        PredictionRecord(
            prediction_id=new_prediction_id(now), created_at=now, temperature=vitals.temperature,
            heart_rate=vitals.heart_rate, blood_pressure=vitals.blood_pressure, prediction=label,
            probabilities=probabilities, model_version=model.version,
        )
        for vitals, (label, probabilities) in zip(instances, results)
    ]


def answer(records: list[PredictionRecord], model: LoadedModel, batch: bool) -> dict:
    items = [{"prediction": r.prediction, "probabilities": r.probabilities, "prediction_id": r.prediction_id}
             for r in records]
    if batch:
        return {"predictions": items, "model_version": model.version}
    return dict(items[0], model_version=model.version)


def prediction_history(store: PredictionStore, limit: int, cursor: str | None) -> dict:
    records, next_cursor = store.list_predictions(limit, cursor)
    return {"predictions": [record.to_api() for record in records], "next_cursor": next_cursor}


def describe_model(model: LoadedModel) -> dict:
    manifest = model.manifest
    return {
        "version": model.version,
        "created_at": _as_utc_z(manifest.get("created_at")),
        "features": [{"name": name, "min": FEATURE_RANGES[name][0], "max": FEATURE_RANGES[name][1],
                      "unit": FEATURE_RANGES[name][2]} for name in FEATURES],
        "labels": manifest.get("labels"),
        "metrics": manifest.get("metrics"),
        "training_parameters": manifest.get("training_parameters"),
        "data_fingerprint": manifest.get("data_fingerprint"),
        # Which artifact and engine answer (the fuzz in the manifest certified each).
        "served_with": {"artifact": model.served_from, "engine": model.engine},
    }


def _as_utc_z(text: str | None) -> str | None:
    """Manifests record `+00:00`; every time in the API is written `...Z`."""
    return isoformat(parse_timestamp(text)) or text


def record_outcome(store: PredictionStore, prediction_id: str, label: str, now: datetime | None = None,
                   caller: str = "anonymous") -> dict:
    record = store.record_outcome(prediction_id, label, now or datetime.now(timezone.utc), caller=caller)
    return record.to_api()
