"""Counting a window: a stream of `WindowChunk`s into the champion baseline's
bins, in memory fixed by the bins -- each chunk is reduced to counts and dropped.

Three things are left out before counting, and counted as left out:
- rows of another model version (`model_version`): after a promotion the old
  model's predictions and late outcomes are not the new champion's to answer
  for;
- exact repeats: the same inputs and prediction logged again (a re-query, a
  page refresh) carry no new information about the population, yet each one
  would count as a new patient. They are recognised by a digest of the row,
  among the last `REPEAT_MEMORY` distinct rows (a repeat follows its first
  logging within minutes), so memory stays bounded. Two different
  patients with identical vitals are collapsed too: rare with continuous
  vitals, more common when a source rounds them (see the README);
- outcomes recorded before `learnt_until`: a retrain already learnt from
  them (`learnt_outcomes.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from shared.monitoring.baseline import FINE_BINS, coarse_bin_count, coarse_bin_index, fine_bin_index
from shared.monitoring.estimated_performance import expected_confusion
from shared.monitoring.learnt_outcomes import learnt
from shared.records import WindowChunk
from shared.schema import FEATURES, LABELS

REPEAT_MEMORY = 10_000  # recent distinct rows remembered (two generations of half each, ~1 MB)


class WindowAggregator:
    """Counts a window's inputs, predicted labels and outcomes for one model version."""

    def __init__(self, baseline: dict, model_version: str | None = None, learnt_until=None):
        self.baseline = baseline
        self.model_version = model_version
        self.learnt_until = learnt_until
        self.learnt_outcomes = 0
        self.rows = 0
        self.repeats_collapsed = 0
        self.other_version_rows = 0
        self.other_version_outcomes = 0
        self._seen: set[bytes] = set()
        self._seen_before: set[bytes] = set()
        self.coarse = {name: np.zeros(coarse_bin_count(baseline["features"][name]["bin_edges"]), dtype=np.int64)
                       for name in FEATURES}
        self.fine = {name: np.zeros(FINE_BINS, dtype=np.int64) for name in FEATURES}
        # the outcomes' inputs in the same bins: how many labels a changed region has (`retrain_wait.py`)
        self.labelled_coarse = {name: np.zeros_like(self.coarse[name]) for name in FEATURES}
        self.label_counts = np.zeros(len(LABELS), dtype=np.int64)
        # outcomes (rows: clinician label, columns: prediction), LABELS order
        self.confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
        # CBPE: the expected confusion matrix of the rows logged with probabilities
        self.expected_confusion = np.zeros((len(LABELS), len(LABELS)))
        self.probability_rows = 0
        self._label_index = {label: index for index, label in enumerate(LABELS)}

    def add(self, chunk: WindowChunk) -> None:
        """Count a chunk's inputs, predicted labels and the outcomes it carries."""
        self.add_predictions(chunk)
        self.add_outcomes(chunk)

    def _own_rows(self, chunk: WindowChunk) -> np.ndarray:
        """Mask of the rows this aggregator's model version made (all when either is unknown)."""
        if self.model_version is None or not chunk.model_versions:
            return np.ones(len(chunk), dtype=bool)
        return np.fromiter((version == self.model_version for version in chunk.model_versions), dtype=bool,
                           count=len(chunk))

    def _first_sightings(self, features: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        keep = np.ones(len(predicted), dtype=bool)
        rows = np.ascontiguousarray(features, dtype=float)
        for index in range(len(predicted)):
            key = rows[index].tobytes() + bytes([int(predicted[index])])
            if key in self._seen or key in self._seen_before:
                keep[index] = False
                continue
            if len(self._seen) >= REPEAT_MEMORY // 2:
                self._seen_before, self._seen = self._seen, set()
            self._seen.add(key)
        return keep

    def add_predictions(self, chunk: WindowChunk) -> None:
        if not len(chunk):
            return
        own = self._own_rows(chunk)
        self.other_version_rows += int((~own).sum())
        features, predicted = chunk.features[own], self._predicted(chunk)[own]
        fresh = self._first_sightings(features, predicted)
        self.repeats_collapsed += int((~fresh).sum())
        features, predicted = features[fresh], predicted[fresh]
        if chunk.probabilities is not None and len(chunk.probabilities) == len(chunk):
            probabilities = np.asarray(chunk.probabilities, dtype=float)[own][fresh]
            logged = probabilities.sum(axis=1) > 0
            self.probability_rows += int(logged.sum())
            self.expected_confusion += expected_confusion(probabilities[logged], predicted[logged])
        self.rows += len(predicted)
        for column, name in enumerate(FEATURES):
            values = features[:, column]
            edges = self.baseline["features"][name]["bin_edges"]
            self.coarse[name] += np.bincount(coarse_bin_index(values, edges), minlength=len(self.coarse[name]))
            self.fine[name] += np.bincount(fine_bin_index(values, name), minlength=FINE_BINS)
        self.label_counts += np.bincount(predicted, minlength=len(LABELS))

    def add_outcomes(self, chunk: WindowChunk) -> None:
        """Count the chunk's (outcome, prediction) pairs of this model version only:
        outcomes recorded in a window may belong to predictions made before it."""
        if not chunk.outcomes:
            return
        own = self._own_rows(chunk)
        labelled = np.zeros(len(chunk), dtype=bool)
        times = chunk.outcome_times or [None] * len(chunk)
        for index, (outcome, prediction, mine) in enumerate(zip(chunk.outcomes, self._predicted(chunk), own)):
            if outcome is None:
                continue
            if mine and learnt(times[index], self.learnt_until):
                self.learnt_outcomes += 1
            elif mine:
                self.confusion[self._label_index[outcome], prediction] += 1
                labelled[index] = True
            else:
                self.other_version_outcomes += 1
        if labelled.any() and len(chunk.features) == len(chunk):
            for column, name in enumerate(FEATURES):
                edges = self.baseline["features"][name]["bin_edges"]
                self.labelled_coarse[name] += np.bincount(coarse_bin_index(chunk.features[labelled, column], edges),
                                                          minlength=len(self.coarse[name]))

    def _predicted(self, chunk: WindowChunk) -> np.ndarray:
        return np.fromiter((self._label_index[p] for p in chunk.predictions), dtype=np.int64,
                           count=len(chunk.predictions))

    def to_counts(self) -> dict:
        """Every count as plain JSON: a unit another aggregator can `add_counts`
        (an hourly aggregate)."""
        return {"rows": int(self.rows), "coarse": {name: self.coarse[name].tolist() for name in FEATURES},
                "fine": {name: self.fine[name].tolist() for name in FEATURES},
                "labels": self.label_counts.tolist(), "confusion": self.confusion.tolist(),
                "repeats_collapsed": self.repeats_collapsed, "other_version_rows": self.other_version_rows,
                "other_version_outcomes": self.other_version_outcomes,
                "expected_confusion": self.expected_confusion.round(6).tolist(),
                "probability_rows": self.probability_rows,
                "labelled_coarse": {name: self.labelled_coarse[name].tolist() for name in FEATURES}}

    def add_counts(self, counts: dict, outcomes: bool = True) -> None:
        """Merge a unit in O(bins), whatever number of records it counted;
        without its outcomes (counted as learnt) when `outcomes` is False."""
        self.rows += int(counts["rows"])
        for name in FEATURES:
            self.coarse[name] += np.asarray(counts["coarse"][name], dtype=np.int64)
            self.fine[name] += np.asarray(counts["fine"][name], dtype=np.int64)
        self.label_counts += np.asarray(counts["labels"], dtype=np.int64)
        if not outcomes:
            self.learnt_outcomes += int(np.sum(counts["confusion"]))
        else:
            self.confusion += np.asarray(counts["confusion"], dtype=np.int64)
        # units stored before these were kept count none
        self.repeats_collapsed += int(counts.get("repeats_collapsed", 0))
        self.other_version_rows += int(counts.get("other_version_rows", 0))
        self.other_version_outcomes += int(counts.get("other_version_outcomes", 0))
        for name, counted in (counts.get("labelled_coarse", {}) if outcomes else {}).items():
            self.labelled_coarse[name] += np.asarray(counted, dtype=np.int64)
        if "expected_confusion" in counts:
            self.expected_confusion += np.asarray(counts["expected_confusion"], dtype=float)
            self.probability_rows += int(counts["probability_rows"])

    def consume(self, chunks: Iterable[WindowChunk]) -> WindowAggregator:
        for chunk in chunks:
            self.add(chunk)
        return self
