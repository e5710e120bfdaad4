"""Domain records the stores hold and the statistics read: no I/O here.

A record holds the model's inputs and outputs and metadata only: no client
IP, no patient identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from shared.schema import FEATURES, LABELS


@dataclass
class PredictionRecord:
    prediction_id: str
    created_at: datetime
    temperature: float
    heart_rate: float
    blood_pressure: float
    prediction: str
    probabilities: dict[str, float]
    model_version: str
    outcome_label: str | None = None
    outcome_recorded_at: datetime | None = None
    outcome_updated_at: datetime | None = None
    outcome_caller: str | None = None  # who sent the current label (shared.governance.caller)
    # earlier labels, oldest first: {"label", "caller", "at"} (`at` a datetime)
    outcome_history: list[dict] = field(default_factory=list)

    def to_api(self) -> dict:
        item = {
            "prediction_id": self.prediction_id,
            "created_at": isoformat(self.created_at),
            "inputs": {name: getattr(self, name) for name in FEATURES},
            "prediction": self.prediction,
            "probabilities": in_label_order(self.probabilities),
            "model_version": self.model_version,
        }
        if self.outcome_label is not None:
            item["outcome"] = {
                "label": self.outcome_label,
                "recorded_at": isoformat(self.outcome_recorded_at),
                "updated_at": isoformat(self.outcome_updated_at),
                "caller": self.outcome_caller,
                "history": [{"label": entry["label"], "caller": entry.get("caller"), "at": isoformat(entry["at"])}
                            for entry in self.outcome_history],
            }
        return item


@dataclass
class WindowChunk:
    """A bounded slice of logged predictions, column-wise for vectorised stats."""

    features: np.ndarray  # shape (n, len(FEATURES))
    predictions: list[str]
    outcomes: list[str | None] = field(default_factory=list)
    # The model version that made each prediction; empty when the source has
    # none (the lake, benchmarks): then every row counts for the champion.
    model_versions: list[str] = field(default_factory=list)
    # The calibrated probabilities of each prediction, (n, len(LABELS)) in LABELS
    # order, when the source logged them: confidence-based performance estimation.
    probabilities: np.ndarray | None = None
    # Provenance of each outcome (empty lists from a store that keeps none):
    # who sent the current label, when it took effect, and the earlier labels.
    outcome_callers: list[str | None] = field(default_factory=list)
    outcome_times: list[datetime | None] = field(default_factory=list)
    outcome_histories: list[list[dict]] = field(default_factory=list)
    # When each prediction was made (its inputs seen; empty from a source that
    # keeps no time; SQLite fills it only for `iter_outcomes_recorded`, the one
    # reader): a retrain after a change tells old patients from new by it.
    predicted_times: list[datetime | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.predictions)


def probability_rows(maps) -> np.ndarray:
    """Probability maps (label -> p) as an (n, len(LABELS)) array in LABELS order; a missing label is 0."""
    return np.array([[float((m or {}).get(label, 0.0)) for label in LABELS] for m in maps], dtype=float).reshape(
        -1, len(LABELS))


def in_label_order(probabilities: dict[str, float]) -> dict[str, float]:
    """The contract's label order, whatever order a store keeps a map in (Firestore sorts keys)."""
    known = {label: probabilities[label] for label in LABELS if label in probabilities}
    return known | {label: value for label, value in probabilities.items() if label not in known}


def isoformat(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
