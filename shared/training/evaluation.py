"""Holdout metrics, and labels as served (calibration and decision weights applied)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from shared.schema import LABELS


def evaluate(y_true, y_pred, sample_weight=None) -> dict:
    """Holdout metrics; per-class figures and the confusion matrix in LABELS order.

    With `sample_weight`, precision, recall and F1 weigh rows as training did;
    supports, rows recalled and the confusion matrix stay row counts.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = list(map(str, y_true)), list(map(str, y_pred))
    metrics = {}
    for average in ("macro", "weighted"):
        labels = [label for label in LABELS if label in set(y_true) | set(y_pred)]
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0, sample_weight=sample_weight
        )
        metrics[f"{average}_precision"] = round(float(precision), 6)
        metrics[f"{average}_recall"] = round(float(recall), 6)
        metrics[f"{average}_f1"] = round(float(f1), 6)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=list(LABELS), zero_division=0, sample_weight=sample_weight
    )
    support = [Counter(y_true).get(label, 0) for label in LABELS]
    # Rows, not weights: the gate's recall rule counts rows recalled out of rows present.
    recalled = Counter(t for t, p in zip(y_true, y_pred) if t == p)
    metrics["per_class"] = {
        label: {"precision": round(float(p), 6), "recall": round(float(r), 6), "f1": round(float(f), 6),
                "support": int(s), "recalled_rows": int(recalled.get(label, 0))}
        for label, p, r, f, s in zip(LABELS, precision, recall, f1, support)
    }
    metrics["confusion_matrix"] = {"labels": list(LABELS),
                                   "matrix": confusion_matrix(y_true, y_pred, labels=list(LABELS)).tolist()}
    return metrics


def predict_labels(pipeline, X: np.ndarray, labels: list[str], rule: dict | None = None) -> np.ndarray:
    """Labels as served: the model-loading module's calibration and decision weights applied."""
    from shared.models.loading import calibrate, decide

    rule = rule or {}
    probabilities = calibrate(pipeline.predict_proba(X), rule.get("calibration"))
    return np.asarray(labels, dtype=object)[decide(probabilities, rule.get("decision_weights"))]
