"""Performance estimated before the labels arrive: confidence-based
performance estimation (CBPE, as NannyML's).

Each prediction is logged with its calibrated probabilities. If they are
calibrated, a row predicted j is truly class k with probability p_k, so the
window's *expected* confusion matrix is, column by predicted label, the sum
of the probabilities of the rows predicted that label. Macro-F1 and per-class
recall follow from it the way they follow from a realised confusion matrix.
The hourly units keep that matrix (5 x 5 numbers), so the nightly check has
the estimate from the day's predictions alone, beside the realised value
from whatever outcomes the clinicians recorded.

Calibration is never perfect, and its error is what made the plain estimate
optimistic (+0.005 to +0.008 macro-F1) and its interval too narrow (82-84 %
coverage). So each model's baseline carries its holdout's expected and
realised confusion matrices (`estimation_reference`, written at training):
each predicted-label column of the window's matrix is moved by that column's
holdout residual (realised minus expected class shares; the holdout is not
what the calibration was fitted on). The interval then contains both errors:
each resample draws the holdout's realised column shares afresh (the
residual's own sampling error), corrects the window with them, and draws the
window's labels as a multinomial of each corrected column. A baseline
without the reference (models trained before it) gets the plain estimate,
and the report says so.

What it cannot see: anything that changes the relation between inputs and
labels while the probabilities stay the same -- a new labelling rule, a new
disease presenting with the old vitals (concept shift). Those show only in
the realised outcomes (`decay.py`). It assumes the calibration's residuals
still hold on the window's inputs (covariate shift: yes, as long as the shift
stays inside the region the calibration saw).
"""

from __future__ import annotations

import numpy as np

from shared.monitoring.decay import macro_f1_of
from shared.schema import LABELS

RESAMPLES = 1000
INTERVAL = 0.95


