"""Issue 4's drift benchmark: the drift check over 100,000 and 1,000,000
logged predictions on SQLite, and 100,000 on the Firestore emulator -- wall
time and peak memory (max RSS of a fresh process per run) -- plus the
aggregation alone over 1,000,000 rows already in memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import numpy as np

from bench.serving import ROOT
from tests import emulators

CHILD = """
import json, time
from bench.memory import peak_rss_mb
from datetime import datetime, timedelta, timezone
from shared import wiring
from shared.monitoring.drift_check import run_drift_check
end = datetime.now(timezone.utc) + timedelta(minutes=1)
started = time.perf_counter()
report = run_drift_check(start=end - timedelta(days=2), end=end, **wiring.drift_check_dependencies())
print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "sample_size": report["sample_size"],
                  "decision": report["decision"],
                  "peak_rss_mb": peak_rss_mb()}))
"""


def fill(store, rows: int, batch: int) -> float:
    from shared.records import PredictionRecord
    from shared.stores.predictions.ids import new_prediction_id
    from shared.training.synthetic_data import generate_reference_data, label_by_rule

    X, _ = generate_reference_data(min(rows, 200_000), seed=9)
    labels = label_by_rule(X)
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    for offset in range(0, rows, batch):
        records = []
        for i in range(offset, min(rows, offset + batch)):
            row = X[i % len(X)]
            created = now - timedelta(seconds=i % 86_000)
            records.append(PredictionRecord(new_prediction_id(created), created, float(row[0]),
                                            float(row[1]), float(row[2]), labels[i % len(X)], {}, "bench"))
        store.save_predictions(records)
    return time.perf_counter() - started


def check(env: dict) -> dict:
    output = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def aggregation_only(baseline: dict, rows: int = 1_000_000, chunk: int = 5000) -> dict:
    from shared.monitoring.statistics import WindowAggregator
    from shared.records import WindowChunk

    rng = np.random.default_rng(0)
    chunks = [WindowChunk(rng.normal([36.8, 80, 120], [0.6, 12, 15], size=(chunk, 3)),
                          ["NO ENFERMO"] * chunk, [None] * chunk) for _ in range(rows // chunk)]
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        WindowAggregator(baseline).consume(iter(chunks))
        timings.append(time.perf_counter() - started)
    return {"rows": rows, "chunk_size": chunk, "median_seconds": round(float(np.median(timings)), 3)}


def main(quick: bool = False) -> dict:
    saved = dict(os.environ)
    try:
        return _run(quick)
    finally:  # the adapters read the environment: leave it as found for the next benchmark
        os.environ.clear()
        os.environ.update(saved)


def _run(quick: bool) -> dict:
    from shared import wiring
    from shared.models import registry
    from shared.training.runs import ensure_champion

    sizes = [10_000] if quick else [100_000, 1_000_000]
    results: dict = {"sqlite": {}, "firestore_emulator": {}}
    data_dir = tempfile.mkdtemp(prefix="bench-drift-")
    env = dict(os.environ, LOCAL_DATA_DIR=data_dir, OMP_NUM_THREADS="1", DRIFT_MIN_SAMPLES="1")
    os.environ.update({"LOCAL_DATA_DIR": data_dir})
    wiring.reset()
    ensure_champion(wiring.artifact_store(), wiring.metadata_store(), rows=5000, seed=1)
    store = wiring.artifact_store()
    baseline = registry.read_baseline(store, registry.read_champion(store)[0]["version"])
    results["aggregation_only"] = aggregation_only(baseline)
    filled = 0
    for rows in sizes:
        fill_seconds = fill(wiring.prediction_store(), rows - filled, 20_000)
        filled = rows
        # Measure the steady state: fold the bulk load's write-ahead log into the database first.
        wiring.prediction_store().database.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        results["sqlite"][str(rows)] = dict(check(env), fill_seconds=round(fill_seconds, 1))
        print("sqlite", rows, results["sqlite"][str(rows)], file=sys.stderr)
    firestore = emulators.start_firestore()
    try:
        fs_env = dict(env, PREDICTION_STORE="firestore", GOOGLE_CLOUD_PROJECT="demo-drift", **firestore.env)
        os.environ.update({k: fs_env[k] for k in ("PREDICTION_STORE", "GOOGLE_CLOUD_PROJECT",
                                                  "FIRESTORE_EMULATOR_HOST")})
        wiring.reset()
        rows = 10_000 if quick else 100_000
        fill_seconds = fill(wiring.prediction_store(), rows, 500)
        results["firestore_emulator"][str(rows)] = dict(check(fs_env), fill_seconds=round(fill_seconds, 1))
    finally:
        firestore.stop()
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
