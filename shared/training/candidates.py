"""Candidate search, cross-validation and holdout evaluation. No cloud code.

Protocol (the same for the CLI, the bootstrap and the retrain function):
1. an 80/20 split decided by each row's content (`in_holdout`), so a row is on
   the same side in every run; the 20 % holdout is touched once, and no champion
   trained on any of its rows (the gate compares them there);
2. per family, each configuration of its small search space is scored by
   stratified k-fold CV (macro-F1) on the 80 %, in a fixed order, until the
   time budget is spent (at least one configuration always runs);
3. each family's best configuration is refit on the whole 80 % and evaluated
   on the holdout;
   Its decision rule (calibration, per-class decision weights; see
   `decision_rule`) is fitted on the best configuration's out-of-fold
   predictions, and the holdout is scored with the rule applied;
4. the winner has the best holdout macro-F1 -- rare classes weigh as much as
   common ones; candidates within `tie_tolerance` of it are tied, and ties go
   first to those whose rarest class reaches RARE_CLASS_MIN_RECALL on the
   holdout, then to the smaller artifact (cold starts download and unpickle it).

Rare classes: every family but HistGradientBoosting is trained with balanced
class weights (HistGradientBoosting keeps the data's probabilities and relies
on the decision weights alone). CV uses
min(folds, members of the rarest class) folds, never fewer than 2; a class
with fewer than 2 training rows cannot be learned, so it is dropped and the
experiment record says so (and the gate refuses a challenger that thereby
stops predicting a class the champion predicts).
"""

from __future__ import annotations

import hashlib
import io
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shared.errors import TrainingDataError
from shared.schema import FEATURES, LABELS
from shared.training.decision_rule import RARE_CLASS_MIN_RECALL, expected_calibration_error, fit_decision_rule

FAMILIES = ("random_forest", "xgboost", "mlp", "hist_gradient_boosting")

# Small on purpose: each entry is documented in the README. Forest depth and
# leaf size are bounded to keep the artifact (and the cold start) small.
SEARCH_SPACES: dict[str, list[dict]] = {
    "random_forest": [
        {"n_estimators": 60, "max_depth": 10, "min_samples_leaf": 4},
        {"n_estimators": 60, "max_depth": 14, "min_samples_leaf": 8},
        {"n_estimators": 100, "max_depth": 8, "min_samples_leaf": 2},
    ],
    "xgboost": [
        {"n_estimators": 150, "max_depth": 4, "learning_rate": 0.1},
        {"n_estimators": 300, "max_depth": 3, "learning_rate": 0.1},
        {"n_estimators": 150, "max_depth": 6, "learning_rate": 0.05},
    ],
    "mlp": [
        {"hidden_layer_sizes": [32, 16], "alpha": 1e-3},
        {"hidden_layer_sizes": [64], "alpha": 1e-4},
    ],
    # L2 on the leaves: without it a nearly separable rare class's leaf values
    # diverge and its recall collapses to 0 after ~100 iterations (measured:
    # 0.0 without, 0.976 with, on 60,000 rows with a 0.3 % class).
    "hist_gradient_boosting": [
        {"max_iter": 100, "learning_rate": 0.1, "l2_regularization": 1.0},
        {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "l2_regularization": 1.0},
    ],
}

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


@dataclass
class Candidate:
    family: str
    params: dict
    pipeline: object
    cv_scores: list[float]
    searched: list[dict]
    metrics: dict = field(default_factory=dict)
    decision_rule: dict = field(default_factory=dict)
    calibration_error: dict = field(default_factory=dict)
    artifact_bytes: bytes = b""
    latency_ms: float = 0.0
    training_seconds: float = 0.0

    def summary(self) -> dict:
        return {
            "family": self.family,
            "params": self.params,
            "searched": self.searched,
            "cv_macro_f1_mean": round(float(np.mean(self.cv_scores)), 6),
            "cv_macro_f1_std": round(float(np.std(self.cv_scores)), 6),
            "cv_scores": [round(s, 6) for s in self.cv_scores],
            "holdout": self.metrics,
            "decision_rule": self.decision_rule,
            "holdout_calibration": self.calibration_error,
            "artifact_size_bytes": len(self.artifact_bytes),
            "single_row_latency_ms": round(self.latency_ms, 4),
            "training_seconds": round(self.training_seconds, 3),
        }


