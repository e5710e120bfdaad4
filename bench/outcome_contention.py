"""Concurrent `record_outcome` on one prediction id, on SQLite and on the
Firestore emulator: 64 calls from 32 threads, cycling through the labels.
Every call must end within STORE_TIMEOUT_SECONDS (5 s) with the record or a
503 (StoreUnavailable) -- never another error -- and `updated_at` must never
be before `recorded_at`. Before the fix, Firestore answered 63 of 64 with 500
after up to 50 s."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from shared.errors import StoreUnavailable
from shared.records import PredictionRecord
from shared.schema import LABELS
from shared.stores.predictions.ids import new_prediction_id
from tests import emulators

TIMEOUT_SECONDS = 5.0


def contend(store, calls: int, threads: int) -> dict:
    created = datetime.now(timezone.utc)
    record = PredictionRecord(new_prediction_id(created), created, 36.6, 80.0, 120.0, LABELS[0],
                              {label: 0.2 for label in LABELS}, "bench")
    store.save_predictions([record])
    outcomes, seconds, lock = {"ok": 0, "unavailable": 0, "other": 0}, [], threading.Lock()

    def call(index: int) -> None:
        started = time.monotonic()
        try:
            store.record_outcome(record.prediction_id, LABELS[index % len(LABELS)], datetime.now(timezone.utc))
            kind = "ok"
        except StoreUnavailable:
            kind = "unavailable"
        except Exception:  # noqa: BLE001 -- counted, that is the measurement
            kind = "other"
        with lock:
            outcomes[kind] += 1
            seconds.append(time.monotonic() - started)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, range(calls)))
    final = store.get_prediction(record.prediction_id)
    ordered = sorted(seconds)
    return {**outcomes, "p50_s": round(statistics.median(ordered), 3),
            "p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "max_s": round(ordered[-1], 3),
            "updated_not_before_recorded": final.outcome_updated_at >= final.outcome_recorded_at}


def main(quick: bool = False) -> dict:
    from shared.stores.predictions.firestore import FirestorePredictionStore
    from shared.stores.predictions.sqlite import SqlitePredictionStore
    from shared.stores.sqlite_database import SqliteDatabase

    calls, threads = (16, 8) if quick else (64, 32)
    results = {"calls": calls, "threads": threads, "store_timeout_s": TIMEOUT_SECONDS}
    with tempfile.TemporaryDirectory() as folder:
        database = SqliteDatabase(os.path.join(folder, "bench.sqlite3"), timeout_seconds=TIMEOUT_SECONDS)
        results["sqlite"] = contend(SqlitePredictionStore(database), calls, threads)
    firestore = emulators.start_firestore()
    try:
        os.environ.update(firestore.env)
        store = FirestorePredictionStore("demo-bench", timeout=TIMEOUT_SECONDS)
        results["firestore_emulator"] = contend(store, calls, threads)
    finally:
        firestore.stop()
    return results
