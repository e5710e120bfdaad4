"""Probabilities for a few rows without scikit-learn's per-call overhead, for
the one family served from its pipeline: HistGradientBoosting.

Every other family is served from its ONNX graph (`models.portable`,
`models.runtime`). HistGradientBoosting has no exact graph (skl2onnx 1.20
cannot convert scikit-learn 1.9's, and its splits compare float64 values a
float32 graph cannot), and through its pipeline one row costs milliseconds
(it walks its trees one Python call at a time; `bench/inference.py`). So
this one walker stays: every tree walked at once, level by level, with numpy.

`direct_predict_proba(pipeline)` builds it once per loaded model and keeps it
only if it agrees with `pipeline.predict_proba` on probe rows spanning the
feature ranges, whole and a few at a time (a check, not a proof: enough
because every served input is finite and inside those ranges,
`shared/schema.py`); otherwise, or for any other classifier, the pipeline
itself answers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.schema import FEATURE_RANGES, FEATURES
from shared.structured_logging import get_logger

log = get_logger("model_inference")

ProbabilityFunction = Callable[[np.ndarray], np.ndarray]

# Larger than any float error of a different summation order, far smaller than
# the 6 decimals an answer carries.
AGREEMENT_TOLERANCE = 1e-9
# Up to this many rows HistGradientBoosting's trees are walked all at once; a
# larger batch (a drift check, a batch request) is cheaper through its own loop.
SMALL_BATCH_ROWS = 8


def direct_predict_proba(pipeline) -> ProbabilityFunction:
    """A function rows -> probabilities equal to `pipeline.predict_proba`, faster
    for small batches; `pipeline.predict_proba` itself when none can be built."""
    try:
        direct = _compose(pipeline)
    except Exception as error:  # noqa: BLE001 -- a pipeline shape this module does not know: serve it as it is
        log.warning("no direct inference for this pipeline; serving through it",
                    extra={"fields": {"reason": f"{type(error).__name__}: {error}"}})
        direct = None
    if direct is None:
        return pipeline.predict_proba
    try:
        agrees = largest_difference(direct, pipeline.predict_proba, default_probe_rows()) <= AGREEMENT_TOLERANCE
    except Exception as error:  # noqa: BLE001 -- any failure means: serve through the pipeline
        log.warning("direct inference failed its check; serving through the pipeline",
                    extra={"fields": {"reason": f"{type(error).__name__}: {error}"}})
        return pipeline.predict_proba
    if not agrees:
        log.warning("direct inference disagrees with the pipeline; serving through the pipeline")
        return pipeline.predict_proba
    return direct


def largest_difference(direct: ProbabilityFunction, reference: ProbabilityFunction, rows: np.ndarray) -> float:
    """The largest gap between `direct` and `reference` on `rows`, answered whole
    and SMALL_BATCH_ROWS at a time (the two ways `direct` may compute); infinite
    when the shapes differ."""
    expected = reference(rows)
    few_at_a_time = np.vstack([direct(part) for part in np.array_split(rows, -(-len(rows) // SMALL_BATCH_ROWS))])
    answers = (np.asarray(direct(rows)), few_at_a_time)
    if any(answer.shape != expected.shape for answer in answers):
        return float("inf")
    return float(max(np.abs(answer - expected).max() for answer in answers))


def default_probe_rows() -> np.ndarray:
    """The ends and thirds of every range, crossed, and 64 seeded rows between,
    at the 0.1 resolution of a vital sign: 128 rows, a ~9 ms check at load."""
    low, high = (np.array([FEATURE_RANGES[name][index] for name in FEATURES]) for index in (0, 1))
    scattered = np.round(np.random.default_rng(0).uniform(low, high, size=(64, len(FEATURES))), 1)
    return np.vstack([probe_grid(per_feature=4), scattered])


def probe_grid(per_feature: int) -> np.ndarray:
    """Rows on a grid over every feature's accepted range, ends included."""
    axes = [np.linspace(FEATURE_RANGES[name][0], FEATURE_RANGES[name][1], per_feature) for name in FEATURES]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(FEATURES))


def _compose(pipeline) -> ProbabilityFunction | None:
    steps = [step for _, step in getattr(pipeline, "steps", []) if step != "passthrough"]
    if not steps:
        return None
    transforms = [_transform(step) for step in steps[:-1]]
    classify = _classifier(steps[-1])
    if classify is None or any(transform is None for transform in transforms):
        return None

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        values = np.asarray(rows, dtype=float)
        for transform in transforms:
            values = transform(values)
        return classify(values)

    return predict_proba


def _transform(step) -> Callable[[np.ndarray], np.ndarray] | None:
    from sklearn.preprocessing import StandardScaler

    if type(step) is not StandardScaler:
        return None
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None

    def standardize(values: np.ndarray) -> np.ndarray:
        if mean is not None:
            values = values - mean
        if scale is not None:
            values = values / scale
        return values

    return standardize


def _classifier(step) -> ProbabilityFunction | None:
    # XGBoost, the forest and the network are served from their ONNX graphs
    # (`models.runtime`); a version of theirs served from its pipeline (one
    # registered before the export) answers through the pipeline itself.
    if type(step).__name__ == "HistGradientBoostingClassifier":
        return _hist_gradient_boosting(step)
    return None


def _hist_gradient_boosting(model) -> ProbabilityFunction | None:
    """HistGradientBoosting, multi-class, numeric features: for a few rows every
    tree walked at once, one level per step; a row goes left when its value is
    <= the node's threshold (a missing value where the tree learned to send
    it). Larger batches go through the model's own per-tree loop."""
    predictors = [predictor for iteration in model._predictors for predictor in iteration]
    n_classes = int(model.n_trees_per_iteration_)
    if n_classes < 3 or any(predictor.nodes["is_categorical"].any() for predictor in predictors):
        return None
    nodes = np.concatenate([predictor.nodes for predictor in predictors])
    sizes = np.array([len(predictor.nodes) for predictor in predictors])
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    offset = np.repeat(roots, sizes)
    leaf = nodes["is_leaf"].astype(bool)
    here = np.arange(len(nodes))
    # A leaf points at itself, so walking past a leaf stays on it.
    left = np.where(leaf, here, nodes["left"].astype(np.int64) + offset)
    right = np.where(leaf, here, nodes["right"].astype(np.int64) + offset)
    feature, threshold = nodes["feature_idx"], nodes["num_threshold"]
    missing_left, value = nodes["missing_go_to_left"].astype(bool), nodes["value"]
    depth = int(nodes["depth"].max())
    baseline = np.asarray(model._baseline_prediction, dtype=float).reshape(1, n_classes)

    def predict_proba(values: np.ndarray) -> np.ndarray:
        if len(values) > SMALL_BATCH_ROWS:
            return model.predict_proba(values)
        rows = np.arange(len(values))[:, None]
        node = np.broadcast_to(roots, (len(values), len(roots)))
        for _ in range(depth):
            x = values[rows, feature[node]]
            goes_left = np.where(np.isnan(x), missing_left[node], x <= threshold[node])
            node = np.where(goes_left, left[node], right[node])
        raw = baseline + value[node].reshape(len(values), -1, n_classes).sum(axis=1)
        raw -= raw.max(axis=1, keepdims=True)
        np.exp(raw, out=raw)
        return raw / raw.sum(axis=1, keepdims=True)

    return predict_proba
