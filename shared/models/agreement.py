"""Does the exported graph decide as the pipeline does? A fuzz, run before a
version is registered as portable.

Where tree models can disagree is at their split thresholds (a row on one side
in float64, on the other in float32), so the fuzz puts every split threshold of
every tree, as the pipeline stores it and as the graph stores it, with their
float32 and float64 neighbours, into its feature, the other features random;
then the ends of every accepted input range (and their neighbours) crossed, and
random rows, half of them at the 0.1 resolution vital signs are recorded at.
It compares the decision (argmax after calibration and decision weights, as
`models.loading` serves it) and the served probabilities, on every engine
the version may serve with.

Training side only: it runs the pipeline (scikit-learn, XGBoost).
"""

from __future__ import annotations

import json
import time

import numpy as np

from shared.models.loading import calibrate, decide
from shared.models.runtime import onnx_predict_proba, served_predict_proba
from shared.schema import FEATURE_RANGES, FEATURES

RANDOM_ROWS = 200_000
# The served probabilities: float32 trees sum their leaves in another order and
# precision than XGBoost or scikit-learn (measured: up to ~2e-6); far below the
# 6 decimals an answer carries would be 5e-7, so we state 1e-5 and check it.
PROBABILITY_TOLERANCE = 1e-5
_CHUNK = 50_000


def check_agreement(pipeline, graph: bytes, decision_rule: dict | None = None, *, weights: bytes | None = None,
                    random_rows: int = RANDOM_ROWS, seed: int = 0) -> dict:
    """The fuzz's report: `agrees` is True only with zero decision
    disagreements and every probability within PROBABILITY_TOLERANCE.

    It runs the function that serves (`runtime.served_predict_proba`, the
    network's `weights` as numpy when given) and, when that is not
    onnxruntime, the graph on onnxruntime too: serving falls back to it when
    the weights file is missing or does not match. `engines` reports each."""
    started = time.perf_counter()
    served = served_predict_proba(graph, weights)
    engines = {served.engine: served}
    if served.engine != "onnxruntime":
        engines["onnxruntime"] = onnx_predict_proba(graph)
    thresholds = split_thresholds(pipeline) + graph_thresholds(graph)
    rng = np.random.default_rng(seed)
    rows = np.vstack([threshold_rows(thresholds, rng), range_end_rows(rng), random_in_ranges(random_rows, rng)])
    rule = decision_rule or {}
    class_weights = rule.get("decision_weights")
    found = {name: {"decision_disagreements": 0, "max_probability_difference": 0.0} for name in engines}
    for start in range(0, len(rows), _CHUNK):
        part = rows[start:start + _CHUNK]
        expected = calibrate(pipeline.predict_proba(part), rule.get("calibration"))
        for name, predict_proba in engines.items():
            actual = calibrate(predict_proba(part), rule.get("calibration"))
            differ = decide(expected, class_weights) != decide(actual, class_weights)
            found[name]["decision_disagreements"] += int(differ.sum())
            found[name]["max_probability_difference"] = max(found[name]["max_probability_difference"],
                                                            float(np.abs(expected - actual).max()))
    disagreements = sum(engine["decision_disagreements"] for engine in found.values())
    largest = max(engine["max_probability_difference"] for engine in found.values())
    return {"rows": int(len(rows)), "threshold_values": int(sum(len(values) for _, values in thresholds)),
            "random_rows": int(random_rows), "decision_disagreements": disagreements,
            "max_probability_difference": largest, "probability_tolerance": PROBABILITY_TOLERANCE,
            "served_engine": served.engine, "engines": found,
            "agrees": disagreements == 0 and largest <= PROBABILITY_TOLERANCE,
            "seconds": round(time.perf_counter() - started, 2)}


