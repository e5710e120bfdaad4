"""Quarantine: a caller's labels from a time on are set aside.

Set aside means excluded from training, drift and evaluation (everything that
reads outcomes through `labels_without_quarantined`), never deleted: the
records keep them for audit, and lifting the quarantine brings them back.
Where a quarantined caller overwrote someone else's label, the latest earlier
label from a caller in good standing counts instead (the outcome history
keeps it); where there is none, the row counts as unlabelled.

Quarantines live in the metadata store (`quarantines`, one document per
caller, its changes appended to `changes`), and are read afresh on every
pass over the outcomes, so a quarantine applies from the next training or
drift check on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np

from shared.errors import NotFound, ValidationError
from shared.records import WindowChunk

QUARANTINES = "quarantines"


def _caller(caller: str) -> str:
    caller = (caller or "").strip().lower()
    if not caller or len(caller) > 254 or "/" in caller:
        raise ValidationError("name the caller as its email (or 'anonymous')", field="caller")
    return caller


def quarantine(metadata, caller: str, *, since: datetime, by: str, reason: str = "",
               now: datetime | None = None) -> dict:
    caller, now = _caller(caller), now or datetime.now(timezone.utc)
    if not by or not by.strip():
        raise ValidationError("say who decides: --by NAME", field="by")
    document = metadata.get(QUARANTINES, caller) or {"caller": caller, "created_at": now.isoformat(), "changes": []}
    change = {"action": "quarantine", "since": since.isoformat(), "by": by.strip(), "reason": reason,
              "at": now.isoformat()}
    document.update(status="active", since=since.isoformat(), changes=[*document["changes"], change])
    metadata.put(QUARANTINES, caller, document)
    return document


def lift(metadata, caller: str, *, by: str, now: datetime | None = None) -> dict:
    caller, now = _caller(caller), now or datetime.now(timezone.utc)
    document = metadata.get(QUARANTINES, caller)
    if document is None or document["status"] != "active":
        raise NotFound(f"{caller} is not quarantined", field="caller")
    change = {"action": "lift", "by": by, "at": now.isoformat()}
    document.update(status="lifted", changes=[*document["changes"], change])
    metadata.put(QUARANTINES, caller, document)
    return document


def list_quarantines(metadata, limit: int = 1000) -> list[dict]:
    return metadata.list(QUARANTINES, limit)


def active(metadata) -> dict[str, datetime]:
    """caller -> the time from which its labels are set aside."""
    return {document["caller"]: datetime.fromisoformat(document["since"])
            for document in list_quarantines(metadata) if document["status"] == "active"}


def effective_label(label, caller, at, history, quarantined: dict[str, datetime]):
    """The label that counts: the current one, else the latest earlier one not set aside, else None."""
    for entry_label, entry_caller, entry_at in [*((e["label"], e.get("caller"), e.get("at")) for e in history),
                                                 (label, caller, at)][::-1]:
        since = quarantined.get(entry_caller or "")
        if since is None or (entry_at is not None and entry_at < since):
            return entry_label
    return None


def filter_chunk(chunk: WindowChunk, quarantined: dict[str, datetime], keep_unlabelled: bool) -> WindowChunk:
    """`chunk` with set-aside labels replaced; rows left without a label dropped unless `keep_unlabelled`."""
    if not quarantined or not chunk.outcome_callers:
        return chunk
    size = len(chunk)
    times = chunk.outcome_times or [None] * size
    histories = chunk.outcome_histories or [[] for _ in range(size)]
    outcomes = [label if label is None else effective_label(label, caller, at, history, quarantined)
                for label, caller, at, history in zip(chunk.outcomes, chunk.outcome_callers, times, histories)]
    keep = np.array([keep_unlabelled or label is not None for label in outcomes], dtype=bool)
    pick = lambda values: [value for value, kept in zip(values, keep) if kept]  # noqa: E731
    return replace(chunk, features=chunk.features[keep], predictions=pick(chunk.predictions),
                   outcomes=pick(outcomes), outcome_callers=pick(chunk.outcome_callers),
                   outcome_times=pick(times), outcome_histories=pick(histories),
                   model_versions=pick(chunk.model_versions) if chunk.model_versions else [],
                   predicted_times=pick(chunk.predicted_times) if chunk.predicted_times else [],
                   probabilities=None if chunk.probabilities is None else chunk.probabilities[keep])


class LabelsWithoutQuarantined:
    """A prediction store whose outcome readers leave quarantined labels out;
    everything else is the wrapped store's."""

    def __init__(self, store, metadata):
        self._store, self._metadata = store, metadata

    def __getattr__(self, name):
        return getattr(self._store, name)

    def _filtered(self, chunks, keep_unlabelled: bool) -> Iterator[WindowChunk]:
        quarantined = active(self._metadata)
        for chunk in chunks:
            filtered = filter_chunk(chunk, quarantined, keep_unlabelled)
            if len(filtered):
                yield filtered

    def iter_window(self, start, end, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._filtered(self._store.iter_window(start, end, chunk_size), keep_unlabelled=True)

    def iter_labelled(self, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._filtered(self._store.iter_labelled(chunk_size), keep_unlabelled=False)

    def iter_outcomes_recorded(self, start, end, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._filtered(self._store.iter_outcomes_recorded(start, end, chunk_size), keep_unlabelled=False)


def labels_without_quarantined(store, metadata) -> LabelsWithoutQuarantined:
    return LabelsWithoutQuarantined(store, metadata)