def expected_confusion(probabilities: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(true x predicted) expected counts: column j sums the probabilities of the rows predicted j."""
    matrix = np.zeros((len(LABELS), len(LABELS)))
    for column in range(len(LABELS)):
        matrix[:, column] = probabilities[predicted == column].sum(axis=0)
    return matrix


def holdout_reference(probabilities: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> dict:
    """What a model's holdout says about its calibration: the expected (from
    the probabilities) and realised confusion matrices, LABELS order, indices in."""
    realised = np.zeros((len(LABELS), len(LABELS)))
    np.add.at(realised, (np.asarray(truth), np.asarray(predicted)), 1)
    return {"rows": int(len(truth)), "expected": expected_confusion(probabilities, predicted).round(6).tolist(),
            "realised": realised.astype(int).tolist()}


def reference_from_model(pipeline, X: np.ndarray, y, labels: list[str], rule: dict | None) -> dict:
    """`holdout_reference` of a fitted model on its holdout rows, probabilities and labels as served."""
    from shared.models.loading import calibrate, decide

    rule = rule or {}
    served = calibrate(pipeline.predict_proba(X), rule.get("calibration"))
    columns = [LABELS.index(label) for label in labels]
    probabilities = np.zeros((len(X), len(LABELS)))
    probabilities[:, columns] = served
    predicted = np.asarray(columns)[decide(served, rule.get("decision_weights"))]
    return holdout_reference(probabilities, predicted, [LABELS.index(str(label)) for label in y])


def corrected(expected: np.ndarray, reference_expected: np.ndarray, reference_realised: np.ndarray) -> np.ndarray:
    """The window's expected matrix with each predicted-label column's class
    shares moved by the holdout's residual in that column (works on stacks of
    realised holdout matrices). A column the holdout never predicted stays as it is."""
    reference_realised = np.asarray(reference_realised, dtype=float)
    holdout_counts = np.asarray(reference_expected, dtype=float).sum(axis=-2, keepdims=True)
    residual = np.divide(reference_realised - reference_expected, holdout_counts,
                         out=np.zeros(np.broadcast_shapes(reference_realised.shape, holdout_counts.shape)),
                         where=holdout_counts > 0)
    counts = expected.sum(axis=-2, keepdims=True)
    moved = np.clip(expected + residual * counts, 0.0, None)
    totals = moved.sum(axis=-2, keepdims=True)
    return np.divide(moved * counts, totals, out=np.zeros_like(moved), where=totals > 0)


def resample_columns(matrix: np.ndarray, resamples: int, rng, design_effect: float = 1.0) -> np.ndarray:
    """Each column a multinomial of its count (/ design_effect) and its class
    shares; `matrix` may be one matrix or a stack of `resamples` matrices."""
    matrix = np.asarray(matrix, dtype=float)
    stack = np.broadcast_to(matrix, (resamples, *matrix.shape[-2:]))
    draws = np.zeros(stack.shape)
    for column in range(stack.shape[-1]):
        totals = stack[:, :, column].sum(axis=1)
        count = int(round(totals[0] / design_effect))
        if count > 0 and totals[0] > 0:
            draws[:, :, column] = rng.multinomial(count, stack[:, :, column] / totals[:, None])
    return draws


def estimate_draws(expected: np.ndarray, reference: dict | None, resamples: int, rng,
                   design_effect: float = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    """(the window's resampled confusion matrices, the holdout's resampled realised
    matrices they were corrected with, or None without a reference)."""
    if reference is None:
        return resample_columns(expected, resamples, rng, design_effect), None
    holdout = resample_columns(reference["realised"], resamples, rng)
    window = corrected(np.asarray(expected, dtype=float), np.asarray(reference["expected"], dtype=float), holdout)
    return resample_columns(window, resamples, rng, design_effect), holdout


def point_estimate(expected: np.ndarray, reference: dict | None) -> np.ndarray:
    expected = np.asarray(expected, dtype=float)
    if reference is None:
        return expected
    return corrected(expected, np.asarray(reference["expected"], dtype=float), reference["realised"])


def _classes(expected: np.ndarray) -> np.ndarray:
    """The classes the window is judged on: expected at least once as truth, or predicted."""
    return (expected.sum(axis=1) >= 1) | (expected.sum(axis=0) >= 1)


def _recalls(confusions: np.ndarray) -> np.ndarray:
    truth = confusions.sum(axis=-1)
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    return np.divide(hits, truth, out=np.full_like(hits, np.nan, dtype=float), where=truth > 0)


def estimate_performance(expected: np.ndarray, realised: np.ndarray | None = None, *, rows: int,
                         reference: dict | None = None, resamples: int = RESAMPLES, seed: int = 0) -> dict | None:
    """Estimated macro-F1 and per-class recall with a 95 % interval; the realised
    values (outcomes in the window) beside them, over the same classes.
    `reference`: the champion's holdout (`holdout_reference`), to correct the
    calibration's error and count its uncertainty; None for the plain estimate."""
    expected = np.asarray(expected, dtype=float)
    if rows == 0 or expected.sum() <= 0:
        return None
    classes = _classes(expected)
    estimate = point_estimate(expected, reference)
    draws, _ = estimate_draws(expected, reference, resamples, np.random.default_rng(seed))
    low, high = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    f1_draws = macro_f1_of(draws, classes)
    recall_draws = _recalls(draws)
    recalls = _recalls(estimate)
    realised = np.asarray(realised) if realised is not None and np.asarray(realised).sum() > 0 else None
    realised_recalls = _recalls(realised.astype(float)) if realised is not None else None
    per_class = {}
    for index, label in enumerate(LABELS):
        if not classes[index]:
            continue
        column = recall_draws[:, index]
        column = column[~np.isnan(column)]
        per_class[label] = {
            "recall": None if np.isnan(recalls[index]) else round(float(recalls[index]), 4),
            "interval": [round(float(np.quantile(column, low)), 4), round(float(np.quantile(column, high)), 4)]
            if len(column) else None,
            "realised": None if realised_recalls is None or np.isnan(realised_recalls[index])
            else round(float(realised_recalls[index]), 4)}
    return {"method": "CBPE: expected confusion matrix from the calibrated probabilities", "rows": int(rows),
            "calibration": f"corrected by the champion's holdout residuals ({reference['rows']} rows)"
            if reference else "uncorrected: the model's baseline has no holdout reference",
            "expected_confusion": expected.round(6).tolist(),
            "uncorrected_macro_f1": round(float(macro_f1_of(expected, classes)), 4),
            "macro_f1": round(float(macro_f1_of(estimate, classes)), 4),
            "macro_f1_interval": [round(float(np.quantile(f1_draws, low)), 4),
                                  round(float(np.quantile(f1_draws, high)), 4)],
            "realised_macro_f1": None if realised is None else round(float(macro_f1_of(realised, classes)), 4),
            "realised_outcomes": 0 if realised is None else int(realised.sum()),
            "per_class": per_class}
