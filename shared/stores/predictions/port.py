"""Prediction store port: every answered prediction and its clinician outcome."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from shared.records import PredictionRecord, WindowChunk


class PredictionStore(Protocol):
    def save_predictions(self, records: list[PredictionRecord]) -> None: ...

    # Optional: `async def save_predictions_async(records)`, the same commit on the
    # caller's event loop; the group committer uses it when an adapter has it.

    def list_predictions(self, limit: int, cursor: str | None = None) -> tuple[list[PredictionRecord], str | None]: ...

    def get_prediction(self, prediction_id: str) -> PredictionRecord: ...

    def record_outcome(self, prediction_id: str, label: str, now: datetime,
                       caller: str | None = None) -> PredictionRecord:
        """Set the label, attributed to `caller`; an earlier (label, caller, time)
        is kept in `outcome_history`, never discarded."""
        ...

    def iter_window(self, start: datetime, end: datetime, chunk_size: int = 5000) -> Iterator[WindowChunk]: ...

    def iter_labelled(self, chunk_size: int = 5000) -> Iterator[WindowChunk]: ...

    def iter_outcomes_recorded(self, start: datetime, end: datetime,
                               chunk_size: int = 5000) -> Iterator[WindowChunk]:
        """Predictions whose outcome was first recorded in [start, end), whenever
        they were made: clinicians confirm days later, and a late outcome still counts."""
        ...

    def count_outcome_request(self, hour: str, caller: str) -> int:
        """Count one more outcome request by `caller` in `hour` (YYYYMMDDHH, UTC); the new count."""
        ...

    def count(self) -> int: ...
