"""The drift check: count a window of logged predictions into the champion
baseline's bins, compute every statistic, store a report (+ plots), and on
drift publish one retrain request.

Two ways to count the window:
- hourly (`{"aggregation": "hourly"}`, what Cloud Scheduler asks for nightly):
  merge the window's stored hourly units (`hourly_aggregates`), so the
  check's time does not grow with the day's traffic; `{"aggregate_hour":
  "last_closed"}` (hourly) stores the unit of the hour that just closed;
- streaming (any other request): read every record of the window, for an
  ad hoc window of any bounds.

Idempotent per window: the report id is derived from the window, so a
redelivered trigger or a re-run finds the same report and does not publish
again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone

from shared.config import Settings
from shared.errors import ModelUnavailable
from shared.event_bus.messages import BusMessage
from shared.event_bus.port import EventBus
from shared.governance.labellers import labeller_agreement
from shared.models import registry
from shared.models.layout import read_manifest
from shared.monitoring import estimated_drop
from shared.monitoring.drift_request import _requested_day, window_from_request  # noqa: F401  (re-exported)
from shared.monitoring.plots import feature_plot_png
from shared.monitoring.report_html import describe_baseline, render_report_html
from shared.monitoring.statistics import DriftThresholds, WindowAggregator, evaluate_window
from shared.records import WindowChunk, isoformat
from shared.schema import FEATURE_RANGES
from shared.stores.artifacts.port import ArtifactStore
from shared.stores.metadata.port import DRIFT_REPORTS, MetadataStore
from shared.stores.predictions.port import PredictionStore
from shared.structured_logging import get_logger

log = get_logger("drift_monitoring")
# Below this many held-out production outcomes, a five-class macro-F1 swings by
# more than the drop threshold: the training holdout is the steadier reference.
OUTCOME_REFERENCE_MIN_ROWS = 200


def thresholds_from(settings: Settings) -> DriftThresholds:
    return DriftThresholds(
        psi_warning=settings.drift_psi_warning, psi_drift=settings.drift_psi_threshold,
        wasserstein_drift=settings.drift_wasserstein_threshold, label_js_drift=settings.drift_label_js_threshold,
        f1_drop=settings.drift_f1_drop_threshold, min_samples=settings.drift_min_samples,
        min_outcomes=settings.drift_min_outcomes, false_alarm_rate=settings.drift_false_alarm_rate,
        design_effect=settings.drift_design_effect,
    )


def report_id_for(start: datetime, end: datetime) -> str:
    """One report per window, whichever model serves by the time it is re-run:
    otherwise a promotion caused by a window would make that window retrain again."""
    digest = hashlib.sha256(f"{isoformat(start)}|{isoformat(end)}".encode()).hexdigest()[:12]
    return f"{end.strftime('%Y%m%dT%H%M%S')}Z-{digest}"


def run_drift_check(
    *,
    start: datetime,
    end: datetime,
    predictions: PredictionStore,
    artifacts: ArtifactStore,
    metadata: MetadataStore,
    bus: EventBus,
    settings: Settings,
    trigger: dict | None = None,
) -> dict:
    """Check one window of logged predictions; returns the report (an existing one if already done).

    Inputs and predicted labels are those of predictions made in the window;
    the performance check uses the outcomes *recorded* in the window, whenever
    their predictions were made (clinicians confirm days later).
    """

    def inputs(champion: str):
        for chunk in predictions.iter_window(start, end):
            yield WindowChunk(chunk.features, chunk.predictions, model_versions=chunk.model_versions,
                              probabilities=chunk.probabilities)

    return _check(
        report_id=report_id_for(start, end),
        aggregate=lambda champion, baseline, learnt_until: _with_outcomes(
            WindowAggregator(baseline, model_version=champion, learnt_until=learnt_until).consume(inputs(champion)),
            predictions.iter_outcomes_recorded(start, end)),
        scope={"source": "predictions", "window_start": isoformat(start), "window_end": isoformat(end),
               # each labeller's agreement with the champion and its peers (governance.labellers)
               "labellers": labeller_agreement(predictions.iter_outcomes_recorded(start, end))},
        artifacts=artifacts, metadata=metadata, bus=bus, settings=settings, trigger=trigger)


def _with_outcomes(aggregator: WindowAggregator, outcomes) -> WindowAggregator:
    for chunk in outcomes:
        aggregator.add_outcomes(chunk)
    return aggregator


def run_hourly_drift_check(
    *,
    end: datetime,
    hours: float,
    predictions: PredictionStore,
    artifacts: ArtifactStore,
    metadata: MetadataStore,
    bus: EventBus,
    settings: Settings,
    trigger: dict | None = None,
    now: datetime | None = None,
) -> dict:
    """Check the `hours` closed hours before `end` by merging their hourly units."""
    from shared.monitoring import hourly_aggregates

    window_end = hourly_aggregates.floor_hour(end - hourly_aggregates.CLOSE_GRACE)
    window_start = window_end - timedelta(hours=round(hours))
    return _check(
        report_id=report_id_for(window_start, window_end),
        aggregate=lambda champion, baseline, learnt_until: hourly_aggregates.aggregate_window(
            window_start, window_end, champion=champion, baseline=baseline, predictions=predictions,
            metadata=metadata, now=now, learnt_until=learnt_until),
        scope={"source": "predictions", "aggregation": "hourly", "window_start": isoformat(window_start),
               "window_end": isoformat(window_end)},
        artifacts=artifacts, metadata=metadata, bus=bus, settings=settings, trigger=trigger)


def store_hourly_aggregate(hour: datetime, *, predictions: PredictionStore, artifacts: ArtifactStore,
                           metadata: MetadataStore, now: datetime | None = None) -> dict:
    """Count one closed hour for the serving champion (the hourly trigger)."""
    from shared.monitoring import hourly_aggregates

    pointer, _ = registry.read_champion(artifacts)
    if pointer is None:
        # Until the first model, every hourly trigger finds no bins: a retry
        # cannot change that, so this is an acknowledged no-op, not a failure
        # that would dead-letter (and page) every hour.
        log.info("hourly aggregate skipped: no champion model yet", extra={"fields": {"hour": hour.isoformat()}})
        return {"aggregate_id": None, "rows": 0, "skipped": "no champion model yet"}
    champion = pointer["version"]
    baseline = registry.read_baseline(artifacts, champion)
    counts = hourly_aggregates.hour_counts(hour, champion=champion, baseline=baseline, predictions=predictions,
                                           metadata=metadata, now=now)
    return {"aggregate_id": hourly_aggregates.aggregate_id(champion, hour), "rows": counts["rows"]}


def run_partition_drift_check(
    *,
    day: date | None = None,
    artifacts: ArtifactStore,
    metadata: MetadataStore,
    bus: EventBus,
    settings: Settings,
    trigger: dict | None = None,
) -> dict:
    """Check the newest (or a given) clinical partition of the lake: new data in
    the health service's database, before any of it reaches /predict. The
    champion's predictions on it give prediction drift, its clinicians'
    labels the performance check."""
    from shared.ingestion import lake

    days = lake.partition_dates(artifacts)
    day = day or (days[-1] if days else None)
    if day is None or day not in days:
        raise ValueError(f"no clinical partition for {day or 'any date'} in the lake")
    # The id follows the partition's content: a re-ingested day with other rows is a new report.
    digest = lake.read_commit(artifacts, day)["content_sha256"][:12]
    labelled_at = datetime.combine(day, datetime.min.time(), timezone.utc)  # a retrain reads the day's partition

    def chunks(champion: str):
        from shared.models.loading import load_version
        from shared.schema import FEATURES

        model = load_version(artifacts, champion)
        for frame in lake.iter_partition_frames(artifacts, day):
            features = frame.select(list(FEATURES)).to_numpy().astype(float)
            predicted = [label for label, _ in model.predict(features.tolist())] if len(features) else []
            labels = frame.get_column("label").to_list()
            yield WindowChunk(features, predicted, labels, outcome_times=[labelled_at] * len(labels))

    return _check(
        report_id=f"lake-{day.isoformat()}-{digest}",
        aggregate=lambda champion, baseline, learnt_until: WindowAggregator(
            baseline, learnt_until=learnt_until).consume(chunks(champion)),
        scope={"source": "lake", "partition": f"{lake.CLINICAL}/date={day.isoformat()}",
               "window_start": f"{day.isoformat()}T00:00:00Z", "window_end": f"{day.isoformat()}T23:59:59Z"},
        artifacts=artifacts, metadata=metadata, bus=bus, settings=settings, trigger=trigger)


def _check(*, report_id: str, aggregate, scope: dict, artifacts: ArtifactStore, metadata: MetadataStore,
           bus: EventBus, settings: Settings, trigger: dict | None) -> dict:
    pointer, _ = registry.read_champion(artifacts)
    if pointer is None:
        raise ModelUnavailable("no champion model: nothing to compare the window against")
    champion = pointer["version"]
    existing = metadata.get(DRIFT_REPORTS, report_id)
    asked = existing is not None and (existing["decision"] == "drift" or (  # then a re-run may still publish
        existing.get("retrain_follow_up") or {}).get("status") == "published")
    if existing is not None and (not asked or existing.get("retrain_request_id")):
        log.info("drift window already checked", extra={"fields": {"report_id": report_id}})
        return existing
    baseline = registry.read_baseline(artifacts, champion)
    # Outcomes are compared with the champion's metrics on held-out production
    # outcomes when its baseline has them (labelled by the same clinicians, the
    # same way), else with its training holdout.
    champion_metrics = baseline.get("outcome_metrics")
    if not champion_metrics or champion_metrics["rows"] < OUTCOME_REFERENCE_MIN_ROWS:
        champion_metrics = read_manifest(artifacts, champion).get("metrics")
    from shared.monitoring import learnt_outcomes, retrain_rules, retrain_wait

    cutoff = learnt_outcomes.evidence_cutoff(baseline, metadata.get(retrain_wait.RETRAIN_WAITS, champion))
    aggregator = aggregate(champion, baseline, cutoff and cutoff["until"])
    thresholds = thresholds_from(settings)
    evaluation = evaluate_window(aggregator, champion_metrics, thresholds)
    evaluation["learnt_outcomes"] = learnt_outcomes.learnt_outcomes_section(cutoff, aggregator.learnt_outcomes)
    if aggregator.learnt_outcomes:
        evaluation["reasons"].append(evaluation["learnt_outcomes"]["message"])
    prefix = f"reports/drift/{report_id}"
    estimated_drop.apply(evaluation, baseline, thresholds, enabled=settings.drift_estimated_retrain)
    report = {
        "report_id": report_id, "created_at": datetime.now(timezone.utc).isoformat(), **scope,
        "champion_version": champion, "trigger": trigger or {}, **evaluation, "plots": {},
        "baseline_source": describe_baseline(artifacts, champion, baseline),
        "retrain_request_id": None,
    }
    plots = {}
    for name, feature in evaluation["features"].items():
        path = f"{prefix}/{name}.png"
        plots[name] = feature_plot_png(name, feature, baseline["features"][name]["bin_edges"],
                                       FEATURE_RANGES[name][2], report["baseline_source"]["label"])
        artifacts.write_bytes(path, plots[name], "image/png")
        report["plots"][name] = path
    report["html"] = f"{prefix}/report.html"
    publish = retrain_rules.retrain_rule(report, champion, metadata, settings)
    metadata.put(DRIFT_REPORTS, report_id, report)
    if publish:
        # The window travels with the request: the new model's baseline is its population.
        request = {"reason": "; ".join(report["reasons"]), "report_id": report_id,
                   **{key: report[key] for key in ("source", "partition", "window_start", "window_end")
                      if key in report}}
        report["retrain_request_id"] = bus.publish(settings.retrain_topic, request, {"report_id": report_id})
        metadata.put(DRIFT_REPORTS, report_id, report)
    artifacts.write_bytes(f"{prefix}/report.json",
                          json.dumps(report, indent=2, ensure_ascii=False).encode(), "application/json")
    artifacts.write_bytes(report["html"], render_report_html(report, plots).encode(), "text/html; charset=utf-8")
    log.info("drift check finished", extra={"fields": {
        "report_id": report_id, "decision": report["decision"], "sample_size": report["sample_size"]}})
    return report


def handle_drift_check_message(message: BusMessage, *, predictions, artifacts, metadata, bus,
                               settings: Settings) -> dict:
    """A drift-check request (Cloud Scheduler's nightly and hourly messages, or any publisher).
    `{"lake_partition": "latest" | "YYYY-MM-DD"}` checks new data in the lake instead."""
    if message.data.get("aggregate_hour"):
        from shared.event_bus.messages import parse_timestamp
        from shared.monitoring.hourly_aggregates import floor_hour, last_closed_hour

        requested = message.data["aggregate_hour"]
        hour = last_closed_hour(message.publish_time) if requested == "last_closed" else parse_timestamp(requested)
        if hour is None:
            raise ValueError("aggregate_hour must be 'last_closed' or an ISO timestamp")
        return store_hourly_aggregate(floor_hour(hour), predictions=predictions, artifacts=artifacts,
                                      metadata=metadata)
    if message.data.get("aggregation") == "hourly":
        return run_hourly_drift_check(
            end=message.publish_time, hours=float(message.data.get("window_hours") or settings.drift_window_hours),
            predictions=predictions, artifacts=artifacts, metadata=metadata, bus=bus, settings=settings,
            trigger={"message_id": message.message_id, "source": message.attributes.get("source")})
    if message.data.get("lake_partition"):
        requested = message.data["lake_partition"]
        return run_partition_drift_check(
            day=None if requested == "latest" else _requested_day(requested), artifacts=artifacts,
            metadata=metadata, bus=bus, settings=settings, trigger={"message_id": message.message_id})
    start, end = window_from_request(message.data, message.publish_time, settings.drift_window_hours)
    return run_drift_check(start=start, end=end, predictions=predictions, artifacts=artifacts, metadata=metadata,
                           bus=bus, settings=settings,
                           trigger={"message_id": message.message_id, "source": message.attributes.get("source")})
