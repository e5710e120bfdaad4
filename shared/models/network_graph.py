"""The network (MLP) family's forward pass in numpy, read from its ONNX graph.

Why a direct path for this one family: at one connection onnxruntime's run
was the largest piece of a `predict` request, ~60 µs of CPU out of ~310
(in-process, requests spaced as a client's round trips: its C++ path is cold
by the next request; `bench/serving_profile.py`), for three small matrix
products numpy does in a few µs. The tree families stay on onnxruntime.

What is read is the graph itself, whose bytes the manifest's sha256 covers
and which the agreement fuzz runs through this same function
(`models.runtime.onnx_predict_proba`), so what serves is what was certified.
Only the exact chain skl2onnx writes for a scaled MLPClassifier is accepted:
Sub, Div, Cast to double, then (MatMul, Add, Relu) per hidden layer, MatMul,
Add, Softmax over the classes, Identity into `probabilities`, every constant
a float64 initializer stored in the file; any other graph returns None and
runs on onnxruntime. A protobuf is data, not code, and it is parsed here in
a few lines: `import onnx` would add 0.5-0.7 s to a cold start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_DOUBLE = 11  # onnx.TensorProto.DOUBLE
_OUTPUT = "probabilities"  # models.runtime.PROBABILITIES_OUTPUT (not imported: runtime imports this module)


def network_predict_proba(graph: bytes) -> Callable[[np.ndarray], np.ndarray] | None:
    """rows -> probabilities (float64, rows x classes) for an MLP graph, else None."""
    try:
        return _forward(*_read_chain(memoryview(graph)))
    except (ValueError, IndexError, KeyError):  # not the chain, or not a protobuf this reader knows
        return None


def _read_chain(model: memoryview):
    graph = _one(model, 7)  # ModelProto.graph
    fields = list(_fields(graph))
    nodes = [_node(value) for number, _, value in fields if number == 1]
    constants = dict(_initializer(value) for number, _, value in fields if number == 5)
    inputs = [_value_info(value) for number, _, value in fields if number == 11]
    outputs = [_value_info(value)[0] for number, _, value in fields if number == 12]
    if len(inputs) != 1 or inputs[0][1] != _DOUBLE or outputs != [_OUTPUT]:
        raise ValueError("not one double input and the probabilities")
    flowing = inputs[0][0]

    def step(op_type: str, constant: bool = False, attributes: dict | None = None):
        nonlocal flowing
        node = nodes.pop(0)
        expected_inputs = 2 if constant else 1
        if node["op"] != op_type or len(node["inputs"]) != expected_inputs or node["inputs"][0] != flowing \
                or len(node["outputs"]) != 1 or node["attributes"] != (attributes or {}) or node["domain"]:
            raise ValueError(f"expected {op_type}")
        flowing = node["outputs"][0]
        return constants[node["inputs"][1]] if constant else None

    shift, scale = step("Sub", True), step("Div", True)
    step("Cast", attributes={"to": _DOUBLE})
    layers = []
    while True:
        layers.append((step("MatMul", True), step("Add", True)))
        if nodes[0]["op"] != "Relu":
            break
        step("Relu")
    softmax_attributes = nodes[0]["attributes"]
    if softmax_attributes not in ({}, {"axis": -1}, {"axis": 1}):  # over the classes of each row only
        raise ValueError("a softmax over another axis")
    step("Softmax", attributes=softmax_attributes)
    step("Identity")
    if nodes or flowing != _OUTPUT:
        raise ValueError("more than the chain")
    return shift, scale, layers


def _forward(shift: np.ndarray, scale: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]):
    features = shift.shape[-1]
    if shift.shape != (features,) or scale.shape != (features,):
        raise ValueError("scaler shapes")
    width = features
    for weights, bias in layers:
        if weights.ndim != 2 or weights.shape[0] != width or bias.shape not in ((weights.shape[1],),
                                                                             (1, weights.shape[1])):
            raise ValueError("layer shapes")
        width = weights.shape[1]
    hidden, (last_weights, last_bias) = layers[:-1], layers[-1]

    def predict_proba(rows) -> np.ndarray:
        # The graph's operations in its order, in float64 as onnxruntime runs them.
        values = (np.asarray(rows, dtype=np.float64) - shift) / scale
        for weights, bias in hidden:
            values = values @ weights
            values += bias
            np.maximum(values, 0.0, out=values)
        values = values @ last_weights
        values += last_bias
        values -= np.maximum.reduce(values, axis=1, keepdims=True)
        np.exp(values, out=values)
        values /= np.add.reduce(values, axis=1, keepdims=True)
        return values

    predict_proba.engine = "numpy"
    return predict_proba


# --- a protobuf reader for the few messages above (wire format: varint keys, length-delimited fields) ---

def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: memoryview):
    """(field number, wire type, value): an int for a varint, a memoryview for the rest."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire in (1, 2, 5):
            if wire == 2:
                length, position = _varint(data, position)
            else:
                length = 8 if wire == 1 else 4
            if position + length > end:
                raise ValueError("truncated field")
            value, position = data[position:position + length], position + length
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def _one(data: memoryview, number: int) -> memoryview:
    found = [value for field, wire, value in _fields(data) if field == number and wire == 2]
    if len(found) != 1:
        raise ValueError(f"field {number}")
    return found[0]


