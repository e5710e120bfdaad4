"""Each rule of the promotion gate, on hand-made metrics: each test fails when its rule is removed."""

from shared.schema import LABELS
from shared.training.promotion_gate import Contender, GateRules, decide_promotion

ALL = list(LABELS)


def model(macro_f1: float, recalls: dict | None = None, labels: list[str] = ALL, version: str | None = "v",
          data: str | None = None) -> Contender:
    recalls = recalls or {}
    per_class = {label: {"recall": recalls.get(label, 0.9), "support": 10} for label in LABELS}
    return Contender(version, {"macro_f1": macro_f1, "per_class": per_class}, labels, data)


def test_first_model_is_promoted_only_above_the_floor():
    assert decide_promotion(model(0.7), []).promote
    noise = decide_promotion(model(0.218), [], GateRules(min_macro_f1=0.5))
    assert not noise.promote and "floor" in " ".join(noise.reasons)


def test_the_floor_applies_to_every_promotion():
    weak_champion = model(0.3, version="old")
    decision = decide_promotion(model(0.45), [weak_champion], GateRules(min_macro_f1=0.5))
    assert not decision.promote and "floor" in " ".join(decision.reasons)


def test_better_or_equal_within_tolerance_is_promoted():
    assert decide_promotion(model(0.91), [model(0.90)]).promote
    assert decide_promotion(model(0.895), [model(0.90)], GateRules(f1_tolerance=0.01)).promote


def test_worse_macro_f1_is_refused_with_the_reason():
    decision = decide_promotion(model(0.85), [model(0.90)], GateRules(f1_tolerance=0.01))
    assert not decision.promote and "below 0.890000" in " ".join(decision.reasons)


def test_no_slide_the_bar_is_the_best_recent_champion_not_the_last():
    """0.90 -> 0.891 -> 0.882 would each be within 0.01 of the last one."""
    current, best = model(0.891, version="current"), model(0.90, version="best")
    decision = decide_promotion(model(0.882), [current, best], GateRules(f1_tolerance=0.01))
    assert not decision.promote
    assert decision.bar_version == "best" and decision.bar_macro_f1 == 0.89
    assert decision.champion_macro_f1 == 0.891


def test_a_rare_class_recall_drop_is_refused_even_when_macro_f1_improves():
    challenger = model(0.95, {"ENFERMEDAD TERMINAL": 0.6})
    decision = decide_promotion(challenger, [model(0.90, {"ENFERMEDAD TERMINAL": 0.9})],
                                GateRules(max_recall_drop=0.1))
    assert not decision.promote
    assert any("ENFERMEDAD TERMINAL" in reason for reason in decision.reasons)


def test_a_single_row_is_not_a_recall_drop():
    champion = model(0.90, {"ENFERMEDAD TERMINAL": 1.0})
    for per_class in champion.metrics["per_class"].values():
        per_class["support"] = 8
    assert decide_promotion(model(0.93, {"ENFERMEDAD TERMINAL": 0.875}), [champion]).promote  # 7 of 8
    assert not decide_promotion(model(0.93, {"ENFERMEDAD TERMINAL": 0.75}), [champion]).promote  # 6 of 8


def test_classes_absent_from_the_evaluation_rows_do_not_block():
    champion = model(0.9)
    champion.metrics["per_class"]["ENFERMEDAD TERMINAL"] = {"recall": 0.0, "support": 0}
    assert decide_promotion(model(0.9), [champion]).promote


def test_the_class_set_cannot_shrink_silently():
    """A class dropped from training (too few rows) has support 0 in the
    evaluation rows too, so the recall rule alone would not see it."""
    champion = model(0.90)
    champion.metrics["per_class"]["ENFERMEDAD TERMINAL"]["support"] = 0
    shrunk = model(0.93, labels=ALL[:-1])
    decision = decide_promotion(shrunk, [champion])
    assert not decision.promote and "no longer predicts ['ENFERMEDAD TERMINAL']" in " ".join(decision.reasons)


def test_a_challenger_no_better_on_the_champions_exact_data_is_not_promoted():
    champion = model(0.90, data="sha-a")
    assert not decide_promotion(model(0.90, data="sha-a"), [champion]).promote
    assert decide_promotion(model(0.905, data="sha-a"), [champion]).promote
    assert decide_promotion(model(0.90, data="sha-b"), [champion]).promote


def test_one_number_per_model_in_the_decision_and_its_reasons():
    decision = decide_promotion(model(0.9123456), [model(0.9012344)]).to_dict()
    text = " ".join(decision["reasons"])
    assert decision["challenger_macro_f1"] == 0.912346 and f"{0.912346:.6f}" in text
    assert decision["champion_macro_f1"] == 0.901234 and f"{0.901234:.6f}" in text
