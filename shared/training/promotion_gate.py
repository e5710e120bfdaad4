"""The promotion gate: the rules a challenger must pass to replace the champion.

Every figure is measured on the same evaluation rows -- rows that neither the
challenger nor any champion trained on (see `holdout.in_holdout`) -- and the
decision records one number per model, the one its reasons quote.

Rules (defaults configurable in `Settings`):
1. Floor: macro-F1 of at least PROMOTION_MIN_MACRO_F1 (0.5), the first model
   included: a model trained on noise never serves.
2. No slide, compared fairly: given each model's predictions on the rows
   (`EvaluationRows`), the challenger must not be *significantly* worse than
   any recent champion -- the best included, so a chain of "slightly worse"
   promotions cannot walk quality down: a paired bootstrap of the macro-F1
   difference on the same rows (`paired_comparison`), refused when the whole
   95 % interval is below 0; each interval is reported with the decision.
   A fixed tolerance (PROMOTION_F1_TOLERANCE, 0.01) is smaller than the
   holdout's noise (0.017 at 4k rows), so it is only the fallback when no
   per-row predictions are given.
3. Rare classes, in rows: no class's recall drops by more than
   PROMOTION_MAX_RECALL_DROP (0.10) against the current champion (a rare class
   barely moves a macro mean), counted in actual rows of the evaluation set
   recalled by each -- never recency weights multiplied by row counts --
   unless the loss is not evidence: a single row (with 8 rare rows one miss is
   0.125), or, given per-row predictions, not significant by an exact McNemar
   test on the class's rows where the two disagree (2 of 10 rows lost: p =
   0.25; 5 of 8: p = 0.03, refused).
   After a detected change, a loss on every row in a class whose labelling
   the change moved (`change_weighting` names it: "recent labels win" dropped
   its older labels as relabelled) is judged again on the rows of patients
   seen since it (`EvaluationRows.since_change`): the older labels follow the
   rule the change replaced, and a challenger that learnt the new one loses
   "recall" on them (bench/loop_simulation.py: night-12 candidates 0.013-0.034
   better on the new population were refused). The loss is excused only on
   evidence that the challenger is not worse there. The rows are the holdout's
   since the change and the training part's, cross-fitted (`cross_fitting`: the
   holdout holds a fifth of them; the loop's refused seed-1 night-12 candidate
   had 20 of its class). With at least 5 such rows
   (`recall_rule.min_rows_for_a_significant_loss`), the one-sided 95 % upper bound of its
   recall loss on them (`recall_loss_upper_bound`, exact on the rows where the
   two disagree) must be within PROMOTION_MAX_RECALL_DROP. A mere "not
   significant" would excuse most on the fewest rows (2 of 6 against 6 of 6:
   p = 0.06). A bound rather than the observed recall alone, so one lucky row
   among few does not decide either. The view since only excuses, never adds
   a refusal (judged there alone, a follow-up 0.046 better lost 10 of 91 new
   mild rows and was refused). The rare class (the challenger's rare-class
   promise, else the evaluation rows' rarest) is never excused: its rows
   since a change are the fewest of all. Each excuse is recorded with both
   views and the rows by source (`GateDecision.recall_excused`).
4. No silent shrink: every class the champion predicts, the challenger predicts.
5. No no-op: a challenger trained on the champion's exact data must score
   strictly better; `registry.promote` refuses the version already serving.
When the challenger's decision rule could not make its rare-class promise
(see `decision_rule`), the decision says so.
A champion that cannot be loaded is not "no champion": the caller raises
`ChampionUnavailable` before anything is decided, and the request is retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.config import DEFAULTS
from shared.training.labelled_rows import rarest_class
from shared.training.paired_comparison import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, paired_macro_f1_difference
from shared.training.recall_rule import SinceChangeEvidence, recall_loss, since_change_view


@dataclass(frozen=True)
class GateRules:
    """The gate's thresholds; defaults are the configuration's (shared/config.py)."""

    min_macro_f1: float = DEFAULTS.promotion_min_macro_f1
    f1_tolerance: float = DEFAULTS.promotion_f1_tolerance
    max_recall_drop: float = DEFAULTS.promotion_max_recall_drop
    confidence: float = DEFAULT_CONFIDENCE
    resamples: int = DEFAULT_RESAMPLES


@dataclass(frozen=True)
class EvaluationRows:
    """The evaluation rows' true labels and weights, for paired comparisons."""

    y_true: np.ndarray
    weights: np.ndarray | None = None
    since_change: np.ndarray | None = None  # rows of patients seen since a detected change (None: no change)
    cross_fitted: SinceChangeEvidence | None = None  # training rows since it, cross-fitted (`cross_fitting`)


