"""Drift decisions: the thresholds, each feature's and the predicted labels'
status, and the window's overall decision.

A retrain is triggered only when a difference is both *real* and *large*:
- real: a chi-square test of homogeneity on the binned counts (window vs
  baseline) rejects at alpha = DRIFT_FALSE_ALARM_RATE / m, where m is the
  number of tests that can trigger (one per feature, the predicted labels,
  the outcomes): Bonferroni keeps the false-alarm rate of a window with no
  drift at most DRIFT_FALSE_ALARM_RATE (1 %), whatever its size. Repeated
  measurements of a patient are not independent rows: the tests use effective
  counts, counts / DRIFT_DESIGN_EFFECT (`dependence.py`), after exact repeats
  are collapsed (`aggregator.py`);
- large: an effect size over its threshold, so a huge window does not retrain
  on a shift too small to matter:
  - a feature: Wasserstein-1 / reference std >= 0.1 (Evidently's default) or
    PSI >= 0.25, on the baseline's quantile bins (PSI) and 1,000-bin histograms (W);
  - the predicted labels: Jensen-Shannon distance (base 2) >= 0.1;
  - the outcomes: `decay.py`.
A feature is a *warning* when its difference is real (significant) and its
PSI is at least DRIFT_PSI_WARNING, but short of the drift sizes: a real,
moderate change, so a drift-free window is a warning at most alpha of the time.
`bench/drift_decisions.py` measures the false-alarm rates and the power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.config import DEFAULTS
from shared.monitoring.aggregator import WindowAggregator  # noqa: F401  (re-exported)
from shared.monitoring.baseline import FINE_BINS
from shared.monitoring.decay import (  # noqa: F401  (re-exported)
    bootstrap_macro_f1,
    macro_f1_of,
    performance_decay,
    performance_from_confusion,
    reference_on_same_predictions,
)
from shared.monitoring.dependence import effective_counts
from shared.monitoring.distances import (  # noqa: F401  (re-exported)
    chi_square_homogeneity,
    jensen_shannon_distance,
    population_stability_index,
    wasserstein_from_histograms,
)
from shared.monitoring.estimated_performance import estimate_performance
from shared.monitoring.retrain_wait import changed_region
from shared.schema import FEATURES, LABELS


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
    design_effect: float = DEFAULTS.drift_design_effect

    @property
    def alpha_per_test(self) -> float:
        """Bonferroni over the tests that can trigger: each feature, the labels, the outcomes."""
        return self.false_alarm_rate / (len(FEATURES) + 2)


def _reference_design_effect(baseline: dict, thresholds: DriftThresholds) -> float:
    """Training rows are independent patients (1); a production window's repeat them like the window's."""
    return thresholds.design_effect if baseline.get("from_production_window") else 1.0


def feature_drift(reference: dict, coarse_counts, fine_counts, thresholds: DriftThresholds, enough: bool,
                  reference_design_effect: float = 1.0) -> dict:
    """One feature's statistics and status (drift needs significance and size)."""
    fine = reference["fine_histogram"]
    bin_width = (fine["high"] - fine["low"]) / FINE_BINS
    psi = population_stability_index(reference["counts"], coarse_counts)
    wasserstein = wasserstein_from_histograms(fine["counts"], fine_counts, bin_width)
    normalised = wasserstein / reference["std"] if reference["std"] > 0 else float("inf")
    _, p_value = chi_square_homogeneity(effective_counts(reference["counts"], reference_design_effect),
                                        effective_counts(coarse_counts, thresholds.design_effect), ordered=True)
    significant = p_value < thresholds.alpha_per_test
    large = normalised >= thresholds.wasserstein_drift or psi >= thresholds.psi_drift
    if not enough:
        status = "insufficient_data"
    elif significant and large:
        status = "drift"
    elif significant and psi >= thresholds.psi_warning:
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
    reference_counts = effective_counts(shares * reference_rows, _reference_design_effect(baseline, thresholds))
    _, p_value = chi_square_homogeneity(reference_counts, effective_counts(label_counts, thresholds.design_effect))
    drifted = enough and p_value < thresholds.alpha_per_test and label_js >= thresholds.label_js_drift
    return {"js_distance": round(label_js, 6), "chi_square_p_value": p_value,
            "status": "insufficient_data" if not enough else "drift" if drifted else "ok",
            "window": dict(zip(LABELS, np.asarray(label_counts).tolist())),
            "reference": dict(zip(LABELS, shares.tolist()))}


