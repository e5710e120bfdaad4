"""HistGradientBoosting as an ONNX graph with float64 splits (training side).

Why not skl2onnx: version 1.20 (the latest) fails on scikit-learn 1.9's
HistGradientBoosting (`uint32` and `bool` node fields that `onnx.helper`
refuses), and even after that it writes every threshold as float32, while
HistGradientBoosting compares float64 rows with float64 thresholds: a row
between a threshold and its float32 rounding would go the other way. The
ai.onnx.ml 3 `TreeEnsembleClassifier` carries its thresholds, leaf values and
base values as double tensors (`*_as_tensor`), and onnxruntime runs it on
float64 rows in float64: the graph compares exactly what the model compares.

This module only lays the fitted trees (`_predictors`, the same arrays
scikit-learn walks) out as that node's attributes; it evaluates nothing.
Whether the graph decides as the pipeline does is checked by the fuzz of
`models.agreement`, as for every family, before the graph is served.
"""

from __future__ import annotations

import numpy as np

# What a version of scikit-learn lays out differently would fail here, not silently.
_NODE_FIELDS = {"value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf",
                "is_categorical"}


class BoostingExportError(ValueError):
    """This HistGradientBoosting model has something the graph cannot express."""


def hist_gradient_boosting_graph(model, input_name: str, output_name: str, opset: dict[str, int]) -> bytes:
    """The model's `predict_proba` as a serialized graph: float64 input
    (rows x features), float32 output `output_name` (rows x classes).

    Raises:
        BoostingExportError: categorical splits, a preprocessor, or a node layout
            this module does not know.
    """
    from onnx import TensorProto, helper, numpy_helper

    if getattr(model, "_preprocessor", None) is not None:
        raise BoostingExportError("HistGradientBoosting with categorical features has no exact graph here")
    n_classes = len(model.classes_)
    # Binary models boost one score s and answer [1 - sigmoid(s), sigmoid(s)]: onnxruntime's binary case.
    binary = int(model.n_trees_per_iteration_) == 1
    nodes = {key: [] for key in ("tree", "id", "feature", "mode", "value", "true", "false", "missing")}
    leaves = {key: [] for key in ("tree", "id", "class", "weight")}
    tree = 0
    for predictors in model._predictors:
        for tree_class, predictor in enumerate(predictors):
            _add_tree(predictor.nodes, tree, tree_class, nodes, leaves)
            tree += 1
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
    node = helper.make_node(
        "TreeEnsembleClassifier", [input_name], ["label", output_name], domain="ai.onnx.ml",
        nodes_treeids=nodes["tree"], nodes_nodeids=nodes["id"], nodes_featureids=nodes["feature"],
        nodes_modes=nodes["mode"], nodes_truenodeids=nodes["true"], nodes_falsenodeids=nodes["false"],
        nodes_missing_value_tracks_true=nodes["missing"],
        nodes_values_as_tensor=numpy_helper.from_array(np.asarray(nodes["value"], dtype=np.float64)),
        class_treeids=leaves["tree"], class_nodeids=leaves["id"], class_ids=leaves["class"],
        class_weights_as_tensor=numpy_helper.from_array(np.asarray(leaves["weight"], dtype=np.float64)),
        base_values_as_tensor=numpy_helper.from_array(baseline),
        classlabels_int64s=list(range(n_classes)), post_transform="LOGISTIC" if binary else "SOFTMAX")
    n_features = int(model.n_features_in_)
    graph = helper.make_graph(
        [node], "hist_gradient_boosting", [helper.make_tensor_value_info(input_name, TensorProto.DOUBLE,
                                                                           [None, n_features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, n_classes])])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, version)
                                                         for domain, version in opset.items()],
                                   producer_name="shared.models.boosting_graph")
    return onnx_model.SerializeToString()


def _add_tree(tree_nodes: np.ndarray, tree: int, tree_class: int, nodes: dict, leaves: dict) -> None:
    missing_fields = _NODE_FIELDS - set(tree_nodes.dtype.names or ())
    if missing_fields:
        raise BoostingExportError(f"unknown HistGradientBoosting node layout: no {sorted(missing_fields)}")
    if tree_nodes["is_categorical"].any():
        raise BoostingExportError("HistGradientBoosting with categorical splits has no exact graph here")
    is_leaf = tree_nodes["is_leaf"].astype(bool)
    count = len(tree_nodes)
    nodes["tree"] += [tree] * count
    nodes["id"] += range(count)
    nodes["feature"] += np.where(is_leaf, 0, tree_nodes["feature_idx"]).astype(int).tolist()
    nodes["mode"] += ["LEAF" if leaf else "BRANCH_LEQ" for leaf in is_leaf]  # left when x <= threshold
    nodes["value"] += np.where(is_leaf, 0.0, tree_nodes["num_threshold"]).tolist()
    nodes["true"] += np.where(is_leaf, 0, tree_nodes["left"]).astype(int).tolist()
    nodes["false"] += np.where(is_leaf, 0, tree_nodes["right"]).astype(int).tolist()
    nodes["missing"] += np.where(is_leaf, 0, tree_nodes["missing_go_to_left"]).astype(int).tolist()
    leaf_ids = np.flatnonzero(is_leaf).tolist()
    leaves["tree"] += [tree] * len(leaf_ids)
    leaves["id"] += leaf_ids
    leaves["class"] += [tree_class] * len(leaf_ids)
    leaves["weight"] += tree_nodes["value"][is_leaf].tolist()
