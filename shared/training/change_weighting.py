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

import math
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np

from shared.records import isoformat
from shared.schema import LABELS
from shared.training.labelled_rows import LabelledRows, rarest_class

# After a detected change, the labels from before it weigh at most this share of
# the production rows' weight (the half-life alone leaves them about 2/3 the
# night after a shift). 0.15 beat 0.25 and no cap in bench/loop_simulation.py
# over 3 seeds (notes/issue-20c.md); 0.10 beat 0.15 over 12 runs (seeds 42, 1, 2, 3
# x 3 variants): population macro-F1 back within 0.02 by night 13 in 12 of 12, not
# 11 (seed 2 repeated_3's night-12 model -0.016, not -0.023), at ~0.5 thousandths
# of the later nights' mean (notes/s5/issue-20.md, round 2).
PRE_CHANGE_MAX_SHARE = 0.10
# A class whose labelling the change moved: "recent labels win" dropped at
# least this many of its older rows as relabelled, and this share of them
# (bench/loop_simulation.py night 12-15: relabelled LEVE 58-157 rows, 3-8 %;
# stationary classes 0-6 rows, at most 1.1 %: a count alone grows with the
# outcomes' volume). Its recall is then judged on labels given since the
# change (promotion_gate).
RELABELLED_MIN_ROWS = 5
RELABELLED_MIN_SHARE = 0.02


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


def labelling_age(now: datetime, changed_since: datetime | None) -> Callable[[LabelledRows], int]:
    """How old a group's labelling is, for "recent labels win": its day's age,
    but labels given after a change to patients seen before it describe the
    old rule (outcomes come late), so they are as old as the last day before
    it -- else they stood among the new labels and hid the change from the
    test (bench/loop_simulation.py night 12: 33 and 78 relabelled rows dropped,
    58 and 86 with this)."""
    if changed_since is None:
        return lambda group: group.age_days
    change_age = math.ceil((now - changed_since) / timedelta(days=1))
    return lambda group: max(group.age_days, change_age) if group.detail.get("seen_before") else group.age_days


def weigh_since_change(weights: np.ndarray, used: list[LabelledRows], production: list[LabelledRows],
                       y: np.ndarray, filled: int, now: datetime, changed_since: datetime
                       ) -> tuple[np.ndarray, dict, np.ndarray]:
    """The weights after a change (`weigh_after_change`), their record, and the
    rows the gate judges recall on: labels given since it to patients seen
    since it, in the classes whose labelling it moved (RELABELLED_MIN_ROWS and
    RELABELLED_MIN_SHARE of their older rows; the record keeps each class's drops),
    never the rare class (as training picks it: `rarest_class`; its rows since
    a change are the fewest of all), which the record names when it is left out.

    A row is before the change when its patient was seen before it, whenever
    it was labelled (`detail["seen_before"]`, from the prediction's time), or
    when its day ended before it. `used`: production groups then the fill."""
    def seen_before(group: LabelledRows) -> bool:
        return bool(group.detail.get("seen_before")) or now - timedelta(days=group.age_days) <= changed_since

    since = [g for g in production if not seen_before(g)]
    # which classes' predicted patients clinicians labelled (the lake labels every row)
    labelled_predictions = {label for g in since for label in (
        g.detail.get("predicted", {}) if g.source == "outcomes" else set(g.y.tolist()))}
    before = np.concatenate([np.full(len(g), seen_before(g)) for g in used]) if used else np.empty(0, bool)
    weights, record = weigh_after_change(weights, before, y, filled, labelled_predictions)
    dropped = {label: sum(g.detail.get("dropped", {}).get(label, 0) for g in production) for label in LABELS}
    labelled = len(y) - filled  # the rows before the fill
    kept = {label: int(np.sum(before[:labelled] & (y[:labelled] == label))) for label in LABELS}
    rare = rarest_class(y, [label for label in LABELS if label in set(y.tolist())] or LABELS)
    flagged = sorted(label for label, count in dropped.items() if count >= RELABELLED_MIN_ROWS
                     and count >= RELABELLED_MIN_SHARE * (count + kept[label]))
    relabelled = [label for label in flagged if label != rare]  # the rare class keeps every row (promotion_gate)
    since_change = ~before & (np.arange(len(y)) < labelled) & np.isin(y, relabelled)
    record.update(changed_since=isoformat(changed_since), recall_judged_since_for=relabelled,
                  dropped_as_relabelled=dropped,
                  rare_class_left_out=rare if rare in flagged else None,
                  seen_before_labelled_after=sum(len(g) for g in production if g.detail.get("seen_before")
                                                 and now - timedelta(days=g.age_days) > changed_since))
    return weights, record, since_change
