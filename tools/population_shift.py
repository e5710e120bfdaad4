"""The shift the drift demo and the loop simulation both show, defined once.

From the shift on, fever and tachycardia are far more common (input drift),
and the service's clinicians call a heart rate of 110 or more with mild
signs acute, where the reference rule waited for 125 (concept drift in one
part of the space). NO MEDICAL BASIS, like the reference data.
"""

from __future__ import annotations

import numpy as np

from shared.schema import FEATURES, LABELS
from shared.training.synthetic_data import generate_reference_data

SHIFTED_PROFILES = {"acute": 0.6, "mild": 0.3}
ACUTE_HEART_RATE_AFTER_SHIFT = 110.0


def relabel_after_shift(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The labelling rule after the shift: mild cases with a heart rate of 110+ are acute."""
    heart_rate = X[:, FEATURES.index("heart_rate")]
    changed = (y == LABELS[1]) & (heart_rate >= ACUTE_HEART_RATE_AFTER_SHIFT)
    return np.where(changed, LABELS[2], y).astype(object)


def population(rows: int, seed: int, shifted: bool) -> tuple[np.ndarray, np.ndarray]:
    """One day's patients and the labels clinicians would give them."""
    X, y = generate_reference_data(rows, seed=seed, profile_weights=SHIFTED_PROFILES if shifted else None)
    return X, relabel_after_shift(X, y) if shifted else y
