import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import NotFound, ValidationError
from shared.records import PredictionRecord
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.sqlite_database import SqliteDatabase

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(seconds: float, label="NO ENFERMO", temperature=36.6) -> PredictionRecord:
    return PredictionRecord(uuid.uuid4().hex, T0 + timedelta(seconds=seconds), temperature, 70.0, 120.0, label,
                            {label: 1.0}, "v1")


@pytest.fixture
def store(tmp_path):
    return SqlitePredictionStore(SqliteDatabase(tmp_path / "db.sqlite3"))


def test_history_pages_newest_first_without_gaps_or_repeats(store):
    records = [record(i // 3) for i in range(25)]  # equal timestamps in threes: ties broken by id
    store.save_predictions(records)
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = store.list_predictions(7, cursor)
        seen.extend(page)
        pages += 1
        if cursor is None:
            break
    assert pages == 4
    assert sorted(r.prediction_id for r in seen) == sorted(r.prediction_id for r in records)
    keys = [(r.created_at, r.prediction_id) for r in seen]
    assert keys == sorted(keys, reverse=True)


def test_bad_cursor_is_a_validation_error(store):
    with pytest.raises(ValidationError) as caught:
        store.list_predictions(5, "not-a-cursor!")
    assert caught.value.field == "cursor"


def test_outcome_replaces_and_keeps_when_it_changed(store):
    first = record(0)
    store.save_predictions([first])
    later = T0 + timedelta(hours=1)
    updated = store.record_outcome(first.prediction_id, "ENFERMEDAD LEVE", later)
    assert updated.outcome_label == "ENFERMEDAD LEVE" and updated.outcome_updated_at == later
    same = store.record_outcome(first.prediction_id, "ENFERMEDAD LEVE", later + timedelta(hours=1))
    assert same.outcome_updated_at == later  # unchanged label: no change time
    changed = store.record_outcome(first.prediction_id, "NO ENFERMO", later + timedelta(hours=2))
    assert changed.outcome_label == "NO ENFERMO"
    assert changed.outcome_updated_at == later + timedelta(hours=2)
    assert changed.outcome_recorded_at == later
    with pytest.raises(NotFound):
        store.record_outcome("missing", "NO ENFERMO", later)


def test_window_streams_bounded_chunks(store):
    store.save_predictions([record(i, temperature=36 + (i % 5)) for i in range(1000)])
    chunks = list(store.iter_window(T0 + timedelta(seconds=100), T0 + timedelta(seconds=600), chunk_size=128))
    assert max(len(c) for c in chunks) == 128
    assert sum(len(c) for c in chunks) == 500
    assert chunks[0].features.shape == (128, 3)


def test_batch_is_all_or_nothing(store):
    duplicate = record(0)
    store.save_predictions([duplicate])
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError):
        store.save_predictions([record(1), duplicate])
    assert store.count() == 1


def test_only_outcomes_by_recording_time_carry_when_each_prediction_was_made(store):
    """Review 20.8: drift windows and hourly units never read the prediction's
    time, so they do not pay for a datetime a row; the retrain's outcomes do."""
    made = record(90)
    store.save_predictions([made])
    store.record_outcome(made.prediction_id, "ENFERMEDAD AGUDA", T0 + timedelta(days=2))
    assert next(store.iter_window(T0, T0 + timedelta(hours=1))).predicted_times == []
    assert next(store.iter_labelled()).predicted_times == []
    assert next(store.iter_outcomes_recorded(T0 + timedelta(days=1), T0 + timedelta(days=3))).predicted_times == [
        T0 + timedelta(seconds=90)]