@dataclass(frozen=True)
class Contender:
    """A model as the gate sees it: its metrics on the evaluation rows."""

    version: str | None
    metrics: dict
    labels: list[str]
    data_sha256: str | None = None
    predictions: np.ndarray | None = None  # its labels for the evaluation rows, in their order
    rare_class_promise: dict | None = None  # from its decision rule, if any


@dataclass
class GateDecision:
    promote: bool
    challenger_macro_f1: float
    champion_macro_f1: float | None = None  # the current champion, on the same rows
    bar_macro_f1: float | None = None  # what the challenger had to reach (best recent minus tolerance)
    bar_version: str | None = None
    reasons: list[str] = field(default_factory=list)
    paired_comparisons: dict = field(default_factory=dict)  # champion version -> difference and its interval
    rows_since_change: int | None = None  # evaluation rows of patients seen since a detected change
    recall_excused: dict = field(default_factory=dict)  # label -> {"all_rows": ..., "since_rows": ...}
    # label -> {"all_rows": ..., "since_rows": ... ({"judged": false, "why": ...} when not judged there)}:
    # rule 3's figures for a refusal, so an
    # operator sees why the served model is still the one it is (the loop's night-12 refusals were prose only)
    recall_refused: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"promote": self.promote, "challenger_macro_f1": self.challenger_macro_f1,
                "champion_macro_f1": self.champion_macro_f1, "bar_macro_f1": self.bar_macro_f1,
                "bar_version": self.bar_version, "reasons": list(self.reasons),
                "paired_comparisons": dict(self.paired_comparisons), "rows_since_change": self.rows_since_change,
                "recall_excused": {label: dict(views) for label, views in self.recall_excused.items()},
                "recall_refused": {label: dict(views) for label, views in self.recall_refused.items()}}


def decide_promotion(challenger: Contender, champions: list[Contender], rules: GateRules = GateRules(),
                     rows: EvaluationRows | None = None) -> GateDecision:
    """`champions`: the current champion first, then recent earlier ones, each
    scored on the challenger's evaluation rows; empty only when none ever served.
    With `rows` and every contender's `predictions`, macro-F1 is compared by a
    paired bootstrap; otherwise by the fixed tolerance."""
    score = round(float(challenger.metrics["macro_f1"]), 6)
    decision = GateDecision(True, score)
    if rows is not None and rows.since_change is not None:
        decision.rows_since_change = int(np.sum(rows.since_change))

    def refuse(reason: str) -> None:
        decision.promote = False
        decision.reasons.append(reason)

    if score < rules.min_macro_f1:
        refuse(f"macro-F1 {score:.6f} is below the floor {rules.min_macro_f1}")
    _note_rare_class_promise(challenger, decision)
    if not champions:
        if decision.promote:
            decision.reasons.append(f"no champion yet; macro-F1 {score:.6f} clears the floor {rules.min_macro_f1}")
        return decision
    current = champions[0]
    decision.champion_macro_f1 = round(float(current.metrics["macro_f1"]), 6)
    best = max(champions, key=lambda champion: champion.metrics["macro_f1"])
    decision.bar_version = best.version
    paired = rows is not None and challenger.predictions is not None \
        and all(champion.predictions is not None for champion in champions)
    if paired:
        _compare_paired(challenger, champions, rules, rows, decision, refuse)
    else:
        _compare_with_tolerance(score, best, rules, decision, refuse)
    if challenger.data_sha256 and challenger.data_sha256 == current.data_sha256 \
            and score <= decision.champion_macro_f1:
        refuse("trained on the champion's exact data and no better: nothing to promote")
    dropped = [label for label in current.labels if label not in challenger.labels]
    if dropped:
        refuse(f"the challenger no longer predicts {dropped}: the class set may not shrink silently")
    rare = (challenger.rare_class_promise or {}).get("label") or (
        rarest_class(rows.y_true, current.labels) if paired else None)
    for label, champion_class in current.metrics["per_class"].items():
        if champion_class["support"] == 0 or label in dropped:
            continue
        loss = recall_loss(current, challenger, label, champion_class["support"], rows if paired else None, rules)
        if loss is None or not loss.refused:
            if loss is not None:
                decision.reasons.append(loss.describe(rules))
            continue
        excuse = since_change_view(current, challenger, label, rows if paired else None, rules, rare)
        if excuse.excused:
            decision.recall_excused[label] = {"all_rows": loss.to_dict(), "since_rows": excuse.to_dict()}
            decision.reasons.append(f"{loss.describe(rules)}; but {excuse.describe(rules)}")
        else:
            decision.recall_refused[label] = {"all_rows": loss.to_dict(), "since_rows": excuse.to_dict()}
            refuse(loss.describe(rules) + (f"; and {excuse.describe(rules)}" if excuse.judged or excuse.rare else ""))
    return decision


