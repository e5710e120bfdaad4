"""How a model's probabilities become a decision: calibration, then per-class
decision weights, both fitted on out-of-fold predictions (never the holdout),
each row weighted as training weighs it (recency), so the rule is tuned for the
patients the model is trained to serve.

- Calibration: vector scaling (see `calibration`).
- Decision weights: the label is argmax(p * weight). Coordinate ascent over a
  log-spaced grid maximises macro-F1 subject to the rare-class promise: a
  one-sided Clopper-Pearson lower bound (95 %) on the rarest class's
  out-of-fold recall must reach RARE_CLASS_MIN_RECALL (default 0.9).
  Tuning the recall itself to exactly 0.9 on ~50 rare rows kept it just at
  the limit in-sample and below it on fresh patients in about half the runs;
  the bound leaves the margin those rows can support (with 53 rows, 51
  recalled). The recall and its bound count rows, as the gate's recall rule
  does: a class present mostly as old fill rows weighs little in macro-F1,
  but its rows are still the evidence (weighted, its effective number
  collapses to the few recent rows and no promise could ever be made).
  The promise may cost at most PROMISE_MAX_MACRO_F1_COST of out-of-fold
  macro-F1 (in rows) against the best rule without it: with few rare rows the bound
  asks for every one of them (45 rows: 45 recalled), and recalling the last
  outliers took decision weights of 10^3 that called a third of another
  class (or most rows) rare -- a rule no gate should promote, and that was
  what refused a real relabelling (issue 26's test) once "recent labels
  win" kept a few more boundary rows. Beyond the cap, or if no weights reach
  the bound (25 rows bound at 0.887 even all recalled), the affordable
  weights recalling the most rows are kept -- the largest rare weight among
  those (`tuned_for`; the best macro-F1 hugged the rows seen) -- and the
  promise says `met: false`, why, and the bound it does reach. The promise
  records the bound, the rows it rests on and the expected precision of the
  rare class (out-of-fold, recency-weighted, under the rule). When no
  candidate keeps it, the search falls back to a labelled point estimate
  (`candidates.leave_out_below_the_most_recalled`).
- When no candidate keeps the promise within the cap, the one that keeps it
  at the least cost, up to PROMISE_WIDEST_MACRO_F1_COST, is given that rule
  (`widen_the_cap`): the cap prefers a cheap promise, but when the data makes
  it dear for every family, the cheapest keeper is what keeping it costs on
  these patients -- serving a rule that breaks it instead (the best macro-F1)
  recalled 0.89 of fresh rare rows where the cheapest keeper recalled 0.998.
The rule is stored in the manifest; `models.loading` applies it everywhere.
"""

from __future__ import annotations

import numpy as np

from shared.config import DEFAULTS
from shared.training.calibration import expected_calibration_error, fit_vector_scaling

RARE_CLASS_MIN_RECALL = DEFAULTS.rare_class_min_recall
PROMISE_CONFIDENCE = 0.95
# Wide: with recency weights a class seen only in old rows is calibrated to a
# tiny probability, and its decision weight must undo that.
WEIGHT_GRID = np.exp(np.linspace(np.log(0.01), np.log(1e4), 61))
ASCENT_PASSES = 3
# About twice the standard deviation of a paired macro-F1 difference on a
# 4k-row holdout (0.02-0.024, bench/promotion_gate.py): a rule costing more
# loses to an equal champion at the gate. The promise cost 0.015 fresh
# macro-F1 in the median benchmark run; the precision collapses 0.13-0.17.
PROMISE_MAX_MACRO_F1_COST = 0.05
# The widest cap, used only when no candidate keeps the promise within the
# first (`widen_the_cap`). In bench/rare_class.py the cheapest keepers then cost
# 0.050-0.054 (fresh rare precision 0.58-0.62); keepers costing 0.11-0.25 called
# the rare class at fresh precision 0.03-0.17, and issue 26's real change,
# refused at the gate, was a rule costing 0.108.
PROMISE_WIDEST_MACRO_F1_COST = 0.10


