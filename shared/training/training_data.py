"""What a retrain learns from, and the population its drift baseline describes.

The policy (README, "What a retrain trains on"):
1. **A sliding window of labelled production data**: the outcomes clinicians
   recorded in the last TRAINING_WINDOW_DAYS, and the labelled rows of the
   clinical lake's partitions of those days. Each row belongs to the day it
   was labelled (the outcome's recording day, the partition's date).
2. **Recent labels win -- where the labelling changed** (`contradictions`):
   an older row is dropped only where its neighbourhood's labelling changed
   significantly between periods; the synthetic reference yields wherever
   production mostly disagrees. What was dropped is recorded per class.
3. **Recent rows weigh more**: a row labelled `age` days ago weighs
   0.5 ** (age / TRAINING_HALF_LIFE_DAYS) in the fit and in the holdout the
   promotion gate scores champion and challenger on; classes are balanced on
   these weighted totals.
   **After a detected change** (a drift retrain's `changed_since`, where
   input drift began), production rows labelled before it together weigh at
   most PRE_CHANGE_MAX_SHARE of the production rows' weight: with the half-life
   alone, the night after a shift the old population still carries about two
   thirds of it, and the retrain learns the new one slowly. In a class
   clinicians do not label since the change (no label of it, or none on a
   patient predicted in it), the reference fill (4.) weighs like a label given
   since it (`change_weighting`).
   Stationary and manual retrains carry no change time and are weighted as above.
4. **The synthetic reference set is a bootstrap only.** Each class has a
   quota, its share of TRAINING_MIN_ROWS in the reference data; a class with
   fewer production rows than its quota is topped up with reference rows of
   that class. Reference rows count as the window's oldest: they yield
   wherever production rows disagree, and weigh as little as the oldest day
   (after a change: see 3.). Once production labels reach the quotas, no
   synthetic row is used.

The drift baseline of a new model is computed from `baseline_population`:
every input of the window that asked for the retrain (logged predictions,
labelled or not, or the lake partition), so the next check compares the
population against itself once the shift has been learned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from shared.records import isoformat
from shared.schema import FEATURES, LABELS
from shared.training.change_weighting import (  # noqa: F401
    PRE_CHANGE_MAX_SHARE,
    labelling_age,
    pre_change_factor,
    weigh_after_change,
    weigh_since_change,
)
from shared.training.contradictions import (  # noqa: F401 (the policy's parts, re-exported)
    AGREEMENT,
    CHANGE_SIGNIFICANCE,
    NEIGHBOURHOOD_SCALE,
    NEIGHBOURS,
    RADIUS,
    REFERENCE_AGREEMENT,
    REFERENCE_NEIGHBOURS,
    drop_contradicted,
    outvoted,
    without_contradictions,
)
from shared.training.labelled_rows import LabelledRows, per_class  # noqa: F401


def class_quotas(min_rows: int, reference_labels: np.ndarray) -> dict[str, int]:
    """Each class's share of `min_rows`, in the reference data's proportions."""
    shares = per_class(reference_labels)
    total = max(1, sum(shares.values()))
    return {label: int(round(min_rows * count / total)) for label, count in shares.items()}


def bootstrap_fill(production: list[LabelledRows], reference: LabelledRows, quotas: dict[str, int]
                   ) -> tuple[LabelledRows, dict]:
    """The reference rows that top each class up to its quota.

    `reference` must already be stripped of rows that production contradicts;
    rows are taken in their (seeded, random) order.
    """
    have = per_class(np.concatenate([g.y for g in production])) if production else per_class([])
    chosen = []
    for label, quota in quotas.items():
        missing = max(0, quota - have[label])
        chosen.extend(np.flatnonzero(reference.y == label)[:missing].tolist())
    chosen = np.asarray(sorted(chosen), dtype=int)
    fill = LabelledRows("reference", reference.age_days, reference.X[chosen], reference.y[chosen],
                        reference.detail)
    return fill, {"quotas": quotas, "production_rows_per_class": have}


def outcome_groups(predictions, start: datetime, days: int, seen_before: datetime | None = None
                   ) -> list[LabelledRows]:
    """Clinicians' outcomes recorded in each day of the window, newest first;
    each group's `detail["callers"]` says who sent each label (None: not kept).
    With `seen_before` (a change time), a day's outcomes of patients predicted
    at or before it form a group of their own, `detail["seen_before"]` True."""
    groups = []
    parts = (False, True) if seen_before is not None else (False,)
    for age in range(days):
        day_end = start + timedelta(days=days - age)
        rows = {part: ([], [], [], Counter()) for part in parts}
        for chunk in predictions.iter_outcomes_recorded(day_end - timedelta(days=1), day_end):
            made = chunk.predicted_times or [None] * len(chunk)
            old = np.array([seen_before is not None and at is not None and at <= seen_before for at in made],
                           dtype=bool)
            chunk_callers = chunk.outcome_callers or [None] * len(chunk)
            for part in parts:
                features, labels, callers, predicted = rows[part]
                keep = old == part
                features.append(chunk.features[keep])
                labels.extend(label for label, kept in zip(chunk.outcomes, keep) if kept)
                callers.extend(c for c, kept in zip(chunk_callers, keep) if kept)
                predicted.update(p for p, kept in zip(chunk.predictions, keep) if kept)
        for part in parts:
            features, labels, callers, predicted = rows[part]
            if part and not labels:
                continue
            X = np.vstack(features) if features else np.empty((0, len(FEATURES)))
            groups.append(LabelledRows("outcomes", age, X, np.asarray(labels, dtype=object),
                                       {"callers": callers, "predicted": dict(predicted), "seen_before": part}))
    return groups


def cap_caller_share(groups: list[LabelledRows], max_share: float) -> tuple[list[LabelledRows], dict]:
    """No caller contributes more than `max_share` of the window's outcome labels:
    beyond it, its oldest labels are left out (kept in the store, for audit).
    A window labelled by one caller only (one clinical app) is left whole."""
    callers = [c if c is not None else "anonymous" for g in groups for c in g.detail.get("callers", [])]
    counts = Counter(callers)
    record = {"max_share": max_share, "labels_per_caller": dict(counts), "left_out_per_caller": {}}
    if len(counts) < 2 or max_share >= 1:
        return groups, record
    allowed = {caller: int(max_share * len(callers)) for caller in counts}
    kept_so_far: Counter = Counter()
    capped = []
    for group in sorted(groups, key=lambda g: g.age_days):  # newest first: the newest labels are kept
        names = [c if c is not None else "anonymous" for c in group.detail.get("callers", [])]
        keep = np.ones(len(group), dtype=bool)
        for row, caller in enumerate(names):
            kept_so_far[caller] += 1
            keep[row] = kept_so_far[caller] <= allowed[caller]
        capped.append(LabelledRows(group.source, group.age_days, group.X[keep], group.y[keep],
                                   dict(group.detail, callers=[n for n, k in zip(names, keep) if k])))
    record["left_out_per_caller"] = {caller: count - allowed[caller] for caller, count in counts.items()
                                     if count > allowed[caller]}
    return capped, record


def lake_groups(artifacts, first: date, last: date) -> list[LabelledRows]:
    """The clinical lake's labelled partitions from `first` to `last`, newest first."""
    from shared.ingestion import lake

    groups = []
    for day in sorted((d for d in lake.partition_dates(artifacts) if first <= d <= last), reverse=True):
        X, y, parts = lake.read_clinical_training_data(artifacts, [day])
        groups.append(LabelledRows("lake", (last - day).days, X, y, {"partition": day.isoformat(),
                                                                      "parts": parts}))
    return groups


