"""How a retrain weighs its rows after a detected change (a drift retrain's
`changed_since`, where input drift began).

With the half-life alone, the night after a shift the old population still
carries about two thirds of the weight and the retrain learns the new one
slowly. So production rows labelled before the change together weigh at most
PRE_CHANGE_MAX_SHARE of the production rows.

The reference fill is not pre-change evidence, but it is not new evidence
either. It keeps the oldest day's weight, except in a class clinicians do not
label since the change: no label of it, or none given to a patient predicted
in it (they label only patients predicted ill: the healthy class then has only
false alarms). There the fill stands in for the missing labels and weighs like
a label given since the change. Capped with the old labels, such a class was
learned from a few unrepresentative labels (bench/loop_simulation.py
sick_only: healthy recall 150 against the champion's 187 of 208, refused).
Weighed up in a class that has labels of its own since the change, the fill
outweighed them (100 old, 20 new, 280 fill rows: 3.5 / 20 / 280).
"""

from __future__ import annotations

import numpy as np

from shared.schema import LABELS

# After a detected change, the labels from before it weigh at most this share of
# the production rows' weight (the half-life alone leaves them about 2/3 the
# night after a shift). 0.15 beat 0.25 and no cap in bench/loop_simulation.py
# over 3 seeds (notes/issue-20c.md).
PRE_CHANGE_MAX_SHARE = 0.15


def pre_change_factor(weights: np.ndarray, before: np.ndarray, max_share: float = PRE_CHANGE_MAX_SHARE) -> float:
    """What the weights of the rows `before` the change are multiplied by so they
    carry at most `max_share` of the total; 1 when they already do, or when
    either side has no rows (nothing to learn the new population from)."""
    pre, post = float(weights[before].sum()), float(weights[~before].sum())
    if pre <= 0 or post <= 0:
        return 1.0
    return min(1.0, max_share / (1 - max_share) * post / pre)


def weigh_after_change(weights: np.ndarray, before: np.ndarray, y: np.ndarray, filled: int,
                       labelled_predictions: set | None = None,
                       max_share: float = PRE_CHANGE_MAX_SHARE) -> tuple[np.ndarray, dict]:
    """The weights after a detected change (module docstring), and their record.

    Args:
        weights: the recency weights, production rows first, then the fill.
        before: rows labelled before the change (the fill's entries are ignored).
        y: the rows' labels.
        filled: how many of the last rows are the reference fill.
        labelled_predictions: the classes whose predicted patients were
            labelled since the change (None: not known; labels alone decide).
    """
    is_fill = np.arange(len(weights)) >= len(weights) - filled
    production_before = before & ~is_fill
    factor = pre_change_factor(weights[~is_fill], production_before[~is_fill], max_share)
    weights = np.where(production_before, weights * factor, weights)
    since = ~before & ~is_fill
    labelled = set(y[since].tolist()) & (labelled_predictions if labelled_predictions is not None else set(LABELS))
    unlabelled_since = sorted(set(y[is_fill].tolist()) - labelled) if since.any() else []
    weighed_up = is_fill & np.isin(y, unlabelled_since)
    fill_weight = float(weights[since].mean()) if weighed_up.any() else None
    if fill_weight is not None:
        weights = np.where(weighed_up, fill_weight, weights)
    production = weights[~is_fill].sum()
    return weights, {"max_share": max_share, "factor": round(factor, 6),
                     "rows_before": int(production_before.sum()),
                     "share_before": round(float(weights[production_before].sum() / max(production, 1e-12)), 6),
                     "fill_rows": int(weighed_up.sum()), "fill_classes": unlabelled_since if weighed_up.any() else [],
                     "fill_weight": round(fill_weight, 6) if fill_weight is not None else None}