def _compare_paired(challenger, champions, rules, rows, decision, refuse) -> None:
    best = max(champions, key=lambda champion: champion.metrics["macro_f1"])
    decision.bar_macro_f1 = round(float(best.metrics["macro_f1"]), 6)
    for champion in champions:
        interval = paired_macro_f1_difference(rows.y_true, challenger.predictions, champion.predictions,
                                              rows.weights, rules.resamples, rules.confidence)
        decision.paired_comparisons[str(champion.version)] = interval
        text = (f"macro-F1 {decision.challenger_macro_f1:.6f} vs {champion.version} "
                f"{float(champion.metrics['macro_f1']):.6f}: difference {interval['difference']:+.4f}, "
                f"{rules.confidence:.0%} interval [{interval['low']:+.4f}, {interval['high']:+.4f}] on "
                f"{interval['rows']} rows (effective {interval['effective_rows']:g})")
        if interval["significantly_worse"]:
            refuse(f"{text}: significantly worse")
        else:
            decision.reasons.append(f"{text}: not significantly worse")


def _compare_with_tolerance(score, best, rules, decision, refuse) -> None:
    decision.bar_macro_f1 = round(float(best.metrics["macro_f1"]) - rules.f1_tolerance, 6)
    if score < decision.bar_macro_f1:
        refuse(f"macro-F1 {score:.6f} is below {decision.bar_macro_f1:.6f}: the best recent champion "
               f"{best.version} scores {best.metrics['macro_f1']:.6f} on the same rows, minus tolerance "
               f"{rules.f1_tolerance}")
    else:
        decision.reasons.append(f"macro-F1 {score:.6f} vs champion {decision.champion_macro_f1:.6f} "
                                f"(bar {decision.bar_macro_f1:.6f} from {best.version})")


def _note_rare_class_promise(challenger: Contender, decision: GateDecision) -> None:
    promise = challenger.rare_class_promise
    if promise and not promise.get("met", True):
        decision.reasons.append(
            f"note: no decision rule could promise {promise.get('label')!r} recall >= {promise.get('min_recall')} "
            f"with 95 % confidence (lower bound {promise.get('recall_lower_bound')} on "
            f"{promise.get('rare_rows')} out-of-fold rows)"
            + (f"; {promise['fallback']}" if promise.get("fallback") else ""))
    elif promise and promise.get("widened_from") is not None:
        decision.reasons.append(
            f"note: the {promise.get('label')!r} recall promise costs {promise.get('macro_f1_cost_in_rows')} of "
            f"out-of-fold macro-F1 against its own best rule, beyond the {promise['widened_from']} cap: no "
            f"candidate kept it within")