def _text(value) -> str:
    return bytes(value).decode("utf-8")


def _node(data: memoryview) -> dict:
    node = {"inputs": [], "outputs": [], "op": "", "domain": "", "attributes": {}}
    for number, _, value in _fields(data):
        if number == 1:
            node["inputs"].append(_text(value))
        elif number == 2:
            node["outputs"].append(_text(value))
        elif number == 4:
            node["op"] = _text(value)
        elif number == 7:
            node["domain"] = _text(value)
        elif number == 5:
            attribute = {field: value for field, _, value in _fields(value)}
            if set(attribute) - {1, 3, 20}:  # only a name, an integer and its type: anything else refuses
                raise ValueError("an attribute this reader does not know")
            integer = attribute.get(3, 0)
            node["attributes"][_text(attribute[1])] = integer - (1 << 64) if integer >= 1 << 63 else integer
    return node


def _initializer(data: memoryview) -> tuple[str, np.ndarray]:
    dims, name, data_type, values = [], None, None, None
    for number, wire, value in _fields(data):
        if number == 1:  # dims: packed or one by one
            dims.extend(_packed_varints(value) if wire == 2 else [value])
        elif number == 2:
            data_type = value
        elif number == 8:
            name = _text(value)
        elif number == 10 and wire == 2:  # double_data, packed
            values = np.frombuffer(bytes(value), dtype="<f8")
        elif number == 9:  # raw_data
            values = np.frombuffer(bytes(value), dtype="<f8")
        elif number in (4, 5, 6, 7, 10, 11, 13, 14):  # other data fields, external data: not this chain
            raise ValueError("a constant stored another way")
    if name is None or data_type != _DOUBLE or values is None or values.size != int(np.prod(dims)):
        raise ValueError("not a float64 constant")
    return name, values.astype(np.float64).reshape(dims)


def _packed_varints(data: memoryview) -> list[int]:
    numbers, position = [], 0
    while position < len(data):
        number, position = _varint(data, position)
        numbers.append(number)
    return numbers


def _value_info(data: memoryview) -> tuple[str, int | None]:
    """(name, element type) of a graph input or output."""
    name, element_type = None, None
    for number, _, value in _fields(data):
        if number == 1:
            name = _text(value)
        elif number == 2:  # TypeProto.tensor_type.elem_type
            tensor = [field_value for field, _, field_value in _fields(value) if field == 1]
            if tensor:
                element_type = next((v for field, _, v in _fields(tensor[0]) if field == 1), None)
    if name is None:
        raise ValueError("unnamed value")
    return name, element_type
