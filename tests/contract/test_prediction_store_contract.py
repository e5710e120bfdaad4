"""The prediction store's contract, on SQLite and on the Firestore emulator:
the same records, the same JSON (key order included), the same refusals."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import NotFound, StoreUnavailable, ValidationError
from shared.records import PredictionRecord
from shared.schema import LABELS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def record(seconds: float = 0, label: str = "ENFERMEDAD LEVE") -> PredictionRecord:
    # Probabilities in the labels' contract order, which is not alphabetical.
    probabilities = {name: (0.9 if name == label else 0.025) for name in LABELS}
    return PredictionRecord(uuid.uuid4().hex, T0 + timedelta(seconds=seconds), 36.6, 70.0, 120.0, label,
                            probabilities, "v1")


def hand_made_cursor(document) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def test_a_record_reads_back_as_the_same_json_key_order_included(prediction_store):
    saved = record()
    prediction_store.save_predictions([saved])
    answered = prediction_store.record_outcome(saved.prediction_id, "NO ENFERMO", T0 + timedelta(hours=1),
                                               caller="nurse@clinic.example")
    listed, _ = prediction_store.list_predictions(10)
    expected = {
        "prediction_id": saved.prediction_id, "created_at": "2026-01-01T00:00:00Z",
        "inputs": {"temperature": 36.6, "heart_rate": 70.0, "blood_pressure": 120.0},
        "prediction": "ENFERMEDAD LEVE", "probabilities": saved.probabilities, "model_version": "v1",
        "outcome": {"label": "NO ENFERMO", "recorded_at": "2026-01-01T01:00:00Z",
                    "updated_at": "2026-01-01T01:00:00Z", "caller": "nurse@clinic.example", "history": []},
    }
    for item in (answered.to_api(), listed[0].to_api(), prediction_store.get_prediction(saved.prediction_id).to_api()):
        assert json.dumps(item, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)


@pytest.mark.parametrize("prediction_id", ["a/b", ".", "..", "__x__", "", "x" * 5000, "\x00", "a b", "ñ"])
def test_an_id_that_cannot_exist_is_not_found(prediction_store, prediction_id):
    with pytest.raises(NotFound):
        prediction_store.get_prediction(prediction_id)
    with pytest.raises(NotFound):
        prediction_store.record_outcome(prediction_id, "NO ENFERMO", T0)


@pytest.mark.parametrize("document", [
    {"t": 99999999999999999999999, "id": "x"}, {"t": -99999999999999999999999, "id": "x"},
    {"t": 1, "id": "a/b"}, {"t": 1, "id": "__x__"}, {"t": 1.5, "id": "ab"}, {"t": True, "id": "ab"},
    {"t": 1, "id": ""}, {"t": 1}, ["t", 1], "x",
])
def test_a_hand_made_cursor_is_refused(prediction_store, document):
    with pytest.raises(ValidationError) as caught:
        prediction_store.list_predictions(5, hand_made_cursor(document))
    assert caught.value.field == "cursor"


@FUZZ
@given(prediction_id=st.text(max_size=200))
def test_fuzzed_ids_are_found_or_not_found_never_another_error(prediction_store, prediction_id):
    with pytest.raises(NotFound):
        prediction_store.record_outcome(prediction_id, "NO ENFERMO", T0)


@FUZZ
@given(cursor=st.one_of(st.text(max_size=300), st.builds(
    hand_made_cursor, st.fixed_dictionaries({"t": st.integers(), "id": st.text(max_size=80)}))))
def test_fuzzed_cursors_page_or_are_refused_never_another_error(prediction_store, cursor):
    try:
        records, _ = prediction_store.list_predictions(3, cursor)
    except ValidationError as error:
        assert error.field == "cursor"
    else:
        assert records == []


@FUZZ
@given(label=st.one_of(st.sampled_from(LABELS), st.text(max_size=40)))
def test_fuzzed_labels_on_an_unknown_id_are_not_found(prediction_store, label):
    with pytest.raises(NotFound):
        prediction_store.record_outcome(uuid.uuid4().hex, label, T0)


def test_concurrent_outcomes_on_one_id_all_resolve_and_updated_is_never_before_recorded(prediction_store):
    saved = record()
    prediction_store.save_predictions([saved])
    results, lock = [], threading.Lock()

    def send(index: int) -> None:
        started = time.monotonic()
        try:
            answered = prediction_store.record_outcome(saved.prediction_id, LABELS[index % len(LABELS)],
                                                       datetime.now(timezone.utc))
            outcome = answered.outcome_updated_at >= answered.outcome_recorded_at
        except StoreUnavailable:
            outcome = "unavailable"
        except Exception as error:  # noqa: BLE001 -- the test reports any other failure
            outcome = repr(error)
        with lock:
            results.append((outcome, time.monotonic() - started))

    threads = [threading.Thread(target=send, args=(index,)) for index in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = [outcome for outcome, _ in results]
    assert set(outcomes) <= {True, "unavailable"}, outcomes
    assert outcomes.count(True) >= 1
    # Bounded by the store timeout (5 s here), with a margin for a loaded machine: never the 50 s it was.
    assert max(seconds for _, seconds in results) < 5 + 5
    final = prediction_store.get_prediction(saved.prediction_id)
    assert final.outcome_updated_at >= final.outcome_recorded_at


def test_a_late_writer_never_moves_updated_before_recorded(prediction_store):
    saved = record()
    prediction_store.save_predictions([saved])
    prediction_store.record_outcome(saved.prediction_id, "NO ENFERMO", T0 + timedelta(seconds=10))
    # A request that read the clock earlier but commits later, with another label.
    answered = prediction_store.record_outcome(saved.prediction_id, "ENFERMEDAD AGUDA", T0 + timedelta(seconds=5))
    assert answered.outcome_recorded_at == T0 + timedelta(seconds=10)
    assert answered.outcome_updated_at == T0 + timedelta(seconds=10)
    assert answered.outcome_label == "ENFERMEDAD AGUDA"


def test_the_same_outcome_twice_keeps_both_times(prediction_store):
    saved = record()
    prediction_store.save_predictions([saved])
    prediction_store.record_outcome(saved.prediction_id, "NO ENFERMO", T0 + timedelta(seconds=1))
    again = prediction_store.record_outcome(saved.prediction_id, "NO ENFERMO", T0 + timedelta(seconds=2))
    assert again.outcome_recorded_at == again.outcome_updated_at == T0 + timedelta(seconds=1)


def test_history_pages_alike_on_both_backends(prediction_store):
    records = [record(i // 3) for i in range(10)]  # ties on time, broken by id
    prediction_store.save_predictions(records)
    seen, cursor = [], None
    while True:
        page, cursor = prediction_store.list_predictions(4, cursor)
        seen.extend(item.prediction_id for item in page)
        if cursor is None:
            break
    expected = [r.prediction_id for r in sorted(records, key=lambda r: (r.created_at, r.prediction_id),
                                                 reverse=True)]
    assert seen == expected


def test_an_overwrite_keeps_every_earlier_label_with_its_caller_and_time(prediction_store):
    saved = record()
    prediction_store.save_predictions([saved])
    prediction_store.record_outcome(saved.prediction_id, "ENFERMEDAD AGUDA", T0 + timedelta(hours=1),
                                    caller="clinician@clinic.example")
    # the same label from the same caller again: nothing new to keep
    prediction_store.record_outcome(saved.prediction_id, "ENFERMEDAD AGUDA", T0 + timedelta(hours=2),
                                    caller="clinician@clinic.example")
    prediction_store.record_outcome(saved.prediction_id, "NO ENFERMO", T0 + timedelta(hours=3),
                                    caller="attacker@example.com")
    # the same label confirmed by someone else: the previous attribution is kept too
    answered = prediction_store.record_outcome(saved.prediction_id, "NO ENFERMO", T0 + timedelta(hours=4),
                                               caller="second@clinic.example")
    expected = {"label": "NO ENFERMO", "recorded_at": "2026-01-01T01:00:00Z", "updated_at": "2026-01-01T03:00:00Z",
                "caller": "second@clinic.example", "history": [
                    {"label": "ENFERMEDAD AGUDA", "caller": "clinician@clinic.example", "at": "2026-01-01T01:00:00Z"},
                    {"label": "NO ENFERMO", "caller": "attacker@example.com", "at": "2026-01-01T03:00:00Z"}]}
    assert answered.to_api()["outcome"] == expected
    assert prediction_store.get_prediction(saved.prediction_id).to_api()["outcome"] == expected
    chunk = next(prediction_store.iter_labelled())
    assert chunk.outcome_callers == ["second@clinic.example"]
    assert [entry["caller"] for entry in chunk.outcome_histories[0]] == ["clinician@clinic.example",
                                                                         "attacker@example.com"]
    assert chunk.outcome_times[0] == T0 + timedelta(hours=3)


def test_labelled_rows_say_when_each_prediction_was_made(prediction_store):
    """A retrain after a change tells old patients from new by when they were
    seen, not when their label came (training_data)."""
    made = record(seconds=90)
    prediction_store.save_predictions([made])
    prediction_store.record_outcome(made.prediction_id, "ENFERMEDAD AGUDA", T0 + timedelta(days=2))
    chunk = next(prediction_store.iter_outcomes_recorded(T0 + timedelta(days=1), T0 + timedelta(days=3)))
    assert chunk.predicted_times == [T0 + timedelta(seconds=90)]


def test_outcome_requests_are_counted_per_caller_and_hour(prediction_store):
    counts = [prediction_store.count_outcome_request("2026010100", "a@clinic.example") for _ in range(3)]
    assert counts == [1, 2, 3]
    assert prediction_store.count_outcome_request("2026010100", "b@clinic.example") == 1
    assert prediction_store.count_outcome_request("2026010101", "a@clinic.example") == 1


def duplicate_errors() -> tuple[type[Exception], ...]:
    """What each backend raises for an id it already holds: SQLite's constraint error, Firestore's Conflict."""
    import sqlite3

    from google.api_core.exceptions import Conflict

    return sqlite3.IntegrityError, Conflict


@pytest.mark.parametrize("issued", [True, False], ids=["service id", "foreign id"])
def test_an_id_saved_twice_is_refused_the_second_time(prediction_store, issued):
    """An import or a bench may write its own ids: one id names one record, whatever its time."""
    from shared.stores.predictions.ids import new_prediction_id

    first = record()
    if issued:
        first = dataclasses.replace(first, prediction_id=new_prediction_id(first.created_at))
    again = dataclasses.replace(first, created_at=first.created_at + timedelta(seconds=1))
    prediction_store.save_predictions([first])
    with pytest.raises(duplicate_errors()):
        prediction_store.save_predictions([again])
    assert prediction_store.count() == 1
    assert prediction_store.get_prediction(first.prediction_id) == first
