"""A candidate's serving cost, timed as it is served.

Serving runs the version's ONNX graph through onnxruntime (an MLP's constants
through numpy) when the export exists (`models.portable`, `models.runtime`),
else its scikit-learn pipeline;
the cost of a prediction differs between the two by up to an order of
magnitude, and a tie between candidates goes to the cheaper to serve. So each
candidate is timed through `models.loading.LoadedModel` -- the code that
serves, calibration and decision weights included -- on its exported graph,
and on its pipeline only when it has no export; the record says which, and why.

The export here is the plain conversion, not the agreement fuzz the registry
runs before a version is registered as portable (`portable.export_checked`):
that check decides what is served; this one only prices it. The graph is
returned, so the winner's registration fuzzes it instead of converting again.
"""

from __future__ import annotations

import numpy as np

from shared.errors import TrainingDeadlineExceeded
from shared.training.search import single_row_latency_ms


def served_latency_ms(pipeline, labels: list[str], rule: dict,
                      row: np.ndarray) -> tuple[float, dict, bytes | None]:
    """(median single-row time in ms, {"timed_on": "onnx" | "pipeline", ...}, the graph or None)."""
    from shared.models.loading import LoadedModel

    try:
        from shared.models.portable import export_onnx, network_weights_of
        from shared.models.runtime import served_predict_proba

        graph = export_onnx(pipeline)
        probabilities, cost = served_predict_proba(graph, network_weights_of(pipeline, graph)), {"timed_on": "onnx"}
    except TrainingDeadlineExceeded:  # the job's alarm went off during the export: it stops the training
        raise
    except Exception as error:  # noqa: BLE001 -- no export (or no runtime): it is served from its pipeline
        graph, probabilities = None, pipeline.predict_proba
        cost = {"timed_on": "pipeline", "reason": f"{type(error).__name__}: {error}"[:300]}
    model = LoadedModel(version="candidate", pipeline=None, manifest={**rule, "labels": list(labels)},
                        pipeline_proba=probabilities)
    return single_row_latency_ms(model.predict_labels, row), cost, graph