def recall_lower_bound(recalled: float, rows: float, confidence: float = PROMISE_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson lower bound on a recall of `recalled` of `rows`
    (both may be effective, non-integer counts)."""
    from scipy.stats import beta

    if rows <= 0 or recalled <= 0:
        return 0.0
    return float(beta.ppf(1 - confidence, recalled, rows - recalled + 1))


def confusion_matrix(y_encoded: np.ndarray, decided: np.ndarray, classes: int,
                     sample_weight: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(y_encoded * classes + decided, weights=sample_weight,
                       minlength=classes * classes).reshape(classes, classes).astype(float)


def macro_f1_and_recall(y_encoded: np.ndarray, decided: np.ndarray, classes: int, rare: int,
                        sample_weight: np.ndarray | None = None) -> tuple[float, float]:
    confusion = confusion_matrix(y_encoded, decided, classes, sample_weight)
    hits = np.diag(confusion)
    occurrences = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * hits, occurrences, out=np.zeros_like(hits), where=occurrences > 0)
    support = confusion[rare].sum()
    return float(f1.mean()), float(hits[rare] / support) if support else 1.0


def _grids(y_encoded: np.ndarray, classes: int, sample_weight: np.ndarray) -> list[np.ndarray]:
    """Each class's candidate weights: the grid, and the grid around its prior
    shift (its share of rows over its share of weight) when that is far from 1
    -- a class seen only in old fill rows is calibrated ~1e4 times below its
    share of rows, out of the plain grid's reach."""
    rows = np.bincount(y_encoded, minlength=classes) / len(y_encoded)
    weighted = np.bincount(y_encoded, weights=sample_weight, minlength=classes) / sample_weight.sum()
    shift = np.divide(rows, weighted, out=np.ones(classes), where=weighted > 0)
    return [WEIGHT_GRID if 0.1 <= shift[c] <= 10 else np.concatenate([WEIGHT_GRID, shift[c] * WEIGHT_GRID])
            for c in range(classes)]


def _ascend(score, grids: list[np.ndarray], start: np.ndarray, better=lambda a, b: a > b
            ) -> tuple[np.ndarray, tuple]:
    """Coordinate ascent of `score` over each class's grid; a step is taken
    when `better(its score, the current one)`."""
    weights, best = start.copy(), score(start)
    for _ in range(ASCENT_PASSES):
        improved = False
        for column, grid in enumerate(grids):
            for value in grid:
                trial = weights.copy()
                trial[column] = value
                trial_score = score(trial)
                if better(trial_score, best):
                    best, weights, improved = trial_score, trial, True
        if not improved:
            break
    return weights, best


def tune_decision_weights(probabilities: np.ndarray, y_encoded: np.ndarray, rare: int,
                          min_recall: float = RARE_CLASS_MIN_RECALL, sample_weight: np.ndarray | None = None,
                          confidence: float = PROMISE_CONFIDENCE,
                          max_cost: float = PROMISE_MAX_MACRO_F1_COST) -> tuple[list[float], dict]:
    """Per-class weights maximising macro-F1 with the rare-class promise kept
    (lower bound on its recall >= min_recall) at no more than `max_cost` of
    macro-F1 below the best rule without it; returns the weights and a record."""
    classes = probabilities.shape[1]
    sample_weight = np.ones(len(y_encoded)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    rare_members = y_encoded == rare
    rare_rows = int(rare_members.sum())

    def measure(weights):
        decided = np.argmax(probabilities * weights, axis=1)
        macro_f1, _ = macro_f1_and_recall(y_encoded, decided, classes, rare, sample_weight)
        recalled = int(np.sum(decided[rare_members] == rare))  # rows: the promise and the gate count rows
        recall = recalled / rare_rows if rare_rows else 1.0
        return macro_f1, recall, recall_lower_bound(recalled, rare_rows, confidence), decided

    def both_bases(weights):
        decided = np.argmax(probabilities * weights, axis=1)
        return (macro_f1_and_recall(y_encoded, decided, classes, rare, sample_weight)[0],
                macro_f1_and_recall(y_encoded, decided, classes, rare)[0])

    # Without the promise: a step must be no worse in macro-F1 on either basis,
    # recency-weighted (the patients served) and in rows (the gate's recall
    # rule counts rows), and better on one. On the weighted basis alone (its
    # effective size ~1/3 of the rows) the ascent chased noise -- weights
    # [5, 2.5, 0.6, 0.4, 0.4] that lost a third of a minority class's rows;
    # and where the recent rows cannot tell, the rows decide.
    grids = _grids(y_encoded, classes, sample_weight)
    free_weights, _ = _ascend(both_bases, grids, np.ones(classes),
                              better=lambda a, b: a[0] >= b[0] and a[1] >= b[1] and a != b)
    free_f1, free_rows_f1 = both_bases(free_weights)
    # The promise moves the rare class's weight only, and its cost is counted
    # in rows: weighted, a class seen only in old fill rows (weight 0.5 ** 14)
    # loses all its F1 to one recent false call, and no promise could be bought.
    grids = [grid if column == rare else free_weights[column:column + 1] for column, grid in enumerate(grids)]
    floor = free_rows_f1 - max_cost
    # When no weight within the cap keeps the promise (fill-only: 25 rows bound
    # at 0.887 even all recalled), the margin it would give is bought with the
    # cap instead: of the weights recalling the most rows, the largest within
    # it. Tuned to the best macro-F1, the rule hugged the rows seen and recalled
    # 0.84 of fresh ones (bench fill-only seed 2, 24 of 24 out of fold).

    def score(weights):
        macro_f1, rows_f1 = both_bases(weights)
        if rows_f1 < floor - 1e-12:
            return (False, False, rows_f1, macro_f1)  # too costly: back within the cap first
        bound = measure(weights)[2]
        feasible = bound >= min_recall
        return (True, feasible, macro_f1 if feasible else bound, macro_f1 if feasible else weights[rare])

    weights, best = _ascend(score, grids, free_weights)
    feasible = bool(best[0] and best[1])
    plain_f1, plain_recall, _, _ = measure(np.ones(classes))
    tuned_f1, tuned_recall, bound, decided = measure(weights)
    confusion = confusion_matrix(y_encoded, decided, classes, sample_weight)
    called = confusion[:, rare].sum()
    promise = {"met": feasible, "min_recall": min_recall, "confidence": confidence,
               "method": "one-sided Clopper-Pearson lower bound on out-of-fold recall",
               "recall_lower_bound": round(bound, 6), "out_of_fold_recall": round(tuned_recall, 6),
               "rare_rows": rare_rows, "recalled_rows": int(round(tuned_recall * rare_rows)),
               "expected_precision": round(float(confusion[rare, rare] / called), 6) if called else None,
               "max_macro_f1_cost": max_cost, "macro_f1_cost_in_rows": round(free_rows_f1 - both_bases(weights)[1], 6)}
    if not feasible:
        promise["tuned_for"] = "the most rare rows recalled, then the largest rare weight within the cap"
        promise["reason"] = _why_not(measure, free_weights, grids[rare], rare, rare_rows, min_recall, confidence,
                                     max_cost)
    return [round(float(w), 6) for w in weights], {
        "feasible": feasible, "out_of_fold_macro_f1": {"argmax": round(plain_f1, 6), "without_promise": round(
            free_f1, 6), "tuned": round(tuned_f1, 6)},
        "out_of_fold_rare_recall": {"argmax": round(plain_recall, 6), "tuned": round(tuned_recall, 6)},
        "rare_class_promise": promise}


def _why_not(measure, weights, rare_grid, rare, rare_rows, min_recall, confidence, max_cost) -> str:
    """Why no rule kept the promise: too few rows, no weight recalls enough,
    or only weights beyond the cost cap do."""
    if recall_lower_bound(rare_rows, rare_rows, confidence) < min_recall:
        return (f"{rare_rows} rare rows cannot support it (all recalled would bound at "
                f"{recall_lower_bound(rare_rows, rare_rows, confidence):.3f})")
    bounds = [measure(np.where(np.arange(len(weights)) == rare, value, weights))[2] for value in rare_grid]
    if max(bounds) < min_recall:
        return f"no decision weight recalls enough of the {rare_rows} rare rows (best bound {max(bounds):.3f})"
    return f"the weights that keep it cost more than {max_cost} of out-of-fold macro-F1 in rows"


def fit_decision_rule(out_of_fold: np.ndarray, y_encoded: np.ndarray, rare: int,
                      min_recall: float = RARE_CLASS_MIN_RECALL, sample_weight: np.ndarray | None = None,
                      rare_label: str | None = None, widest_cost: float = PROMISE_WIDEST_MACRO_F1_COST) -> dict:
    """Calibration and decision weights from out-of-fold probabilities (the
    manifest's decision rule), both weighted by `sample_weight` (recency).
    When the promise is not kept within the cap but is within `widest_cost`,
    the rule carries that offer under `promise_beyond_the_cap` for
    `widen_the_cap` (which removes it)."""
    from shared.models.loading import calibrate

    calibration = fit_vector_scaling(out_of_fold, y_encoded, sample_weight)
    calibrated = calibrate(out_of_fold, calibration)
    weights, tuning = tune_decision_weights(calibrated, y_encoded, rare, min_recall, sample_weight)
    promise = dict(tuning["rare_class_promise"], label=rare_label)
    rule = {"calibration": calibration, "decision_weights": weights, "rare_class_index": rare,
            "rare_class_min_recall": min_recall, "tuning": tuning, "rare_class_promise": promise,
            "out_of_fold_calibration_error": {"raw": expected_calibration_error(out_of_fold, y_encoded),
                                              "calibrated": expected_calibration_error(calibrated, y_encoded)}}
    if not promise["met"] and widest_cost > promise["max_macro_f1_cost"]:
        wide_weights, wide = tune_decision_weights(calibrated, y_encoded, rare, min_recall, sample_weight,
                                                   max_cost=widest_cost)
        if wide["rare_class_promise"]["met"]:
            rule["promise_beyond_the_cap"] = {"decision_weights": wide_weights, "tuning": wide,
                                              "rare_class_promise": dict(wide["rare_class_promise"], label=rare_label)}
    return rule


def widen_the_cap(rules: list[dict]) -> list[int]:
    """When none of the candidates' rules keeps the promise within its cap, the
    rule(s) keeping it at the least cost (their `promise_beyond_the_cap`) take
    that offer, and the promise says the cap was widened and why; the others
    keep their rule and record what keeping it would have cost them. Offers
    are removed from every rule. Returns the indices of the rules changed
    (their holdout must be scored again)."""
    offers = [rule.pop("promise_beyond_the_cap", None) for rule in rules]
    if any(rule["rare_class_promise"]["met"] for rule in rules):
        return []
    costs = {index: offer["rare_class_promise"]["macro_f1_cost_in_rows"] for index, offer in enumerate(offers) if offer}
    if not costs:
        return []
    cheapest = min(costs.values())
    changed = []
    for index, cost in costs.items():
        capped = rules[index]["rare_class_promise"]
        if cost > cheapest + 1e-12:
            capped["cost_beyond_the_cap"] = cost
            continue
        promise = dict(offers[index]["rare_class_promise"], widened_from=capped["max_macro_f1_cost"], cap_widened=(
            f"no candidate kept it within {capped['max_macro_f1_cost']} of out-of-fold macro-F1; this rule keeps "
            f"it at the least cost ({cost}), within {offers[index]['rare_class_promise']['max_macro_f1_cost']}"))
        rules[index].update(decision_weights=offers[index]["decision_weights"], tuning=offers[index]["tuning"],
                            rare_class_promise=promise)
        changed.append(index)
    return changed
