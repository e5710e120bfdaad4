"""The network (MLP) family's constants, taken from its exported ONNX graph
at export and written as an `.npz` beside it (training side: imports onnx).

Why: at one connection onnxruntime's run was the largest piece of a
`predict` request, ~60 µs of CPU out of ~310 (requests spaced as a client's
round trips leave its C++ path cold; `bench/serving_profile.py`), for a few
small matrix products numpy does in a few µs. Serving cannot read the graph
itself without onnx (`import onnx`: +0.5-0.7 s of cold start) or a protobuf
parser of our own, so the constants are read here with onnx's own API and
handed over as plain float64 arrays (`models.network_forward` runs them).

Only the exact chain skl2onnx writes for a scaled MLPClassifier is accepted,
checked on onnx's parsed objects: Sub, Div, Cast to double, (MatMul, Add,
Relu) per hidden layer, MatMul, Add, Softmax over the classes, Identity into
`probabilities`; every op in the default domain with exactly its attributes,
one double input of `[rows, features]`, every constant one float64
initializer stored in the file, no name defined twice. Anything else returns
None and the version serves its graph on onnxruntime. The arrays are the
graph's own numbers, and the agreement fuzz runs the served function on them
(`models.agreement`) before the version is registered.
"""

from __future__ import annotations

import io

import numpy as np

_OUTPUT = "probabilities"  # models.runtime.PROBABILITIES_OUTPUT


class NotTheNetworkChain(ValueError):
    """The graph is not exactly the chain the numpy forward pass runs."""


def network_weights(graph: bytes) -> bytes | None:
    """The network's constants as `.npz` bytes (float64 `shift`, `scale`,
    `weights_<i>`, `bias_<i>` per layer), or None when the graph is not
    exactly the skl2onnx MLP chain."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(graph)
        onnx.checker.check_model(model, full_check=True)
        arrays = chain_constants(model)
    except (NotTheNetworkChain, DecodeError, onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return None
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def chain_constants(model) -> dict[str, np.ndarray]:
    """{name: float64 array} of the chain's constants; raises NotTheNetworkChain."""
    from onnx import TensorProto

    graph = model.graph
    if len(graph.input) != 1 or _element_type(graph.input[0]) != TensorProto.DOUBLE \
            or [(output.name, _element_type(output)) for output in graph.output] != [(_OUTPUT, TensorProto.DOUBLE)]:
        raise NotTheNetworkChain("not one double input and the double probabilities")
    if graph.sparse_initializer:
        raise NotTheNetworkChain("sparse constants")
    defined = [graph.input[0].name, *(tensor.name for tensor in graph.initializer),
               *(name for node in graph.node for name in node.output)]
    if len(set(defined)) != len(defined):
        raise NotTheNetworkChain("a name defined twice")
    constants = {tensor.name: tensor for tensor in graph.initializer}
    nodes, flowing = list(graph.node), graph.input[0].name

    def step(op_type: str, constant: bool = False, attributes: dict | None = None):
        nonlocal flowing
        if not nodes:
            raise NotTheNetworkChain(f"the graph ends before {op_type}")
        node = nodes.pop(0)
        if node.op_type != op_type or node.domain not in ("", "ai.onnx") \
                or list(node.input[:1]) != [flowing] or len(node.input) != (2 if constant else 1) \
                or len(node.output) != 1 or _attributes(node) != (attributes or {}):
            raise NotTheNetworkChain(f"expected {op_type}, found {node.op_type}")
        flowing = node.output[0]
        return _double(constants, node.input[1]) if constant else None

    shift, scale = step("Sub", True), step("Div", True)
    step("Cast", attributes={"to": TensorProto.DOUBLE})
    layers = []
    while True:
        layers.append((step("MatMul", True), step("Add", True)))
        if not nodes or nodes[0].op_type != "Relu":
            break
        step("Relu")
    softmax = _attributes(nodes[0]) if nodes else {}
    if softmax not in ({}, {"axis": -1}, {"axis": 1}):  # over the classes of each row only
        raise NotTheNetworkChain("a softmax over another axis")
    step("Softmax", attributes=softmax)
    step("Identity")
    if nodes or flowing != _OUTPUT:
        raise NotTheNetworkChain("more than the chain")
    return _arrays(graph.input[0], shift, scale, layers)


def _arrays(source, shift, scale, layers) -> dict[str, np.ndarray]:
    """The constants under their .npz names, their shapes checked against the input's `[rows, features]`."""
    dims = source.type.tensor_type.shape.dim
    features = shift.shape[-1] if shift.ndim else 0
    if len(dims) != 2 or dims[0].HasField("dim_value") or dims[1].dim_value != features \
            or shift.shape != (features,) or scale.shape != (features,):
        raise NotTheNetworkChain("the scaler does not match the input's [rows, features]")
    arrays, width = {"shift": shift, "scale": scale}, features
    for index, (weights, bias) in enumerate(layers):
        if weights.ndim != 2 or weights.shape[0] != width or bias.shape not in ((weights.shape[1],),
                                                                             (1, weights.shape[1])):
            raise NotTheNetworkChain(f"layer {index}'s shapes")
        width = weights.shape[1]
        arrays[f"weights_{index}"], arrays[f"bias_{index}"] = weights, bias.reshape(width)
    return arrays


def _attributes(node) -> dict:
    """{name: integer} of a node's attributes; any attribute that is not one INT refuses."""
    from onnx import AttributeProto

    if any(attribute.type != AttributeProto.INT for attribute in node.attribute):
        raise NotTheNetworkChain(f"{node.op_type} has a non-integer attribute")
    return {attribute.name: attribute.i for attribute in node.attribute}


def _double(constants: dict, name: str) -> np.ndarray:
    """One float64 initializer stored in the file, its values in exactly one field."""
    from onnx import TensorProto, numpy_helper

    tensor = constants.get(name)
    if tensor is None or tensor.data_type != TensorProto.DOUBLE:
        raise NotTheNetworkChain(f"{name} is not a float64 constant")
    stored = [field.name for field, _ in tensor.ListFields()
              if field.name not in ("dims", "data_type", "name", "doc_string")]
    if stored not in (["raw_data"], ["double_data"]):
        raise NotTheNetworkChain(f"{name} is stored as {stored}")
    return np.asarray(numpy_helper.to_array(tensor), dtype=np.float64)


def _element_type(value_info) -> int:
    """The element type (a TensorProto type number) of a graph input or output."""
    return value_info.type.tensor_type.elem_type
