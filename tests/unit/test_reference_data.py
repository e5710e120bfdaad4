from collections import Counter

import numpy as np

from shared.schema import FEATURE_RANGES, FEATURES, LABELS
from shared.training.synthetic_data import generate_reference_data, label_by_rule


def test_generator_is_deterministic_per_seed():
    X1, y1 = generate_reference_data(2000, seed=3)
    X2, y2 = generate_reference_data(2000, seed=3)
    X3, _ = generate_reference_data(2000, seed=4)
    assert np.array_equal(X1, X2) and list(y1) == list(y2)
    assert not np.array_equal(X1, X3)


def test_all_five_classes_with_a_rare_one():
    _, y = generate_reference_data(50_000, seed=1)
    shares = {label: count / len(y) for label, count in Counter(y).items()}
    assert set(shares) == set(LABELS)
    assert 0.01 <= shares["ENFERMEDAD TERMINAL"] <= 0.03
    assert shares["NO ENFERMO"] > 0.4


def test_values_stay_in_plausible_ranges():
    X, _ = generate_reference_data(20_000, seed=2)
    for column, name in enumerate(FEATURES):
        low, high, _ = FEATURE_RANGES[name]
        assert X[:, column].min() >= low and X[:, column].max() <= high


def test_rule_on_hand_picked_vitals():
    vitals = np.array([[36.6, 70, 120], [37.8, 80, 120], [39.0, 90, 110], [36.8, 80, 170], [34.5, 50, 80]])
    assert list(label_by_rule(vitals)) == list(LABELS[:2]) + ["ENFERMEDAD AGUDA", "ENFERMEDAD CRÓNICA",
                                                              "ENFERMEDAD TERMINAL"]


def test_profile_weights_shift_the_mix():
    _, normal = generate_reference_data(20_000, seed=5)
    _, shifted = generate_reference_data(20_000, seed=5, profile_weights={"acute": 0.5})
    assert Counter(shifted)["ENFERMEDAD AGUDA"] > 2 * Counter(normal)["ENFERMEDAD AGUDA"]
