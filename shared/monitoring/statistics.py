"""Drift statistics: pure functions, each with its default threshold beside it,
a streaming aggregator whose memory does not grow with the window, and the
decision rules.

A retrain is triggered only when a difference is both *real* and *large*:
- real: a chi-square test of homogeneity on the binned counts (window vs
  baseline) rejects at alpha = DRIFT_FALSE_ALARM_RATE / m, where m is the
  number of tests that can trigger (one per feature, the predicted labels,
  the outcomes' macro-F1): Bonferroni keeps the false-alarm rate of a window
  with no drift at most DRIFT_FALSE_ALARM_RATE (1 %), whatever its size;
- large: an effect size over its threshold, so a huge window does not retrain
  on a shift too small to matter:
  - a feature: Wasserstein-1 / reference std >= 0.1 (Evidently's default) or
    PSI >= 0.25, on the baseline's quantile bins (PSI) and 1,000-bin histograms (W);
  - the predicted labels: Jensen-Shannon distance (base 2) >= 0.1;
  - the outcomes: macro-F1 at least F1_DROP below the champion's, and the
    upper end of its one-sided bootstrap interval below the champion's.
`bench/drift_decisions.py` measures the false-alarm rate and the power.
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
MIN_EXPECTED_COUNT = 5  # chi-square's rule of thumb: smaller bins are pooled
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class DriftThresholds:
    """The decision rule's thresholds; defaults are the configuration's (shared/config.py)."""

    psi_warning: float = DEFAULTS.drift_psi_warning
    psi_drift: float = DEFAULTS.drift_psi_threshold
    wasserstein_drift: float = DEFAULTS.drift_wasserstein_threshold
    label_js_drift: float = DEFAULTS.drift_label_js_threshold
    f1_drop: float = DEFAULTS.drift_f1_drop_threshold
    min_samples: int = DEFAULTS.drift_min_samples
    min_outcomes: int = DEFAULTS.drift_min_outcomes
    false_alarm_rate: float = DEFAULTS.drift_false_alarm_rate

    @property
    def alpha_per_test(self) -> float:
        """Bonferroni over the tests that can trigger: each feature, the labels, the outcomes."""
        return self.false_alarm_rate / (len(FEATURES) + 2)


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


def chi_square_homogeneity(reference_counts, current_counts,
                           min_expected: float = MIN_EXPECTED_COUNT) -> tuple[float, float]:
    """(statistic, p-value) of Pearson's chi-square test that both samples come
    from one distribution over the same bins. Bins empty in both are dropped;
    bins where the window expects fewer than `min_expected` counts are pooled
    into one, so the chi-square approximation holds for small windows."""
    from scipy.stats import chi2

    table = np.vstack([np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected_in_window = table.sum(axis=0) * table[1].sum() / table.sum()
    small = expected_in_window < min_expected
    if small.sum() > 0:
        table = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(chi2.sf(statistic, table.shape[1] - 1))


def macro_f1_of(confusions: np.ndarray) -> np.ndarray:
    """Macro-F1 of each (true x predicted) confusion matrix in a stack, over the
    classes that occur in it (as true or predicted label)."""
    confusions = np.asarray(confusions, dtype=float)
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    occurrences = confusions.sum(axis=-1) + confusions.sum(axis=-2)
    present = occurrences > 0
    f1 = np.divide(2 * hits, occurrences, out=np.zeros_like(hits), where=present)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def bootstrap_macro_f1(confusion: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Macro-F1 of `resamples` bootstrap resamples of the outcomes (multinomial on the cells)."""
    confusion = np.asarray(confusion, dtype=np.int64)
    total = int(confusion.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, confusion.ravel() / total, size=resamples)
    return macro_f1_of(draws.reshape(resamples, *confusion.shape))


