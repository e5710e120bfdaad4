"""The nightly drift check on hourly aggregates: the same report as reading
every record, no record read when the hours are counted, each hour counted
once and kept when a check stops half-way."""

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from shared import wiring
from shared.event_bus.local import LocalEventBus
from shared.event_bus.messages import BusMessage
from shared.monitoring import hourly_aggregates
from shared.monitoring.drift_check import handle_drift_check_message, run_drift_check, run_hourly_drift_check
from shared.records import PredictionRecord
from shared.stores.metadata.port import DRIFT_AGGREGATES
from shared.training.synthetic_data import generate_reference_data, label_by_rule
from tests.conftest import register_model

# 20 minutes into the hour before the current one: in the past whatever the
# minute the test runs, so the hourly trigger (which uses the real clock) agrees.
NOW = hourly_aggregates.floor_hour(datetime.now(timezone.utc)) - timedelta(minutes=40)
WINDOW_END = hourly_aggregates.floor_hour(NOW)  # the last hour closed 20 minutes ago
WINDOW_START = WINDOW_END - timedelta(hours=3)


class CountingReads:
    """The real store, counting the window reads (and failing one on demand)."""

    def __init__(self, store, fail_on_hour: datetime | None = None):
        self.store, self.fail_on_hour, self.window_reads, self.outcome_reads = store, fail_on_hour, [], []

    def iter_window(self, start, end, chunk_size=5000):
        if start == self.fail_on_hour:
            raise ConnectionError("the instance died counting this hour")
        self.window_reads.append(start)
        return self.store.iter_window(start, end, chunk_size)

    def iter_outcomes_recorded(self, start, end, chunk_size=5000):
        self.outcome_reads.append(start)
        return self.store.iter_outcomes_recorded(start, end, chunk_size)


def log_traffic(store, rows_per_hour: int, seed: int, weights=None, label_every: int = 3,
                version: str = "v") -> None:
    """Predictions spread over the window's three hours plus the hours either
    side; every third one labelled by a clinician at once."""
    rng = np.random.default_rng(seed)
    for offset in range(-1, 4):
        hour = WINDOW_START + timedelta(hours=offset)
        X, _ = generate_reference_data(rows_per_hour, seed=seed + offset + 1, profile_weights=weights)
        labels = label_by_rule(X)
        predicted = [labels[i] if rng.random() < 0.8 else labels[(i + 1) % len(labels)] for i in range(len(X))]
        seconds = rng.uniform(0, 3599, len(X))
        records = [PredictionRecord(uuid.uuid4().hex, hour + timedelta(seconds=int(s)), *X[i].tolist(),
                                    predicted[i], logged_probabilities(predicted[i]), version)
                   for i, s in enumerate(seconds)]
        store.save_predictions(records)
        for i, record in enumerate(records):
            if i % label_every == 0:
                store.record_outcome(record.prediction_id, labels[i], record.created_at)


def logged_probabilities(predicted: str) -> dict:
    """Probabilities as /predict logs them: the predicted label most likely."""
    return {predicted: 1.0} if predicted == "NO ENFERMO" else {predicted: 0.7, "NO ENFERMO": 0.3}


@pytest.fixture
def champion(trained_candidate):
    return register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())


def check(predictions, **extra):
    return run_hourly_drift_check(end=NOW, hours=3, predictions=predictions, artifacts=wiring.artifact_store(),
                                  metadata=wiring.metadata_store(), bus=LocalEventBus(), settings=wiring.settings(),
                                  now=NOW, **extra)


