"""The network (MLP) family's forward pass in numpy, from the `.npz` of its
constants that export wrote beside the graph (`models.network_weights`).

Serving side: numpy only. The file is read with `allow_pickle=False` (no
object arrays, so nothing in it can run code), and only after its sha256
matched the manifest (`models.loading`). The arithmetic is the graph's, in
its order and in float64 as onnxruntime runs it: scale, then per layer a
matrix product, the bias and Relu (the last layer without), then a softmax
over each row's classes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import numpy as np


def network_predict_proba(weights: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """rows -> probabilities (float64, rows x classes).

    Raises:
        ValueError: not an .npz of exactly `shift`, `scale` and
            `weights_<i>`/`bias_<i>` float64 arrays of matching shapes.
    """
    try:
        with np.load(io.BytesIO(weights), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:  # not a zip of .npy files
        raise ValueError(f"not an .npz of arrays: {type(error).__name__}: {error}") from None
    shift, scale, layers = _checked(arrays)

    def predict_proba(rows) -> np.ndarray:
        values = (np.asarray(rows, dtype=np.float64) - shift) / scale
        for weights_, bias in layers[:-1]:
            values = values @ weights_
            values += bias
            np.maximum(values, 0.0, out=values)
        last_weights, last_bias = layers[-1]
        values = values @ last_weights
        values += last_bias
        values -= np.maximum.reduce(values, axis=1, keepdims=True)
        np.exp(values, out=values)
        values /= np.add.reduce(values, axis=1, keepdims=True)
        return values

    predict_proba.engine = "numpy"
    return predict_proba


def _checked(arrays: dict[str, np.ndarray]):
    """(shift, scale, [(weights, bias), ...]) after checking names, dtypes and shapes."""
    count = (len(arrays) - 2) // 2
    expected = {"shift", "scale", *(f"{kind}_{index}" for index in range(count) for kind in ("weights", "bias"))}
    if count < 1 or set(arrays) != expected:
        raise ValueError(f"unexpected arrays {sorted(arrays)}")
    if any(array.dtype != np.float64 for array in arrays.values()):
        raise ValueError("every array must be float64")
    shift, scale = arrays["shift"], arrays["scale"]
    width = shift.shape[0] if shift.ndim == 1 else -1
    if width < 1 or scale.shape != (width,):
        raise ValueError("the scaler's shapes")
    layers = []
    for index in range(count):
        weights, bias = arrays[f"weights_{index}"], arrays[f"bias_{index}"]
        if weights.ndim != 2 or weights.shape[0] != width or bias.shape != (weights.shape[1],):
            raise ValueError(f"layer {index}'s shapes")
        width = weights.shape[1]
        layers.append((weights, bias))
    return shift, scale, layers