def reference_on_same_predictions(champion_confusion, window_confusion) -> np.ndarray:
    """The champion's holdout confusion matrix with each predicted-label column
    rescaled to the window's count: what the window would look like with no
    change, when outcomes are recorded for a subset chosen by what the model
    predicted (e.g. only patients predicted ill). Precision per predicted label
    survives such a selection; recall and the class mix do not."""
    champion = np.asarray(champion_confusion, dtype=float)
    window = np.asarray(window_confusion, dtype=float)
    column_totals = champion.sum(axis=0)
    scale = np.divide(window.sum(axis=0), column_totals, out=np.zeros_like(column_totals), where=column_totals > 0)
    reference = champion * scale
    unseen = column_totals == 0  # the champion never predicted it on the holdout: no information, stay neutral
    reference[:, unseen] = window[:, unseen]
    return reference


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
        """Count a chunk's inputs, predicted labels and the outcomes it carries."""
        self.add_predictions(chunk)
        self.add_outcomes(chunk)

    def add_predictions(self, chunk: WindowChunk) -> None:
        if not len(chunk):
            return
        self.rows += len(chunk)
        for column, name in enumerate(FEATURES):
            values = chunk.features[:, column]
            edges = self.baseline["features"][name]["bin_edges"]
            self.coarse[name] += np.bincount(coarse_bin_index(values, edges), minlength=len(self.coarse[name]))
            self.fine[name] += np.bincount(fine_bin_index(values, name), minlength=FINE_BINS)
        self.label_counts += np.bincount(self._predicted(chunk), minlength=len(LABELS))

    def add_outcomes(self, chunk: WindowChunk) -> None:
        """Count the chunk's (outcome, prediction) pairs only: outcomes recorded in
        a window may belong to predictions made before it."""
        if not chunk.outcomes:
            return
        for outcome, prediction in zip(chunk.outcomes, self._predicted(chunk)):
            if outcome is not None:
                self.confusion[self._label_index[outcome], prediction] += 1

    def _predicted(self, chunk: WindowChunk) -> np.ndarray:
        return np.fromiter((self._label_index[p] for p in chunk.predictions), dtype=np.int64,
                           count=len(chunk.predictions))

    def to_counts(self) -> dict:
        """Every count as plain JSON: a unit another aggregator can `add_counts`
        (an hourly aggregate)."""
        return {"rows": int(self.rows), "coarse": {name: self.coarse[name].tolist() for name in FEATURES},
                "fine": {name: self.fine[name].tolist() for name in FEATURES},
                "labels": self.label_counts.tolist(), "confusion": self.confusion.tolist()}

    def add_counts(self, counts: dict) -> None:
        """Merge a unit in O(bins), whatever number of records it counted."""
        self.rows += int(counts["rows"])
        for name in FEATURES:
            self.coarse[name] += np.asarray(counts["coarse"][name], dtype=np.int64)
            self.fine[name] += np.asarray(counts["fine"][name], dtype=np.int64)
        self.label_counts += np.asarray(counts["labels"], dtype=np.int64)
        self.confusion += np.asarray(counts["confusion"], dtype=np.int64)

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


def feature_drift(reference: dict, coarse_counts, fine_counts, thresholds: DriftThresholds, enough: bool) -> dict:
    """One feature's statistics and status (drift needs significance and size)."""
    fine = reference["fine_histogram"]
    bin_width = (fine["high"] - fine["low"]) / FINE_BINS
    psi = population_stability_index(reference["counts"], coarse_counts)
    wasserstein = wasserstein_from_histograms(fine["counts"], fine_counts, bin_width)
    normalised = wasserstein / reference["std"] if reference["std"] > 0 else float("inf")
    _, p_value = chi_square_homogeneity(reference["counts"], coarse_counts)
    significant = p_value < thresholds.alpha_per_test
    large = normalised >= thresholds.wasserstein_drift or psi >= thresholds.psi_drift
    if not enough:
        status = "insufficient_data"
    elif significant and large:
        status = "drift"
    elif significant or large or psi >= thresholds.psi_warning:
        status = "warning"
    else:
        status = "ok"
    counts = np.asarray(fine_counts)
    centres = fine["low"] + (np.arange(FINE_BINS) + 0.5) * bin_width
    window_mean = float(np.dot(counts, centres) / counts.sum()) if counts.sum() else None
    return {"psi": round(psi, 6), "wasserstein": round(wasserstein, 6), "wasserstein_normalised": round(normalised, 6),
            "chi_square_p_value": p_value, "status": status, "reference_mean": reference["mean"],
            "window_mean": window_mean, "window_counts": np.asarray(coarse_counts).tolist(),
            "reference_counts": reference["counts"]}


