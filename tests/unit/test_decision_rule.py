"""The decision rule: calibration, rare-class decision weights, the tie-break,
and the one model-loading module applying the manifest's rule."""

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from shared.models.loading import calibrate, decide, load_version
from shared.schema import LABELS
from shared.stores.artifacts.local import LocalArtifactStore
from shared.training.candidates import Candidate, select_winner
from shared.training.decision_rule import (
    expected_calibration_error,
    fit_vector_scaling,
    macro_f1_and_recall,
    tune_decision_weights,
)
from tests.conftest import register_model


def rare_class_problem(rows=4000, seed=0, separation=2.0):
    """Three classes; the rare one (index 2, 2 %) gets too little probability."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=rows, p=[0.7, 0.28, 0.02])
    logits = rng.normal(0, 1, size=(rows, 3))
    logits[np.arange(rows), y] += separation
    logits[:, 2] -= 2.0  # the model under-calls the rare class
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, y


def test_macro_f1_and_recall_match_scikit_learn():
    probabilities, y = rare_class_problem()
    decided = probabilities.argmax(axis=1)
    macro_f1, recall = macro_f1_and_recall(y, decided, 3, rare=2)
    assert macro_f1 == pytest.approx(f1_score(y, decided, average="macro"))
    assert recall == pytest.approx(recall_score(y, decided, labels=[2], average="macro"))


def test_tuned_weights_reach_the_rare_recall_and_keep_macro_f1_when_unconstrained():
    probabilities, y = rare_class_problem()
    _, argmax_recall = macro_f1_and_recall(y, probabilities.argmax(axis=1), 3, rare=2)
    assert argmax_recall < 0.9
    weights, tuning = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9, max_cost=1.0)
    assert tuning["feasible"]
    _, recall = macro_f1_and_recall(y, decide(probabilities, weights), 3, rare=2)
    assert recall >= 0.9 and tuning["out_of_fold_rare_recall"]["tuned"] == pytest.approx(recall, abs=1e-6)
    free, _ = tune_decision_weights(probabilities, y, rare=2, min_recall=0.0)
    free_f1, _ = macro_f1_and_recall(y, decide(probabilities, free), 3, rare=2)
    argmax_f1, _ = macro_f1_and_recall(y, probabilities.argmax(axis=1), 3, rare=2)
    assert free_f1 >= argmax_f1


def test_a_promise_costing_more_macro_f1_than_the_cap_is_not_made():
    """On this overlap the promise costs ~0.12 of macro-F1 (rare precision ~0.2):
    beyond the cap it is said not met, why, and the rule stays affordable."""
    probabilities, y = rare_class_problem()
    _, costly = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9, max_cost=1.0)
    assert costly["rare_class_promise"]["met"] and costly["rare_class_promise"]["macro_f1_cost_in_rows"] > 0.1
    weights, capped = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9, max_cost=0.05)
    promise = capped["rare_class_promise"]
    assert not promise["met"] and "cost more than 0.05" in promise["reason"]
    macro_f1, recall = macro_f1_and_recall(y, decide(probabilities, weights), 3, rare=2)
    assert macro_f1 >= capped["out_of_fold_macro_f1"]["without_promise"] - 0.05 - 1e-9
    assert recall > capped["out_of_fold_rare_recall"]["argmax"]  # still as much recall as it can afford


def test_weights_take_no_step_that_loses_rows_for_a_gain_among_recent_rows():
    """Raising class 0's weight would recall 100 recent class-0 rows and miss
    300 old class-1 rows (weight 1e-4): better recency-weighted, worse in rows
    -- the gate's basis. The rule does not take it."""
    def rows(count, p, label, weight):
        return np.tile(p, (count, 1)), np.full(count, label), np.full(count, weight)

    parts = [rows(100, [0.45, 0.55, 0.0], 0, 1.0), rows(300, [0.45, 0.55, 0.0], 1, 1e-4),
             rows(100, [0.9, 0.1, 0.0], 0, 1.0), rows(100, [0.1, 0.9, 0.0], 1, 1.0),
             rows(60, [0.05, 0.05, 0.9], 2, 1.0)]
    probabilities, y, weights = (np.concatenate(column) for column in zip(*parts))
    chosen, tuning = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9, sample_weight=weights)
    decided = decide(probabilities, chosen)
    assert np.sum(decided[y == 1] == 1) == 400  # every class-1 row still recalled
    assert tuning["rare_class_promise"]["met"]


