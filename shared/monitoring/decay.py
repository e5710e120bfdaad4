"""Performance decay: the clinicians' outcomes of a window against the
champion, judged like with like.

- Same classes: the window's macro-F1 and the reference's are averaged over
  the same classes -- those with at least MIN_CLASS_OUTCOMES outcomes in the
  window (as truth or prediction). A class the window has (almost) none of
  does not move either side.
- Same selection: the reference is the champion's confusion matrix with each
  predicted-label column rescaled to the window's count (outcomes are often
  recorded only for patients predicted ill; precision per predicted label
  survives such a selection, recall and the class mix do not).
- Both sampling errors: the bootstrap resamples the window's outcomes *and*
  the champion's reference outcomes, and decides on the difference.
- The rare class on its own: its misses are judged by Fisher's exact test of
  the window's rare-class hits/misses against the champion's (on the same
  predicted labels), so a few missed rare cases are not averaged away among
  many easy ones. Each of the two tests gets half the outcomes' alpha.
"""

from __future__ import annotations

import numpy as np

from shared.schema import LABELS

BOOTSTRAP_RESAMPLES = 2000
# A class enters the macro-F1 comparison with at least this many outcomes (as
# truth or prediction) in the window: with one or two, a resample can never
# turn a miss into a hit, and the bootstrap reads chance as decay. Rarer
# classes are judged by their own exact test (the rare class) or not at all.
MIN_CLASS_OUTCOMES = 5
RARE_CLASS = LABELS[-1]


