"""Inference cost of one served model, per family: `Pipeline.predict_proba`
against the direct path `shared/models/inference.py` keeps after checking it
(microseconds for one row, as `/predict` asks, and per row in a batch of
1,000, as a drift check or a batch request asks).

Each family is trained with the project's `build_pipeline` on 20,000
synthetic rows, with the largest entry of its search space, and prepared for
serving as training prepares it (`for_serving`: one thread a prediction).
The largest difference from the pipeline is taken over 1,000 rows answered
whole and 8 at a time (the walk HistGradientBoosting uses for small batches).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.preprocessing import LabelEncoder  # noqa: E402

from shared.models.inference import direct_predict_proba, largest_difference  # noqa: E402
from shared.training.candidates import SEARCH_SPACES, build_pipeline, for_serving  # noqa: E402
from shared.training.synthetic_data import generate_reference_data  # noqa: E402

# The costliest entry of each search space to serve: most trees, widest network.
PARAMS = {
    "xgboost": SEARCH_SPACES["xgboost"][1],  # 300 trees a class
    "random_forest": SEARCH_SPACES["random_forest"][2],  # 100 trees
    "mlp": SEARCH_SPACES["mlp"][1],  # 64 hidden units
    "hist_gradient_boosting": SEARCH_SPACES["hist_gradient_boosting"][1],  # 200 iterations
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


def main(quick: bool = False) -> dict:
    X, labels = generate_reference_data(5_000 if quick else 20_000, seed=5)
    y = LabelEncoder().fit_transform(labels)
    one, batch = np.array([[36.0, 120.0, 90.0]]), X[:1000]
    results = {}
    for family, params in PARAMS.items():
        pipeline = for_serving(build_pipeline(family, params, seed=5).fit(X, y))
        started = time.perf_counter()
        direct = direct_predict_proba(pipeline)
        build_ms = (time.perf_counter() - started) * 1000
        slow = family in ("random_forest", "hist_gradient_boosting")
        repeats = 20 if slow else 300
        row = {"direct_path": direct != pipeline.predict_proba, "build_and_check_ms": round(build_ms, 1),
               "pipeline_one_row_us": round(microseconds(pipeline.predict_proba, one, repeats)),
               "direct_one_row_us": round(microseconds(direct, one, repeats)),
               "pipeline_per_row_in_1000_us": round(microseconds(pipeline.predict_proba, batch, 3) / 1000, 2),
               "direct_per_row_in_1000_us": round(microseconds(direct, batch, 3) / 1000, 2),
               "max_difference": largest_difference(direct, pipeline.predict_proba, batch)}
        row["speedup_one_row"] = round(row["pipeline_one_row_us"] / row["direct_one_row_us"], 1)
        results[family] = row
        print(family, row, file=sys.stderr)
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
