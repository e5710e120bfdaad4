"""The promotion gate on mixed-age holdouts (issue 21).

1. `mixed_age`: the issue's case -- 8 TERMINAL evaluation rows, 1 labelled
   today (weight 1) and 7 ten days ago (weight 0.5 ** 5); the champion recalls
   all 8. Challenger A misses only the recent row, B recalls 3 of 8 (the 5
   older missed). Decision for each.
2. `noise`: how often the gate refuses a challenger of the *same* quality as
   the champion, and how often it refuses one that is truly worse, on a
   recency-weighted holdout (ages uniform over 28 days, half-life 2 days:
   effective size ~15 % of its rows). Each model errs independently on each
   row with a per-model error rate; `trials` holdouts per scenario.
Runs against whichever `shared/` is importable; per-row predictions are given
to the gate when it accepts them (`EvaluationRows`), as `training.runs` does.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from shared.schema import LABELS

RARE = "ENFERMEDAD TERMINAL"


def contender(version, y, predictions, weights):
    from shared.training import promotion_gate
    from shared.training.evaluation import evaluate

    fields = promotion_gate.Contender.__dataclass_fields__
    extra = {"predictions": predictions} if "predictions" in fields else {}
    return promotion_gate.Contender(version, evaluate(y, predictions, weights), list(LABELS), **extra)


def decide(challenger, champion, y, weights):
    from shared.training import promotion_gate

    if hasattr(promotion_gate, "EvaluationRows"):
        return promotion_gate.decide_promotion(challenger, [champion],
                                               rows=promotion_gate.EvaluationRows(y, weights))
    return promotion_gate.decide_promotion(challenger, [champion])


def mixed_age() -> dict:
    rng = np.random.default_rng(0)
    y = rng.choice(np.array(LABELS[:4], dtype=object), size=2000, p=[0.45, 0.3, 0.15, 0.1])
    rare_rows = np.arange(8) * 250
    y[rare_rows] = RARE
    weights = np.ones(len(y))
    weights[rare_rows[1:]] = 0.5 ** 5
    champion = contender("champion", y, y.copy(), weights)
    out = {}
    for name, missed in (("A_misses_only_the_recent_row", rare_rows[:1]),
                         ("B_recalls_3_of_8_older_missed", rare_rows[1:6])):
        predictions = y.copy()
        predictions[missed] = LABELS[0]
        challenger = contender(None, y, predictions, weights)
        decision = decide(challenger, champion, y, weights)
        out[name] = {"promoted": decision.promote,
                     "weighted_rare_recall": challenger.metrics["per_class"][RARE]["recall"],
                     "reasons": decision.reasons}
    out["correct"] = out["A_misses_only_the_recent_row"]["promoted"] \
        and not out["B_recalls_3_of_8_older_missed"]["promoted"]
    return out


def with_errors(y, error_rate, rng):
    predictions = y.copy()
    wrong = rng.random(len(y)) < error_rate
    labels = np.array(LABELS, dtype=object)
    predictions[wrong] = labels[(np.searchsorted(labels, y[wrong]) + rng.integers(1, len(labels), wrong.sum()))
                                % len(labels)]
    return predictions


def noise(trials: int, rows: int) -> dict:
    from shared.training.synthetic_data import generate_reference_data

    results = {}
    for name, champion_error, challenger_error in (("same_quality", 0.08, 0.08), ("worse_by_2_points", 0.08, 0.10),
                                                   ("better_by_2_points", 0.08, 0.06)):
        refused, differences = 0, []
        for trial in range(trials):
            rng = np.random.default_rng(trial)
            _, y = generate_reference_data(rows, seed=5000 + trial)
            weights = 0.5 ** (rng.integers(0, 28, size=rows) / 2)
            champion = contender("champion", y, with_errors(y, champion_error, rng), weights)
            challenger = contender(None, y, with_errors(y, challenger_error, rng), weights)
            decision = decide(challenger, champion, y, weights)
            refused += not decision.promote
            differences.append(challenger.metrics["macro_f1"] - champion.metrics["macro_f1"])
        results[name] = {"refused_share": round(refused / trials, 3),
                         "macro_f1_difference_mean": round(float(np.mean(differences)), 4),
                         "macro_f1_difference_sd": round(float(np.std(differences)), 4)}
    weights = 0.5 ** (np.random.default_rng(0).integers(0, 28, size=rows) / 2)
    results["effective_rows_share"] = round(float(weights.sum() ** 2 / (weights ** 2).sum() / rows), 3)
    return results


def main(quick: bool = False) -> dict:
    started = time.perf_counter()
    trials, rows = (20, 2000) if quick else (50, 4000)
    table = {"mixed_age": mixed_age(), "noise": dict(noise(trials, rows), trials=trials, rows=rows)}
    table["seconds"] = round(time.perf_counter() - started, 1)
    return table


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
