"""Calibration: vector scaling fitted on out-of-fold probabilities, and the
expected calibration error (top label, 15 bins) before and after, on the
out-of-fold predictions and on the holdout."""

from __future__ import annotations

import numpy as np

from shared.training.holdout import PreparedData


def fit_vector_scaling(probabilities: np.ndarray, y_encoded: np.ndarray,
                       sample_weight: np.ndarray | None = None) -> dict:
    """Slope and intercept per class minimising the log-loss of softmax(slope * log p + intercept),
    each row weighted by `sample_weight` (recency: calibrated for the recent mix of classes)."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    log_p = np.log(np.clip(probabilities, 1e-12, 1.0))
    classes = probabilities.shape[1]
    rows = np.arange(len(y_encoded))
    weights = np.ones(len(y_encoded)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    weights = weights / weights.sum()

    def loss(parameters):
        slope, intercept = parameters[:classes], parameters[classes:]
        return -(log_softmax(log_p * slope + intercept, axis=1)[rows, y_encoded] * weights).sum()

    start = np.concatenate([np.ones(classes), np.zeros(classes)])
    fitted = minimize(loss, start, method="L-BFGS-B").x
    return {"method": "vector_scaling", "slope": [round(float(v), 6) for v in fitted[:classes]],
            "intercept": [round(float(v), 6) for v in fitted[classes:]]}


def expected_calibration_error(probabilities: np.ndarray, y_encoded: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: |confidence - accuracy| averaged over equal-width confidence bins, weighted by size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_encoded
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return round(float(error), 6)


def holdout_calibration(pipeline, data: PreparedData, rule: dict) -> dict:
    """Top-label ECE on the holdout before and after calibration, and the mean
    probability of each class beside its share of the holdout."""
    from shared.models.loading import calibrate
    from shared.training.search import encode

    raw = pipeline.predict_proba(data.X_holdout)
    calibrated = calibrate(raw, rule.get("calibration"))
    y_encoded = encode(data.y_holdout, data.labels)
    return {"expected_calibration_error": {"raw": expected_calibration_error(raw, y_encoded),
                                           "calibrated": expected_calibration_error(calibrated, y_encoded)},
            "mean_probability_vs_share": {
                label: {"raw": round(float(raw[:, i].mean()), 6),
                        "calibrated": round(float(calibrated[:, i].mean()), 6),
                        "share": round(float(np.mean(y_encoded == i)), 6)} for i, label in enumerate(data.labels)}}
