"""Labelled rows of one source and day: the unit the training-data policy
(`training_data`) and "recent labels win" (`contradictions`) work on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from shared.schema import LABELS


@dataclass
class LabelledRows:
    """Rows of one source labelled on one day (age 0: the newest)."""

    source: str
    age_days: int
    X: np.ndarray
    y: np.ndarray
    detail: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)


def per_class(labels) -> dict[str, int]:
    counts = Counter(map(str, labels))
    return {label: counts.get(label, 0) for label in LABELS}


def rarest_class(y, labels=LABELS) -> str:
    """The class of `labels` with the fewest rows in `y` (ties: the earlier in
    `labels`): the one the rare-class promise and the gate protect."""
    counts = Counter(map(str, y))
    return min(labels, key=lambda label: (counts.get(label, 0), list(labels).index(label)))
