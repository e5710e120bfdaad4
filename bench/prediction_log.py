"""What one logged prediction costs the SQLite store: WAL bytes a one-record
commit writes, and the commit's time in place (one process, no contention),
for the layout new databases get and for the previous release's (a random
TEXT primary key with its own index, a time index beside it, 4 KB pages),
which databases made before keep.

The WAL bytes are what matters under load: each checkpoint fsyncs them, and a
worker's WAL write waits while the WAL is being synced. Checkpoints are off
while measuring (the WAL only grows), so the figure is exact.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shared.records import PredictionRecord
from shared.schema import LABELS
from shared.stores.predictions.ids import new_prediction_id
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.sqlite_database import SqliteDatabase

# The table as releases before the (time, id) layout created it: one copy, shared with the tests.
_PREVIOUS_RELEASE_SQL = Path(__file__).parents[1] / "tests" / "data" / "previous_release_predictions.sql"
PREVIOUS_RELEASE_SCHEMA = "PRAGMA page_size=4096;\nPRAGMA journal_mode=WAL;\n" + _PREVIOUS_RELEASE_SQL.read_text()


def _record(at: datetime, previous: bool) -> PredictionRecord:
    probabilities = {label: round(1 / len(LABELS), 6) for label in LABELS}
    prediction_id = uuid.uuid4().hex if previous else new_prediction_id(at)
    return PredictionRecord(prediction_id, at, 36.6, 80.0, 120.0, LABELS[0], probabilities, "20261205T115432Z-814c73")


def measure(layout: str, rows: int, commits: int) -> dict:
    previous = layout == "previous release"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.sqlite3"
        if previous:
            sqlite3.connect(path, isolation_level=None).executescript(PREVIOUS_RELEASE_SCHEMA)
        database = SqliteDatabase(path, checkpoint_interval_seconds=3600)
        store = SqlitePredictionStore(database)
        start = datetime.now(timezone.utc) - timedelta(days=30)
        for first in range(0, rows, 1000):
            store.save_predictions([_record(start + timedelta(seconds=i), previous)
                                    for i in range(first, min(rows, first + 1000))])
        database.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wal = path.with_name(path.name + "-wal")
        before, seconds = wal.stat().st_size, []
        for _ in range(commits):
            record = _record(datetime.now(timezone.utc), previous)
            started = time.perf_counter()
            assert store.save_predictions_nowait([record])
            seconds.append(time.perf_counter() - started)
        written = wal.stat().st_size - before
        page_size = database.connection().execute("PRAGMA page_size").fetchone()[0]
        ordered = sorted(seconds)
        return {"page_size": page_size, "wal_bytes_per_commit": round(written / commits),
                "wal_frames_per_commit": round(written / commits / (page_size + 24), 2),
                "commit_p50_us": round(statistics.median(ordered) * 1e6, 1),
                "commit_p99_us": round(ordered[int(0.99 * len(ordered))] * 1e6, 1),
                "database_mb": round(path.stat().st_size / 1e6, 1)}


def main(quick: bool = False) -> dict:
    rows, commits = (10_000, 300) if quick else (100_000, 2_000)
    return {"prefilled_rows": rows, "commits": commits,
            **{layout: measure(layout, rows, commits) for layout in ("current", "previous release")}}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