@dataclass
class TrainingResult:
    data: PreparedData
    candidates: list[Candidate]
    winner: Candidate
    budget_exhausted: bool
    seed: int


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
    draws = np.array([int.from_bytes(hashlib.blake2b(np.round(row, 3).tobytes() + str(label).encode(),
                                                     digest_size=8).digest(), "big") / 2.0 ** 64
                      for row, label in zip(np.asarray(X, dtype=float), y)])
    holdout = draws < fraction
    for label in set(y):
        members = np.flatnonzero(y == label)
        if not holdout[members].any():
            holdout[members[np.argmin(draws[members])]] = True
    return holdout


def prepare_data(X: np.ndarray, y: np.ndarray, seed: int, folds: int = DEFAULT_FOLDS,
                 weights: np.ndarray | None = None) -> PreparedData:
    """Validate, drop unlearnable classes, split 80/20 by content, pick fold count.
    `weights` (one per row, positive) travel with their rows into both parts."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=object)
    if X.ndim != 2 or X.shape[1] != len(FEATURES) or len(X) != len(y):
        raise TrainingDataError(f"training data must have the columns {', '.join(FEATURES)} and a label")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != y.shape or not np.isfinite(weights).all() or (weights <= 0).any():
            raise TrainingDataError("training weights must be one positive number per row")
    if len(y) == 0:
        raise TrainingDataError("training data is empty")
    unknown = sorted(set(map(str, y)) - set(LABELS))
    if unknown:
        raise TrainingDataError(f"unknown labels in training data: {unknown}")
    if not np.isfinite(X).all():
        raise TrainingDataError("training data contains missing or non-finite values")
    fingerprint = data_fingerprint(X, y)
    notes = []
    holdout = in_holdout(X, y)
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
    return PreparedData(X_train, y_train, X_holdout, y_holdout, labels, used_folds, notes, fingerprint,
                        w_train, w_holdout)


def build_pipeline(family: str, params: dict, seed: int, n_jobs: int = 2):
    """Scaling + classifier. Class weights handle the rare classes in every family."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        classifier = RandomForestClassifier(class_weight="balanced_subsample", random_state=seed,
                                            n_jobs=n_jobs, **params)
    elif family == "xgboost":
        from xgboost import XGBClassifier

        classifier = XGBClassifier(tree_method="hist", random_state=seed, n_jobs=n_jobs,
                                   eval_metric="mlogloss", **params)
    elif family == "mlp":
        from sklearn.neural_network import MLPClassifier

        params = dict(params, hidden_layer_sizes=tuple(params["hidden_layer_sizes"]))
        classifier = MLPClassifier(random_state=seed, max_iter=300, **params)
    elif family == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        classifier = HistGradientBoostingClassifier(random_state=seed, early_stopping=False, **params)
    else:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
    # Trees need no scaler, and one in front moves rows across their float32 splits (models.portable).
    return Pipeline([("scale", StandardScaler() if family == "mlp" else "passthrough"), ("classifier", classifier)])


