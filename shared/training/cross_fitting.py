"""Every row seen since a change as evidence for the gate, not only the held-out fifth.

After a labelling change, rule 3's view since it (`recall_rule.since_change_view`)
excuses a recall loss only on evidence: the one-sided 95 % bound of the loss on the
rows since the change must be within PROMOTION_MAX_RECALL_DROP. The holdout holds 20 %
of those rows: in the loop's seed-1 night-12 retrain 20-27 of the relabelled class,
where a candidate losing 0.07 of recall on the new population (inside the 0.10) showed
17 vs 20 recalled, bound 0.150, and was refused. The other 80 % are training rows.

Cross-fitting scores each of them with the challenger's chosen configuration trained
without it: the cross-validation fold model that held it out (the search's out-of-fold
probabilities, so no extra fit), under a decision rule -- calibration and decision
weights, fitted as the served rule is (`decision_rule.fit_decision_rule`, the cap
widened only when the served rule's was) -- on the other folds' out-of-fold rows, so
neither the model nor the rule scoring a row saw its label. Where it differs from the
served challenger it is conservative: a fold model learnt from 4/5 of the rows, 4/5
of those since the change, so it knows the new rule less well.

The champion is scored on the same rows as served, and only a champion that cannot
have trained on them (`since_change_evidence`): its labels end no later than the
change, or it learnt from the reference generator alone. A follow-up's champion,
trained on labels since the change, would be flattered on rows it memorised, and the
loss bound is not monotone in that (one row only the challenger recalls bounds a
loss of 0.041 on 22 rows, the same row recalled by both 0): its view since stays the
holdout's alone, as before. Rows of one patient measured several times may sit in
two folds, as they may sit on both sides of the holdout split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.training.decision_rule import PROMISE_MAX_MACRO_F1_COST, fit_decision_rule, widen_the_cap
from shared.training.holdout import PreparedData
from shared.training.search import cv_folds, encode


@dataclass(frozen=True)
class CrossFitted:
    """Training rows seen since a change and the challenger's cross-fitted labels for them."""

    X: np.ndarray
    y_true: np.ndarray
    predictions: np.ndarray


def since_change_evidence(cross_fitted: CrossFitted | None, champions: list, store, data_sources: dict):
    """The gate's evidence (`recall_rule.SinceChangeEvidence`): the cross-fitted rows with the
    current champion's served labels beside the challenger's; None without such rows, or when
    the champion may have trained on some of them."""
    from shared.event_bus.messages import parse_timestamp
    from shared.training.recall_rule import SinceChangeEvidence

    pre_change = (data_sources.get("weights") or {}).get("pre_change") or {}
    changed_since = parse_timestamp(pre_change.get("changed_since"))
    if cross_fitted is None or not champions or changed_since is None:
        return None
    if champion_may_have_trained_since(store, champions[0].version, changed_since):
        return None
    return SinceChangeEvidence(cross_fitted.y_true, cross_fitted.predictions,
                               champions[0].predict_labels(cross_fitted.X))


def champion_may_have_trained_since(store, version: str, changed_since) -> bool:
    """True unless its labels end by the change (its baseline's `labels_until`) or it
    learnt from the reference generator alone (its experiment's `data_sources`); unreadable: True."""
    import json

    from shared.event_bus.messages import parse_timestamp
    from shared.models.layout import model_path
    from shared.models.registry import read_baseline

    try:
        labels_until = parse_timestamp(read_baseline(store, version).get("labels_until"))
        if labels_until is not None:
            return labels_until > changed_since
        sources = json.loads(store.read_bytes(model_path(version, "experiment.json"))).get("data_sources") or {}
    except Exception:  # noqa: BLE001 -- any failure to read: assume the worst
        return True
    return set(sources) != {"reference_generator"}


def cross_fit_since_change(out_of_fold: np.ndarray | None, data: PreparedData, seed: int,
                           served_rule: dict) -> CrossFitted | None:
    """`out_of_fold`: the chosen configuration's probabilities from `search.cross_validate`
    (same rows, same `seed`, so the same folds). None when no training row is since a change."""
    from shared.models.loading import calibrate, decide

    since = data.since_change_train
    if out_of_fold is None or since is None or not since.any():
        return None
    y_encoded = encode(data.y_train, data.labels)
    labels = np.asarray(data.labels, dtype=object)
    predictions = np.empty(len(y_encoded), dtype=object)
    widened = (served_rule.get("rare_class_promise") or {}).get("widened_from") is not None
    for train_index, test_index in cv_folds(data, seed):
        scored = test_index[since[test_index]]
        if not len(scored):
            continue
        rule = fit_decision_rule(out_of_fold[train_index], y_encoded[train_index], served_rule["rare_class_index"],
                                 served_rule["rare_class_min_recall"],
                                 None if data.w_train is None else data.w_train[train_index],
                                 widest_cost=_widest(served_rule) if widened else PROMISE_MAX_MACRO_F1_COST)
        if widened:
            widen_the_cap([rule])
        probabilities = calibrate(out_of_fold[scored], rule["calibration"])
        predictions[scored] = labels[decide(probabilities, rule["decision_weights"])]
    return CrossFitted(data.X_train[since], data.y_train[since], predictions[since])


def _widest(served_rule: dict) -> float:
    return float(served_rule["rare_class_promise"].get("max_macro_f1_cost"))
