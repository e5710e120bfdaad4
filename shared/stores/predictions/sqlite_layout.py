"""The prediction log's table on SQLite, as new databases get it.

One B-tree in (time, id) order: a commit appends to its last leaf page, where
the previous layout (`prediction_id TEXT PRIMARY KEY`, a random id's index of
its own, plus a time index) made each one-row commit write ~3.6 pages of WAL,
one of them a random page the checkpoint then copies back
(bench/prediction_log.py: 15.2 KB against 5.3 KB a commit at 2 KB pages).
Ids the service issues carry their time (`ids.new_prediction_id`), so the key
finds them; other ids (older releases', imports') are the only rows in
`predictions_by_other_id`.

An id stays unique as it was under the previous layout: a time-carrying id must
carry its own row's time (the CHECK), so the key holds it once; every other id
is held once by the UNIQUE partial index. A database made before keeps its
table (both layouts answer the same SQL); `tools.cli upgrade-prediction-log`
rebuilds it into this one.

The lookup in `predictions/sqlite.py` repeats `NOT_TIME_KEYED` word for word:
SQLite uses a partial index only for a query that repeats its WHERE term.

A previous release opening a file of this layout adds its own
`predictions_by_time` index (a copy of this table's key): harmless, but every
commit then maintains it; `sqlite_database` drops it on open.
"""

from __future__ import annotations

import sqlite3

# True for a row whose id does not carry its own time.
NOT_TIME_KEYED = "(length(prediction_id) <> 46 OR substr(prediction_id, 33) <> printf('%014x', created_us))"

PREDICTIONS_TABLE = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    temperature REAL NOT NULL,
    heart_rate REAL NOT NULL,
    blood_pressure REAL NOT NULL,
    prediction TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    model_version TEXT NOT NULL,
    outcome_label TEXT,
    outcome_recorded_us INTEGER,
    outcome_updated_us INTEGER,
    outcome_caller TEXT,
    outcome_history TEXT,
    PRIMARY KEY (created_us, prediction_id),
    CHECK (length(prediction_id) <> 46 OR substr(prediction_id, 33) = printf('%014x', created_us))
) WITHOUT ROWID;
"""
OUTCOME_TIME_INDEX = """
CREATE INDEX IF NOT EXISTS predictions_by_outcome_time ON predictions (outcome_recorded_us)
    WHERE outcome_recorded_us IS NOT NULL;
"""
OTHER_IDS_INDEX = (f"CREATE UNIQUE INDEX IF NOT EXISTS predictions_by_other_id ON predictions (prediction_id)"
                   f" WHERE {NOT_TIME_KEYED};")


def is_clustered(connection: sqlite3.Connection) -> bool:
    """True for this layout's table, False for a previous release's."""
    (sql,) = connection.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'predictions'"
                                ).fetchone()
    return "WITHOUT ROWID" in sql.upper()


def create_predictions_table(connection: sqlite3.Connection) -> None:
    connection.executescript(PREDICTIONS_TABLE)
    if is_clustered(connection):
        connection.executescript(OTHER_IDS_INDEX)
        connection.execute("DROP INDEX IF EXISTS predictions_by_time")  # a previous release adds it back
    connection.executescript(OUTCOME_TIME_INDEX)
