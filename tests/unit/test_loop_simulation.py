"""The loop simulation's judge (issue 20): the F1 target is judged on the
night's population, the judgement on the night's patients kept beside it."""

import numpy as np
import pytest

from bench.loop_simulation import night_population_f1, night_rows, population_macro_f1, population_samples
from bench.loop_targets import SHIFT_NIGHT, judge


def nights(population: dict[int, float], patients: dict[int, float]) -> list[dict]:
    """30 nights at 0.94 (population and patients), retrains on nights 12 and 15, except where told."""
    return [{"night": night, "shifted": night >= SHIFT_NIGHT, "retrain": night in (12, 15),
             "population_macro_f1": population.get(night, 0.94), "champion_macro_f1": patients.get(night, 0.94)}
            for night in range(1, 31)]


def test_a_late_dip_of_the_nights_sample_alone_does_not_fail_the_target_but_is_reported():
    targets = judge(nights(population={11: 0.90, 12: 0.91}, patients={11: 0.90, 12: 0.91, 25: 0.915}))
    assert targets["population_f1_back_within_0.02_from_night"]["value"] == 13
    assert targets["population_f1_back_within_0.02_from_night"]["met"]
    assert targets["f1_back_within_0.02_from_night"]["value"] == 26
    assert not targets["f1_back_within_0.02_from_night"]["met"]


def test_the_population_figure_decides_when_the_champion_itself_is_worse():
    targets = judge(nights(population={11: 0.90, 12: 0.91, 13: 0.915, 14: 0.93}, patients={11: 0.90, 12: 0.91}))
    assert targets["population_f1_back_within_0.02_from_night"] == dict(
        targets["population_f1_back_within_0.02_from_night"], value=14, first_night_within=[14], pre_shift_mean=0.94,
        met=False, reading="back within 0.02 from night 14")
    assert targets["f1_back_within_0.02_from_night"]["met"]


def test_repeated_3_rows_are_each_patient_three_times_with_fresh_noise():
    X, y = night_rows("repeated_3", 300, seed=5, noise_seed=5, shifted=True)
    assert X.shape == (300, 3) and (y[0::3] == y[1::3]).all() and (y[1::3] == y[2::3]).all()
    assert not np.array_equal(X[0::3], X[1::3])
    assert np.abs(X[0::3] - X[1::3]).mean() < 5  # the same patient, not another
    X1, _ = night_rows("random_20", 300, seed=5, noise_seed=5, shifted=True)
    assert len(np.unique(X1, axis=0)) == 300


class Answers:
    """A served model that predicts every row's label from a column: what it was asked is recorded."""

    def __init__(self, version: str):
        self.version, self.asked = version, 0

    def predict_labels(self, rows):
        self.asked += 1
        return np.where(rows[:, 0] > 0, "ENFERMEDAD LEVE", "NO ENFERMO").astype(object)


def test_the_population_figure_is_the_served_models_on_the_nights_population_once_per_version():
    rows = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    samples = {False: (rows, np.array(["ENFERMEDAD LEVE", "NO ENFERMO"] * 2, dtype=object)),  # all right
               True: (rows, np.array(["NO ENFERMO", "ENFERMEDAD LEVE"] * 2, dtype=object))}  # all wrong
    scores, champion = {}, Answers("v1")
    assert population_macro_f1(champion, samples, False, scores) == 1.0
    assert population_macro_f1(champion, samples, True, scores) == 0.0
    assert population_macro_f1(champion, samples, True, scores) == 0.0 and champion.asked == 2
    assert population_macro_f1(Answers("v2"), samples, False, scores) == 1.0 and len(scores) == 3


def test_the_json_keys_keep_their_meaning_and_doing_nothing_is_reported():
    """Review 20.R3 / R5: `f1_back_within_0.02_from_night` judges the night's
    patients, as before session 5; the population's has its own name; and what
    the champion serving at the shift scores on the shifted population is there
    to judge the target's scale by (a shift costing < 0.02 is no recovery)."""
    targets = judge(nights(population={11: 0.925, 12: 0.93}, patients={11: 0.90, 12: 0.91}))
    assert targets["f1_back_within_0.02_from_night"]["judged_on"].startswith("the night's patients")
    assert targets["f1_back_within_0.02_from_night"]["value"] == 13
    assert targets["population_f1_back_within_0.02_from_night"]["judged_on"].startswith("the night's population")
    assert "pre_shift_macro_f1" not in targets
    assert targets["no_retrain_population_delta"] == -0.015
    assert targets["population_f1_back_within_0.02_from_night"]["value"] == SHIFT_NIGHT
    assert targets["population_f1_back_within_0.02_from_night"]["reading"].startswith("the shift cost less than 0.02")
    assert targets["f1_back_within_0.02_from_night"]["reading"] == "back within 0.02 from night 13"


def test_the_population_samples_follow_each_populations_rule_and_the_variants_shape():
    """Review 20.R2: the shifted sample is labelled by the new rule (mild with a
    heart rate of 110+ is acute), the reference one by the old; repeated_3's
    rows are each patient three times."""
    from shared.schema import FEATURES, LABELS

    for variant in ("random_20", "repeated_3"):
        samples = population_samples(variant, rows=6000)
        for shifted, (X, y) in samples.items():
            assert X.shape == (6000, 3)
            heart_rate, bar = X[:, FEATURES.index("heart_rate")], 110.0
            if variant == "repeated_3":  # each patient's mean of 3 noisy rows: 4 SD of its noise above 110
                heart_rate, y, bar = heart_rate.reshape(-1, 3).mean(axis=1), y[0::3], 110.0 + 4 * 3.0 / np.sqrt(3)
            mild_fast = np.sum((y == LABELS[1]) & (heart_rate >= bar))
            assert (mild_fast == 0) if shifted else (mild_fast > 20), (variant, shifted, mild_fast)
        if variant == "repeated_3":
            y = samples[True][1]
            assert (y[0::3] == y[1::3]).all() and (y[1::3] == y[2::3]).all()


def test_each_night_is_scored_with_the_one_version_its_answers_name_on_that_nights_population():
    """Review 20.R2: the population figure is the model that served the night
    (one version a night, from the answers), on the shifted sample from the shift night."""
    rows = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    samples = {False: (rows, np.array(["ENFERMEDAD LEVE", "NO ENFERMO"] * 2, dtype=object)),
               True: (rows, np.array(["NO ENFERMO", "ENFERMEDAD LEVE"] * 2, dtype=object))}
    scores, champion = {}, Answers("v1")
    assert night_population_f1(champion, {"v1"}, samples, SHIFT_NIGHT - 1, scores) == ("v1", 1.0)
    assert night_population_f1(champion, {"v1"}, samples, SHIFT_NIGHT, scores) == ("v1", 0.0)
    with pytest.raises(AssertionError, match="served by"):
        night_population_f1(champion, {"v1", "v2"}, samples, SHIFT_NIGHT, scores)
    with pytest.raises(AssertionError, match="served by"):
        night_population_f1(champion, {"v2"}, samples, SHIFT_NIGHT, scores)
