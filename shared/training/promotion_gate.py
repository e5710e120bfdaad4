"""The promotion gate: a challenger replaces the champion only if it is at
least as good on the same holdout, overall and for every class.

Defaults (configurable): macro-F1 may not fall more than 0.01 below the
champion's, and no class's recall may drop by more than 0.10. The recall rule
protects the rare classes, whose drop barely moves a macro average.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import DEFAULTS


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"promote": self.promote, "reasons": self.reasons}


def decide_promotion(
    challenger: dict,
    champion: dict | None,
    f1_tolerance: float = DEFAULTS.promotion_f1_tolerance,
    max_recall_drop: float = DEFAULTS.promotion_max_recall_drop,
) -> GateDecision:
    """Compare holdout metrics (as `training.evaluate` returns them)."""
    if champion is None:
        return GateDecision(True, ["no champion yet: the first model is promoted"])
    reasons = []
    promote = True
    floor = champion["macro_f1"] - f1_tolerance
    if challenger["macro_f1"] < floor:
        promote = False
        reasons.append(f"macro-F1 {challenger['macro_f1']:.4f} is below the champion's "
                       f"{champion['macro_f1']:.4f} minus tolerance {f1_tolerance}")
    else:
        reasons.append(f"macro-F1 {challenger['macro_f1']:.4f} vs champion {champion['macro_f1']:.4f} "
                       f"(tolerance {f1_tolerance})")
    for label, champion_class in champion["per_class"].items():
        if champion_class["support"] == 0:
            continue
        drop = champion_class["recall"] - challenger["per_class"][label]["recall"]
        if drop > max_recall_drop:
            promote = False
            reasons.append(f"recall of {label!r} drops by {drop:.3f} (more than {max_recall_drop})")
    return GateDecision(promote, reasons)
