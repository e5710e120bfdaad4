"""A candidate's serving cost, timed as it is served.

Serving runs the version's ONNX graph through onnxruntime when the export
exists (`models.portable`, `models.runtime`), else its scikit-learn pipeline;
the cost of a prediction differs between the two by up to an order of
magnitude, and a tie between candidates goes to the cheaper to serve. So each
candidate is timed on its exported graph (calibration and decision weights
applied, as `models.loading` applies them), and on its pipeline only when it
has no export -- the record says which, and why.

The export here is the plain conversion, not the agreement fuzz the registry
runs before a version is registered as portable (`portable.export_checked`):
that check decides what is served; this one only prices it.
"""

from __future__ import annotations

import numpy as np

from shared.errors import TrainingDeadlineExceeded
from shared.training.search import single_row_latency_ms


def served_latency_ms(pipeline, labels: list[str], rule: dict, row: np.ndarray) -> tuple[float, dict]:
    """(median single-row time in ms, {"timed_on": "onnx" | "pipeline", ...})."""
    from shared.models.loading import calibrate, decide
    from shared.training.evaluation import predict_labels

    names = np.asarray(labels, dtype=object)
    try:
        from shared.models.portable import export_onnx
        from shared.models.runtime import onnx_predict_proba

        probabilities = onnx_predict_proba(export_onnx(pipeline))
    except TrainingDeadlineExceeded:  # the job's alarm went off during the export: it stops the training
        raise
    except Exception as error:  # noqa: BLE001 -- no export (or no runtime): it is served from its pipeline
        latency = single_row_latency_ms(lambda one: predict_labels(pipeline, one, labels, rule), row)
        return latency, {"timed_on": "pipeline", "reason": f"{type(error).__name__}: {error}"[:300]}
    calibration, weights = rule.get("calibration"), rule.get("decision_weights")
    latency = single_row_latency_ms(lambda one: names[decide(calibrate(probabilities(one), calibration), weights)],
                                    row)
    return latency, {"timed_on": "onnx"}
