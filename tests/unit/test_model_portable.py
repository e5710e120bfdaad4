"""The ONNX export and its agreement fuzz (`models.portable`, `models.agreement`),
sized for CI: every split threshold and its neighbours, the range ends, and
20,000 random rows (the registration and `bench/portable_agreement.py` use 200,000)."""

import numpy as np
import pytest

from shared.models.agreement import PROBABILITY_TOLERANCE, check_agreement, split_thresholds, threshold_rows
from shared.models.portable import PortableUnsupported, export_checked, export_onnx
from shared.models.runtime import onnx_predict_proba
from shared.training.candidates import SEARCH_SPACES, build_pipeline, encode
from shared.training.synthetic_data import generate_reference_data

CI_RANDOM_ROWS = 20_000
# A rule that moves decisions: calibrated, and the rarer classes weighted up.
RULE = {"calibration": {"slope": [1.1, 0.9, 1.0, 1.2, 0.8], "intercept": [0.0, 0.1, -0.1, 0.2, 0.3]},
        "decision_weights": [1.0, 1.4, 2.0, 1.2, 3.0]}


@pytest.fixture(scope="module")
def data():
    X, y = generate_reference_data(3000, seed=3)
    labels = sorted(set(y))
    assert len(labels) == 5
    return X, encode(y, labels)


def fitted(family: str, data, params: dict | None = None):
    pipeline = build_pipeline(family, params or SEARCH_SPACES[family][0], seed=3, n_jobs=1)
    return pipeline.fit(*data)


@pytest.mark.parametrize("family", ["xgboost", "random_forest", "mlp", "hist_gradient_boosting"])
def test_every_served_family_decides_as_its_pipeline_on_the_threshold_fuzz(family, data):
    pipeline = fitted(family, data)
    report = check_agreement(pipeline, export_onnx(pipeline), RULE, random_rows=CI_RANDOM_ROWS)
    assert report["decision_disagreements"] == 0
    assert report["max_probability_difference"] <= PROBABILITY_TOLERANCE
    assert report["agrees"]
    if family != "mlp":
        assert report["threshold_values"] > 100  # the trees' splits were fuzzed, not only random rows


@pytest.mark.parametrize("family", ["xgboost", "random_forest", "mlp"])
def test_the_graph_computes_only_the_probabilities_serving_reads(family, data):
    import onnx

    graph = onnx.load_from_string(export_onnx(fitted(family, data))).graph
    assert [output.name for output in graph.output] == ["probabilities"]
    if family == "mlp":  # onnxruntime runs every node: the label's ArgMax and class lookup cost a row ~17 %
        assert not {"ArgMax", "ArrayFeatureExtractor"} & {node.op_type for node in graph.node}


def test_tree_families_are_trained_without_a_scaler(data):
    for family in ("xgboost", "random_forest", "hist_gradient_boosting"):
        assert build_pipeline(family, SEARCH_SPACES[family][0], seed=3).named_steps["scale"] == "passthrough"
    assert type(build_pipeline("mlp", SEARCH_SPACES["mlp"][0], seed=3).named_steps["scale"]).__name__ \
        == "StandardScaler"


