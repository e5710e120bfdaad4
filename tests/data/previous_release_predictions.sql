-- The prediction log's table as releases up to the (time, id) layout created it: a random TEXT primary key
-- (an index of its own) and a time index beside it. Existing `.local` databases have it.
-- Read by tests/unit/test_sqlite_prediction_layout.py, tests/unit/test_sqlite_upgrade.py and bench/prediction_log.py.
CREATE TABLE predictions (
    prediction_id TEXT PRIMARY KEY, created_us INTEGER NOT NULL, temperature REAL NOT NULL,
    heart_rate REAL NOT NULL, blood_pressure REAL NOT NULL, prediction TEXT NOT NULL, probabilities TEXT NOT NULL,
    model_version TEXT NOT NULL, outcome_label TEXT, outcome_recorded_us INTEGER, outcome_updated_us INTEGER,
    outcome_caller TEXT, outcome_history TEXT
);
CREATE INDEX predictions_by_time ON predictions (created_us, prediction_id);
CREATE INDEX predictions_by_outcome_time ON predictions (outcome_recorded_us) WHERE outcome_recorded_us IS NOT NULL;