def test_expected_calibration_error_by_hand():
    # two rows at confidence 0.9 (one right), two at 0.6 (both right)
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert expected_calibration_error(probabilities, y) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def sharpened_problem(rows: int, sharpness: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Three classes (60/30/10 %), probabilities a softmax of noisy logits times `sharpness`."""
    y = rng.choice(3, size=rows, p=[0.6, 0.3, 0.1])
    logits = rng.normal(0, 1, size=(rows, 3))
    logits[np.arange(rows), y] += 1.0
    return np.exp(sharpness * logits) / np.exp(sharpness * logits).sum(axis=1, keepdims=True), y


def test_vector_scaling_reduces_the_calibration_error_of_an_overconfident_model():
    overconfident, y = sharpened_problem(6000, 4, np.random.default_rng(1))
    calibration = fit_vector_scaling(overconfident[:3000], y[:3000])
    raw = expected_calibration_error(overconfident[3000:], y[3000:])
    fixed = expected_calibration_error(calibrate(overconfident[3000:], calibration), y[3000:])
    assert fixed < raw / 2


def test_the_loading_module_applies_the_manifests_rule(tmp_path, trained_candidate):
    """Every function decides through `load_version(...)`: the manifest's weights change the label."""
    store = LocalArtifactStore(tmp_path / "artifacts")
    manifest = register_model(store, trained_candidate, promote=False)
    plain = load_version(store, manifest["version"])
    rows = trained_candidate.data.X_holdout[:50]
    assert set(plain.predict_labels(rows)) != {"ENFERMEDAD TERMINAL"}
    weights = [1e-6] * len(plain.labels)
    weights[plain.labels.index("ENFERMEDAD TERMINAL")] = 1.0
    tampered = dict(plain.manifest, decision_weights=weights,
                    calibration={"slope": [1.0] * len(plain.labels), "intercept": [0.0] * len(plain.labels)})
    weighted = dataclasses.replace(plain, manifest=tampered)
    assert set(weighted.predict_labels(rows)) == {"ENFERMEDAD TERMINAL"}
    assert {label for label, _ in weighted.predict(rows.tolist())} == {"ENFERMEDAD TERMINAL"}


def test_registered_versions_carry_their_rule(tmp_path, trained_candidate):
    from shared.models import registry
    from shared.monitoring.baseline import compute_baseline

    store = LocalArtifactStore(tmp_path / "artifacts")
    winner, data = trained_candidate.winner, trained_candidate.data
    manifest = registry.register_version(
        store, winner.artifact_bytes, labels=data.labels, metrics=winner.metrics,
        baseline=compute_baseline(data.X_train, data.y_holdout), data_fingerprint=data.fingerprint,
        training_parameters={}, decision_rule=winner.decision_rule)
    assert manifest["decision_weights"] == winner.decision_rule["decision_weights"]
    assert manifest["calibration"]["method"] == "vector_scaling"
    model = load_version(store, manifest["version"])
    from shared.training.candidates import predict_labels
    expected = predict_labels(winner.pipeline, data.X_holdout, data.labels, winner.decision_rule)
    assert list(model.predict_labels(data.X_holdout)) == list(expected)


def test_ties_go_first_to_the_candidate_that_keeps_the_rarest_class():
    def candidate(name, f1, size, rare_recall):
        made = Candidate(name, {}, None, [f1], [])
        made.metrics = {"macro_f1": f1, "per_class": {label: {"recall": 1.0, "support": 10} for label in LABELS}}
        made.metrics["per_class"]["ENFERMEDAD TERMINAL"]["recall"] = rare_recall
        made.artifact_bytes = b"x" * size
        return made

    small_misses = candidate("small", 0.950, 10, 0.5)
    big_keeps = candidate("big", 0.948, 1000, 0.95)
    assert select_winner([small_misses, big_keeps], 0.005, "ENFERMEDAD TERMINAL", 0.9).family == "big"
    assert select_winner([small_misses, big_keeps], 0.001, "ENFERMEDAD TERMINAL", 0.9).family == "small"


# --- The rare-class promise with a margin, and recency weights (issue 21). ---

def test_the_promise_is_a_lower_bound_not_the_recall_itself():
    """Tuned to recall 0.9 on ~80 rare rows, the bound would be ~0.83: the rule
    must recall enough rows that the one-sided 95 % bound reaches 0.9."""
    from shared.training.decision_rule import recall_lower_bound

    probabilities, y = rare_class_problem(rows=4000, seed=2)
    weights, tuning = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9, max_cost=1.0)
    promise = tuning["rare_class_promise"]
    _, recall = macro_f1_and_recall(y, decide(probabilities, weights), 3, rare=2)
    rare_rows = int(np.sum(y == 2))
    assert promise["met"] and promise["rare_rows"] == rare_rows
    assert promise["recall_lower_bound"] >= 0.9
    assert promise["recall_lower_bound"] == pytest.approx(recall_lower_bound(recall * rare_rows, rare_rows), abs=1e-6)
    assert recall > 0.93  # the margin: about 0.94 is needed on this many rows
    assert 0 < promise["expected_precision"] < 1


