"""Synthetic reference data: seeded vital signs labelled by a fixed rule.

NO MEDICAL BASIS. The profiles, thresholds and proportions below were chosen
to give a learnable, imbalanced five-class problem with a rare ("orphan")
class of about 2 %. They are not clinical criteria and must never be read as
such; real deployments train on their own labelled data.

How a row is made:
1. draw a latent profile with the weights in `PROFILE_WEIGHTS`;
2. draw true vitals from that profile's normal distributions;
3. label the true vitals with `label_by_rule` (first matching rule wins);
4. add measurement noise to the vitals that are returned, so rows near a
   rule's threshold are sometimes labelled across it -- as real data is.
"""

from __future__ import annotations

import numpy as np

from shared.schema import FEATURE_RANGES, FEATURES, LABELS

# profile -> (weight, (mean, std) per feature in FEATURES order)
PROFILES: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    "healthy": (0.56, ((36.7, 0.35), (74.0, 10.0), (118.0, 12.0))),
    "mild": (0.25, ((37.9, 0.45), (98.0, 12.0), (126.0, 14.0))),
    "acute": (0.11, ((39.2, 0.6), (128.0, 16.0), (112.0, 16.0))),
    "chronic": (0.06, ((36.9, 0.5), (82.0, 12.0), (172.0, 16.0))),
    "terminal": (0.02, ((34.6, 0.8), (52.0, 12.0), (78.0, 12.0))),
}
PROFILE_WEIGHTS: dict[str, float] = {name: weight for name, (weight, _) in PROFILES.items()}

MEASUREMENT_NOISE = (0.15, 3.0, 4.0)


def label_by_rule(vitals: np.ndarray) -> np.ndarray:
    """Label rows of (temperature, heart_rate, blood_pressure); no medical basis."""
    temperature, heart_rate, pressure = vitals[:, 0], vitals[:, 1], vitals[:, 2]
    conditions = [
        (temperature < 35.5) & ((heart_rate < 60) | (pressure < 90)),  # TERMINAL
        (temperature >= 38.6) | (heart_rate >= 125),                  # AGUDA
        pressure >= 150,                                               # CRÓNICA
        (temperature >= 37.5) | (heart_rate >= 95),                    # LEVE
    ]
    choices = [LABELS[4], LABELS[2], LABELS[3], LABELS[1]]
    return np.select(conditions, choices, default=LABELS[0]).astype(object)


def generate_reference_data(
    rows: int,
    seed: int = 42,
    profile_weights: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (X, y): `rows` vitals in FEATURES order and their labels.

    `profile_weights` overrides the mix of profiles -- the drift demo uses it to
    make fever and tachycardia more common.
    """
    if rows < 1:
        raise ValueError("rows must be positive")
    weights = dict(PROFILE_WEIGHTS, **(profile_weights or {}))
    names = list(PROFILES)
    probabilities = np.array([weights[name] for name in names], dtype=float)
    probabilities /= probabilities.sum()
    rng = np.random.default_rng(seed)
    profile_index = rng.choice(len(names), size=rows, p=probabilities)
    means = np.array([[m for m, _ in PROFILES[name][1]] for name in names])
    stds = np.array([[s for _, s in PROFILES[name][1]] for name in names])
    true_vitals = rng.normal(means[profile_index], stds[profile_index])
    true_vitals = _clip_to_ranges(true_vitals)
    labels = label_by_rule(true_vitals)
    observed = true_vitals + rng.normal(0.0, MEASUREMENT_NOISE, size=true_vitals.shape)
    return np.round(_clip_to_ranges(observed), 1), labels


def _clip_to_ranges(vitals: np.ndarray) -> np.ndarray:
    low = [FEATURE_RANGES[name][0] for name in FEATURES]
    high = [FEATURE_RANGES[name][1] for name in FEATURES]
    return np.clip(vitals, low, high)
