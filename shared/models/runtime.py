"""Probabilities from a model's portable artifacts: the ONNX graph through
onnxruntime, or, for the network (MLP) family, the `.npz` of its constants
through numpy (`models.network_forward`).

The serving side of `models.portable`: it imports numpy and onnxruntime only
(no scikit-learn, SciPy or XGBoost, ~0.1 s instead of ~0.7 s at a cold start;
an MLP served from its `.npz` does not import onnxruntime either) and reads
formats that cannot run code. The graph's input type says what the pipeline
compares: float32 for XGBoost and the forest (rows are cast here exactly as
their trees cast them), float64 for HistGradientBoosting and the network.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PROBABILITIES_OUTPUT = "probabilities"
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def served_predict_proba(graph: bytes, weights: bytes | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """What serves a portable version, and what the agreement fuzz certifies:
    the network's `.npz` as numpy when there is one and it reads, else the
    graph on onnxruntime. The function's `.engine` says which ("numpy" or
    "onnxruntime").

    Why numpy for the network: onnxruntime's run was ~60 µs of the ~310 µs of
    CPU a one-connection request costs (its C++ path cold between requests;
    `bench/serving_profile.py`), numpy's a few µs.
    """
    if weights is not None:
        from shared.models.network_forward import network_predict_proba

        try:
            return network_predict_proba(weights)
        except ValueError:  # not readable as the network's arrays: the graph, also certified, serves
            pass
    return onnx_predict_proba(graph)


def onnx_predict_proba(graph: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """A function rows -> probabilities (float64, rows x classes) for one graph,
    on onnxruntime with one intra-op thread: an instance serves many small
    requests at once, and a thread pool per request would only contend for the
    same cores.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
    source = session.get_inputs()[0]
    dtype = _DTYPES.get(source.type)
    if dtype is None:
        raise ValueError(f"the graph's input type {source.type} is not one this runtime feeds")
    input_name, outputs, run = source.name, [PROBABILITIES_OUTPUT], session.run

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        return run(outputs, {input_name: np.asarray(rows, dtype=dtype)})[0].astype(np.float64)

    predict_proba.engine = "onnxruntime"
    return predict_proba