def test_clopper_pearson_bound_against_the_closed_form():
    from shared.training.decision_rule import recall_lower_bound

    # all n recalled: the one-sided bound solves p ** n = 0.05
    assert recall_lower_bound(50, 50) == pytest.approx(0.05 ** (1 / 50))
    assert recall_lower_bound(0, 50) == 0.0
    assert recall_lower_bound(46, 50) < 0.9 < 46 / 50
    # the two-sided 90 % exact interval's lower end is the one-sided 95 % bound
    from scipy.stats import binomtest

    for recalled, rows in ((46, 50), (51, 53), (7, 8)):
        exact = binomtest(recalled, rows).proportion_ci(confidence_level=0.90, method="exact").low
        assert recall_lower_bound(recalled, rows) == pytest.approx(exact)


def test_a_promise_no_rule_can_keep_is_said_not_made():
    """10 rare rows: even 10 of 10 bounds recall at 0.74; the record says so."""
    rng = np.random.default_rng(7)
    y = np.array([0] * 990 + [2] * 10 + [1] * 1000)
    probabilities = rng.dirichlet([1, 1, 1], size=len(y))
    _, tuning = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9, max_cost=1.0)
    promise = tuning["rare_class_promise"]
    assert not promise["met"] and not tuning["feasible"] and "10 rare rows cannot support it" in promise["reason"]
    assert promise["recall_lower_bound"] == pytest.approx(0.05 ** (1 / 10), abs=1e-6)  # best it can do


def test_the_promise_counts_rows_even_when_most_rare_rows_are_old_fill():
    """Most rare rows weigh 0.5 ** 14 (old fill) and 3 weigh 1: weighted, the
    evidence would be ~3 rows and no promise could ever be made; in rows, as
    the gate counts, it is kept, and the bound is the rows' bound."""
    from shared.training.decision_rule import recall_lower_bound

    probabilities, y = rare_class_problem(rows=4000, seed=2)
    weights = np.ones(len(y))
    weights[np.flatnonzero(y == 2)[3:]] = 0.5 ** 14
    chosen, tuning = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9, sample_weight=weights,
                                           max_cost=1.0)
    promise = tuning["rare_class_promise"]
    recalled = int(np.sum(decide(probabilities, chosen)[y == 2] == 2))
    assert promise["met"] and promise["rare_rows"] == int(np.sum(y == 2))
    assert promise["recall_lower_bound"] == pytest.approx(recall_lower_bound(recalled, promise["rare_rows"]), abs=1e-6)


def test_weighted_calibration_equals_calibration_on_duplicated_rows():
    rng = np.random.default_rng(1)
    probabilities, y = sharpened_problem(1500, 3, rng)
    counts = rng.integers(1, 4, size=1500)
    weighted = fit_vector_scaling(probabilities, y, counts.astype(float))
    duplicated = fit_vector_scaling(np.repeat(probabilities, counts, axis=0), np.repeat(y, counts))
    assert weighted["slope"] == pytest.approx(duplicated["slope"], abs=2e-3)
    assert weighted["intercept"] == pytest.approx(duplicated["intercept"], abs=2e-3)
    assert weighted != fit_vector_scaling(probabilities, y)


def test_ties_go_to_the_cheaper_to_serve_then_the_smaller():
    def candidate(name, latency, size):
        made = Candidate(name, {}, None, [0.9], [])
        made.metrics = {"macro_f1": 0.9, "per_class": {}}
        made.latency_ms, made.artifact_bytes = latency, b"x" * size
        return made

    assert select_winner([candidate("slow small", 2.0, 10), candidate("fast big", 0.5, 1000)], 0.005).family \
        == "fast big"
    assert select_winner([candidate("a", 0.5, 1000), candidate("b", 0.5, 10)], 0.005).family == "b"


