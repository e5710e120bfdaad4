"""Issue 12's drift-decision benchmark: how often the drift check calls "drift"
on windows with no drift (false alarms), how often it catches a 0.5-standard-
deviation mean shift in one feature (power), both at 200, 1,000 and 10,000
predictions; and the performance-decay rule's false "degraded" rate with 50
and 100 outcomes, at random and when only patients predicted ill get an outcome.

A champion is trained on 20,000 reference rows (the default TRAINING_ROWS);
each window is a fresh seeded sample, predicted by that champion.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import numpy as np

from shared.monitoring.baseline import compute_baseline
from shared.monitoring.statistics import DriftThresholds, WindowAggregator, evaluate_window
from shared.records import WindowChunk
from shared.schema import FEATURES, LABELS


def champion(seed: int = 1):
    from shared.training.candidates import predict_labels, train_candidates
    from shared.training.synthetic_data import generate_reference_data

    X, y = generate_reference_data(20_000, seed=seed)
    result = train_candidates(X, y, seed=seed, families=("xgboost",), budget_seconds=0.0)
    data = result.data
    baseline = compute_baseline(data.X_train, predict_labels(result.winner.pipeline, data.X_holdout, data.labels,
                                                             result.winner.decision_rule))
    return result.winner, data, baseline


def window_report(model, data, baseline, X, truth=None, shift=None):
    from shared.training.candidates import predict_labels

    if shift is not None:
        X = X.copy()
        X[:, shift[0]] += shift[1]
    predicted = list(predict_labels(model.pipeline, X, data.labels, model.decision_rule))
    outcomes = list(truth) if truth is not None else [None] * len(X)
    return evaluate_window(WindowAggregator(baseline).consume([WindowChunk(X, predicted, outcomes)]),
                           model.metrics, DriftThresholds(min_samples=1))


def rates(model, data, baseline, size: int, windows: int, shift=None) -> dict:
    from shared.training.synthetic_data import generate_reference_data

    decided: dict[str, int] = {}
    drift = 0
    for window in range(windows):
        X, _ = generate_reference_data(size, seed=10_000 + window)
        report = window_report(model, data, baseline, X, shift=shift)
        if report["decision"] == "drift":
            drift += 1
            for reason in report["decided_by"]:
                subject = reason.split(":")[0]
                decided[subject] = decided.get(subject, 0) + 1
    return {"windows": windows, "drift_rate": round(drift / windows, 4), "decided_by": decided}


def performance_decisions(model, data, windows: int) -> dict:
    """Outcomes are the true labels of fresh samples. "no change": the champion
    as trained (false alarms); "decayed": 30 % of its ill predictions turned
    into NO ENFERMO (power)."""
    from shared.training.candidates import predict_labels
    from shared.training.synthetic_data import generate_reference_data

    table = {}
    rng = np.random.default_rng(0)
    for change, outcomes, selection in itertools.product(("no change", "decayed"), (50, 100, 1000),
                                                         ("random", "predicted_ill_only")):
        degraded, upper_minus_f1 = 0, []
        for window in range(windows):
            X, y = generate_reference_data(outcomes * 8, seed=50_000 + window)
            predicted = predict_labels(model.pipeline, X, data.labels, model.decision_rule)
            if change == "decayed":
                predicted = np.where((predicted != LABELS[0]) & (rng.random(len(predicted)) < 0.3),
                                     LABELS[0], predicted)
            keep = np.ones(len(y), dtype=bool) if selection == "random" else predicted != LABELS[0]
            index = np.flatnonzero(keep)[:outcomes]
            aggregate = WindowAggregator(compute_baseline(data.X_train[:10], predicted[:10])).consume(
                [WindowChunk(X[index], list(predicted[index]), list(y[index]))])
            performance = evaluate_window(aggregate, model.metrics, DriftThresholds(min_samples=1))["performance"]
            degraded += performance["status"] == "degraded"
            if "macro_f1_upper_bound" in performance:
                upper_minus_f1.append(performance["macro_f1_upper_bound"] - performance["macro_f1"])
        table[f"{change}, {outcomes} outcomes, {selection}"] = {
            "windows": windows, "degraded_rate": round(degraded / windows, 4),
            "median_upper_bound_minus_score": round(float(np.median(upper_minus_f1)), 3)}
    return table


def main(quick: bool = False) -> dict:
    started = time.perf_counter()
    model, data, baseline = champion()
    windows = {200: 1000, 1000: 1000, 10_000: 200} if not quick else {200: 100, 1000: 100, 10_000: 20}
    results: dict = {"false_alarms": {}, "power_0_5_sd_shift": {}}
    for size, count in windows.items():
        results["false_alarms"][str(size)] = rates(model, data, baseline, size, count)
        print("no drift", size, results["false_alarms"][str(size)], file=sys.stderr, flush=True)
        for column, name in enumerate(FEATURES):
            shift = 0.5 * baseline["features"][name]["std"]
            results["power_0_5_sd_shift"].setdefault(name, {})[str(size)] = rates(
                model, data, baseline, size, count // 2, shift=(column, shift))
            print("shift", name, size, results["power_0_5_sd_shift"][name][str(size)], file=sys.stderr, flush=True)
    results["performance_degraded"] = performance_decisions(model, data, 200 if not quick else 20)
    results["thresholds"] = dict(DriftThresholds().__dict__, alpha_per_test=DriftThresholds().alpha_per_test)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
