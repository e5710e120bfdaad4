"""The loop simulation's judge (issue 20): the F1 target is judged on the
night's population, the judgement on the night's patients kept beside it."""

import numpy as np

from bench.loop_simulation import SHIFT_NIGHT, judge, night_rows, population_macro_f1


def nights(population: dict[int, float], patients: dict[int, float]) -> list[dict]:
    """30 nights at 0.94 (population and patients), retrains on nights 12 and 15, except where told."""
    return [{"night": night, "shifted": night >= SHIFT_NIGHT, "retrain": night in (12, 15),
             "population_macro_f1": population.get(night, 0.94), "champion_macro_f1": patients.get(night, 0.94)}
            for night in range(1, 31)]


def test_a_late_dip_of_the_nights_sample_alone_does_not_fail_the_target_but_is_reported():
    targets = judge(nights(population={11: 0.90, 12: 0.91}, patients={11: 0.90, 12: 0.91, 25: 0.915}))
    assert targets["f1_back_within_0.02_from_night"]["value"] == 13
    assert targets["f1_back_within_0.02_from_night"]["met"]
    assert targets["nights_patients_f1_back_within_0.02_from_night"]["value"] == 26
    assert not targets["nights_patients_f1_back_within_0.02_from_night"]["met"]


def test_the_population_figure_decides_when_the_champion_itself_is_worse():
    targets = judge(nights(population={11: 0.90, 12: 0.91, 13: 0.915, 14: 0.93}, patients={11: 0.90, 12: 0.91}))
    assert targets["f1_back_within_0.02_from_night"] == dict(
        targets["f1_back_within_0.02_from_night"], value=14, first_night_within=[14], pre_shift_mean=0.94, met=False)
    assert targets["nights_patients_f1_back_within_0.02_from_night"]["met"]


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