def test_the_fuzz_finds_the_disagreements_a_scaler_before_the_trees_causes(data):
    """The check can fail: XGBoost behind a scaler, exported as skl2onnx would
    (the scaler in float32), moves rows across float32 splits."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.preprocessing import StandardScaler

    from shared.models.portable import _register_xgboost

    pipeline = fitted("xgboost", data)
    pipeline.steps[0] = ("scale", StandardScaler())
    pipeline.fit(*data)
    with pytest.raises(PortableUnsupported):
        export_onnx(pipeline)
    _register_xgboost()
    graph = convert_sklearn(pipeline, initial_types=[("vitals", FloatTensorType([None, 3]))],
                            target_opset={"": 17, "ai.onnx.ml": 3},
                            options={id(pipeline.steps[-1][1]): {"zipmap": False}}).SerializeToString()
    report = check_agreement(pipeline, graph, RULE, random_rows=CI_RANDOM_ROWS)
    assert report["decision_disagreements"] > 0 and not report["agrees"]


def test_a_classifier_without_an_exact_export_is_served_from_its_pipeline_and_says_why(data):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline([("scale", "passthrough"), ("classifier", DummyClassifier(strategy="prior"))]).fit(*data)
    graph, weights, section = export_checked(pipeline, RULE, random_rows=1000)
    assert graph is None and weights is None
    assert section["served_from"] == "pipeline" and "DummyClassifier" in section["reason"]
    assert set(section["converter_versions"]) >= {"skl2onnx", "onnxmltools", "onnxruntime"}


def test_hist_gradient_boosting_is_served_from_its_graph(data):
    pipeline = fitted("hist_gradient_boosting", data, {"max_iter": 20, "learning_rate": 0.1})
    graph, weights, section = export_checked(pipeline, RULE, random_rows=1000)
    assert graph is not None and weights is None and section["served_from"] == "onnx"
    assert section["agreement"]["served_engine"] == "onnxruntime"
    assert section["agreement"]["threshold_values"] > 100


def test_the_network_is_certified_on_its_weights_and_on_its_graph(data):
    """What serves an MLP is its `.npz` as numpy, and onnxruntime on its graph
    when that file does not match: the fuzz runs both, and each can fail it."""
    import io

    import onnx
    from onnx import numpy_helper

    pipeline = fitted("mlp", data)
    graph, weights, section = export_checked(pipeline, RULE, random_rows=1000)
    assert weights is not None and section["agreement"]["served_engine"] == "numpy"
    assert set(section["agreement"]["engines"]) == {"numpy", "onnxruntime"}
    with np.load(io.BytesIO(weights)) as archive:
        arrays = {name: archive[name] for name in archive.files}
    buffer = io.BytesIO()
    np.savez(buffer, **dict(arrays, bias_2=arrays["bias_2"] + np.linspace(-2, 2, arrays["bias_2"].size)))
    report = check_agreement(pipeline, graph, RULE, weights=buffer.getvalue(), random_rows=1000)
    assert report["engines"]["numpy"]["decision_disagreements"] > 0 and not report["agrees"]
    model = onnx.load_from_string(graph)
    last_bias = next(tensor for tensor in model.graph.initializer if tensor.name == "intercepts2")
    shifted = numpy_helper.to_array(last_bias) + np.linspace(-2, 2, last_bias.dims[-1])
    last_bias.CopyFrom(numpy_helper.from_array(shifted, last_bias.name))
    report = check_agreement(pipeline, model.SerializeToString(), RULE, weights=weights, random_rows=1000)
    assert report["engines"]["onnxruntime"]["decision_disagreements"] > 0 and not report["agrees"]


def test_hist_gradient_boosting_needs_its_float64_thresholds(data):
    """The check can fail: the same graph with its thresholds rounded to
    float32 (what skl2onnx writes) sends rows between the two the other way."""
    import onnx
    from onnx import numpy_helper

    pipeline = fitted("hist_gradient_boosting", data)
    model = onnx.load_from_string(export_onnx(pipeline))
    for attribute in model.graph.node[0].attribute:
        if attribute.name == "nodes_values_as_tensor":
            rounded = numpy_helper.to_array(attribute.t).astype(np.float32).astype(np.float64)
            attribute.t.CopyFrom(numpy_helper.from_array(rounded, attribute.t.name))
    thresholds = split_thresholds(pipeline)
    report = check_agreement(pipeline, model.SerializeToString(), RULE, random_rows=CI_RANDOM_ROWS)
    assert sum(len(values) for _, values in thresholds) > 100
    assert report["decision_disagreements"] > 0 and not report["agrees"]


def test_a_binary_hist_gradient_boosting_graph_answers_both_columns(data):
    X, y = data
    pipeline = build_pipeline("hist_gradient_boosting", {"max_iter": 30}, seed=3, n_jobs=1).fit(X, (y == 0) * 1)
    report = check_agreement(pipeline, export_onnx(pipeline), None, random_rows=CI_RANDOM_ROWS)
    assert report["agrees"] and report["decision_disagreements"] == 0


def test_hist_gradient_boosting_sends_a_missing_value_where_it_learned_to(data):
    X, y = data
    X = X.copy()
    X[::7, 1] = np.nan  # heart rate missing in training: the trees learn a side for it
    pipeline = build_pipeline("hist_gradient_boosting", {"max_iter": 20}, seed=3, n_jobs=1).fit(X, y)
    rows = X[:300].copy()
    rows[::2, 1] = np.nan
    served = onnx_predict_proba(export_onnx(pipeline))(rows)
    np.testing.assert_allclose(served, pipeline.predict_proba(rows), rtol=0, atol=PROBABILITY_TOLERANCE)
    assert (served.argmax(axis=1) == pipeline.predict_proba(rows).argmax(axis=1)).all()


def test_threshold_rows_put_each_split_and_its_float32_neighbours_in_its_feature(data):
    pipeline = fitted("random_forest", data, {"n_estimators": 3, "max_depth": 3, "min_samples_leaf": 2})
    thresholds = split_thresholds(pipeline)
    rows = threshold_rows(thresholds, np.random.default_rng(0))
    for feature, values in thresholds:
        for value in values:
            as32 = np.float32(value)
            for neighbour in (np.nextafter(as32, np.float32(-np.inf)), as32, np.nextafter(as32, np.float32(np.inf))):
                assert (rows[:, feature] == np.float64(neighbour)).any()


def test_the_runtime_answers_float64_probabilities_in_the_pipelines_columns(data):
    pipeline = fitted("xgboost", data)
    predict_proba = onnx_predict_proba(export_onnx(pipeline))
    rows = np.array([[36.6, 72.0, 118.0], [39.5, 150.0, 85.0]])
    answer = predict_proba(rows)
    assert answer.dtype == np.float64 and answer.shape == (2, 5)
    np.testing.assert_allclose(answer, pipeline.predict_proba(rows), atol=PROBABILITY_TOLERANCE)


def test_the_portable_section_can_be_stored_in_firestore(data):
    """The section is copied into the experiment record, and Firestore refuses an empty map key
    (the default ONNX domain's name): a retrain on the emulators failed on it."""
    pipeline = fitted("mlp", data)
    _, _, section = export_checked(pipeline, RULE, random_rows=1000)

    def keys(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield key
                yield from keys(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys(inner)

    assert all(isinstance(key, str) and key for key in keys(section))
    assert {"domain": "ai.onnx", "version": 17} in section["target_opset"]


@pytest.mark.parametrize("exporter", ["export_checked", "served_latency_ms"])
def test_the_training_deadline_is_not_taken_for_a_failed_export(exporter, monkeypatch):
    """The hard deadline's alarm can go off inside the ONNX export (a forest's takes
    seconds): it must stop the training, not be recorded as "no export" and let
    the training run on past its deadline."""
    from shared.errors import TrainingDeadlineExceeded
    from shared.models import portable
    from shared.training import serving_cost

    def alarm(pipeline):
        raise TrainingDeadlineExceeded("training ran past its deadline of 3 s")

    monkeypatch.setattr(portable, "export_onnx", alarm)
    with pytest.raises(TrainingDeadlineExceeded):
        if exporter == "export_checked":
            export_checked(object())
        else:
            serving_cost.served_latency_ms(object(), ["A", "B"], {}, np.zeros((1, 3)))


def test_pruning_keeps_what_a_subgraph_reads_from_the_outer_graph_and_checks_the_result():
    """A name read inside an If's branch is no input of the If node itself: pruning by node
    inputs alone dropped it and left a graph onnxruntime refuses. The checker now runs after."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from shared.models.portable import _keep_only_probabilities

    def branch(name, source):
        return helper.make_graph([helper.make_node("Identity", [source], [f"{name}_out"])], name, [],
                                 [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1, 2])])

    weights = helper.make_tensor("weights", TensorProto.FLOAT, [1, 2], [0.25, 0.75])
    nodes = [
        helper.make_node("ReduceSum", ["input"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node("Squeeze", ["positive"], ["condition"]),
        helper.make_node("If", ["condition"], ["probabilities"], then_branch=branch("then", "weights"),
                         else_branch=branch("else", "weights")),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [1]),
                               helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 2])],
                              [weights, helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    _keep_only_probabilities(model)
    assert [output.name for output in model.graph.output] == ["probabilities"]
    assert "ArgMax" not in {node.op_type for node in model.graph.node}
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    answer = session.run(None, {"input": np.ones((1, 3), dtype=np.float32)})[0]
    assert answer.tolist() == [[0.25, 0.75]]
