"""Drift statistics: pure functions, each with its default threshold beside it,
and a streaming aggregator whose memory does not grow with the window.

Effect sizes, not p-values: at our volumes a KS test's p-value flags shifts
too small to matter, while these grow with the size of the shift only.
- PSI on the baseline's quantile bins: >= 0.1 warning, >= 0.25 drift.
- Wasserstein-1 distance divided by the reference std: >= 0.1 drift
  (Evidently's default for large samples), computed from 1,000-bin histograms.
- Jensen-Shannon distance (base 2) between predicted-label distributions:
  >= 0.1 drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shared.config import DEFAULTS
from shared.monitoring.baseline import FINE_BINS, coarse_bin_count, coarse_bin_index, fine_bin_index
from shared.records import WindowChunk
from shared.schema import FEATURES, LABELS

PSI_EPSILON = 1e-4
MIN_OUTCOMES = 50


@dataclass(frozen=True)
class DriftThresholds:
    """The decision rule's thresholds; defaults are the configuration's (shared/config.py)."""

    psi_warning: float = DEFAULTS.drift_psi_warning
    psi_drift: float = DEFAULTS.drift_psi_threshold
    wasserstein_drift: float = DEFAULTS.drift_wasserstein_threshold
    label_js_drift: float = DEFAULTS.drift_label_js_threshold
    f1_drop: float = DEFAULTS.drift_f1_drop_threshold
    min_samples: int = DEFAULTS.drift_min_samples
    min_outcomes: int = MIN_OUTCOMES


def _proportions(counts, epsilon: float = 0.0) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    shares = counts / total if total else np.zeros_like(counts)
    return np.maximum(shares, epsilon) if epsilon else shares


def population_stability_index(reference_counts, current_counts, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bins; empty bins get `epsilon`."""
    reference = _proportions(reference_counts, epsilon)
    current = _proportions(current_counts, epsilon)
    return float(np.sum((current - reference) * np.log(current / reference)))


def wasserstein_from_histograms(reference_counts, current_counts, bin_width: float) -> float:
    """W1 between two distributions on the same equal-width bins: the area
    between their CDFs."""
    reference_cdf = np.cumsum(_proportions(reference_counts))
    current_cdf = np.cumsum(_proportions(current_counts))
    return float(np.sum(np.abs(reference_cdf - current_cdf)) * bin_width)


def jensen_shannon_distance(p, q) -> float:
    """sqrt of the JS divergence, base 2: 0 for equal, 1 for disjoint distributions."""
    p, q = _proportions(p), _proportions(q)
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return float(np.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2)))


class WindowAggregator:
    """Counts a stream of `WindowChunk`s into the baseline's bins.

    Memory is fixed by the bins and labels, whatever the number of records:
    each chunk is reduced to counts and dropped.
    """

    def __init__(self, baseline: dict):
        self.baseline = baseline
        self.rows = 0
        self.coarse = {name: np.zeros(coarse_bin_count(baseline["features"][name]["bin_edges"]), dtype=np.int64)
                       for name in FEATURES}
        self.fine = {name: np.zeros(FINE_BINS, dtype=np.int64) for name in FEATURES}
        self.label_counts = np.zeros(len(LABELS), dtype=np.int64)
        # outcomes (rows: clinician label, columns: prediction), LABELS order
        self.confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
        self._label_index = {label: index for index, label in enumerate(LABELS)}

    def add(self, chunk: WindowChunk) -> None:
        if not len(chunk):
            return
        self.rows += len(chunk)
        for column, name in enumerate(FEATURES):
            values = chunk.features[:, column]
            edges = self.baseline["features"][name]["bin_edges"]
            self.coarse[name] += np.bincount(coarse_bin_index(values, edges), minlength=len(self.coarse[name]))
            self.fine[name] += np.bincount(fine_bin_index(values, name), minlength=FINE_BINS)
        predicted = np.fromiter((self._label_index[p] for p in chunk.predictions), dtype=np.int64,
                                count=len(chunk.predictions))
        self.label_counts += np.bincount(predicted, minlength=len(LABELS))
        self.add_outcomes(chunk)

    def add_outcomes(self, chunk: WindowChunk) -> None:
        """Count the chunk's (outcome, prediction) pairs only: outcomes recorded in
        a window may belong to predictions made before it."""
        for outcome, prediction in zip(chunk.outcomes, chunk.predictions):
            if outcome is not None:
                self.confusion[self._label_index[outcome], self._label_index[prediction]] += 1

    def consume(self, chunks: Iterable[WindowChunk]) -> WindowAggregator:
        for chunk in chunks:
            self.add(chunk)
        return self


