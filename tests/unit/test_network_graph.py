"""The network family's graph run as numpy (`models.network_graph`): the same
probabilities as onnxruntime on the same graph, and only for the exact chain
skl2onnx writes; anything else stays on onnxruntime."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from shared.models.network_graph import network_predict_proba
from shared.models.portable import export_onnx
from shared.models.runtime import onnx_predict_proba
from shared.schema import FEATURE_RANGES, FEATURES
from shared.training.candidates import SEARCH_SPACES, build_pipeline, encode
from shared.training.synthetic_data import generate_reference_data


@pytest.fixture(scope="module")
def graphs():
    X, y = generate_reference_data(1500, seed=5)
    data = X, encode(y, sorted(set(y)))
    fitted = {family: build_pipeline(family, SEARCH_SPACES[family][0], seed=5, n_jobs=1).fit(*data)
              for family in ("mlp", "xgboost")}
    return {family: export_onnx(pipeline) for family, pipeline in fitted.items()}


def onnxruntime_proba(graph: bytes):
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return lambda rows: session.run(["probabilities"], {"vitals": np.asarray(rows, dtype=np.float64)})[0]


def rows(count: int = 20_000) -> np.ndarray:
    low = [FEATURE_RANGES[name][0] for name in FEATURES]
    high = [FEATURE_RANGES[name][1] for name in FEATURES]
    rng = np.random.default_rng(1)
    ends = np.array(np.meshgrid(*zip(low, high))).reshape(len(FEATURES), -1).T  # every corner of the ranges
    return np.vstack([ends, rng.uniform(low, high, (count, len(FEATURES)))])


def test_the_network_graph_runs_as_numpy_with_onnxruntimes_probabilities(graphs):
    served = onnx_predict_proba(graphs["mlp"])
    assert served.engine == "numpy"
    expected, actual = onnxruntime_proba(graphs["mlp"])(rows()), served(rows())
    assert actual.dtype == np.float64 and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
    assert (actual.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert served([[36.6, 80.0, 120.0]]).shape == (1, expected.shape[1])  # a request's list of rows


def test_other_graphs_stay_on_onnxruntime(graphs):
    assert network_predict_proba(graphs["xgboost"]) is None
    assert onnx_predict_proba(graphs["xgboost"]).engine == "onnxruntime"
    assert network_predict_proba(b"not a protobuf at all") is None


def changed(graph: bytes, change) -> bytes:
    model = onnx.load_from_string(graph)
    change(model.graph)
    return model.SerializeToString()


def replace_op(op_type: str, new_op: str):
    def change(graph):
        node = next(node for node in graph.node if node.op_type == op_type)
        node.op_type = new_op
    return change


def softmax_over_rows(graph):
    node = next(node for node in graph.node if node.op_type == "Softmax")
    node.attribute.append(helper.make_attribute("axis", 0))


def extra_node(graph):
    last = graph.node[-1]
    graph.node.append(helper.make_node("Neg", [last.output[0]], ["negated"]))


def float32_weights(graph):
    tensor = next(tensor for tensor in graph.initializer if tensor.name == "coefficient")
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))


def stored_as_raw_bytes(graph):
    for tensor in list(graph.initializer):  # the same float64 values in raw_data instead of double_data
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))


@pytest.mark.parametrize("change", [
    replace_op("Relu", "Sigmoid"), replace_op("Sub", "Add"), replace_op("MatMul", "Gemm"), softmax_over_rows,
    extra_node, float32_weights,
], ids=["activation", "scaler", "layer", "softmax-axis", "extra-node", "float32-constant"])
def test_any_other_chain_is_left_to_onnxruntime(graphs, change):
    assert network_predict_proba(changed(graphs["mlp"], change)) is None


def test_constants_stored_as_raw_bytes_are_read_the_same(graphs):
    served = network_predict_proba(changed(graphs["mlp"], stored_as_raw_bytes))
    assert served is not None
    np.testing.assert_array_equal(served(rows(100)), network_predict_proba(graphs["mlp"])(rows(100)))
