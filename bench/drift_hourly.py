"""The drift check's cost against the day's traffic, on the Firestore emulator.

- The unit of work: one closed hour counted into the champion's bins and
  stored (`hourly_aggregates.hour_counts`), timed at two hour sizes, giving
  the cost per prediction and the fixed cost per unit.
- The nightly check: 24 stored units merged (no record read), timed on two
  days whose traffic differs tenfold.
- A projection from 100k to 10M predictions a day: the hourly unit grows with
  the hour's traffic (it runs once an hour, in its own invocation); the
  nightly check does not.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from tests import emulators

FUNCTION_TIMEOUT_SECONDS = 540  # the drift-check function's (infra/functions.tf)
OUTCOME_EVERY = 20  # one prediction in 20 gets a clinician's label


def fill_hour(store, hour: datetime, rows: int, seed: int) -> None:
    from shared.records import PredictionRecord
    from shared.stores.predictions.ids import new_prediction_id
    from shared.training.synthetic_data import generate_reference_data, label_by_rule

    X, _ = generate_reference_data(rows, seed=seed)
    labels = label_by_rule(X)
    times = [hour + timedelta(seconds=3599 * i / rows) for i in range(rows)]
    records = [PredictionRecord(new_prediction_id(times[i]), times[i], *X[i].tolist(), labels[i], {}, "bench")
               for i in range(rows)]
    for offset in range(0, rows, 500):
        store.save_predictions(records[offset:offset + 500])
    for record in records[::OUTCOME_EVERY]:
        store.record_outcome(record.prediction_id, record.prediction, record.created_at)


def main(quick: bool = False) -> dict:
    saved = dict(os.environ)
    firestore = emulators.start_firestore()
    try:
        os.environ.update({"LOCAL_DATA_DIR": tempfile.mkdtemp(prefix="bench-drift-hourly-"), "OMP_NUM_THREADS": "1",
                           "PREDICTION_STORE": "firestore", "GOOGLE_CLOUD_PROJECT": "demo-drift-hourly",
                           "DRIFT_MIN_SAMPLES": "1", **firestore.env})
        return _run(quick)
    finally:
        firestore.stop()
        os.environ.clear()
        os.environ.update(saved)


def _run(quick: bool) -> dict:
    from shared import wiring
    from shared.event_bus.local import LocalEventBus
    from shared.models import registry
    from shared.monitoring import hourly_aggregates
    from shared.monitoring.drift_check import run_hourly_drift_check
    from shared.training.runs import ensure_champion

    wiring.reset()
    artifacts, metadata, store = wiring.artifact_store(), wiring.metadata_store(), wiring.prediction_store()
    ensure_champion(artifacts, metadata, rows=5000, seed=1)
    champion = registry.read_champion(artifacts)[0]["version"]
    baseline = registry.read_baseline(artifacts, champion)
    now = hourly_aggregates.floor_hour(datetime.now(timezone.utc)) + timedelta(minutes=30)
    results: dict = {"store": "Firestore emulator", "unit": {}, "nightly": {}}

    unit_sizes = [1_000, 4_000] if quick else [5_000, 20_000]
    for index, rows in enumerate(unit_sizes):
        hour = hourly_aggregates.floor_hour(now) - timedelta(days=10 + index)
        fill_hour(store, hour, rows, seed=index)
        started = time.perf_counter()
        counts = hourly_aggregates.hour_counts(hour, champion=champion, baseline=baseline, predictions=store,
                                               metadata=metadata, now=now)
        results["unit"][str(rows)] = {"rows": counts["rows"], "seconds": round(time.perf_counter() - started, 2)}
        print("unit", rows, results["unit"][str(rows)], file=sys.stderr, flush=True)
    (small, large) = (results["unit"][str(size)] for size in unit_sizes)
    per_record = (large["seconds"] - small["seconds"]) / (unit_sizes[1] - unit_sizes[0])
    fixed = max(0.0, small["seconds"] - per_record * unit_sizes[0])

    day_sizes = [50, 500] if quick else [200, 2_000]  # predictions per hour
    for index, per_hour in enumerate(day_sizes):
        end = hourly_aggregates.floor_hour(now) - timedelta(days=2 + 3 * index)
        for hour in hourly_aggregates.hours_between(end - timedelta(hours=24), end):
            fill_hour(store, hour, per_hour, seed=100 + hour.hour)
            hourly_aggregates.hour_counts(hour, champion=champion, baseline=baseline, predictions=store,
                                          metadata=metadata, now=now)
        started = time.perf_counter()
        report = run_hourly_drift_check(end=end + hourly_aggregates.CLOSE_GRACE, hours=24, predictions=store,
                                        artifacts=artifacts, metadata=metadata, bus=LocalEventBus(),
                                        settings=wiring.settings(), now=now)
        results["nightly"][str(24 * per_hour)] = {
            "predictions": report["sample_size"], "outcomes": report["performance"]["outcomes"],
            "seconds": round(time.perf_counter() - started, 2)}
        print("nightly", per_hour, results["nightly"][str(24 * per_hour)], file=sys.stderr, flush=True)

    nightly_merge = max(day["seconds"] for day in results["nightly"].values())
    results["per_record_seconds"] = round(per_record, 6)
    results["unit_fixed_seconds"] = round(fixed, 2)
    results["projection"] = {}
    for per_day in (100_000, 1_000_000, 10_000_000):
        hour_records = per_day / 24 * (1 + 1 / OUTCOME_EVERY)  # its predictions and its outcomes
        results["projection"][f"{per_day:,}"] = {
            "hourly_unit_seconds": round(fixed + per_record * hour_records, 1),
            "nightly_check_seconds": nightly_merge,
            "old_single_pass_seconds": round(fixed + per_record * per_day, 1),
            "function_timeout_seconds": FUNCTION_TIMEOUT_SECONDS,
        }
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
