"""Inference as served, per family: what serving runs (the ONNX graph through
onnxruntime; the MLP's `.npz` of the graph's constants as numpy,
`models.network_forward`) against `Pipeline.predict_proba` (microseconds
for one row, as `/predict` asks, and per row in a batch of 1,000), the
threshold fuzz of `models.agreement` at its registration size (every split
threshold and its float32/float64 neighbours, the range ends, 200,000 random
rows), and the cost of getting ready in a fresh process: importing the
runtime and loading the artifact (onnxruntime + the graph, or numpy + the
MLP's `.npz`, against joblib + scikit-learn/XGBoost + the pickle).

Each family is trained with the project's `build_pipeline` on 20,000
synthetic rows, with the largest entry of its search space, and prepared for
serving as training prepares it (`for_serving`: one thread a prediction).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.preprocessing import LabelEncoder  # noqa: E402

from shared.models.agreement import RANDOM_ROWS, check_agreement  # noqa: E402
from shared.models.portable import PortableUnsupported, export_onnx, network_weights_of  # noqa: E402
from shared.models.runtime import served_predict_proba  # noqa: E402
from shared.training.candidates import SEARCH_SPACES, build_pipeline, for_serving, serialize  # noqa: E402
from shared.training.synthetic_data import generate_reference_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The costliest entry of each search space to serve: most trees, widest network.
PARAMS = {
    "xgboost": SEARCH_SPACES["xgboost"][1],  # 300 trees a class
    "random_forest": SEARCH_SPACES["random_forest"][2],  # 100 trees
    "mlp": SEARCH_SPACES["mlp"][1],  # 64 hidden units
    "hist_gradient_boosting": SEARCH_SPACES["hist_gradient_boosting"][1],  # 200 iterations
}
# A fresh interpreter: import what serving imports, load the artifact, answer one row.
_READY = {
    "onnx": "import time; t = time.perf_counter(); import numpy; from shared.models.runtime import onnx_predict_proba; "
            "f = onnx_predict_proba(open({path!r}, 'rb').read()); f(numpy.array([[36.0, 120.0, 90.0]])); "
            "print(time.perf_counter() - t)",
    "npz": "import time; t = time.perf_counter(); import numpy; from shared.models.network_forward import "
           "network_predict_proba; f = network_predict_proba(open({path!r}, 'rb').read()); "
           "f(numpy.array([[36.0, 120.0, 90.0]])); print(time.perf_counter() - t)",
    "pickle": "import time; t = time.perf_counter(); import io, joblib, numpy; "
              "p = joblib.load(io.BytesIO(open({path!r}, 'rb').read())); p.predict_proba(numpy.array([[36.0, 120.0, "
              "90.0]])); print(time.perf_counter() - t)",
}


def microseconds(function, rows, repeats: int) -> float:
    """Median of 5 timings of `repeats` calls, per call."""
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats):
            function(rows)
        timings.append((time.perf_counter() - started) / repeats * 1e6)
    return statistics.median(timings)


def ready_seconds(kind: str, artifact: bytes, runs: int = 3) -> float:
    """Median seconds from a fresh interpreter's first line to one answer."""
    with tempfile.NamedTemporaryFile(suffix=f".{kind}", delete=False) as file:
        file.write(artifact)
    try:
        timings = [float(subprocess.run([sys.executable, "-c", _READY[kind].format(path=file.name)], cwd=ROOT,
                                        env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                                        check=True).stdout) for _ in range(runs)]
    finally:
        os.unlink(file.name)
    return statistics.median(timings)


def serving_function(pipeline):
    """(what serving runs, its name, the graph or None, the MLP's weights or None)."""
    try:
        graph = export_onnx(pipeline)
    except PortableUnsupported:
        return pipeline.predict_proba, "pipeline", None, None
    weights = network_weights_of(pipeline, graph)
    served = served_predict_proba(graph, weights)
    return served, served.engine, graph, weights


def main(quick: bool = False) -> dict:
    X, labels = generate_reference_data(5_000 if quick else 20_000, seed=5)
    y = LabelEncoder().fit_transform(labels)
    one, batch = np.array([[36.0, 120.0, 90.0]]), X[:1000]
    results = {}
    for family, params in PARAMS.items():
        pipeline = for_serving(build_pipeline(family, params, seed=5).fit(X, y))
        served, served_by, graph, weights = serving_function(pipeline)
        repeats = 20 if family in ("random_forest", "hist_gradient_boosting") else 300
        row = {"served_by": served_by,
               "pipeline_one_row_us": round(microseconds(pipeline.predict_proba, one, repeats)),
               "served_one_row_us": round(microseconds(served, one, repeats)),
               "pipeline_per_row_in_1000_us": round(microseconds(pipeline.predict_proba, batch, 3) / 1000, 2),
               "served_per_row_in_1000_us": round(microseconds(served, batch, 3) / 1000, 2)}
        row["speedup_one_row"] = round(row["pipeline_one_row_us"] / row["served_one_row_us"], 1)
        if graph is not None:
            fuzz = check_agreement(pipeline, graph, weights=weights, random_rows=5_000 if quick else RANDOM_ROWS)
            row.update(fuzz_rows=fuzz["rows"], fuzz_threshold_values=fuzz["threshold_values"],
                       fuzz_decision_disagreements=fuzz["decision_disagreements"],
                       fuzz_max_probability_difference=fuzz["max_probability_difference"],
                       fuzz_seconds=fuzz["seconds"], graph_bytes=len(graph),
                       ready_served_s=round(ready_seconds("onnx", graph) if weights is None
                                            else ready_seconds("npz", weights), 3))
        row["ready_pickle_s"] = round(ready_seconds("pickle", serialize(pipeline)), 3)
        results[family] = row
        print(family, row, file=sys.stderr)
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