def test_merged_hours_give_the_report_that_reading_every_record_gives(champion, tmp_path):
    from shared.stores.metadata.sqlite import SqliteMetadataStore
    from shared.stores.sqlite_database import SqliteDatabase

    store = wiring.prediction_store()
    log_traffic(store, rows_per_hour=300, seed=5, weights={"acute": 0.6, "mild": 0.3}, label_every=1,
                version=champion["version"])
    hourly = check(store)
    elsewhere = SqliteMetadataStore(SqliteDatabase(tmp_path / "streamed.sqlite3"))  # the same window, anew
    streamed = run_drift_check(start=WINDOW_START, end=WINDOW_END, predictions=store,
                               artifacts=wiring.artifact_store(), metadata=elsewhere,
                               bus=LocalEventBus(), settings=wiring.settings())
    assert (hourly["window_start"], hourly["window_end"]) == (streamed["window_start"], streamed["window_end"])
    assert hourly["sample_size"] == streamed["sample_size"] == 900
    assert hourly["decision"] == streamed["decision"] == "drift"
    for name, feature in hourly["features"].items():
        assert feature["window_counts"] == streamed["features"][name]["window_counts"]
        assert feature["psi"] == pytest.approx(streamed["features"][name]["psi"])
        assert feature["wasserstein"] == pytest.approx(streamed["features"][name]["wasserstein"])
    assert hourly["prediction_drift"] == streamed["prediction_drift"]
    # outcomes recorded as the predictions were made: the same confusion either way
    assert hourly["performance"]["outcomes"] == streamed["performance"]["outcomes"] == 900
    assert hourly["performance"]["macro_f1"] == pytest.approx(streamed["performance"]["macro_f1"])
    # CBPE: the units keep the expected confusion matrix, so the estimate is the same too
    estimated = hourly["estimated_performance"]
    assert estimated == streamed["estimated_performance"] and estimated["rows"] == 900
    assert estimated["realised_macro_f1"] == pytest.approx(hourly["performance"]["macro_f1"], abs=1e-4)
    assert estimated["per_class"]["NO ENFERMO"]["interval"][0] <= estimated["per_class"]["NO ENFERMO"]["recall"]


def test_the_nightly_check_reads_no_record_once_its_hours_are_counted(champion):
    store = wiring.prediction_store()
    log_traffic(store, rows_per_hour=200, seed=6, version=champion["version"])
    for hour in hourly_aggregates.hours_between(WINDOW_START, WINDOW_END):
        message = BusMessage({"aggregate_hour": hour.isoformat()}, {}, f"hourly-{hour:%H}", NOW)
        assert handle_drift_check_message(message, **wiring.drift_check_dependencies())["rows"] == 200
    counting = CountingReads(store)
    report = check(counting)
    assert counting.window_reads == counting.outcome_reads == []  # O(bins): 3 stored units merged
    assert report["sample_size"] == 600 and report["performance"]["outcomes"] == 3 * 67


def test_a_check_stopped_half_way_keeps_its_hours_and_the_redelivery_counts_only_the_rest(champion):
    store = wiring.prediction_store()
    log_traffic(store, rows_per_hour=100, seed=7, version=champion["version"])
    third_hour = WINDOW_START + timedelta(hours=2)
    with pytest.raises(ConnectionError):
        check(CountingReads(store, fail_on_hour=third_hour))
    assert len(wiring.metadata_store().list(DRIFT_AGGREGATES)) == 2
    counting = CountingReads(store)
    report = check(counting)
    assert counting.window_reads == [third_hour] and report["sample_size"] == 300
    again = CountingReads(store)
    assert check(again)["report_id"] == report["report_id"] and again.window_reads == []
    assert len(wiring.metadata_store().list(DRIFT_AGGREGATES)) == 3


def test_an_hour_is_counted_only_once_it_has_closed(champion):
    open_hour = hourly_aggregates.floor_hour(NOW)
    with pytest.raises(ValueError, match="has not closed"):
        hourly_aggregates.hour_counts(open_hour, champion=champion["version"], baseline={}, predictions=None,
                                      metadata=wiring.metadata_store(), now=NOW)
    just_closed = open_hour - timedelta(hours=1)
    with pytest.raises(ValueError, match="has not closed"):
        hourly_aggregates.hour_counts(just_closed, champion="v", baseline={}, predictions=None,
                                      metadata=wiring.metadata_store(), now=open_hour + timedelta(minutes=2))
    assert hourly_aggregates.last_closed_hour(open_hour + timedelta(minutes=2)) == just_closed - timedelta(hours=1)
    assert hourly_aggregates.last_closed_hour(open_hour + timedelta(minutes=6)) == just_closed