def prediction_drift(baseline: dict, label_counts, thresholds: DriftThresholds, enough: bool) -> dict:
    shares = np.array([baseline["predicted_labels"].get(label, 0.0) for label in LABELS])
    # baselines before the count was kept: the holdout is a quarter of the training rows
    reference_rows = baseline.get("predicted_label_rows") or max(1, baseline["rows"] // 4)
    label_js = jensen_shannon_distance(shares, label_counts)
    _, p_value = chi_square_homogeneity(np.round(shares * reference_rows), label_counts)
    drifted = enough and p_value < thresholds.alpha_per_test and label_js >= thresholds.label_js_drift
    return {"js_distance": round(label_js, 6), "chi_square_p_value": p_value,
            "status": "insufficient_data" if not enough else "drift" if drifted else "ok",
            "window": dict(zip(LABELS, np.asarray(label_counts).tolist())),
            "reference": dict(zip(LABELS, shares.tolist()))}


def performance_decay(confusion: np.ndarray, champion_metrics: dict | None, thresholds: DriftThresholds) -> dict:
    """Outcomes' macro-F1 against the champion's on the same predicted-label mix,
    with a bootstrap interval; "degraded" only when the interval says so."""
    performance = performance_from_confusion(confusion)
    performance["status"] = "insufficient_data"
    if performance["outcomes"] < thresholds.min_outcomes or not champion_metrics or performance["macro_f1"] is None:
        return performance
    matrix = champion_metrics.get("confusion_matrix", {}).get("matrix")
    if matrix is not None:
        reference = float(macro_f1_of(reference_on_same_predictions(matrix, confusion)))
        basis = "champion's holdout confusion matrix, reweighted to the window's predicted labels"
    else:
        reference, basis = float(champion_metrics["macro_f1"]), "champion's holdout macro-F1"
    upper = float(np.quantile(bootstrap_macro_f1(confusion), 1 - thresholds.alpha_per_test))
    drop = reference - performance["macro_f1"]
    degraded = upper < reference and drop >= thresholds.f1_drop
    performance.update({"reference_macro_f1": round(reference, 6), "reference_basis": basis,
                        "champion_holdout_macro_f1": champion_metrics["macro_f1"],
                        "macro_f1_upper_bound": round(upper, 6), "macro_f1_drop": round(drop, 6),
                        "status": "degraded" if degraded else "ok"})
    return performance


def evaluate_window(aggregate: WindowAggregator, champion_metrics: dict | None,
                    thresholds: DriftThresholds = DriftThresholds()) -> dict:
    """Every statistic, per-feature status, the overall decision and what decided it.

    The outcomes are judged on their own minimum (`min_outcomes`): a window
    with few predictions but many wrong outcomes is still "drift".
    """
    baseline = aggregate.baseline
    enough = aggregate.rows >= thresholds.min_samples
    features = {name: feature_drift(baseline["features"][name], aggregate.coarse[name], aggregate.fine[name],
                                    thresholds, enough) for name in FEATURES}
    prediction = prediction_drift(baseline, aggregate.label_counts, thresholds, enough)
    performance = performance_decay(aggregate.confusion, champion_metrics, thresholds)
    decided_by = [f"{name}: chi-square p={f['chi_square_p_value']:.2g} (alpha {thresholds.alpha_per_test:.2g}) with "
                  f"W/std {f['wasserstein_normalised']:.3f}, PSI {f['psi']:.3f}"
                  for name, f in features.items() if f["status"] == "drift"]
    if prediction["status"] == "drift":
        decided_by.append(f"predicted labels: chi-square p={prediction['chi_square_p_value']:.2g} with "
                          f"JS distance {prediction['js_distance']:.3f}")
    if performance["status"] == "degraded":
        decided_by.append(f"outcomes: macro-F1 {performance['macro_f1']:.3f} is {performance['macro_f1_drop']:.3f} "
                          f"below the reference {performance['reference_macro_f1']:.3f}; bootstrap upper bound "
                          f"{performance['macro_f1_upper_bound']:.3f}")
    warnings = [f"{name}: warning (PSI {f['psi']:.3f}, W/std {f['wasserstein_normalised']:.3f}, "
                f"chi-square p={f['chi_square_p_value']:.2g})"
                for name, f in features.items() if f["status"] == "warning"]
    if decided_by:
        decision, reasons = "drift", decided_by + warnings
    elif not enough:
        decision = "insufficient_data"
        reasons = [f"{aggregate.rows} predictions in the window; at least {thresholds.min_samples} are needed"]
    elif warnings:
        decision, reasons = "warning", warnings
    else:
        decision, reasons = "ok", []
    return {"sample_size": aggregate.rows, "decision": decision, "reasons": reasons, "decided_by": decided_by,
            "features": features, "prediction_drift": prediction, "performance": performance,
            "thresholds": dict(thresholds.__dict__, alpha_per_test=thresholds.alpha_per_test)}