def balanced_weights(y_encoded: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Row weights times class weights that give every class the same total.

    Scaled to a mean of 1 (unweighted, this is scikit-learn's "balanced"): the
    learners' absolute thresholds, such as XGBoost's `min_child_weight`, would
    otherwise forbid every split when all rows are old and weigh little.
    """
    weights = np.ones(len(y_encoded)) if weights is None else np.asarray(weights, dtype=float)
    balanced = weights / np.bincount(y_encoded, weights=weights)[y_encoded]
    return balanced * len(balanced) / balanced.sum()


def mean_one(weights: np.ndarray) -> np.ndarray:
    return weights * len(weights) / weights.sum()


def fit_pipeline(pipeline, family: str, X: np.ndarray, y_encoded: np.ndarray, weights: np.ndarray | None = None):
    """Fit with balanced sample weights where the family takes them (times the row weights)."""
    if family in ("random_forest", "hist_gradient_boosting"):  # class weights on the estimator, or none
        if weights is None:
            return pipeline.fit(X, y_encoded)
        return pipeline.fit(X, y_encoded, classifier__sample_weight=mean_one(weights))
    return pipeline.fit(X, y_encoded, classifier__sample_weight=balanced_weights(y_encoded, weights))


def _part(weights: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[index]


def encode(y: np.ndarray, labels: list[str]) -> np.ndarray:
    index = {label: position for position, label in enumerate(labels)}
    return np.array([index[label] for label in y], dtype=int)


def cross_validate(family: str, params: dict, data: PreparedData, seed: int) -> tuple[list[float], np.ndarray]:
    """Macro-F1 per fold (argmax), and every training row's out-of-fold probabilities."""
    from sklearn.base import clone
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    y_encoded = encode(data.y_train, data.labels)
    template = build_pipeline(family, params, seed)
    scores = []
    out_of_fold = np.zeros((len(y_encoded), len(data.labels)))
    splitter = StratifiedKFold(n_splits=data.folds, shuffle=True, random_state=seed)
    for train_index, test_index in splitter.split(data.X_train, y_encoded):
        pipeline = fit_pipeline(clone(template), family, data.X_train[train_index], y_encoded[train_index],
                                _part(data.w_train, train_index))
        out_of_fold[test_index] = pipeline.predict_proba(data.X_train[test_index])
        predicted = np.argmax(out_of_fold[test_index], axis=1)
        scores.append(float(f1_score(y_encoded[test_index], predicted, average="macro",
                                     labels=list(range(len(data.labels))), zero_division=0,
                                     sample_weight=_part(data.w_train, test_index))))
    return scores, out_of_fold


def evaluate(y_true, y_pred, sample_weight=None) -> dict:
    """Holdout metrics; per-class figures and the confusion matrix in LABELS order.

    With `sample_weight`, precision, recall and F1 weigh rows as training did;
    supports and the confusion matrix stay row counts.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = list(map(str, y_true)), list(map(str, y_pred))
    metrics = {}
    for average in ("macro", "weighted"):
        labels = [label for label in LABELS if label in set(y_true) | set(y_pred)]
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0, sample_weight=sample_weight
        )
        metrics[f"{average}_precision"] = round(float(precision), 6)
        metrics[f"{average}_recall"] = round(float(recall), 6)
        metrics[f"{average}_f1"] = round(float(f1), 6)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=list(LABELS), zero_division=0, sample_weight=sample_weight
    )
    support = [Counter(y_true).get(label, 0) for label in LABELS]
    metrics["per_class"] = {
        label: {"precision": round(float(p), 6), "recall": round(float(r), 6), "f1": round(float(f), 6),
                "support": int(s)}
        for label, p, r, f, s in zip(LABELS, precision, recall, f1, support)
    }
    metrics["confusion_matrix"] = {"labels": list(LABELS),
                                   "matrix": confusion_matrix(y_true, y_pred, labels=list(LABELS)).tolist()}
    return metrics


def predict_labels(pipeline, X: np.ndarray, labels: list[str], rule: dict | None = None) -> np.ndarray:
    """Labels as served: the model-loading module's calibration and decision weights applied."""
    from shared.models.loading import calibrate, decide

    rule = rule or {}
    probabilities = calibrate(pipeline.predict_proba(X), rule.get("calibration"))
    return np.asarray(labels, dtype=object)[decide(probabilities, rule.get("decision_weights"))]


def rarest_label(data: PreparedData) -> str:
    counts = Counter(data.y_train)
    return min(data.labels, key=lambda label: (counts[label], data.labels.index(label)))


def serialize(pipeline) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    return buffer.getvalue()


def single_row_latency_ms(pipeline, row: np.ndarray, repeats: int = 30) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        pipeline.predict_proba(row)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def for_serving(pipeline):
    """One thread per prediction: serving runs many requests, not one big one."""
    classifier = pipeline.named_steps["classifier"]
    if "n_jobs" in classifier.get_params():
        classifier.set_params(n_jobs=1)
    return pipeline


def train_candidates(
    X: np.ndarray,
    y: np.ndarray,
    seed: int = 42,
    families: tuple[str, ...] = FAMILIES,
    budget_seconds: float = 240.0,
    tie_tolerance: float = 0.005,
    folds: int = DEFAULT_FOLDS,
    progress: Callable[[str], None] | None = None,
    sample_weight: np.ndarray | None = None,
    rare_class_min_recall: float = RARE_CLASS_MIN_RECALL,
) -> TrainingResult:
    """Run the whole protocol and return every candidate with the winner."""
    unknown = [family for family in families if family not in FAMILIES]
    if unknown or not families:
        raise TrainingDataError(f"unknown model families {unknown}; choose from {', '.join(FAMILIES)}")
    data = prepare_data(X, y, seed, folds, weights=sample_weight)
    y_train_encoded = encode(data.y_train, data.labels)
    rare = rarest_label(data)
    deadline = time.monotonic() + budget_seconds
    budget_exhausted = False
    candidates = []
    for family in families:
        best_params, best_scores, best_out_of_fold, searched = None, None, None, []
        for params in SEARCH_SPACES[family]:
            if searched and time.monotonic() > deadline:
                budget_exhausted = True
                break
            started = time.perf_counter()
            scores, out_of_fold = cross_validate(family, params, data, seed)
            searched.append({"params": params, "cv_macro_f1_mean": round(float(np.mean(scores)), 6),
                             "seconds": round(time.perf_counter() - started, 3)})
            if progress:
                progress(f"{family} {params}: CV macro-F1 {np.mean(scores):.4f}")
            if best_scores is None or np.mean(scores) > np.mean(best_scores):
                best_params, best_scores, best_out_of_fold = params, scores, out_of_fold
        started = time.perf_counter()
        pipeline = fit_pipeline(build_pipeline(family, best_params, seed), family, data.X_train, y_train_encoded,
                                data.w_train)
        candidate = Candidate(family, best_params, for_serving(pipeline), best_scores, searched,
                              training_seconds=time.perf_counter() - started)
        candidate.decision_rule = fit_decision_rule(best_out_of_fold, y_train_encoded, data.labels.index(rare),
                                                    rare_class_min_recall)
        candidate.metrics = evaluate(data.y_holdout,
                                     predict_labels(pipeline, data.X_holdout, data.labels, candidate.decision_rule),
                                     data.w_holdout)
        candidate.calibration_error = holdout_calibration(pipeline, data, candidate.decision_rule)
        candidate.artifact_bytes = serialize(pipeline)
        candidate.latency_ms = single_row_latency_ms(pipeline, data.X_holdout[:1])
        candidates.append(candidate)
        if progress:
            progress(f"{family}: holdout macro-F1 {candidate.metrics['macro_f1']:.4f}, "
                     f"{len(candidate.artifact_bytes) / 1e6:.2f} MB")
    winner = select_winner(candidates, tie_tolerance, rare, rare_class_min_recall)
    return TrainingResult(data, candidates, winner, budget_exhausted, seed)


def holdout_calibration(pipeline, data: PreparedData, rule: dict) -> dict:
    """Top-label ECE on the holdout before and after calibration, and the mean
    probability of each class beside its share of the holdout."""
    from shared.models.loading import calibrate

    raw = pipeline.predict_proba(data.X_holdout)
    calibrated = calibrate(raw, rule.get("calibration"))
    y_encoded = encode(data.y_holdout, data.labels)
    return {"expected_calibration_error": {"raw": expected_calibration_error(raw, y_encoded),
                                           "calibrated": expected_calibration_error(calibrated, y_encoded)},
            "mean_probability_vs_share": {
                label: {"raw": round(float(raw[:, i].mean()), 6),
                        "calibrated": round(float(calibrated[:, i].mean()), 6),
                        "share": round(float(np.mean(y_encoded == i)), 6)} for i, label in enumerate(data.labels)}}


def select_winner(candidates: list[Candidate], tie_tolerance: float, rare_label: str | None = None,
                  rare_class_min_recall: float = RARE_CLASS_MIN_RECALL) -> Candidate:
    """Best holdout macro-F1; among ties, those that keep the rarest class's
    recall first, then the smaller artifact."""
    best = max(candidate.metrics["macro_f1"] for candidate in candidates)
    tied = [c for c in candidates if c.metrics["macro_f1"] >= best - tie_tolerance]

    def misses_rare_class(candidate: Candidate) -> bool:
        rare = candidate.metrics.get("per_class", {}).get(rare_label)
        return bool(rare and rare["support"] and rare["recall"] < rare_class_min_recall)

    return min(tied, key=lambda c: (misses_rare_class(c), len(c.artifact_bytes), c.latency_ms))