def _decided_by(features: dict, prediction: dict, performance: dict, thresholds: DriftThresholds) -> list[str]:
    decided_by = [f"{name}: chi-square p={f['chi_square_p_value']:.2g} (alpha {thresholds.alpha_per_test:.2g}) with "
                  f"W/std {f['wasserstein_normalised']:.3f}, PSI {f['psi']:.3f}"
                  for name, f in features.items() if f["status"] == "drift"]
    if prediction["status"] == "drift":
        decided_by.append(f"predicted labels: chi-square p={prediction['chi_square_p_value']:.2g} with "
                          f"JS distance {prediction['js_distance']:.3f}")
    if performance["status"] != "degraded":
        return decided_by
    if performance.get("macro_f1_drop_lower_bound", 0) > 0 and performance["macro_f1_drop"] >= thresholds.f1_drop:
        decided_by.append(f"outcomes: macro-F1 {performance['macro_f1_same_classes']:.3f} is "
                          f"{performance['macro_f1_drop']:.3f} below the reference "
                          f"{performance['reference_macro_f1']:.3f} (same classes); the drop is at least "
                          f"{performance['macro_f1_drop_lower_bound']:.3f}")
    rare = performance.get("rare_class")
    if rare and rare["status"] == "degraded":
        decided_by.append(f"outcomes: {rare['missed']} of {rare['cases']} {rare['label']} missed, against the "
                          f"champion's recall {rare['champion_recall']}; Fisher's exact p={rare['p_value']:.2g}")
    return decided_by


def evaluate_window(aggregate: WindowAggregator, champion_metrics: dict | None,
                    thresholds: DriftThresholds = DriftThresholds()) -> dict:
    """Every statistic, per-feature status, the overall decision and what decided it.

    The outcomes are judged on their own minimum (`min_outcomes`): a window
    with few predictions but many wrong outcomes is still "drift".
    """
    baseline = aggregate.baseline
    enough = aggregate.rows >= thresholds.min_samples
    reference_design_effect = _reference_design_effect(baseline, thresholds)
    features = {name: feature_drift(baseline["features"][name], aggregate.coarse[name], aggregate.fine[name],
                                    thresholds, enough, reference_design_effect) for name in FEATURES}
    prediction = prediction_drift(baseline, aggregate.label_counts, thresholds, enough)
    performance = performance_decay(aggregate.confusion, champion_metrics, alpha=thresholds.alpha_per_test,
                                    f1_drop=thresholds.f1_drop, min_outcomes=thresholds.min_outcomes)
    decided_by = _decided_by(features, prediction, performance, thresholds)
    warnings = [f"{name}: warning, a real but moderate change (PSI {f['psi']:.3f}, W/std "
                f"{f['wasserstein_normalised']:.3f}, chi-square p={f['chi_square_p_value']:.2g})"
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
            "rows_left_out": {"exact_repeats": aggregate.repeats_collapsed,
                              "other_model_versions": aggregate.other_version_rows,
                              "other_model_version_outcomes": aggregate.other_version_outcomes,
                              "outcomes_already_learnt": aggregate.learnt_outcomes},
            "model_version": aggregate.model_version,
            "features": features, "prediction_drift": prediction, "performance": performance,
            "changed_region": changed_region(features, aggregate.labelled_coarse),
            "estimated_performance": estimate_performance(aggregate.expected_confusion, aggregate.confusion,
                                                          rows=aggregate.probability_rows,
                                                          reference=baseline.get("estimation_reference")),
            "thresholds": dict(thresholds.__dict__, alpha_per_test=thresholds.alpha_per_test)}
