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

The interval is the sampling error of the window's true labels given the
probabilities (each predicted-label column resampled as a multinomial of its
count and its expected class shares); it does not contain the calibration's
own error.

What it cannot see: anything that changes the relation between inputs and
labels while the probabilities stay the same -- a new labelling rule, a new
disease presenting with the old vitals (concept shift). Those show only in
the realised outcomes (`decay.py`). It assumes the calibration still holds
on the window's inputs (covariate shift: yes, as long as the shift stays
inside the region the calibration saw).
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


def _classes(expected: np.ndarray) -> np.ndarray:
    """The classes the window is judged on: expected at least once as truth, or predicted."""
    return (expected.sum(axis=1) >= 1) | (expected.sum(axis=0) >= 1)


def _recalls(confusions: np.ndarray) -> np.ndarray:
    truth = confusions.sum(axis=-1)
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    return np.divide(hits, truth, out=np.full_like(hits, np.nan, dtype=float), where=truth > 0)


def _resampled(expected: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draws = np.zeros((resamples, *expected.shape))
    for column in range(expected.shape[1]):
        total = expected[:, column].sum()
        if total > 0:
            draws[:, :, column] = rng.multinomial(int(round(total)), expected[:, column] / total, size=resamples)
    return draws


def estimate_performance(expected: np.ndarray, realised: np.ndarray | None = None, *, rows: int,
                         resamples: int = RESAMPLES, seed: int = 0) -> dict | None:
    """Estimated macro-F1 and per-class recall with a 95 % interval; the realised
    values (outcomes in the window) beside them, over the same classes."""
    expected = np.asarray(expected, dtype=float)
    if rows == 0 or expected.sum() <= 0:
        return None
    classes = _classes(expected)
    draws = _resampled(expected, resamples, seed)
    low, high = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    f1_draws = macro_f1_of(draws, classes)
    recall_draws = _recalls(draws)
    recalls = _recalls(expected)
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
            "macro_f1": round(float(macro_f1_of(expected, classes)), 4),
            "macro_f1_interval": [round(float(np.quantile(f1_draws, low)), 4),
                                  round(float(np.quantile(f1_draws, high)), 4)],
            "realised_macro_f1": None if realised is None else round(float(macro_f1_of(realised, classes)), 4),
            "realised_outcomes": 0 if realised is None else int(realised.sum()),
            "per_class": per_class}