def test_a_cost_difference_within_timing_noise_does_not_decide_a_tie():
    """Single-row times on a shared machine vary ~2x from run to run: a tie
    decided by 1.0 against 1.4 ms would change winner with the load, and the same
    data and seed would no longer give the same model. Within COST_TIE_FACTOR,
    the next rule (the smaller artifact) decides, whatever the timing."""
    from shared.training.candidates import COST_TIE_FACTOR

    def candidate(name, latency, size):
        made = Candidate(name, {}, None, [0.91], [])
        made.metrics = {"macro_f1": 0.91, "per_class": {}}
        made.latency_ms, made.artifact_bytes = latency, b"x" * size
        return made

    assert COST_TIE_FACTOR >= 2
    for fast_latency in (1.0, 1.4, 0.6):
        assert select_winner([candidate("small", 1.2, 10), candidate("fast", fast_latency, 1000)],
                             0.005).family == "small"
    assert select_winner([candidate("small", 1.2 * COST_TIE_FACTOR + 0.1, 10),
                          candidate("cheaper", 1.2, 1000)], 0.005).family == "cheaper"


def test_a_candidate_that_cannot_keep_the_promise_is_left_out_when_another_keeps_it():
    """The fill-only case: the best macro-F1 breaks the promise, another keeps
    it -- the latter is selected and the former's summary says why; when no
    candidate keeps it, none is left out (the data cannot support it)."""
    def candidate(name, f1, met):
        made = Candidate(name, {}, None, [f1], [])
        made.metrics = {"macro_f1": f1, "per_class": {}}
        made.decision_rule = {"rare_class_promise": {"met": met, "label": "ENFERMEDAD TERMINAL", "min_recall": 0.9,
                                                     "recall_lower_bound": 0.95 if met else 0.81}}
        return made

    breaks, keeps = candidate("forest", 0.96, False), candidate("mlp", 0.90, True)
    assert select_winner([breaks, keeps], 0.005).family == "mlp"
    assert not breaks.summary()["eligible"] and "while mlp kept it" in breaks.summary()["left_out"]
    assert "0.81 < 0.9" in breaks.left_out and keeps.summary()["eligible"]
    neither = [candidate("forest", 0.96, False), candidate("mlp", 0.90, False)]
    assert select_winner(neither, 0.005).family == "forest" and all(c.left_out is None for c in neither)


def test_ties_are_decided_by_a_paired_comparison_when_predictions_are_given():
    """0.004 worse on 20,000 rows, every disagreement against it: not a tie,
    though within the 0.005 tolerance."""
    from shared.training.promotion_gate import EvaluationRows

    rng = np.random.default_rng(0)
    y = rng.choice(np.array(LABELS, dtype=object), size=20_000, p=[0.4, 0.3, 0.2, 0.09, 0.01])
    worse = y.copy()
    worse[np.flatnonzero(y == LABELS[0])[:150]] = LABELS[1]

    def candidate(name, predictions, latency):
        from shared.training.evaluation import evaluate

        made = Candidate(name, {}, None, [0.9], [], metrics=evaluate(y, predictions))
        made.holdout_predictions, made.latency_ms = predictions, latency
        return made

    best, cheap_worse = candidate("best", y.copy(), 5.0), candidate("cheap", worse, 0.1)
    assert best.metrics["macro_f1"] - cheap_worse.metrics["macro_f1"] < 0.005
    assert select_winner([best, cheap_worse], 0.005).family == "cheap"  # the fixed tolerance: a tie
    assert select_winner([best, cheap_worse], 0.005, rows=EvaluationRows(y)).family == "best"
    assert cheap_worse.tie_comparison["significantly_worse"]


def test_a_class_seen_only_in_old_fill_rows_can_still_be_recalled():
    """Calibrated with recency weights, a fill-only class (weight 0.5 ** 14)
    gets ~1e-4 of its probability; its decision weight must reach past the grid."""
    probabilities, y = rare_class_problem(rows=4000, seed=2)
    weights = np.where(y == 2, 0.5 ** 14, 1.0)
    squashed = probabilities.copy()
    squashed[:, 2] *= 0.5 ** 14
    squashed /= squashed.sum(axis=1, keepdims=True)
    chosen, tuning = tune_decision_weights(squashed, y, rare=2, min_recall=0.9, sample_weight=weights,
                                           max_cost=1.0)
    assert tuning["rare_class_promise"]["met"], tuning
    assert chosen[2] > 1e4


