"""Both prediction store adapters answer the window queries alike: SQLite, and
Firestore on its emulator."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared import wiring
from shared.records import PredictionRecord

T0 = datetime(2026, 2, 1, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "firestore"])
def store(request):
    if request.param == "firestore":
        request.getfixturevalue("firestore_env")
    return wiring.prediction_store()


def predicted(store, made: datetime, temperature: float) -> str:
    prediction_id = uuid.uuid4().hex
    store.save_predictions([PredictionRecord(prediction_id, made, temperature, 80.0, 120.0, "NO ENFERMO",
                                             {"NO ENFERMO": 1.0}, "v1")])
    return prediction_id


def temperatures(chunks) -> list[float]:
    return sorted(float(row[0]) for chunk in chunks for row in chunk.features)


def test_outcomes_belong_to_the_window_they_were_recorded_in(store):
    window = (T0, T0 + timedelta(days=1))
    late = predicted(store, T0 - timedelta(days=3), 36.1)       # made before, confirmed inside
    on_time = predicted(store, T0 + timedelta(hours=2), 36.2)   # made and confirmed inside
    pending = predicted(store, T0 + timedelta(hours=3), 36.3)   # made inside, confirmed after
    predicted(store, T0 + timedelta(hours=4), 36.4)              # never confirmed
    store.record_outcome(late, "ENFERMEDAD LEVE", T0 + timedelta(hours=1))
    store.record_outcome(on_time, "NO ENFERMO", T0 + timedelta(hours=5))
    store.record_outcome(pending, "NO ENFERMO", T0 + timedelta(days=2))
    store.record_outcome(on_time, "ENFERMEDAD LEVE", T0 + timedelta(days=3))  # a correction keeps the first time
    chunks = list(store.iter_outcomes_recorded(*window, chunk_size=1))
    assert temperatures(chunks) == [36.1, 36.2]
    assert sorted(outcome for chunk in chunks for outcome in chunk.outcomes) == ["ENFERMEDAD LEVE"] * 2
    assert temperatures(store.iter_window(*window)) == [36.2, 36.3, 36.4]
    assert temperatures(store.iter_outcomes_recorded(T0 + timedelta(days=2), T0 + timedelta(days=4))) == [36.3]