def performance_from_confusion(confusion: np.ndarray) -> dict:
    """Macro-F1 and per-class recall over the classes present in the outcomes."""
    true_counts = confusion.sum(axis=1)
    predicted_counts = confusion.sum(axis=0)
    per_class, f1s = {}, []
    for index, label in enumerate(LABELS):
        if true_counts[index] == 0 and predicted_counts[index] == 0:
            continue
        hits = confusion[index, index]
        recall = hits / true_counts[index] if true_counts[index] else 0.0
        precision = hits / predicted_counts[index] if predicted_counts[index] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"recall": round(float(recall), 6), "support": int(true_counts[index])}
        f1s.append(f1)
    return {"outcomes": int(confusion.sum()), "macro_f1": round(float(np.mean(f1s)), 6) if f1s else None,
            "per_class": per_class}


def evaluate_window(aggregate: WindowAggregator, champion_metrics: dict | None,
                    thresholds: DriftThresholds = DriftThresholds()) -> dict:
    """Every statistic, per-feature status and the overall decision."""
    baseline = aggregate.baseline
    features = {}
    for name in FEATURES:
        reference = baseline["features"][name]
        fine = reference["fine_histogram"]
        bin_width = (fine["high"] - fine["low"]) / FINE_BINS
        psi = population_stability_index(reference["counts"], aggregate.coarse[name])
        wasserstein = wasserstein_from_histograms(fine["counts"], aggregate.fine[name], bin_width)
        normalised = wasserstein / reference["std"] if reference["std"] > 0 else float("inf")
        if psi >= thresholds.psi_drift and normalised >= thresholds.wasserstein_drift:
            status = "drift"
        elif psi >= thresholds.psi_warning or normalised >= thresholds.wasserstein_drift:
            status = "warning"
        else:
            status = "ok"
        current_counts = aggregate.fine[name]
        centres = fine["low"] + (np.arange(FINE_BINS) + 0.5) * bin_width
        window_mean = float(np.dot(current_counts, centres) / current_counts.sum()) if current_counts.sum() else None
        features[name] = {"psi": round(psi, 6), "wasserstein": round(wasserstein, 6),
                          "wasserstein_normalised": round(normalised, 6), "status": status,
                          "reference_mean": reference["mean"], "window_mean": window_mean,
                          "window_counts": aggregate.coarse[name].tolist(), "reference_counts": reference["counts"]}
    reference_labels = [baseline["predicted_labels"].get(label, 0.0) for label in LABELS]
    label_js = jensen_shannon_distance(reference_labels, aggregate.label_counts)
    prediction = {"js_distance": round(label_js, 6),
                  "status": "drift" if label_js >= thresholds.label_js_drift else "ok",
                  "window": dict(zip(LABELS, aggregate.label_counts.tolist())),
                  "reference": dict(zip(LABELS, reference_labels))}
    performance = performance_from_confusion(aggregate.confusion)
    performance["status"] = "insufficient_data"
    if performance["outcomes"] >= thresholds.min_outcomes and champion_metrics and performance["macro_f1"] is not None:
        drop = champion_metrics["macro_f1"] - performance["macro_f1"]
        performance["champion_holdout_macro_f1"] = champion_metrics["macro_f1"]
        performance["macro_f1_drop"] = round(drop, 6)
        performance["status"] = "degraded" if drop >= thresholds.f1_drop else "ok"
    reasons = [f"{name}: {f['status']} (PSI {f['psi']:.3f}, W/std {f['wasserstein_normalised']:.3f})"
               for name, f in features.items() if f["status"] != "ok"]
    if prediction["status"] == "drift":
        reasons.append(f"predicted labels: JS distance {label_js:.3f}")
    if performance["status"] == "degraded":
        reasons.append(f"macro-F1 on outcomes dropped by {performance['macro_f1_drop']:.3f}")
    if aggregate.rows < thresholds.min_samples:
        decision = "insufficient_data"
        reasons = [f"{aggregate.rows} predictions in the window; at least {thresholds.min_samples} are needed"]
    elif any(f["status"] == "drift" for f in features.values()) or prediction["status"] == "drift" \
            or performance["status"] == "degraded":
        decision = "drift"
    elif any(f["status"] == "warning" for f in features.values()):
        decision = "warning"
    else:
        decision = "ok"
    return {"sample_size": aggregate.rows, "decision": decision, "reasons": reasons, "features": features,
            "prediction_drift": prediction, "performance": performance,
            "thresholds": thresholds.__dict__.copy()}
