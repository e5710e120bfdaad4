"""The evaluation rows and the data every candidate is trained on. No cloud code.

An 80/20 split decided by each row's content (`in_holdout`), so a row is on the
same side in every run: retrains overlap, and no champion trained on a row the
challenger is scored on (the gate compares them there). `prepare_data`
validates the rows, drops classes too rare to learn (the experiment record
says so) and picks the fold count: min(folds, members of the rarest class),
never fewer than 2.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from shared.errors import TrainingDataError
from shared.schema import FEATURES, LABELS

DEFAULT_FOLDS = 5
MIN_CLASS_MEMBERS = 2
HOLDOUT_FRACTION = 0.2
# Recorded with each version: a champion trained under another split may have
# seen some evaluation rows (the gate's record says so).
SPLIT = {"method": "in_holdout: blake2b(row rounded to 3 decimals, label) < fraction",
         "holdout_fraction": HOLDOUT_FRACTION}


@dataclass
class PreparedData:
    X_train: np.ndarray
    y_train: np.ndarray  # label strings
    X_holdout: np.ndarray
    y_holdout: np.ndarray
    labels: list[str]  # labels present, in public order: the model's output columns
    folds: int
    notes: list[str]
    fingerprint: dict
    w_train: np.ndarray | None = None  # row weights (None: every row counts once)
    w_holdout: np.ndarray | None = None
    since_change_holdout: np.ndarray | None = None  # holdout rows seen since a detected change (the gate's)
    since_change_train: np.ndarray | None = None  # training rows seen since it (cross-fitted for the gate)


def data_fingerprint(X: np.ndarray, y: np.ndarray) -> dict:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update("\x1f".join(map(str, y)).encode())
    counts = Counter(map(str, y))
    return {"sha256": digest.hexdigest(), "rows": int(len(y)),
            "rows_per_class": {label: counts.get(label, 0) for label in LABELS}}


def in_holdout(X: np.ndarray, y: np.ndarray, fraction: float = HOLDOUT_FRACTION) -> np.ndarray:
    """Which rows are held out: decided by each row's content alone.

    Retrains overlap (a sliding window of the same production rows), so a
    random split would score the champion on rows it was trained on, and no
    challenger could beat it. By content, a row is on the same side in every
    run. Each class keeps at least one holdout row (its lowest hash).
    """
    return split_by_content(X, y, fraction)[0]


def split_by_content(X: np.ndarray, y: np.ndarray, fraction: float = HOLDOUT_FRACTION) -> tuple[np.ndarray, list[str]]:
    """`in_holdout`'s rows, and the classes with no row held out by its content,
    whose lowest-hash row is held out instead. That row depends on which rows
    are in the window, so a champion trained on another window may have trained
    on it. Holding nothing out for such a class would leave the gate's
    per-class rules without evidence for it, so the record says so instead."""
    y = np.asarray(y, dtype=object)
    draws = np.array([int.from_bytes(hashlib.blake2b(np.round(row, 3).tobytes() + str(label).encode(),
                                                     digest_size=8).digest(), "big") / 2.0 ** 64
                      for row, label in zip(np.asarray(X, dtype=float), y)])
    holdout = draws < fraction
    forced = []
    for label in [label for label in LABELS if label in set(y)] + sorted(set(map(str, y)) - set(LABELS)):
        members = np.flatnonzero(y == label)
        if not holdout[members].any():
            holdout[members[np.argmin(draws[members])]] = True
            forced.append(label)
    return holdout, forced


def prepare_data(X: np.ndarray, y: np.ndarray, seed: int, folds: int = DEFAULT_FOLDS,
                 weights: np.ndarray | None = None, since_change: np.ndarray | None = None) -> PreparedData:
    """Validate, drop unlearnable classes, split 80/20 by content, pick fold count.
    `weights` (one per row, positive) travel with their rows into both parts;
    `since_change` (rows seen since a detected change) into the holdout's."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=object)
    if X.ndim != 2 or X.shape[1] != len(FEATURES) or len(X) != len(y):
        raise TrainingDataError(f"training data must have the columns {', '.join(FEATURES)} and a label")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != y.shape or not np.isfinite(weights).all() or (weights <= 0).any():
            raise TrainingDataError("training weights must be one positive number per row")
    if since_change is not None and np.shape(since_change) != y.shape:
        raise TrainingDataError("the rows seen since a change must be one flag per row")
    if len(y) == 0:
        raise TrainingDataError("training data is empty")
    unknown = sorted(set(map(str, y)) - set(LABELS))
    if unknown:
        raise TrainingDataError(f"unknown labels in training data: {unknown}")
    if not np.isfinite(X).all():
        raise TrainingDataError("training data contains missing or non-finite values")
    fingerprint = data_fingerprint(X, y)
    holdout, forced = split_by_content(X, y)
    notes = [f"class {label!r}: no row is held out by its content, so its lowest-hash row is; a champion trained "
             f"on another window may have trained on it, and this class's holdout figures can favour it"
             for label in forced]
    train_counts = Counter(y[~holdout])
    too_rare = [label for label in LABELS if label in set(y) and train_counts.get(label, 0) < MIN_CLASS_MEMBERS]
    for label in too_rare:
        notes.append(f"class {label!r} dropped: {train_counts.get(label, 0)} training example(s); at least "
                     f"{MIN_CLASS_MEMBERS} are needed to learn it")
    keep = ~np.isin(y, too_rare)
    X, y, holdout = X[keep], y[keep], holdout[keep]
    weights = weights[keep] if weights is not None else None
    labels = [label for label in LABELS if label in set(y)]
    if len(labels) < 2:
        raise TrainingDataError(f"training needs at least two classes; found {labels or 'none'}")
    X_train, X_holdout, y_train, y_holdout = X[~holdout], X[holdout], y[~holdout], y[holdout]
    rarest = min(Counter(y_train).values())
    used_folds = max(2, min(folds, rarest))
    if used_folds < folds:
        notes.append(f"cross-validation uses {used_folds} folds instead of {folds}: the rarest class has "
                     f"{rarest} training example(s)")
    w_train, w_holdout = (weights[~holdout], weights[holdout]) if weights is not None else (None, None)
    since = np.asarray(since_change, dtype=bool)[keep] if since_change is not None else None
    since_holdout, since_train = (since[holdout], since[~holdout]) if since is not None else (None, None)
    return PreparedData(X_train, y_train, X_holdout, y_holdout, labels, used_folds, notes, fingerprint,
                        w_train, w_holdout, since_holdout, since_train)
