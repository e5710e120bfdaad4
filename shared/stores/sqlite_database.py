"""One SQLite file per local data folder, one connection per thread.

WAL mode lets the server's worker processes read while one writes; the busy
timeout makes concurrent writers wait instead of failing.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    created_us INTEGER NOT NULL,
    temperature REAL NOT NULL,
    heart_rate REAL NOT NULL,
    blood_pressure REAL NOT NULL,
    prediction TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    model_version TEXT NOT NULL,
    outcome_label TEXT,
    outcome_recorded_us INTEGER,
    outcome_updated_us INTEGER
);
CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (created_us, prediction_id);
CREATE INDEX IF NOT EXISTS predictions_by_outcome_time ON predictions (outcome_recorded_us)
    WHERE outcome_recorded_us IS NOT NULL;
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS documents_by_time ON documents (collection, created_us);
"""


class SqliteDatabase:
    def __init__(self, path: str | Path, timeout_seconds: float = 5.0):
        self.path = Path(path)
        self.timeout_seconds = timeout_seconds
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.timeout_seconds, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            with self._schema_lock:
                if not self._schema_ready:
                    connection.executescript(_SCHEMA)
                    self._schema_ready = True
            self._local.connection = connection
        return connection
