"""Issue 20's CBPE benchmark.

1. Estimation (`estimation`): how far the performance estimated from the
   calibrated probabilities alone (before any label) is from the realised one,
   and how often the 95 % interval holds the realised value, on windows of
   1,000 outcomes with no shift, covariate shifts (the mix of patients
   changes, the labelling rule does not; two of them towards the borderline
   cases, which really lowers performance) and a concept shift (the labelling
   rule changes: what CBPE cannot see). "before" is the plain estimate (no
   holdout reference), "after" the estimate corrected by the champion's
   holdout calibration residuals, with their sampling error in the interval.
2. The retrain rule (`retrain_rule`, `estimated_drop.py`), through the drift
   check's own evaluation at its default thresholds: the share of stationary
   windows where it fires (1, 3 or 5 measurements per patient, fresh noise or
   exact repeats; n = 200, 1,000 and 4,000), and its power on the
   performance-lowering covariate shifts, beside the windows' realised drop.

The champion is bench/drift_decisions.py's (xgboost on 20,000 reference rows,
with its calibration and decision rule); each window is a fresh seeded sample
counted by the drift check's own aggregator, as the hourly units count it.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from shared.monitoring import estimated_drop
from shared.monitoring.aggregator import WindowAggregator
from shared.monitoring.estimated_performance import estimate_performance, reference_from_model
from shared.monitoring.statistics import DriftThresholds, evaluate_window, macro_f1_of
from shared.records import WindowChunk
from shared.schema import LABELS

MOSTLY_BORDERLINE = {"healthy": 0.05, "mild": 0.9, "acute": 0.05, "chronic": 0.0, "terminal": 0.0}
BORDERLINE_ONLY = {"healthy": 0.0, "mild": 1.0, "acute": 0.0, "chronic": 0.0, "terminal": 0.0}
SCENARIOS = {
    "no shift": None,
    "covariate shift: fever and tachycardia": {"acute": 0.3, "mild": 0.35},
    "covariate shift: hypertension": {"chronic": 0.25, "healthy": 0.4},
    "covariate shift: mostly borderline (mild) patients": MOSTLY_BORDERLINE,
    "covariate shift: borderline (mild) patients only": BORDERLINE_ONLY,
    "concept shift: heart rate >= 88 is LEVE": "concept",
}
THRESHOLDS = DriftThresholds()  # the drift check's defaults: alpha per test, DRIFT_DESIGN_EFFECT, min samples


def champion_with_reference():
    from bench.drift_decisions import champion

    model, data, baseline = champion()
    baseline = dict(baseline, estimation_reference=reference_from_model(
        model.pipeline, data.X_holdout, data.y_holdout, data.labels, model.decision_rule))
    return model, data, baseline


def sample(rows: int, seed: int, scenario, per_patient: int = 1, mode: str = "fresh"):
    """(X, y): `rows` rows of ceil(rows / per_patient) patients, each measured
    `per_patient` times (fresh measurement noise, or the same vitals again)."""
    from shared.training.synthetic_data import MEASUREMENT_NOISE, generate_reference_data

    weights = scenario if isinstance(scenario, dict) else None
    X, y = generate_reference_data(-(-rows // per_patient), seed=seed, profile_weights=weights)
    if scenario == "concept":
        y = np.where((y == LABELS[0]) & (X[:, 1] >= 88), LABELS[1], y)
    X, y = np.repeat(X, per_patient, axis=0)[:rows], np.repeat(y, per_patient)[:rows]
    if mode == "fresh" and per_patient > 1:
        X = np.round(X + np.random.default_rng(seed).normal(0.0, MEASUREMENT_NOISE, size=X.shape), 1)
    return X, y


def aggregate_of(model, data, baseline, X, y) -> WindowAggregator:
    from shared.models.loading import calibrate
    from shared.training.candidates import predict_labels

    rule = model.decision_rule or {}
    raw = calibrate(model.pipeline.predict_proba(X), rule.get("calibration"))
    probabilities = np.zeros((len(X), len(LABELS)))
    for column, label in enumerate(data.labels):
        probabilities[:, LABELS.index(label)] = raw[:, column]
    predicted = list(predict_labels(model.pipeline, X, data.labels, rule))
    return WindowAggregator(baseline).consume([WindowChunk(X, predicted, list(y), probabilities=probabilities)])


def _summary(estimates: list[dict]) -> dict:
    errors = np.array([e["macro_f1"] - e["realised_macro_f1"] for e in estimates])
    covered = [e["macro_f1_interval"][0] <= e["realised_macro_f1"] <= e["macro_f1_interval"][1] for e in estimates]
    absolute = np.abs(errors)
    return {"median_estimated_macro_f1": round(float(np.median([e["macro_f1"] for e in estimates])), 4),
            "median_realised_macro_f1": round(float(np.median([e["realised_macro_f1"] for e in estimates])), 4),
            "mean_error": round(float(errors.mean()), 4), "median_absolute_error": round(float(np.median(absolute)), 4),
            "p90_absolute_error": round(float(np.quantile(absolute, 0.9)), 4),
            "windows_within_0_02": round(float(np.mean(absolute <= 0.02)), 3),
            "realised_inside_95_interval": round(float(np.mean(covered)), 3),
            "median_interval_width": round(float(np.median([e["macro_f1_interval"][1] - e["macro_f1_interval"][0]
                                                             for e in estimates])), 4)}


def estimation(model, data, baseline, windows: int) -> dict:
    table = {}
    for name, scenario in SCENARIOS.items():
        before, after = [], []
        for index in range(windows):
            aggregate = aggregate_of(model, data, baseline, *sample(1000, 70_000 + index, scenario))
            for kept, reference in ((before, None), (after, baseline["estimation_reference"])):
                kept.append(estimate_performance(aggregate.expected_confusion, aggregate.confusion,
                                                 rows=aggregate.probability_rows, reference=reference))
        table[name] = {"before": _summary(before), "after": _summary(after)}
        print(name, table[name], file=sys.stderr, flush=True)
    return table


def fired(model, data, baseline, rows: int, windows: int, scenario=None, per_patient: int = 1,
          mode: str = "fresh") -> dict:
    """Share of windows where the CBPE rule fires (on, defaults), and their realised drop."""
    fires, realised_drops = 0, []
    for index in range(windows):
        X, y = sample(rows, 90_000 + index, scenario, per_patient, mode)
        aggregate = aggregate_of(model, data, baseline, X, y)
        evaluation = estimated_drop.apply(evaluate_window(aggregate, model.metrics, THRESHOLDS), baseline,
                                          THRESHOLDS, enabled=True)
        decision = evaluation["estimated_performance"]["drop"]
        fires += decision["status"] == "degraded"
        if "reference_macro_f1" in decision:
            classes = estimated_drop.compared_classes(aggregate.expected_confusion, THRESHOLDS.design_effect)
            realised_drops.append(decision["reference_macro_f1"] - float(macro_f1_of(aggregate.confusion, classes)))
    return {"windows": windows, "fires": round(fires / windows, 4),
            "median_realised_drop": round(float(np.median(realised_drops)), 4) if realised_drops else None}


def retrain_rule(model, data, baseline, windows: int) -> dict:
    stationary = [(200, 1, "fresh"), (200, 3, "fresh"), (200, 3, "exact"), (200, 5, "fresh"), (200, 5, "exact"),
                  (1000, 1, "fresh"), (1000, 3, "fresh"), (1000, 3, "exact"), (4000, 1, "fresh"), (4000, 3, "fresh")]
    table: dict = {"false_alarms": {}, "power": {}}
    for rows, per_patient, mode in stationary:
        key = f"n={rows}, {per_patient}/patient" + (f", {mode}" if per_patient > 1 else "")
        table["false_alarms"][key] = fired(model, data, baseline, rows, windows, None, per_patient, mode)
        print("no shift", key, table["false_alarms"][key], file=sys.stderr, flush=True)
    for name in ("covariate shift: mostly borderline (mild) patients",
                 "covariate shift: borderline (mild) patients only"):
        for rows, per_patient in ((200, 1), (1000, 1), (1000, 3), (4000, 1), (4000, 3)):
            key = f"{name}, n={rows}, {per_patient}/patient" + (", fresh" if per_patient > 1 else "")
            table["power"][key] = fired(model, data, baseline, rows, max(20, windows // 5), SCENARIOS[name],
                                        per_patient)
            print(key, table["power"][key], file=sys.stderr, flush=True)
    return table


def main(quick: bool = False) -> dict:
    started = time.perf_counter()
    model, data, baseline = champion_with_reference()
    windows = 10 if quick else 100
    results: dict = {"rows_per_window": 1000, "windows": windows,
                     "holdout_rows": baseline["estimation_reference"]["rows"],
                     "estimation": estimation(model, data, baseline, windows),
                     "retrain_rule": retrain_rule(model, data, baseline, 50 if quick else 500)}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
