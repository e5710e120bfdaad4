"""How a model's probabilities become a decision: calibration, then per-class
decision weights, both fitted on out-of-fold predictions (never the holdout).

- Calibration: vector scaling, softmax(slope * log p + intercept) per class,
  fitted by maximum likelihood; the expected calibration error (top label,
  15 bins) is recorded before and after.
- Decision weights: the label is argmax(p * weight). Coordinate ascent over a
  log-spaced grid maximises macro-F1 subject to the rarest class's recall >=
  RARE_CLASS_MIN_RECALL (default 0.9); if no weights reach it, the weights
  with the highest such recall are kept and the record says so. Balanced
  class weights plus argmax buy that recall at any precision; this lets the
  operator choose the trade-off.
The rule is stored in the manifest; `models.loading` applies it everywhere.
"""

from __future__ import annotations

import numpy as np

from shared.config import DEFAULTS
from shared.training.calibration import expected_calibration_error, fit_vector_scaling

RARE_CLASS_MIN_RECALL = DEFAULTS.rare_class_min_recall
WEIGHT_GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 41))
ASCENT_PASSES = 3


def macro_f1_and_recall(y_encoded: np.ndarray, decided: np.ndarray, classes: int, rare: int) -> tuple[float, float]:
    confusion = np.bincount(y_encoded * classes + decided, minlength=classes * classes).reshape(classes, classes)
    hits = np.diag(confusion).astype(float)
    occurrences = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * hits, occurrences, out=np.zeros_like(hits), where=occurrences > 0)
    support = confusion[rare].sum()
    return float(f1.mean()), float(hits[rare] / support) if support else 1.0


def tune_decision_weights(probabilities: np.ndarray, y_encoded: np.ndarray, rare: int,
                          min_recall: float = RARE_CLASS_MIN_RECALL) -> tuple[list[float], dict]:
    """Per-class weights maximising macro-F1 with the rare class's recall >= min_recall."""
    classes = probabilities.shape[1]

    def objective(weights):
        macro_f1, recall = macro_f1_and_recall(y_encoded, np.argmax(probabilities * weights, axis=1), classes, rare)
        feasible = recall >= min_recall
        return (feasible, macro_f1 if feasible else recall, macro_f1), macro_f1, recall

    weights = np.ones(classes)
    best, _, _ = objective(weights)
    for _ in range(ASCENT_PASSES):
        improved = False
        for column in range(classes):
            for value in WEIGHT_GRID:
                trial = weights.copy()
                trial[column] = value
                score, _, _ = objective(trial)
                if score > best:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    _, plain_f1, plain_recall = objective(np.ones(classes))
    _, tuned_f1, tuned_recall = objective(weights)
    return [round(float(w), 6) for w in weights], {
        "feasible": bool(best[0]), "out_of_fold_macro_f1": {"argmax": round(plain_f1, 6), "tuned": round(tuned_f1, 6)},
        "out_of_fold_rare_recall": {"argmax": round(plain_recall, 6), "tuned": round(tuned_recall, 6)}}


def fit_decision_rule(out_of_fold: np.ndarray, y_encoded: np.ndarray, rare: int,
                      min_recall: float = RARE_CLASS_MIN_RECALL) -> dict:
    """Calibration and decision weights from out-of-fold probabilities (the manifest's decision rule)."""
    from shared.models.loading import calibrate

    calibration = fit_vector_scaling(out_of_fold, y_encoded)
    calibrated = calibrate(out_of_fold, calibration)
    weights, tuning = tune_decision_weights(calibrated, y_encoded, rare, min_recall)
    return {"calibration": calibration, "decision_weights": weights, "rare_class_index": rare,
            "rare_class_min_recall": min_recall, "tuning": tuning,
            "out_of_fold_calibration_error": {"raw": expected_calibration_error(out_of_fold, y_encoded),
                                              "calibrated": expected_calibration_error(calibrated, y_encoded)}}