def recency_weight(age_days, half_life_days: float):
    """1 for today's labels, halving every `half_life_days`."""
    return 0.5 ** (np.asarray(age_days, dtype=float) / half_life_days)


@dataclass
class TrainingData:
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    record: dict  # sources, window, rows per class, weights: goes into the experiment
    production_rows: int  # the first rows are labelled production data, the rest reference fill
    since_change: np.ndarray | None = None  # seen since `changed_since`, in classes it relabelled (for the gate)

    @property
    def production(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X[:self.production_rows], self.y[:self.production_rows]


def assemble_training_data(*, predictions, artifacts, window_days: int, min_rows: int, half_life_days: float,
                           reference_rows: int, seed: int, now: datetime,
                           max_caller_share: float = 1.0, changed_since: datetime | None = None) -> TrainingData:
    """The training rows under the policy above, their weights and their record;
    `changed_since`: where a detected change began (None: no change known)."""
    from shared.training.synthetic_data import generate_reference_data

    start = now - timedelta(days=window_days)
    groups, caller_share = cap_caller_share(outcome_groups(predictions, start, window_days, changed_since),
                                            max_caller_share)
    if artifacts is not None:
        groups += lake_groups(artifacts, (now - timedelta(days=window_days - 1)).date(), now.date())
    production = drop_contradicted(groups, labelling_age(now, changed_since))
    X_ref, y_ref = generate_reference_data(reference_rows, seed=seed)
    reference = outvoted(LabelledRows("reference", window_days, X_ref, y_ref), production)
    fill, fill_detail = bootstrap_fill(production, reference, class_quotas(min_rows, y_ref))
    used = [g for g in production if len(g)] + ([fill] if len(fill) else [])
    X = np.vstack([g.X for g in used]) if used else np.empty((0, len(FEATURES)))
    y = np.concatenate([g.y for g in used]) if used else np.empty(0, dtype=object)
    weights = np.concatenate([np.full(len(g), recency_weight(g.age_days, half_life_days)) for g in used]) \
        if used else np.empty(0)
    pre_change = since_change = None
    if changed_since is not None:
        weights, pre_change, since_change = weigh_since_change(weights, used, production, y, len(fill), now,
                                                               changed_since)
    record = {
        "policy": {"window_days": window_days, "min_rows": min_rows, "half_life_days": half_life_days,
                   "recent_labels_win": {
            "neighbours": NEIGHBOURS, "radius": RADIUS, "agreement": AGREEMENT,
            "change_significance": CHANGE_SIGNIFICANCE, "test": "one-sided Fisher exact, newer vs own period",
            "reference": {"neighbours": REFERENCE_NEIGHBOURS, "agreement": REFERENCE_AGREEMENT},
            "scale": dict(zip(FEATURES, NEIGHBOURHOOD_SCALE.tolist()))}},
        "window": {"start": isoformat(start), "end": isoformat(now)},
        "weights": {"rule": f"0.5 ** (age in days / {half_life_days}); reference rows are {window_days} days old",
                    "by_age_days": {str(age): round(float(recency_weight(age, half_life_days)), 6)
                                    for age in sorted({g.age_days for g in used})},
                    "total": round(float(weights.sum()), 3), "pre_change": pre_change},
        "outcomes": dict(_summary([g for g in production if g.source == "outcomes"]), callers=caller_share),
        "lake": dict(_summary([g for g in production if g.source == "lake"]),
                     partitions=sorted(g.detail["partition"] for g in production if g.source == "lake")),
        "reference": {"generator": {"rows": reference_rows, "seed": seed}, "rows": int(len(fill)),
                      "rows_per_class": per_class(fill.y),
                      "dropped_as_contradicted": reference.detail.get("dropped", per_class([])), **fill_detail},
        "rows": int(len(y)),
        "rows_per_class": per_class(y),
    }
    return TrainingData(X, y, weights, record, int(len(y) - len(fill)), since_change)


def _summary(groups: list[LabelledRows]) -> dict:
    dropped = Counter()
    for group in groups:
        dropped.update(group.detail.get("dropped", {}))
    labels = np.concatenate([g.y for g in groups]) if groups else []
    return {"rows": int(len(labels)), "rows_per_class": per_class(labels),
            "dropped_as_contradicted": {label: dropped.get(label, 0) for label in LABELS},
            "days": sorted({g.age_days for g in groups if len(g)})}


def baseline_population(request: dict, *, predictions, artifacts, default_hours: float, now: datetime
                        ) -> tuple[np.ndarray, dict]:
    """Every input of the window that asked for this retrain: the population
    the new champion is trained for, whatever share of it was labelled."""
    from shared.event_bus.messages import parse_timestamp

    if request.get("source") == "lake" and request.get("partition"):
        from shared.ingestion import lake

        day = date.fromisoformat(request["partition"].rsplit("=", 1)[-1])
        frames = list(lake.iter_partition_frames(artifacts, day))
        X = (np.vstack([f.select(list(FEATURES)).to_numpy().astype(float) for f in frames]) if frames
             else np.empty((0, len(FEATURES))))
        return X, {"source": "lake", "partition": request["partition"], "rows": int(len(X))}
    end = parse_timestamp(request.get("window_end")) or now
    start = parse_timestamp(request.get("window_start")) or end - timedelta(hours=default_hours)
    chunks, predicted, labelled = [], Counter(), Counter()
    for chunk in predictions.iter_window(start, end):
        chunks.append(chunk.features)
        predicted.update(chunk.predictions)
        labelled.update(p for p, outcome in zip(chunk.predictions, chunk.outcomes) if outcome is not None)
    X = np.vstack(chunks) if chunks else np.empty((0, len(FEATURES)))
    # How clinicians chose what to label, by predicted class: the performance
    # reference is weighted alike, so a check of outcomes labelled e.g. only
    # for sick predictions compares like with like.
    share = {label: labelled[label] / predicted[label] for label in LABELS if predicted[label]}
    return X, {"source": "predictions", "window_start": isoformat(start), "window_end": isoformat(end),
               "rows": int(len(X)), "labelled_share_by_prediction": share if sum(labelled.values()) else None}
