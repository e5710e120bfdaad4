"""Probabilities from a model's ONNX graph, through onnxruntime.

The serving side of `models.portable`: it imports numpy and onnxruntime only
(no scikit-learn, SciPy or XGBoost, ~0.1 s instead of ~0.7 s at a cold start)
and reads a format that cannot run code. The graph's input type says what the
pipeline compares: float32 for XGBoost and the forest (rows are cast here
exactly as their trees cast them), float64 for HistGradientBoosting and the
network.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PROBABILITIES_OUTPUT = "probabilities"
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def onnx_predict_proba(graph: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """A function rows -> probabilities (float64, rows x classes) for one graph.

    A network (MLP) graph runs as numpy (`models.network_graph`: measured, the
    largest piece of a one-connection request on onnxruntime); every other graph
    on onnxruntime, with one intra-op thread: an instance serves many small
    requests at once, and a thread pool per request would only contend for the
    same cores.
    """
    from shared.models.network_graph import network_predict_proba

    direct = network_predict_proba(graph)
    if direct is not None:
        return direct
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
