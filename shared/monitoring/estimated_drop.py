"""A retrain requested by the estimated performance alone (CBPE), before
any label: the window's estimated macro-F1 against the champion's realised
macro-F1 on its holdout, judged like the outcomes' decay rule.

- Same classes: both macro-F1s over the classes the window expects at least
  MIN_CLASS_ROWS times (as truth or as prediction, in effective rows), as
  `decay.py` does: a class with a handful of rows only adds noise.
- Both uncertainties, jointly: each resample draws the holdout's realised
  matrix afresh; the same draw is the reference's macro-F1 *and* the
  calibration residuals that correct the window's estimate
  (`estimated_performance.py`), whose labels are then drawn as multinomials of
  the corrected columns. Rows count as rows / DRIFT_DESIGN_EFFECT, like the
  drift tests: repeated measurements of a patient are not new evidence.
  The question is thus "will this window's macro-F1, once its labels come,
  be below the champion's?": the labels' own noise is in the test, which is
  conservative for the population's performance (the bench's estimate varies
  across stationary windows with SD 0.006 at n = 1,000; a window's labels 0.011).
- Significant and large: the one-sided lower bound of the drop (at the
  per-test alpha of the drift check) is above 0, and the drop itself is at
  least DRIFT_F1_DROP_THRESHOLD. Below DRIFT_MIN_SAMPLES predictions it does not decide.

A retrain is requested only with DRIFT_ESTIMATED_RETRAIN on (the default;
`apply`); the report carries the figures either way. Without the holdout reference in the champion's baseline
(models trained before it) the estimate's own bias is unknown: no decision.
`bench/performance_estimation.py` measures its false alarms and power.
"""

from __future__ import annotations

import numpy as np

from shared.monitoring.decay import macro_f1_of
from shared.monitoring.estimated_performance import estimate_draws, point_estimate

RESAMPLES = 2000
MIN_CLASS_ROWS = 5


def compared_classes(expected: np.ndarray, design_effect: float) -> np.ndarray:
    """The classes with at least MIN_CLASS_ROWS effective rows expected, as truth or as prediction."""
    effective = np.asarray(expected, dtype=float) / design_effect
    return (effective.sum(axis=0) >= MIN_CLASS_ROWS) | (effective.sum(axis=1) >= MIN_CLASS_ROWS)


def estimated_drop(expected, reference: dict | None, *, rows: int, alpha: float, f1_drop: float,
                   design_effect: float, min_rows: int, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """The estimated macro-F1 drop against the champion's holdout, with its
    one-sided lower bound; `status` "degraded" when significant and large."""
    expected = np.asarray(expected, dtype=float)
    if reference is None:
        return {"status": "insufficient_data", "why": "no holdout reference in the champion's baseline"}
    if rows < min_rows or expected.sum() <= 0:
        return {"status": "insufficient_data", "why": f"{rows} predictions with probabilities; {min_rows} needed"}
    classes = compared_classes(expected, design_effect)
    holdout = np.asarray(reference["realised"], dtype=float)
    estimate = float(macro_f1_of(point_estimate(expected, reference), classes))
    reference_f1 = float(macro_f1_of(holdout, classes))
    draws, holdout_draws = estimate_draws(expected, reference, resamples, np.random.default_rng(seed),
                                          design_effect)
    estimates = macro_f1_of(draws, classes)
    drops = macro_f1_of(holdout_draws, classes) - estimates
    drop_lower = float(np.quantile(drops, alpha))
    drop = reference_f1 - estimate
    degraded = drop_lower > 0 and drop >= f1_drop
    return {"status": "degraded" if degraded else "ok", "estimated_macro_f1": round(estimate, 4),
            # over the compared classes, rows / design effect: wider than the report's table's interval
            "estimated_interval": [round(float(np.quantile(estimates, q)), 4) for q in (0.025, 0.975)],
            "reference_macro_f1": round(reference_f1, 4), "drop": round(drop, 4),
            "drop_lower_bound": round(drop_lower, 4), "alpha": alpha, "f1_drop": f1_drop,
            "design_effect": design_effect, "classes": int(classes.sum()),
            "basis": "champion's realised holdout macro-F1 over the window's classes; both resampled"}


def apply(evaluation: dict, baseline: dict, thresholds, *, enabled: bool) -> dict:
    """The drift check's hook: add the decision to the report's estimate and,
    when `enabled` and degraded, make the window "drift" with the reason first."""
    estimate = evaluation.get("estimated_performance")
    if not estimate:
        return evaluation
    decision = estimated_drop(estimate["expected_confusion"], baseline.get("estimation_reference"),
                              rows=estimate["rows"], alpha=thresholds.alpha_per_test, f1_drop=thresholds.f1_drop,
                              design_effect=thresholds.design_effect, min_rows=thresholds.min_samples)
    decision["requests_retrain"] = enabled
    estimate["drop"] = decision
    if decision["status"] != "degraded":
        return evaluation
    low, high = decision["estimated_interval"]
    reason = (f"estimated performance: macro-F1 {decision['estimated_macro_f1']:.3f} ({low:.3f}-{high:.3f}) "
              f"against the champion's {decision['reference_macro_f1']:.3f} (holdout, same classes); the drop is "
              f"at least {decision['drop_lower_bound']:.3f}")
    if not enabled:
        estimate["drop"]["note"] = f"would request a retrain with DRIFT_ESTIMATED_RETRAIN on: {reason}"
        return evaluation
    evaluation["decided_by"].append(reason)
    if evaluation["decision"] == "drift":
        evaluation["reasons"].append(reason)
    else:  # what decides comes first; a warning's (or any other) reasons stay after it
        evaluation["reasons"].insert(0, reason)
    evaluation["decision"] = "drift"
    return evaluation
