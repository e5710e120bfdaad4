"""Change control on promotion: how much a challenger would change what is
served, and whether that is within the bounds that may deploy unattended.

The gate (training.promotion_gate) asks "is the challenger better on the
holdout?"; that holdout is cut from the same production labels the challenger
learnt from, so poisoned labels make a poisoned challenger look better. This
module asks a different question, as a Predetermined Change Control Plan
does: "how much would the answers change, and does the challenger contradict
labels we trust?" Changes within the bounds promote as before; the rest wait
for a person (`governance.approvals`).

Measured on two sets of rows:
- the trusted evaluation rows (`governance.trusted_set`): the share of answers
  that change and each class's recall change (challenger minus champion);
- the last day's inputs (the population that asked for the retrain): the
  share of answers that change. No labels are needed there.
Each set also lists the regions that changed: champion answer → challenger answer, with counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from shared.config import DEFAULTS


@dataclass(frozen=True)
class ChangeBounds:
    """Beyond either bound a challenger is held for approval (README, "Change control")."""

    max_answer_change: float = DEFAULTS.promotion_max_answer_change
    max_trusted_recall_drop: float = DEFAULTS.promotion_max_trusted_recall_drop

    @classmethod
    def from_settings(cls, settings) -> ChangeBounds:
        return cls(settings.promotion_max_answer_change, settings.promotion_max_trusted_recall_drop)


def answer_change(before, after) -> dict:
    """Share of rows whose answer changes, and the changes by region (before → after)."""
    before, after = np.asarray(before, dtype=object), np.asarray(after, dtype=object)
    changed = before != after
    regions = Counter(f"{a} → {b}" for a, b in zip(before[changed], after[changed]))
    return {"rows": int(len(before)), "changed": int(changed.sum()),
            "share": float(changed.mean()) if len(before) else 0.0,
            "regions": dict(regions.most_common())}


def recall_by_class(y_true, predicted, labels) -> dict[str, float | None]:
    y_true, predicted = np.asarray(y_true, dtype=object), np.asarray(predicted, dtype=object)
    return {label: (float((predicted[y_true == label] == label).mean()) if (y_true == label).any() else None)
            for label in labels}


def measure_change(champion_predict, challenger_predict, labels, *, trusted=None, recent_inputs=None) -> dict:
    """The behavioural change, as a JSON-ready dict.

    Args:
        champion_predict, challenger_predict: rows -> answers (labels).
        trusted: (X, y) rows with trusted labels, or None.
        recent_inputs: the last day's input rows, or None.
    """
    change: dict = {}
    if trusted is not None and len(trusted[1]):
        X, y = trusted
        before, after = champion_predict(X), challenger_predict(X)
        recall_before, recall_after = recall_by_class(y, before, labels), recall_by_class(y, after, labels)
        change["trusted"] = dict(answer_change(before, after), recall_change={
            label: (None if recall_before[label] is None else round(recall_after[label] - recall_before[label], 6))
            for label in labels})
    if recent_inputs is not None and len(recent_inputs):
        change["recent_inputs"] = answer_change(champion_predict(recent_inputs), challenger_predict(recent_inputs))
    return change


def breaches(change: dict, bounds: ChangeBounds) -> list[str]:
    """Why the change needs a person's approval; empty when it may deploy unattended."""
    reasons = []
    for name, title in (("trusted", "trusted evaluation rows"), ("recent_inputs", "last day's inputs")):
        measured = change.get(name)
        if measured and measured["share"] > bounds.max_answer_change:
            reasons.append(f"{measured['share']:.1%} of answers on the {title} would change "
                           f"(bound PROMOTION_MAX_ANSWER_CHANGE {bounds.max_answer_change:.1%})")
    for label, delta in (change.get("trusted") or {}).get("recall_change", {}).items():
        if delta is not None and -delta > bounds.max_trusted_recall_drop:
            reasons.append(f"recall of {label} on the trusted evaluation rows would drop by {-delta:.3f} "
                           f"(bound PROMOTION_MAX_TRUSTED_RECALL_DROP {bounds.max_trusted_recall_drop})")
    return reasons