def split_thresholds(pipeline) -> list[tuple[int, np.ndarray]]:
    """(feature, thresholds) of every split of the pipeline's trees, as it stores them."""
    classifier = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    name = type(classifier).__name__
    pairs = []
    if name == "RandomForestClassifier":
        for estimator in classifier.estimators_:
            tree = estimator.tree_
            split = tree.feature >= 0
            pairs += _by_feature(tree.feature[split], tree.threshold[split])
    elif name == "XGBClassifier":
        model = json.loads(classifier.get_booster().save_raw("json"))
        for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
            split = np.asarray(tree["left_children"]) >= 0
            pairs += _by_feature(np.asarray(tree["split_indices"])[split],
                                 np.asarray(tree["split_conditions"], dtype=np.float32)[split].astype(np.float64))
    elif name == "HistGradientBoostingClassifier":
        for predictors in classifier._predictors:
            for predictor in predictors:
                split = ~predictor.nodes["is_leaf"].astype(bool)
                pairs += _by_feature(predictor.nodes["feature_idx"][split], predictor.nodes["num_threshold"][split])
    scaler = _scaler(pipeline)
    if scaler is not None:  # thresholds on scaled values: where raw inputs cross them
        pairs = [(feature, values * scaler.scale_[feature] + scaler.mean_[feature]) for feature, values in pairs]
    return _merge(pairs)


def _scaler(pipeline):
    steps = [step for _, step in getattr(pipeline, "steps", [])[:-1] if step != "passthrough"]
    return steps[0] if len(steps) == 1 and type(steps[0]).__name__ == "StandardScaler" else None


def graph_thresholds(graph: bytes) -> list[tuple[int, np.ndarray]]:
    """(feature, thresholds) of every split in the graph's tree ensembles."""
    import onnx
    from onnx import numpy_helper

    pairs = []
    for node in onnx.load_from_string(graph).graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attributes = {attribute.name: attribute for attribute in node.attribute}
        modes = [mode.decode() for mode in attributes["nodes_modes"].strings]
        if "nodes_values_as_tensor" in attributes:
            values = numpy_helper.to_array(attributes["nodes_values_as_tensor"].t).astype(np.float64)
        else:
            values = np.asarray(attributes["nodes_values"].floats, dtype=np.float32).astype(np.float64)
        split = np.asarray(modes) != "LEAF"
        pairs += _by_feature(np.asarray(attributes["nodes_featureids"].ints)[split], values[split])
    return _merge(pairs)


def threshold_rows(thresholds: list[tuple[int, np.ndarray]], rng: np.random.Generator) -> np.ndarray:
    """A row per threshold and per float32/float64 neighbour, inside the accepted ranges."""
    blocks = []
    for feature, values in thresholds:
        as32 = values.astype(np.float32)
        candidates = np.unique(np.concatenate([
            values, np.nextafter(values, -np.inf), np.nextafter(values, np.inf), as32.astype(np.float64),
            np.nextafter(as32, np.float32(-np.inf)).astype(np.float64),
            np.nextafter(as32, np.float32(np.inf)).astype(np.float64)]))
        low, high = FEATURE_RANGES[FEATURES[feature]][:2]
        candidates = candidates[(candidates >= low) & (candidates <= high)]
        rows = random_in_ranges(len(candidates), rng)
        rows[:, feature] = candidates
        blocks.append(rows)
    return np.vstack(blocks) if blocks else np.empty((0, len(FEATURES)))


def range_end_rows(rng: np.random.Generator, per_end: int = 200) -> np.ndarray:
    """Every corner of the accepted box, and each range's ends (and their inner
    neighbours) with the other features random."""
    ends = [np.array([low, np.nextafter(low, np.inf), np.nextafter(high, -np.inf), high])
            for low, high, _ in (FEATURE_RANGES[name] for name in FEATURES)]
    corners = np.stack(np.meshgrid(*ends, indexing="ij"), axis=-1).reshape(-1, len(FEATURES))
    blocks = [corners]
    for feature, values in enumerate(ends):
        rows = random_in_ranges(per_end * len(values), rng)
        rows[:, feature] = np.repeat(values, per_end)
        blocks.append(rows)
    return np.vstack(blocks)


def random_in_ranges(count: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform rows over the accepted ranges, every other one rounded to 0.1."""
    low, high = (np.array([FEATURE_RANGES[name][index] for name in FEATURES]) for index in (0, 1))
    rows = rng.uniform(low, high, size=(count, len(FEATURES)))
    rows[::2] = np.clip(np.round(rows[::2], 1), low, high)
    return rows


def _by_feature(features: np.ndarray, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
    return [(int(feature), values[features == feature]) for feature in np.unique(features)]


def _merge(pairs: list[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray]]:
    merged: dict[int, list[np.ndarray]] = {}
    for feature, values in pairs:
        merged.setdefault(feature, []).append(values)
    return [(feature, np.unique(np.concatenate(parts))) for feature, parts in sorted(merged.items())]
