"""Issue 12's drift-decision benchmark: how often the drift check calls "drift"
on windows with no drift (false alarms), how often it catches a 0.5-standard-
deviation mean shift in one feature (power), both at 200, 1,000 and 10,000
predictions; and the performance-decay rule's false "degraded" rate with 50
and 100 outcomes, at random and when only patients predicted ill get an outcome.

A champion is trained on 20,000 reference rows (the default TRAINING_ROWS);
each window is a fresh seeded sample, predicted by that champion.

Issue 20 adds windows that look like production (`repeated`): each patient
measured 1, 3 or 5 times, either with fresh measurement noise on each
measurement or as the same vitals logged again (exact repeats), against the
training baseline and against a production-window baseline (a baseline taken
from 2,000 rows of such a window, as a retrain stores it): the false "drift"
and "warning" rates with no change, and the power for a 0.5-SD mean shift.
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

# `--design-effect 1` measures the rule as it was before issue 20 (exact repeats are still collapsed)
THRESHOLDS = DriftThresholds(min_samples=1)


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
                           model.metrics, THRESHOLDS)


def repeated_window(size: int, per_patient: int, mode: str, seed: int) -> np.ndarray:
    """`size` rows of ceil(size / per_patient) patients, each measured `per_patient` times."""
    from shared.training.synthetic_data import MEASUREMENT_NOISE, generate_reference_data

    patients, _ = generate_reference_data(-(-size // per_patient), seed=seed)
    X = np.repeat(patients, per_patient, axis=0)[:size]
    if mode == "fresh" and per_patient > 1:
        # each measurement its own noise, on top of the patient's first one
        rng = np.random.default_rng(seed)
        X = np.round(X + rng.normal(0.0, MEASUREMENT_NOISE, size=X.shape), 1)
    return X


def production_baseline(model, data, seed: int = 7):
    """A retrain's baseline: the predictions of a production window of 667 patients x 3."""
    from shared.training.candidates import predict_labels

    X = repeated_window(2000, 3, "fresh", seed)
    baseline = compute_baseline(X, predict_labels(model.pipeline, X, data.labels, model.decision_rule))
    baseline["from_production_window"] = True
    return baseline


def repeated_rates(model, data, baseline, size: int, per_patient: int, mode: str, windows: int,
                   shift=None) -> dict:
    drift = warning = 0
    for window in range(windows):
        X = repeated_window(size, per_patient, mode, 20_000 + window)
        report = window_report(model, data, baseline, X, shift=shift)
        drift += report["decision"] == "drift"
        warning += report["decision"] == "warning"
    return {"windows": windows, "drift_rate": round(drift / windows, 4), "warning_rate": round(warning / windows, 4)}


def repeated_patients(model, data, baseline, windows: int) -> dict:
    """The production-like table: (baseline, n, measurements per patient, noise) -> rates."""
    table: dict = {}
    baselines = {"training": baseline, "production window": production_baseline(model, data)}
    cases = [(200, 1, "fresh"), (200, 3, "fresh"), (200, 3, "exact"), (200, 5, "fresh"), (200, 5, "exact"),
             (1000, 1, "fresh"), (1000, 3, "fresh"), (1000, 3, "exact")]
    for (name, reference), (size, per_patient, mode) in itertools.product(baselines.items(), cases):
        key = f"{name} baseline, n={size}, {per_patient}/patient" + (f", {mode}" if per_patient > 1 else "")
        table[key] = {"no change": repeated_rates(model, data, reference, size, per_patient, mode, windows)}
        if size == 1000:
            for column, feature in enumerate(FEATURES):
                shift = (column, 0.5 * baseline["features"][feature]["std"])
                table[key][f"0.5-SD shift, {feature}"] = repeated_rates(
                    model, data, reference, size, per_patient, mode, windows // 2, shift=shift)
        print(key, table[key], file=sys.stderr, flush=True)
    return table


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
    results["repeated_patients"] = repeated_patients(model, data, baseline, 1000 if not quick else 100)
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
    if "--design-effect" in sys.argv:
        design_effect = float(sys.argv[sys.argv.index("--design-effect") + 1])
        THRESHOLDS = DriftThresholds(min_samples=1, design_effect=design_effect)
    if "--repeated-only" in sys.argv:
        model, data, baseline = champion()
        print(json.dumps(repeated_patients(model, data, baseline, 100 if "--quick" in sys.argv else 1000), indent=2))
    else:
        print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
