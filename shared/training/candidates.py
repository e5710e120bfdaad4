"""The candidate search, end to end: search, refit, decision rule, holdout
score, winner. No cloud code. Its parts live beside it, one concern a module:
`holdout` (the content-keyed split and data preparation), `search` (families,
search spaces, fitting and cross-validation), `calibration`, `decision_rule`
(per-class decision weights) and `evaluation` (holdout metrics, labels as
served); their names are re-exported here for callers.

Protocol (the same for the CLI, the bootstrap and the retrain function):
1. an 80/20 split decided by each row's content (`in_holdout`), so a row is on
   the same side in every run; the 20 % holdout is touched once, and no champion
   trained on any of its rows (the gate compares them there);
2. per family, each configuration of its small search space is scored by
   stratified k-fold CV (macro-F1) on the 80 %, in a fixed order, until the
   time budget is spent (at least one configuration always runs);
3. each family's best configuration is refit on the whole 80 % and evaluated
   on the holdout;
   Its decision rule (calibration, per-class decision weights; see
   `decision_rule`) is fitted on the best configuration's out-of-fold
   predictions, and the holdout is scored with the rule applied;
4. when no candidate keeps the rare-class promise within its cost cap, every
   one keeping it within a wider cap takes that rule
   (`decision_rule.widen_the_cap`); a candidate whose rule could not keep the
   promise is left out when another keeps it (the reason in its summary's `left_out`); when the
   rare rows are too few for any bound, those recalling fewer of them out of
   fold than the best are (`leave_out_below_the_most_recalled`); the winner
   has the best holdout macro-F1 of the rest -- rare classes weigh as much as
   common ones; candidates not significantly worse on the same rows (paired
   bootstrap) are tied, and ties go to the cheaper to serve, then the smaller
   artifact (cold starts download it);
5. after a detected change, the winner's training rows since it are scored
   out of fold for the gate's view since the change (`cross_fitting`).

A class with fewer than 2 training rows cannot be learned, so it is dropped
and the experiment record says so (and the gate refuses a challenger that
thereby stops predicting a class the champion predicts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shared.errors import TrainingDataError
from shared.training.calibration import holdout_calibration
from shared.training.cross_fitting import CrossFitted, cross_fit_since_change
from shared.training.decision_rule import RARE_CLASS_MIN_RECALL, fit_decision_rule, widen_the_cap
from shared.training.evaluation import evaluate, predict_labels

# The protocol's parts, re-exported: callers import them from here.
from shared.training.holdout import (  # noqa: F401
    DEFAULT_FOLDS,
    HOLDOUT_FRACTION,
    MIN_CLASS_MEMBERS,
    SPLIT,
    PreparedData,
    data_fingerprint,
    in_holdout,
    prepare_data,
)
from shared.training.labelled_rows import rarest_class
from shared.training.paired_comparison import paired_macro_f1_difference
from shared.training.promotion_gate import EvaluationRows
from shared.training.search import (  # noqa: F401
    FAMILIES,
    SEARCH_SPACES,
    balanced_weights,
    build_pipeline,
    cross_validate,
    encode,
    fit_pipeline,
    for_serving,
    mean_one,
    serialize,
    single_row_latency_ms,
)
from shared.training.serving_cost import served_latency_ms

# A tie is decided by serving cost only beyond this ratio of single-row times:
# on a shared machine the same model times up to ~2x apart from run to run.
COST_TIE_FACTOR = 3.0


@dataclass
class Candidate:
    family: str
    params: dict
    pipeline: object
    cv_scores: list[float]
    searched: list[dict]
    metrics: dict = field(default_factory=dict)
    decision_rule: dict = field(default_factory=dict)
    calibration_error: dict = field(default_factory=dict)
    artifact_bytes: bytes = b""
    latency_ms: float = 0.0  # one row, as served (its ONNX graph, else its pipeline; calibration and decision applied)
    serving_cost: dict = field(default_factory=dict)  # what the time was measured on, and why
    graph: bytes | None = None  # the ONNX export it was timed on; registration fuzzes it, not a new export
    training_seconds: float = 0.0
    holdout_predictions: np.ndarray | None = None  # its served labels for the holdout rows, for paired ties
    tie_comparison: dict | None = None  # its macro-F1 difference from the best candidate, with the interval
    left_out: str | None = None  # why the search could not select it
    out_of_fold: np.ndarray | None = None  # its configuration's out-of-fold probabilities (training rows)

    def summary(self) -> dict:
        return {
            "family": self.family,
            "params": self.params,
            "searched": self.searched,
            "cv_macro_f1_mean": round(float(np.mean(self.cv_scores)), 6),
            "cv_macro_f1_std": round(float(np.std(self.cv_scores)), 6),
            "cv_scores": [round(s, 6) for s in self.cv_scores],
            "holdout": self.metrics,
            "decision_rule": self.decision_rule,
            "holdout_calibration": self.calibration_error,
            "artifact_size_bytes": len(self.artifact_bytes),
            "single_row_latency_ms": round(self.latency_ms, 4),
            "single_row_latency_timed_on": self.serving_cost.get("timed_on"),
            "serving_cost": self.serving_cost,
            "rare_class_promise": self.decision_rule.get("rare_class_promise"),
            "difference_from_best": self.tie_comparison,
            "eligible": self.left_out is None,
            "left_out": self.left_out,
            "training_seconds": round(self.training_seconds, 3),
        }


@dataclass
class TrainingResult:
    data: PreparedData
    candidates: list[Candidate]
    winner: Candidate
    budget_exhausted: bool
    seed: int
    cross_fitted: CrossFitted | None = None  # training rows since a change, cross-fitted (the gate's evidence)


def train_candidates(
    X: np.ndarray,
    y: np.ndarray,
    seed: int = 42,
    families: tuple[str, ...] = FAMILIES,
    budget_seconds: float = 240.0,
    tie_tolerance: float = 0.005,
    folds: int = DEFAULT_FOLDS,
    progress: Callable[[str], None] | None = None,
    sample_weight: np.ndarray | None = None,
    rare_class_min_recall: float = RARE_CLASS_MIN_RECALL,
    since_change: np.ndarray | None = None,
) -> TrainingResult:
    """Run the whole protocol and return every candidate with the winner.
    `since_change`: rows of patients seen since a detected change (the gate's recall view)."""
    unknown = [family for family in families if family not in FAMILIES]
    if unknown or not families:
        raise TrainingDataError(f"unknown model families {unknown}; choose from {', '.join(FAMILIES)}")
    data = prepare_data(X, y, seed, folds, weights=sample_weight, since_change=since_change)
    y_train_encoded = encode(data.y_train, data.labels)
    rare = rarest_class(data.y_train, data.labels)
    deadline = time.monotonic() + budget_seconds
    budget_exhausted = False
    candidates = []
    for family in families:
        best_params, best_scores, best_out_of_fold, searched = None, None, None, []
        for params in SEARCH_SPACES[family]:
            if searched and time.monotonic() > deadline:
                budget_exhausted = True
                break
            started = time.perf_counter()
            scores, out_of_fold = cross_validate(family, params, data, seed)
            searched.append({"params": params, "cv_macro_f1_mean": round(float(np.mean(scores)), 6),
                             "seconds": round(time.perf_counter() - started, 3)})
            if progress:
                progress(f"{family} {params}: CV macro-F1 {np.mean(scores):.4f}")
            if best_scores is None or np.mean(scores) > np.mean(best_scores):
                best_params, best_scores, best_out_of_fold = params, scores, out_of_fold
        started = time.perf_counter()
        pipeline = fit_pipeline(build_pipeline(family, best_params, seed), family, data.X_train, y_train_encoded,
                                data.w_train)
        candidate = Candidate(family, best_params, for_serving(pipeline), best_scores, searched,
                              training_seconds=time.perf_counter() - started, out_of_fold=best_out_of_fold)
        rule = fit_decision_rule(best_out_of_fold, y_train_encoded, data.labels.index(rare),
                                 rare_class_min_recall, data.w_train, rare_label=rare)
        candidate.decision_rule = rule
        score_on_holdout(candidate, data)
        candidate.artifact_bytes = serialize(pipeline)
        candidate.latency_ms, candidate.serving_cost, candidate.graph = served_latency_ms(
            pipeline, data.labels, rule, data.X_holdout[:1])
        candidates.append(candidate)
        if progress:
            progress(f"{family}: holdout macro-F1 {candidate.metrics['macro_f1']:.4f}, "
                     f"{len(candidate.artifact_bytes) / 1e6:.2f} MB")
    for index in widen_the_cap([candidate.decision_rule for candidate in candidates]):
        score_on_holdout(candidates[index], data)  # its decision weights changed
    winner = select_winner(candidates, tie_tolerance, rare, rare_class_min_recall,
                           EvaluationRows(data.y_holdout, data.w_holdout))
    cross_fitted = cross_fit_since_change(winner.out_of_fold, data, seed, winner.decision_rule)
    return TrainingResult(data, candidates, winner, budget_exhausted, seed, cross_fitted)


def score_on_holdout(candidate: Candidate, data: PreparedData) -> None:
    """Its served labels, metrics and calibration on the holdout, under its rule."""
    rule = candidate.decision_rule
    candidate.holdout_predictions = predict_labels(candidate.pipeline, data.X_holdout, data.labels, rule)
    candidate.metrics = evaluate(data.y_holdout, candidate.holdout_predictions, data.w_holdout)
    candidate.calibration_error = holdout_calibration(candidate.pipeline, data, rule)


def select_winner(candidates: list[Candidate], tie_tolerance: float, rare_label: str | None = None,
                  rare_class_min_recall: float = RARE_CLASS_MIN_RECALL,
                  rows: EvaluationRows | None = None) -> Candidate:
    """Best holdout macro-F1 among the eligible (`leave_out_broken_promises`);
    tied with it, every eligible candidate not significantly worse on the same
    rows (paired bootstrap; `tie_tolerance` only without per-row predictions).
    Among ties: those whose rare class reaches the minimum recall on the holdout
    first (for candidates without a recorded promise), then those cheap to serve
    (single-row time within COST_TIE_FACTOR of the fastest: timings vary with
    the machine's load, and a tie decided by noise would make training
    irreproducible), then the smaller artifact, then the better macro-F1."""
    eligible = leave_out_broken_promises(candidates)
    best = max(eligible, key=lambda candidate: candidate.metrics["macro_f1"])
    paired = rows is not None and all(c.holdout_predictions is not None for c in candidates)
    if paired:
        for candidate in candidates:
            candidate.tie_comparison = paired_macro_f1_difference(
                rows.y_true, candidate.holdout_predictions, best.holdout_predictions, rows.weights)
        tied = [c for c in eligible if not c.tie_comparison["significantly_worse"]]
    else:
        tied = [c for c in eligible if c.metrics["macro_f1"] >= best.metrics["macro_f1"] - tie_tolerance]

    def misses_rare_class(candidate: Candidate) -> bool:
        rare = candidate.metrics.get("per_class", {}).get(rare_label)
        return bool(rare and rare["support"] and rare["recall"] < rare_class_min_recall)

    keeping_rare = [c for c in tied if not misses_rare_class(c)] or tied
    fastest = min(c.latency_ms for c in keeping_rare)
    cheap = [c for c in keeping_rare if c.latency_ms <= COST_TIE_FACTOR * fastest]
    return min(cheap, key=lambda c: (len(c.artifact_bytes), -c.metrics["macro_f1"]))


def leave_out_broken_promises(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates the search may select: when any keeps its rare-class
    promise, those that do not are left out, the reason in their `left_out`;
    when none does, the promise and the gate's reasons say it was not made,
    and `leave_out_below_the_most_recalled` applies a weaker criterion."""
    promises = {id(c): c.decision_rule.get("rare_class_promise") for c in candidates}
    keeping = [c for c in candidates if (promises[id(c)] or {}).get("met")]
    if not keeping:
        return leave_out_below_the_most_recalled(candidates)
    for candidate in candidates:
        promise = promises[id(candidate)]
        if promise is not None and not promise.get("met"):
            candidate.left_out = (
                f"rare-class promise not met ({promise.get('label')!r} recall lower bound "
                f"{promise.get('recall_lower_bound')} < {promise.get('min_recall')}"
                + (f": {promise['reason']}" if promise.get("reason") else "")
                + f") while {', '.join(c.family for c in keeping)} kept it")
    return [c for c in candidates if c.left_out is None]


# The weaker criterion's label, in the left-out reasons and the kept promises.
FALLBACK = ("fallback: no candidate could keep the bounded promise; kept only the candidates recalling the most "
            "rare rows out of fold (a point estimate, not a bound)")


def leave_out_below_the_most_recalled(candidates: list[Candidate]) -> list[Candidate]:
    """When no candidate keeps the promise (fill-only: ~25 rare rows, too few
    for any bound, or 30 that must all be recalled), those recalling fewer of
    them out of fold than the best are left out; the best always stay. It is
    a point estimate, and one row is noise on 25, so it is labelled as such
    (FALLBACK) in the reasons and the kept candidates' promises; but out of
    fold every family that recalled < 0.9 of fresh rare rows in the fill-only
    benchmark was behind the best (bench/rare_class.py, the note's table)."""
    promises = {id(c): c.decision_rule.get("rare_class_promise") or {} for c in candidates}
    if not all("recalled_rows" in promise for promise in promises.values()):
        return candidates  # a candidate without the count: no common basis to compare
    most = max(p["recalled_rows"] for p in promises.values())
    best = ", ".join(c.family for c in candidates if promises[id(c)]["recalled_rows"] == most)
    for candidate in candidates:
        promise = promises[id(candidate)]
        if promise["recalled_rows"] < most:
            candidate.left_out = (f"{FALLBACK}: it recalled {promise['recalled_rows']} of {promise['rare_rows']} "
                                  f"{promise.get('label')!r} rows, {best} recalled {most}")
        else:
            promise["fallback"] = FALLBACK
    return [c for c in candidates if c.left_out is None]