@pytest.mark.emulator
def test_hourly_units_and_outcomes_on_firestore(firestore_env, champion):
    store = wiring.prediction_store()
    log_traffic(store, rows_per_hour=60, seed=8, version=champion["version"])
    report = check(store)
    assert report["sample_size"] == 180 and report["performance"]["outcomes"] == 60
    units = wiring.metadata_store().list(DRIFT_AGGREGATES)
    assert sorted(unit["rows"] for unit in units) == [60, 60, 60]
    assert sum(sum(unit["counts"]["labels"]) for unit in units) == 180


def test_only_the_champions_own_predictions_and_outcomes_are_counted(champion):
    """After a promotion the old model's predictions and late outcomes are not
    the new champion's to answer for: left out, and counted as left out."""
    store = wiring.prediction_store()
    log_traffic(store, rows_per_hour=100, seed=9, version=champion["version"])
    log_traffic(store, rows_per_hour=40, seed=10, version="the-previous-champion")
    hourly = check(store)
    assert hourly["sample_size"] == 300 and hourly["performance"]["outcomes"] == 3 * 34
    assert hourly["rows_left_out"]["other_model_versions"] == 120
    assert hourly["rows_left_out"]["other_model_version_outcomes"] == 3 * 14
    assert hourly["model_version"] == champion["version"]
    streamed = run_drift_check(start=WINDOW_START, end=WINDOW_END, predictions=store,
                               artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(),
                               bus=LocalEventBus(), settings=wiring.settings())
    assert streamed["rows_left_out"] == hourly["rows_left_out"] and streamed["sample_size"] == 300


def test_after_input_drift_the_retrain_waits_for_labels_in_the_changed_region(champion):
    """Few labels in the changed region: the first drift night waits and says so;
    the next drift night (RETRAIN_MAX_WAIT_NIGHTS = 1) requests the retrain."""
    store = wiring.prediction_store()
    log_traffic(store, rows_per_hour=200, seed=11, weights={"acute": 0.6, "mild": 0.3}, label_every=40,
                version=champion["version"])
    bus = LocalEventBus()
    first = run_hourly_drift_check(
        end=NOW, hours=3, predictions=store, artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(),
        bus=bus, settings=wiring.settings(), now=NOW)
    assert first["decision"] == "drift" and first["retrain_request_id"] is None
    wait = first["retrain_wait"]
    assert wait["status"] == "waiting" and 0 < wait["changed_region_labels"] < 600
    assert f"waiting for labels: {wait['changed_region_labels']} of 600 in the changed region" in first["reasons"][-1]
    second = run_drift_check(start=WINDOW_START - timedelta(hours=1), end=WINDOW_START,
                             predictions=store, artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(),
                             bus=bus, settings=wiring.settings())
    assert second["decision"] == "drift" and second["retrain_request_id"] is not None
    assert second["retrain_wait"]["status"] == "published" and second["retrain_wait"]["nights"] == 2
    # the champion still serves (nothing promoted here): asked again only once the labels double
    third = run_drift_check(start=WINDOW_END, end=WINDOW_END + timedelta(hours=1), predictions=store,
                            artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(), bus=bus,
                            settings=wiring.settings())
    assert third["decision"] == "drift" and third["retrain_request_id"] is None
    assert third["retrain_wait"]["needed"] == max(600, 2 * second["retrain_wait"]["changed_region_labels"])
    assert len(bus.published) == 1


def test_enough_labels_in_the_changed_region_request_the_retrain_at_once():
    from shared.monitoring.retrain_wait import decide

    report = {"report_id": "r1", "created_at": "t", "changed_region": {"feature": "heart_rate", "labels": 130},
              "performance": {"status": "ok", "outcomes": 400}}
    publish, wait = decide(report, None, min_labels=120, max_nights=1)
    assert publish and wait["status"] == "published" and wait["message"].startswith("retrain requested: 130")
    publish, wait = decide(dict(report, changed_region={"feature": "heart_rate", "labels": 31}), None,
                           min_labels=120, max_nights=1)
    assert not publish and wait["message"].startswith("waiting for labels: 31 of 120 in the changed region")
    degraded = dict(report, changed_region=None, performance={"status": "degraded", "outcomes": 60})
    assert decide(degraded, wait, min_labels=120, max_nights=1)[0]
