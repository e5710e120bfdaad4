"""The console's pages stay fast however much the stores hold: every read is
paged and capped, so a page's time depends on its page size, not on the
number of predictions, reports or versions kept.

Each page is rendered (query + template, no HTTP) against a SQLite store and
a local artifact folder holding N predictions (a third with an outcome),
300 drift reports, 100 training runs and 60 model versions; the median of
7 renders is reported for each N.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shared.console.pages import render_page
from shared.models.layout import CHAMPION_POINTER
from shared.records import PredictionRecord
from shared.schema import LABELS
from shared.stores.artifacts.local import LocalArtifactStore
from shared.stores.metadata.port import CHAMPION_HISTORY, DRIFT_REPORTS, EXPERIMENTS
from shared.stores.metadata.sqlite import SqliteMetadataStore
from shared.stores.predictions.ids import new_prediction_id
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.sqlite_database import SqliteDatabase

PAGES = ["/", "/models", "/experiments", "/drift-reports", "/predictions",
         "/predictions?label=ENFERMEDAD TERMINAL", "/predictions?version=v-none"]
RUNS = 7


def fill(folder: Path, predictions: int) -> dict:
    database = SqliteDatabase(folder / "mlops.sqlite3")
    stores = {"artifacts": LocalArtifactStore(folder / "artifacts"), "metadata": SqliteMetadataStore(database),
              "predictions": SqlitePredictionStore(database)}
    now = datetime.now(timezone.utc)
    batch = []
    for index in range(predictions):
        label = LABELS[index % len(LABELS)]
        batch.append(PredictionRecord(
            prediction_id=new_prediction_id(now - timedelta(seconds=30 * index)),
            created_at=now - timedelta(seconds=30 * index),
            temperature=37.0, heart_rate=80.0, blood_pressure=120.0, prediction=label,
            probabilities={label: 0.9}, model_version=f"v{index % 3}",
            outcome_label=label if index % 3 == 0 else None,
            outcome_recorded_at=now if index % 3 == 0 else None, outcome_updated_at=now if index % 3 == 0 else None))
        if len(batch) == 5000:
            stores["predictions"].save_predictions(batch)
            batch = []
    if batch:
        stores["predictions"].save_predictions(batch)
    for index in range(60):
        version = f"2026{index:04d}T000000Z-v{index}"
        stores["artifacts"].write_bytes(f"models/{version}/manifest.json", json.dumps({
            "version": version, "created_at": (now - timedelta(days=60 - index)).isoformat(),
            "metrics": {"macro_f1": 0.9}, "training_parameters": {"family": "xgboost"}}).encode())
    stores["artifacts"].write_bytes(CHAMPION_POINTER, json.dumps({
        "version": version, "previous_version": None, "updated_at": now.isoformat(), "reason": "bench",
        "actor": "bench"}).encode())
    for index in range(300):
        created = (now - timedelta(days=index)).isoformat()
        stores["metadata"].put(DRIFT_REPORTS, f"r{index}", {
            "report_id": f"r{index}", "created_at": created, "window_end": created, "decision": "ok",
            "reasons": [], "sample_size": 1000, "performance": {"outcomes": 300, "macro_f1": 0.9}, "html": "x"})
    for index in range(100):
        stores["metadata"].put(EXPERIMENTS, f"e{index}", {
            "run_id": f"e{index}", "created_at": (now - timedelta(days=index)).isoformat(), "actor": "bench",
            "winner": {"family": "xgboost", "version": f"2026{index:04d}T000000Z-v{index}"},
            "promotion": {"promote": True, "promoted": True, "reasons": ["bench"]},
            "candidates": [{"family": "xgboost", "holdout": {"macro_f1": 0.9}}] * 4})
        stores["metadata"].put(CHAMPION_HISTORY, f"h{index}", {
            "created_at": (now - timedelta(days=index)).isoformat(), "to_version": f"v{index}", "reason": "bench"})
    return stores


def time_pages(stores: dict) -> dict[str, float]:
    medians = {}
    for page in PAGES:
        path, _, query = page.partition("?")
        arguments = dict([query.split("=", 1)]) if query else {}
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            status, _, _ = render_page(path, arguments, root="", **stores)
            timings.append(time.perf_counter() - started)
            assert status == 200
        medians[page] = round(statistics.median(timings) * 1000, 1)
    return medians


def main(quick: bool = False) -> dict:
    sizes = [2_000, 20_000] if quick else [10_000, 100_000, 400_000]
    result = {"runs_per_page": RUNS, "median_ms_by_predictions": {}}
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            stores = fill(Path(folder), size)
            result["median_ms_by_predictions"][str(size)] = time_pages(stores)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
