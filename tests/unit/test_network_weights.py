"""The network family served as numpy: its constants taken from the exported
graph with onnx's own API (`models.network_weights`, only for the exact chain
skl2onnx writes), written as an `.npz`, read back without pickle
(`models.network_forward`) into onnxruntime's probabilities."""

import io

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from shared.models.network_forward import network_predict_proba
from shared.models.network_weights import network_weights
from shared.models.portable import export_onnx
from shared.models.runtime import onnx_predict_proba, served_predict_proba
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


def rows(count: int = 20_000) -> np.ndarray:
    low = [FEATURE_RANGES[name][0] for name in FEATURES]
    high = [FEATURE_RANGES[name][1] for name in FEATURES]
    rng = np.random.default_rng(1)
    ends = np.array(np.meshgrid(*zip(low, high))).reshape(len(FEATURES), -1).T  # every corner of the ranges
    return np.vstack([ends, rng.uniform(low, high, (count, len(FEATURES)))])


def test_the_network_serves_as_numpy_with_onnxruntimes_probabilities(graphs):
    served = served_predict_proba(graphs["mlp"], network_weights(graphs["mlp"]))
    assert served.engine == "numpy"
    expected, actual = onnx_predict_proba(graphs["mlp"])(rows()), served(rows())
    assert actual.dtype == np.float64 and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
    assert (actual.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert served([[36.6, 80.0, 120.0]]).shape == (1, expected.shape[1])  # a request's list of rows


def test_the_weights_file_holds_float64_arrays_only(graphs):
    with np.load(io.BytesIO(network_weights(graphs["mlp"])), allow_pickle=False) as archive:
        assert {name: archive[name].dtype for name in archive.files} == dict.fromkeys(
            ["shift", "scale", "weights_0", "bias_0", "weights_1", "bias_1", "weights_2", "bias_2"], np.float64)


def test_other_graphs_have_no_weights_and_serve_on_onnxruntime(graphs):
    assert network_weights(graphs["xgboost"]) is None
    assert network_weights(b"not a protobuf at all") is None
    assert served_predict_proba(graphs["xgboost"]).engine == "onnxruntime"
    assert served_predict_proba(graphs["mlp"]).engine == "onnxruntime"  # a version registered before the file


def changed(graph: bytes, change) -> bytes:
    model = onnx.load_from_string(graph)
    change(model.graph)
    return model.SerializeToString()


def node(graph, op_type: str):
    return next(node for node in graph.node if node.op_type == op_type)


def replace_op(op_type: str, new_op: str):
    def change(graph):
        node(graph, op_type).op_type = new_op
    return change


def softmax_over_rows(graph):
    node(graph, "Softmax").attribute.append(helper.make_attribute("axis", 0))


def softmax_axis_as_a_list(graph):
    axis = helper.make_attribute("axis", [1])
    axis.i = 1  # an INTS attribute carrying an integer too: only its type says which is meant
    node(graph, "Softmax").attribute.append(axis)


def extra_node(graph):
    graph.node.append(helper.make_node("Neg", [graph.node[-1].output[0]], ["negated"]))


def float32_weights(graph):
    tensor = next(tensor for tensor in graph.initializer if tensor.name == "coefficient")
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))


def cast_to_float(graph):
    node(graph, "Cast").attribute[0].i = TensorProto.FLOAT


def other_domain(graph):
    node(graph, "Relu").domain = "com.microsoft"


def float_input(graph):
    graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT


def values_in_two_fields(graph):  # onnxruntime reads raw_data, numpy_helper too; refuse the ambiguity
    tensor = graph.initializer[2]
    tensor.raw_data = (numpy_helper.to_array(tensor) * 2).astype("<f8").tobytes()


def duplicate_initializer(graph):
    tensor = onnx.TensorProto()
    tensor.CopyFrom(graph.initializer[2])
    tensor.ClearField("double_data")
    tensor.double_data.extend(np.zeros(int(np.prod(tensor.dims))))
    graph.initializer.append(tensor)


def wrong_column_count(graph):
    graph.input[0].type.tensor_type.shape.dim[1].dim_value = len(FEATURES) + 1


def fixed_row_count(graph):
    graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1


def output_named_like_a_constant(graph):
    relu = node(graph, "Relu")
    renamed = graph.initializer[0].name
    for other in graph.node:
        other.input[:] = [renamed if name == relu.output[0] else name for name in other.input]
    relu.output[0] = renamed


CHANGES = {"activation": replace_op("Relu", "Sigmoid"), "scaler": replace_op("Sub", "Add"),
           "layer": replace_op("MatMul", "Gemm"), "softmax-axis": softmax_over_rows,
           "softmax-axis-ints": softmax_axis_as_a_list, "extra-node": extra_node, "float32-constant": float32_weights,
           "cast-to-float": cast_to_float, "domain": other_domain, "float-input": float_input,
           "two-value-fields": values_in_two_fields, "duplicate-initializer": duplicate_initializer,
           "column-count": wrong_column_count, "fixed-rows": fixed_row_count,
           "output-named-like-a-constant": output_named_like_a_constant}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_any_other_chain_has_no_weights(graphs, change):
    assert network_weights(changed(graphs["mlp"], change)) is None


def test_a_model_the_onnx_checker_refuses_has_no_weights(graphs):
    model = onnx.load_from_string(graphs["mlp"])
    del model.opset_import[:]  # onnxruntime refuses it too: which operator set the nodes mean is unknown
    assert network_weights(model.SerializeToString()) is None


def test_constants_stored_as_raw_bytes_give_the_same_weights(graphs):
    def stored_as_raw_bytes(graph):
        for tensor in list(graph.initializer):  # the same float64 values in raw_data instead of double_data
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))

    served = network_predict_proba(network_weights(changed(graphs["mlp"], stored_as_raw_bytes)))
    np.testing.assert_array_equal(served(rows(100)), network_predict_proba(network_weights(graphs["mlp"]))(rows(100)))


UNPICKLED = []


def note_unpickled(what: str) -> None:
    UNPICKLED.append(what)


class Marker:
    """Unpickling it runs code (a call of `note_unpickled`): what a weights file must never do."""

    def __reduce__(self):
        return note_unpickled, ("unpickled",)


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_weights_file_is_read_without_unpickling(graphs):
    with np.load(io.BytesIO(network_weights(graphs["mlp"]))) as archive:
        arrays = {name: archive[name] for name in archive.files}
    with pytest.raises(ValueError):
        network_predict_proba(npz(**dict(arrays, shift=np.array([Marker()] * len(FEATURES), dtype=object))))
    assert UNPICKLED == []


@pytest.mark.parametrize("case", ["float32", "missing-layer-bias", "extra-array", "shape", "not-a-zip",
                                  "truncated-zip"])
def test_weights_that_are_not_the_networks_arrays_are_refused_and_the_graph_serves(graphs, case):
    with np.load(io.BytesIO(network_weights(graphs["mlp"]))) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if case == "float32":
        arrays["weights_1"] = arrays["weights_1"].astype(np.float32)
    elif case == "missing-layer-bias":
        del arrays["bias_2"]
    elif case == "extra-array":
        arrays["weights_9"] = arrays["weights_2"]
    elif case == "shape":
        arrays["bias_0"] = arrays["bias_0"][:-1]
    weights = npz(**arrays)
    if case == "not-a-zip":
        weights = b"PK not a zip"
    elif case == "truncated-zip":
        weights = weights[:len(weights) // 2]
    with pytest.raises(ValueError):
        network_predict_proba(weights)
    assert served_predict_proba(graphs["mlp"], weights).engine == "onnxruntime"
