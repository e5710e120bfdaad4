"""The promotion gate: the rules a challenger must pass to replace the champion.

Every figure is measured on the same evaluation rows -- rows that neither the
challenger nor any champion trained on (see `holdout.in_holdout`) --
and the decision records one number per model, the one its reasons quote.

Rules (defaults configurable in `Settings`):
1. Floor: macro-F1 of at least PROMOTION_MIN_MACRO_F1 (0.5), the first model
   included: a model trained on noise never serves.
2. No slide: macro-F1 no more than PROMOTION_F1_TOLERANCE (0.01) below the
   *best* of the recent champions, not only the current one, so a chain of
   "slightly worse" promotions cannot walk quality down.
3. Rare classes: no class's recall drops by more than PROMOTION_MAX_RECALL_DROP
   (0.10) against the current champion (a rare class barely moves a macro
   mean) -- unless that is a single row: with 8 rare rows one miss is 0.125,
   and one row is not evidence.
4. No silent shrink: every class the champion predicts, the challenger predicts.
5. No no-op: a challenger trained on the champion's exact data must score
   strictly better; `registry.promote` refuses the version already serving.
A champion that cannot be loaded is not "no champion": the caller raises
`ChampionUnavailable` before anything is decided, and the request is retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import DEFAULTS


@dataclass(frozen=True)
class GateRules:
    """The gate's thresholds; defaults are the configuration's (shared/config.py)."""

    min_macro_f1: float = DEFAULTS.promotion_min_macro_f1
    f1_tolerance: float = DEFAULTS.promotion_f1_tolerance
    max_recall_drop: float = DEFAULTS.promotion_max_recall_drop


@dataclass(frozen=True)
class Contender:
    """A model as the gate sees it: its metrics on the evaluation rows."""

    version: str | None
    metrics: dict
    labels: list[str]
    data_sha256: str | None = None


@dataclass
class GateDecision:
    promote: bool
    challenger_macro_f1: float
    champion_macro_f1: float | None = None  # the current champion, on the same rows
    bar_macro_f1: float | None = None  # what the challenger had to reach (best recent minus tolerance)
    bar_version: str | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"promote": self.promote, "challenger_macro_f1": self.challenger_macro_f1,
                "champion_macro_f1": self.champion_macro_f1, "bar_macro_f1": self.bar_macro_f1,
                "bar_version": self.bar_version, "reasons": list(self.reasons)}


def decide_promotion(challenger: Contender, champions: list[Contender], rules: GateRules = GateRules()) -> GateDecision:
    """`champions`: the current champion first, then recent earlier ones, each
    scored on the challenger's evaluation rows; empty only when none ever served."""
    score = round(float(challenger.metrics["macro_f1"]), 6)
    decision = GateDecision(True, score)

    def refuse(reason: str) -> None:
        decision.promote = False
        decision.reasons.append(reason)

    if score < rules.min_macro_f1:
        refuse(f"macro-F1 {score:.6f} is below the floor {rules.min_macro_f1}")
    if not champions:
        if decision.promote:
            decision.reasons.append(f"no champion yet; macro-F1 {score:.6f} clears the floor {rules.min_macro_f1}")
        return decision
    current = champions[0]
    decision.champion_macro_f1 = round(float(current.metrics["macro_f1"]), 6)
    best = max(champions, key=lambda champion: champion.metrics["macro_f1"])
    decision.bar_version = best.version
    decision.bar_macro_f1 = round(float(best.metrics["macro_f1"]) - rules.f1_tolerance, 6)
    if score < decision.bar_macro_f1:
        refuse(f"macro-F1 {score:.6f} is below {decision.bar_macro_f1:.6f}: the best recent champion "
               f"{best.version} scores {best.metrics['macro_f1']:.6f} on the same rows, minus tolerance "
               f"{rules.f1_tolerance}")
    else:
        decision.reasons.append(f"macro-F1 {score:.6f} vs champion {decision.champion_macro_f1:.6f} "
                                f"(bar {decision.bar_macro_f1:.6f} from {best.version})")
    if challenger.data_sha256 and challenger.data_sha256 == current.data_sha256 \
            and score <= decision.champion_macro_f1:
        refuse("trained on the champion's exact data and no better: nothing to promote")
    dropped = [label for label in current.labels if label not in challenger.labels]
    if dropped:
        refuse(f"the challenger no longer predicts {dropped}: the class set may not shrink silently")
    for label, champion_class in current.metrics["per_class"].items():
        if champion_class["support"] == 0 or label in dropped:
            continue
        support = champion_class["support"]
        drop = champion_class["recall"] - challenger.metrics["per_class"][label]["recall"]
        rows_lost = round(drop * support)
        if drop > rules.max_recall_drop and rows_lost > 1:
            refuse(f"recall of {label!r} drops by {drop:.3f} (more than {rules.max_recall_drop}; "
                   f"{rows_lost} of {support} rows)")
    return decision