def macro_f1_of(confusions: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 of each (true x predicted) confusion matrix in a stack, over
    `classes` (a boolean mask) or, by default, the classes that occur in it."""
    confusions = np.asarray(confusions, dtype=float)
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    occurrences = confusions.sum(axis=-1) + confusions.sum(axis=-2)
    present = occurrences > 0 if classes is None else np.broadcast_to(np.asarray(classes, dtype=bool),
                                                                         occurrences.shape)
    f1 = np.divide(2 * hits, occurrences, out=np.zeros_like(hits), where=present & (occurrences > 0))
    return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def bootstrap_macro_f1(confusion: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                       classes: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 of `resamples` bootstrap resamples of the outcomes (multinomial on the cells)."""
    return macro_f1_of(_resample(confusion, resamples, np.random.default_rng(seed)), classes)


def _resample(confusion, resamples: int, rng) -> np.ndarray:
    confusion = np.asarray(confusion, dtype=float)
    total = int(round(confusion.sum()))
    draws = rng.multinomial(total, confusion.ravel() / confusion.sum(), size=resamples)
    return draws.reshape(resamples, *confusion.shape).astype(float)


def reference_on_same_predictions(champion_confusion, window_confusion) -> np.ndarray:
    """The champion's holdout confusion matrix (or a stack of them) with each
    predicted-label column rescaled to the window's count: what the window
    would look like with no change. Columns the champion never predicted stay
    the window's (no information, neutral)."""
    champion = np.asarray(champion_confusion, dtype=float)
    window = np.asarray(window_confusion, dtype=float)
    column_totals = champion.sum(axis=-2, keepdims=True)
    scale = np.divide(window.sum(axis=-2, keepdims=True), column_totals, out=np.zeros_like(column_totals),
                      where=column_totals > 0)
    reference = champion * scale
    unseen = np.broadcast_to(column_totals == 0, reference.shape)
    return np.where(unseen, np.broadcast_to(window, reference.shape), reference)


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


def rare_class_misses(confusion: np.ndarray, champion_matrix, alpha: float) -> dict | None:
    """Fisher's exact test (one-sided: the window misses more) of the window's
    rare-class hits and misses against the champion's, on the predicted labels
    the window has outcomes for. None when the window has no rare outcome."""
    from scipy.stats import beta, fisher_exact

    rare = LABELS.index(RARE_CLASS)
    window_row = np.asarray(confusion)[rare]
    cases = int(window_row.sum())
    if cases == 0:
        return None
    # columns the window has outcomes for (a selection by prediction drops the
    # others), and always the rare class's own: a model that stops predicting it is the case to see
    observed = np.asarray(confusion).sum(axis=0) > 0
    observed[rare] = True
    champion_row = np.asarray(champion_matrix, dtype=float)[rare] * observed
    window_hits, champion_hits = int(window_row[rare]), int(round(champion_row[rare]))
    champion_cases = int(round(champion_row.sum()))
    _, p_value = fisher_exact([[window_hits, cases - window_hits],
                               [champion_hits, champion_cases - champion_hits]], alternative="less")
    # exact (Clopper-Pearson) one-sided upper bound on the window's rare recall
    upper = 1.0 if window_hits == cases else float(beta.ppf(1 - alpha, window_hits + 1, cases - window_hits))
    return {"label": RARE_CLASS, "cases": cases, "missed": cases - window_hits,
            "recall": round(window_hits / cases, 6), "recall_upper_bound": round(upper, 6),
            "champion_recall": round(champion_hits / champion_cases, 6) if champion_cases else None,
            "champion_cases": champion_cases, "p_value": float(p_value), "alpha": alpha,
            "status": "degraded" if p_value < alpha else "ok"}


def performance_decay(confusion: np.ndarray, champion_metrics: dict | None, *, alpha: float, f1_drop: float,
                      min_outcomes: int, seed: int = 0) -> dict:
    """Outcomes' macro-F1 against the champion's on the same classes and
    predicted-label mix, and the rare class's misses on their own."""
    confusion = np.asarray(confusion)
    performance = performance_from_confusion(confusion)
    performance["status"] = "insufficient_data"
    if not champion_metrics or performance["macro_f1"] is None:
        return performance
    matrix = champion_metrics.get("confusion_matrix", {}).get("matrix")
    rare = rare_class_misses(confusion, matrix, alpha / 2) if matrix is not None else None
    if rare is not None:
        performance["rare_class"] = rare
    if performance["outcomes"] < min_outcomes:
        if rare is not None and rare["status"] == "degraded":
            performance["status"] = "degraded"
        return performance
    classes = (confusion.sum(axis=0) >= MIN_CLASS_OUTCOMES) | (confusion.sum(axis=1) >= MIN_CLASS_OUTCOMES)
    rng = np.random.default_rng(seed)
    window_f1 = float(macro_f1_of(confusion, classes))
    window_draws = macro_f1_of(_resample(confusion, BOOTSTRAP_RESAMPLES, rng), classes)
    if matrix is not None:
        reference = float(macro_f1_of(reference_on_same_predictions(matrix, confusion), classes))
        reference_draws = macro_f1_of(reference_on_same_predictions(
            _resample(matrix, BOOTSTRAP_RESAMPLES, rng), confusion), classes)
        basis = ("champion's confusion matrix, reweighted to the window's predicted labels, "
                 "over the window's classes; both resampled")
    else:
        reference = float(champion_metrics["macro_f1"])
        reference_draws = np.full(BOOTSTRAP_RESAMPLES, reference)
        basis = "champion's macro-F1 (no confusion matrix: its sampling error is not included)"
    macro_alpha = alpha / 2 if rare is not None else alpha
    # one-sided: the largest drop still consistent with no change
    drop_lower = float(np.quantile(reference_draws - window_draws, macro_alpha))
    drop = reference - window_f1
    degraded = drop_lower > 0 and drop >= f1_drop
    performance.update({
        "macro_f1_same_classes": round(window_f1, 6), "reference_macro_f1": round(reference, 6),
        "reference_basis": basis, "champion_holdout_macro_f1": champion_metrics.get("macro_f1"),
        "macro_f1_upper_bound": round(window_f1 + (drop - drop_lower), 6), "macro_f1_drop": round(drop, 6),
        "macro_f1_drop_lower_bound": round(drop_lower, 6),
        "status": "degraded" if degraded or (rare is not None and rare["status"] == "degraded") else "ok"})
    return performance