# --- When no candidate keeps the promise within the cap (issue 21, benchmark seeds 8 and 10). ---

def test_a_promise_beyond_the_cap_but_within_the_widest_is_offered_with_the_rule():
    """Here the promise costs ~0.067 of macro-F1: not within the cap (0.05), so
    the rule breaks it, but the rule carries the offer that keeps it -- and
    none when the widest cap is below that cost."""
    from shared.training.decision_rule import PROMISE_WIDEST_MACRO_F1_COST, fit_decision_rule

    probabilities, y = rare_class_problem(separation=2.4)
    rule = fit_decision_rule(probabilities, y, rare=2)
    assert not rule["rare_class_promise"]["met"]
    offer = rule["promise_beyond_the_cap"]["rare_class_promise"]
    assert offer["met"] and 0.05 < offer["macro_f1_cost_in_rows"] <= PROMISE_WIDEST_MACRO_F1_COST
    assert offer["recall_lower_bound"] >= 0.9 and offer["max_macro_f1_cost"] == PROMISE_WIDEST_MACRO_F1_COST
    assert "promise_beyond_the_cap" not in fit_decision_rule(probabilities, y, rare=2, widest_cost=0.06)


def capped_rule(met: bool, offer_cost: float | None = None) -> dict:
    rule = {"decision_weights": [1.0, 1.0, 2.0], "tuning": {"capped": True},
            "rare_class_promise": {"met": met, "min_recall": 0.9, "max_macro_f1_cost": 0.05,
                                   "recall_lower_bound": 0.95 if met else 0.88, "label": "ENFERMEDAD TERMINAL"}}
    if offer_cost is not None:
        rule["promise_beyond_the_cap"] = {
            "decision_weights": [1.0, 1.0, 40.0], "tuning": {"capped": False},
            "rare_class_promise": {"met": True, "min_recall": 0.9, "max_macro_f1_cost": 0.10,
                                   "macro_f1_cost_in_rows": offer_cost, "recall_lower_bound": 0.93,
                                   "label": "ENFERMEDAD TERMINAL"}}
    return rule


def test_when_no_candidate_keeps_the_promise_within_the_cap_the_cheapest_keeper_is_served():
    """Seed 10 of bench/rare_class.py: no family kept it within 0.05, the best
    macro-F1 was served and recalled 0.89 of fresh rare rows; the forest keeps
    it at 0.050 (fresh recall 0.998). The cheapest keeper takes its offer, the
    others keep their rule and are left out, and selection serves the keeper."""
    from shared.training.decision_rule import widen_the_cap

    rules = [capped_rule(False, 0.08), capped_rule(False, 0.06), capped_rule(False)]
    assert widen_the_cap(rules) == [1]
    widened = rules[1]["rare_class_promise"]
    assert rules[1]["decision_weights"] == [1.0, 1.0, 40.0] and rules[1]["tuning"] == {"capped": False}
    assert widened["met"] and widened["widened_from"] == 0.05 and "least cost (0.06)" in widened["cap_widened"]
    assert rules[0]["decision_weights"] == [1.0, 1.0, 2.0] and not rules[0]["rare_class_promise"]["met"]
    assert rules[0]["rare_class_promise"]["cost_beyond_the_cap"] == 0.08
    assert not any("promise_beyond_the_cap" in rule for rule in rules)

    def candidate(name, f1, rule):
        made = Candidate(name, {}, None, [f1], [], decision_rule=rule)
        made.metrics = {"macro_f1": f1, "per_class": {}}
        return made

    served = select_winner([candidate("xgboost", 0.93, rules[0]), candidate("random_forest", 0.90, rules[1]),
                            candidate("mlp", 0.93, rules[2])], 0.005)
    assert served.family == "random_forest"


def test_the_cap_is_not_widened_when_a_candidate_keeps_the_promise_within_it():
    from shared.training.decision_rule import widen_the_cap

    rules = [capped_rule(True), capped_rule(False, 0.06)]
    assert widen_the_cap(rules) == []
    assert rules[1]["decision_weights"] == [1.0, 1.0, 2.0] and not rules[1]["rare_class_promise"]["met"]
    assert "promise_beyond_the_cap" not in rules[1]


