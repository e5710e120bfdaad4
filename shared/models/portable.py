"""Export a trained pipeline to ONNX, the serving artifact that cannot carry code.

Training keeps the joblib pipeline (calibration, the drift check and the
promotion gate need scikit-learn); serving loads only the graph this module
writes, through onnxruntime (`models.runtime`), or, for the network, the
`.npz` of the graph's constants through numpy (`models.network_weights`), so
`predict` never imports scikit-learn, SciPy or XGBoost and never unpickles.

Each family is converted so that the graph compares exactly what the pipeline
compares:
- tree ensembles (XGBoost, random forest) take float32 rows: both libraries
  cast their input to float32 before splitting, and the trees are trained
  without a scaler in front (`candidates.build_pipeline`), so the graph sees
  the same float32 values the pipeline's trees see;
- HistGradientBoosting compares float64 rows with float64 thresholds: its
  graph takes float64 rows and carries double thresholds
  (`models.boosting_graph`, since skl2onnx 1.20 cannot convert scikit-learn
  1.9's and would round the thresholds to float32);
- the network takes float64 rows, with its scaler in the graph: scikit-learn
  computes it in float64, and so does the graph (probabilities agree to 1e-15).
Anything else raises `PortableUnsupported`; such a version is served from its
pipeline.

Whether the graph decides as the pipeline does is not assumed: `models.agreement`
checks it on a fuzz before the version is registered as portable.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# Pinned so a retrain with newer converters cannot silently produce a graph the
# pinned onnxruntime (requirements.txt) reads differently.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
INPUT_NAME = "vitals"
TREE_FAMILIES = {"XGBClassifier": "xgboost", "RandomForestClassifier": "random_forest",
                 "HistGradientBoostingClassifier": "hist_gradient_boosting"}
NETWORK_FAMILIES = {"MLPClassifier": "mlp"}


class PortableUnsupported(Exception):
    """This pipeline has no exact ONNX export; it is served from the pipeline."""


def converter_versions() -> dict[str, str]:
    """The converters and runtime this export was made and checked with (for the manifest)."""
    versions = {}
    for package in ("onnx", "skl2onnx", "onnxmltools", "onnxruntime"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def export_onnx(pipeline) -> bytes:
    """The pipeline's probabilities as a serialized ONNX graph: one input
    `vitals` (rows x features), one output `probabilities` (rows x classes, in
    the classifier's column order).

    Raises:
        PortableUnsupported: a step or classifier without an exact export.
    """
    steps = [step for _, step in getattr(pipeline, "steps", [(None, pipeline)]) if step != "passthrough"]
    classifier, transforms = steps[-1], steps[:-1]
    name = type(classifier).__name__
    if name in TREE_FAMILIES:
        if transforms:
            # A scaler before the trees moves float64 rows across float32 thresholds
            # (the scaled value rounds, the raw one does not): no exact float32 graph.
            raise PortableUnsupported(f"{name} has {len(transforms)} step(s) in front of its trees; "
                                      "trees are exported only as they are trained, on the raw features")
        if name == "HistGradientBoostingClassifier":
            return _hist_gradient_boosting(classifier)
        return _convert(classifier, classifier, float32=True)
    if name in NETWORK_FAMILIES:
        if any(type(step).__name__ != "StandardScaler" for step in transforms):
            raise PortableUnsupported(f"{name}: only a StandardScaler may precede the network")
        from sklearn.pipeline import make_pipeline

        model = make_pipeline(*transforms, classifier) if transforms else classifier
        return _convert(model, classifier, float32=False)
    raise PortableUnsupported(f"no exact ONNX export for {name}: it is served from its pipeline")


def _convert(model, classifier, float32: bool) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    _register_xgboost()
    tensor = FloatTensorType if float32 else DoubleTensorType
    n_features = int(classifier.n_features_in_)
    graph = convert_sklearn(model, initial_types=[(INPUT_NAME, tensor([None, n_features]))],
                            target_opset=TARGET_OPSET, options={id(classifier): {"zipmap": False}})
    _keep_only_probabilities(graph)
    graph.doc_string = "probabilities: rows x classes, in the training labels' order"
    return graph.SerializeToString()


def _keep_only_probabilities(model) -> None:
    """Drop what only the `label` output needs. skl2onnx writes both outputs, and
    onnxruntime runs every node whichever outputs are fetched: the network's label
    (ArgMax, a lookup of the class names, reshape, casts) is 5 of its 17 nodes and
    ~17 % of a one-row run that serving never reads. A tree ensemble's label comes
    from the same node as its probabilities, so its graph only loses the output."""
    import onnx

    from shared.models.runtime import PROBABILITIES_OUTPUT

    graph, needed, kept = model.graph, {PROBABILITIES_OUTPUT}, []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
            needed.update(_names_read_by_subgraphs(node))  # an If/Loop branch reads outer names directly
    outputs = [output for output in graph.output if output.name == PROBABILITIES_OUTPUT]
    initializers = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.node[:], graph.output[:], graph.initializer[:]
    graph.node.extend(reversed(kept))
    graph.output.extend(outputs)
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)  # a pruning mistake fails the export, not the first request


def _names_read_by_subgraphs(node) -> set[str]:
    """Every name the node's subgraphs (at any depth) read: a superset of the outer ones."""
    names: set[str] = set()
    for attribute in node.attribute:
        subgraphs = [attribute.g] if attribute.HasField("g") else []
        for subgraph in [*subgraphs, *attribute.graphs]:
            for inner in subgraph.node:
                names.update(inner.input)
                names.update(_names_read_by_subgraphs(inner))
    return names


def _hist_gradient_boosting(classifier) -> bytes:
    from shared.models.boosting_graph import BoostingExportError, hist_gradient_boosting_graph

    try:
        return hist_gradient_boosting_graph(classifier, INPUT_NAME, "probabilities", TARGET_OPSET)
    except BoostingExportError as error:
        raise PortableUnsupported(str(error)) from None


def _register_xgboost() -> None:
    """Teach skl2onnx XGBoost's classifier through onnxmltools' converter (idempotent)."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from xgboost import XGBClassifier

    update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                convert_xgboost, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})


def export_checked(pipeline, decision_rule: dict | None = None, *, random_rows: int | None = None,
                   graph: bytes | None = None) -> tuple[bytes | None, bytes | None, dict]:
    """(graph or None, the network's weights `.npz` or None, the manifest's
    `portable` section) for one trained pipeline.

    The graph (and the weights, for an MLP whose graph is exactly the chain
    `models.network_weights` reads) is returned only when the fuzz found what
    serves deciding as the pipeline does; otherwise the section says why, and
    the version is served from its pipeline (the experiment record quotes the
    same section). `graph`: an export already made of this pipeline
    (training's, for its serving cost)."""
    from shared.errors import TrainingDeadlineExceeded
    from shared.models.agreement import RANDOM_ROWS, check_agreement

    # As a list: Firestore (the experiment record) refuses a map key that is empty, as the default domain's is.
    opsets = [{"domain": domain or "ai.onnx", "version": number} for domain, number in TARGET_OPSET.items()]
    section = {"format": "onnx", "target_opset": opsets, "converter_versions": converter_versions()}
    try:
        graph = export_onnx(pipeline) if graph is None else graph
        weights = network_weights_of(pipeline, graph)
    except PortableUnsupported as error:
        return None, None, dict(section, served_from="pipeline", reason=str(error))
    except TrainingDeadlineExceeded:  # the job's alarm, not the converter's failure: it stops the training
        raise
    except Exception as error:  # noqa: BLE001 -- a converter failure must not lose the trained model
        return None, None, dict(section, served_from="pipeline",
                                reason=f"export failed: {type(error).__name__}: {error}")
    agreement = check_agreement(pipeline, graph, decision_rule, weights=weights,
                                random_rows=RANDOM_ROWS if random_rows is None else random_rows)
    if not agreement["agrees"]:
        reason = (f"the graph disagrees with the pipeline on {agreement['decision_disagreements']} decision(s) of "
                  f"{agreement['rows']} fuzzed rows, probabilities up to {agreement['max_probability_difference']:.2g}")
        return None, None, dict(section, served_from="pipeline", agreement=agreement, reason=reason)
    return graph, weights, dict(section, served_from="onnx", agreement=agreement)


def network_weights_of(pipeline, graph: bytes) -> bytes | None:
    """The `.npz` numpy serves an MLP from (`models.network_weights`); None for other families."""
    steps = getattr(pipeline, "steps", [(None, pipeline)])
    if type(steps[-1][1]).__name__ not in NETWORK_FAMILIES:
        return None
    from shared.models.network_weights import network_weights

    return network_weights(graph)
