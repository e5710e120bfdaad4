"""The loop simulation's targets (issue 20), judged from its table of nights
(`bench/loop_simulation.py`): one concept, apart from the loop that makes the
table, so the judgement can be tested on hand-made nights.

The F1 target ("back within 0.02 of the pre-shift mean within 3 nights of the
shift, and held") is judged twice: on the night's patients (the key it always
had, `f1_back_within_0.02_from_night`) and on the night's population
(`population_f1_back_within_0.02_from_night`, the one the loop's targets are
judged on since session 5: the night's sample is too noisy in repeated_3).
Beside them, what doing nothing scores (`no_retrain_population_delta`): the
champion that served when the shift arrived, on the shifted population, against
its pre-shift mean -- the shift costs it only ~0.02-0.03, so "back within 0.02"
can be a gain of a few thousandths, or no retrain at all.
"""

from __future__ import annotations

import numpy as np

SHIFT_NIGHT = 11
POPULATION_ROWS = 200_000
F1_TARGET = "population_f1_back_within_0.02_from_night"  # the key the F1 target is judged on


def settled_from(nights: list[dict], column: str) -> dict:
    """The first night from which `column` stays within 0.02 of its pre-shift mean, to the last night."""
    before, after = [n for n in nights if not n["shifted"]], [n for n in nights if n["shifted"]]
    bar = float(np.mean([n[column] for n in before])) - 0.02
    settled = next((night for night in range(SHIFT_NIGHT, nights[-1]["night"] + 1)
                    if all(n[column] >= bar for n in after if n["night"] >= night)), None)
    reading = ("never back within 0.02" if settled is None
               else "the shift cost less than 0.02 (no recovery needed)" if settled == SHIFT_NIGHT
               else f"back within 0.02 from night {settled}")
    return {"value": settled, "first_night_within": [n["night"] for n in after if n[column] >= bar][:1],
            "pre_shift_mean": round(bar + 0.02, 4), "target": f"<= night {SHIFT_NIGHT + 2}",
            "met": settled is not None and settled <= SHIFT_NIGHT + 2, "reading": reading}


def no_retrain_population_delta(nights: list[dict]) -> float | None:
    """What doing nothing scores: the shift night's population macro-F1 (the
    champion that served when the shift arrived: a retrain serves from the next
    night) minus its pre-shift mean. None without a shift night."""
    before = [n["population_macro_f1"] for n in nights if not n["shifted"]]
    first = next((n for n in nights if n["night"] == SHIFT_NIGHT), None)
    if first is None or not before:
        return None
    return round(first["population_macro_f1"] - float(np.mean(before)), 4)


def judge(nights: list[dict]) -> dict:
    """The issue's four targets, each with the figure it was judged on."""
    before = [n for n in nights if not n["shifted"]]
    after = [n for n in nights if n["shifted"]]
    retrain_nights = [n["night"] for n in after if n["retrain"]]
    first = retrain_nights[0] if retrain_nights else None
    return {
        "stationary_retrains": {"value": sum(n["retrain"] for n in before), "target": 0,
                                "met": not any(n["retrain"] for n in before)},
        "first_retrain_after_shift": {"value": first, "target": f"<= night {SHIFT_NIGHT + 1}",
                                      "met": first is not None and first <= SHIFT_NIGHT + 1},
        "retrains_after_the_first": {"value": retrain_nights[1:], "target": "at most one",
                                     "met": first is not None and len(retrain_nights[1:]) <= 1},
        F1_TARGET: dict(settled_from(nights, "population_macro_f1"),
                        judged_on=f"the night's population ({POPULATION_ROWS:,} rows); the F1 target"),
        "f1_back_within_0.02_from_night": dict(settled_from(nights, "champion_macro_f1"),
                                               judged_on="the night's patients (the key's meaning before session 5)"),
        "no_retrain_population_delta": no_retrain_population_delta(nights),
    }