# --- Too few rare rows for any bound (issue 21's fill-only case: ~25 rare rows). ---

def test_with_too_few_rare_rows_for_a_bound_the_rule_spends_the_cap_on_recall():
    """24 rare rows: even 24 of 24 bounds at 0.88, so no promise. Of the
    weights recalling the most rows, the rule takes the largest within the cap
    (a margin bought with the cap, since the rows cannot measure one) -- not the
    best macro-F1, which hugs the rows seen; a promise kept is tuned as before."""
    from shared.training.decision_rule import PROMISE_MAX_MACRO_F1_COST, _grids, recall_lower_bound

    probabilities, y = rare_class_problem(rows=1200, seed=3)
    keep = np.flatnonzero(y != 2)
    y, probabilities = np.concatenate([y[keep], y[y == 2][:24]]), np.concatenate(
        [probabilities[keep], probabilities[y == 2][:24]])
    assert recall_lower_bound(24, 24) < 0.9
    chosen, tuning = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9)
    promise = tuning["rare_class_promise"]
    assert not promise["met"] and "largest rare weight" in promise["tuned_for"]

    def rows_f1_and_recalled(rare_weight):
        weights = np.array(chosen, dtype=float)
        weights[2] = rare_weight
        decided = decide(probabilities, weights)
        return macro_f1_and_recall(y, decided, 3, rare=2)[0], int(np.sum(decided[y == 2] == 2))

    grid = _grids(y, 3, np.ones(len(y)))[2]
    floor = rows_f1_and_recalled(chosen[2])[0] + promise["macro_f1_cost_in_rows"] - PROMISE_MAX_MACRO_F1_COST
    affordable = [w for w in grid if rows_f1_and_recalled(w)[0] >= floor - 1e-12]
    most = max(rows_f1_and_recalled(w)[1] for w in affordable)
    assert promise["recalled_rows"] == most == rows_f1_and_recalled(chosen[2])[1]
    assert chosen[2] == pytest.approx(max(w for w in affordable if rows_f1_and_recalled(w)[1] == most), rel=1e-5)
    assert chosen[2] > min(w for w in affordable if rows_f1_and_recalled(w)[1] == most)  # not the tightest
    _, kept = tune_decision_weights(*rare_class_problem(), rare=2, min_recall=0.9, max_cost=1.0)
    assert kept["rare_class_promise"]["met"] and "tuned_for" not in kept["rare_class_promise"]


def test_when_no_candidate_keeps_the_promise_those_recalling_fewer_rare_rows_are_left_out():
    """The fallback (fill-only benchmark): nobody keeps the promise (25 rows
    are too few for any bound; with 30, all must be recalled), so the
    candidates recalling fewer rare rows out of fold than the best are left out,
    labelled as a point estimate; the best stay, with the label in their
    promise. Without a count to compare on, nobody is."""
    def candidate(name, f1, recalled, rows=25):
        made = Candidate(name, {}, None, [f1], [])
        made.metrics = {"macro_f1": f1, "per_class": {}}
        promise = {"met": False, "label": "ENFERMEDAD TERMINAL", "min_recall": 0.9, "rare_rows": rows,
                   "recall_lower_bound": 0.8}
        made.decision_rule = {"rare_class_promise": dict(promise, recalled_rows=recalled) if recalled else promise}
        return made

    forest, mlp, boosting = candidate("forest", 0.95, 24), candidate("mlp", 0.93, 25), candidate("hgb", 0.93, 25)
    assert select_winner([forest, mlp, boosting], 0.005).family in ("mlp", "hgb")
    assert "recalled 24 of 25 'ENFERMEDAD TERMINAL' rows, mlp, hgb recalled 25" in forest.left_out
    assert "fallback" in forest.left_out and "point estimate" in forest.left_out
    assert mlp.left_out is None and "fallback" in mlp.decision_rule["rare_class_promise"]["fallback"]
    thirty = [candidate("forest", 0.95, 28, rows=30), candidate("mlp", 0.93, 29, rows=30)]
    assert select_winner(thirty, 0.005).family == "mlp" and "28 of 30" in thirty[0].left_out
    uncounted = [candidate("forest", 0.95, None), candidate("mlp", 0.93, 25)]
    assert select_winner(uncounted, 0.005).family == "forest" and all(c.left_out is None for c in uncounted)
