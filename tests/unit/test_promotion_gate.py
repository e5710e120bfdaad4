from shared.schema import LABELS
from shared.training.promotion_gate import decide_promotion


def metrics(macro_f1: float, recalls: dict | None = None) -> dict:
    recalls = recalls or {}
    return {"macro_f1": macro_f1,
            "per_class": {label: {"recall": recalls.get(label, 0.9), "support": 10} for label in LABELS}}


def test_first_model_is_promoted():
    assert decide_promotion(metrics(0.5), None).promote


def test_better_or_equal_within_tolerance_is_promoted():
    assert decide_promotion(metrics(0.91), metrics(0.90)).promote
    assert decide_promotion(metrics(0.895), metrics(0.90), f1_tolerance=0.01).promote


def test_worse_macro_f1_is_refused_with_the_reason():
    decision = decide_promotion(metrics(0.85), metrics(0.90), f1_tolerance=0.01)
    assert not decision.promote and "below the champion" in " ".join(decision.reasons)


def test_a_rare_class_recall_drop_is_refused_even_when_macro_f1_improves():
    challenger = metrics(0.95, {"ENFERMEDAD TERMINAL": 0.6})
    decision = decide_promotion(challenger, metrics(0.90, {"ENFERMEDAD TERMINAL": 0.9}), max_recall_drop=0.1)
    assert not decision.promote
    assert any("ENFERMEDAD TERMINAL" in reason for reason in decision.reasons)


def test_classes_absent_from_the_holdout_do_not_block():
    champion = metrics(0.9)
    champion["per_class"]["ENFERMEDAD TERMINAL"] = {"recall": 0.0, "support": 0}
    challenger = metrics(0.9)
    assert decide_promotion(challenger, champion).promote
