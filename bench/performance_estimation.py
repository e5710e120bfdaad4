"""Issue 20's CBPE benchmark: how far the performance estimated from the
calibrated probabilities alone (before any label) is from the realised one,
on windows of 1,000 outcomes with no shift, two covariate shifts (the mix of
patients changes, the labelling rule does not) and a concept shift (the
labelling rule changes: what CBPE cannot see).

The champion is bench/drift_decisions.py's (xgboost on 20,000 reference rows,
with its calibration and decision rule); each window is a fresh seeded sample
counted by the drift check's own aggregator, as the hourly units count it.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from shared.monitoring.aggregator import WindowAggregator
from shared.monitoring.estimated_performance import estimate_performance
from shared.records import WindowChunk
from shared.schema import LABELS

SCENARIOS = {
    "no shift": None,
    "covariate shift: fever and tachycardia": {"acute": 0.3, "mild": 0.35},
    "covariate shift: hypertension": {"chronic": 0.25, "healthy": 0.4},
    "concept shift: heart rate >= 88 is LEVE": "concept",
}


def window(model, data, baseline, rows: int, seed: int, scenario) -> dict:
    from shared.models.loading import calibrate
    from shared.training.candidates import predict_labels
    from shared.training.synthetic_data import generate_reference_data

    weights = scenario if isinstance(scenario, dict) else None
    X, y = generate_reference_data(rows, seed=seed, profile_weights=weights)
    if scenario == "concept":
        y = np.where((y == LABELS[0]) & (X[:, 1] >= 88), LABELS[1], y)
    rule = model.decision_rule or {}
    raw = calibrate(model.pipeline.predict_proba(X), rule.get("calibration"))
    probabilities = np.zeros((len(X), len(LABELS)))
    for column, label in enumerate(data.labels):
        probabilities[:, LABELS.index(label)] = raw[:, column]
    predicted = list(predict_labels(model.pipeline, X, data.labels, rule))
    aggregate = WindowAggregator(baseline).consume([WindowChunk(X, predicted, list(y), probabilities=probabilities)])
    return estimate_performance(aggregate.expected_confusion, aggregate.confusion, rows=aggregate.probability_rows)


def main(quick: bool = False) -> dict:
    from bench.drift_decisions import champion

    started = time.perf_counter()
    model, data, baseline = champion()
    windows = 10 if quick else 50
    results: dict = {"rows_per_window": 1000, "windows": windows, "scenarios": {}}
    for name, scenario in SCENARIOS.items():
        errors, covered, estimates, realised = [], 0, [], []
        for index in range(windows):
            estimate = window(model, data, baseline, 1000, 70_000 + index, scenario)
            error = estimate["macro_f1"] - estimate["realised_macro_f1"]
            errors.append(error)
            estimates.append(estimate["macro_f1"])
            realised.append(estimate["realised_macro_f1"])
            low, high = estimate["macro_f1_interval"]
            covered += low <= estimate["realised_macro_f1"] <= high
        absolute = np.abs(errors)
        results["scenarios"][name] = {
            "median_estimated_macro_f1": round(float(np.median(estimates)), 4),
            "median_realised_macro_f1": round(float(np.median(realised)), 4),
            "mean_error": round(float(np.mean(errors)), 4),
            "median_absolute_error": round(float(np.median(absolute)), 4),
            "p90_absolute_error": round(float(np.quantile(absolute, 0.9)), 4),
            "windows_within_0_02": round(float(np.mean(absolute <= 0.02)), 3),
            "realised_inside_95_interval": round(covered / windows, 3)}
        print(name, results["scenarios"][name], file=sys.stderr, flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
