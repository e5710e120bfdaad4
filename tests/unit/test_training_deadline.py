"""The training job's hard deadline holds even when the training swallows its
alarm: a catch-all somewhere in the training must not let a run go on past its
deadline, nor pass for one that finished in time; and a run that settled its
request itself is never given a second, contradicting record."""

import time

import pytest

from shared.config import Settings
from shared.stores.metadata.port import EXPERIMENTS, PROCESSED_EVENTS
from shared.stores.metadata.sqlite import SqliteMetadataStore
from shared.stores.sqlite_database import SqliteDatabase
from shared.training import job


def swallow_the_alarm(seconds: float = 5) -> None:
    try:
        time.sleep(seconds)  # the first alarm goes off here
    except Exception:  # noqa: BLE001 -- some library's catch-all, the hazard under test
        pass


def train(metadata, training, key: str, deadline_seconds: float = 0.2) -> dict:
    return job._train({"key": key}, predictions=None, artifacts=None, metadata=metadata, bus=None,
                      settings=Settings(training_deadline_seconds=deadline_seconds), train=training)


@pytest.fixture
def metadata(tmp_path):
    return SqliteMetadataStore(SqliteDatabase(tmp_path / "metadata.sqlite3"))


def test_a_training_that_swallows_its_alarm_and_goes_on_is_stopped_by_the_next_one(metadata):
    steps = []

    def training_that_goes_on(data, **kwargs):
        swallow_the_alarm(1.0)  # swallowed, then the training goes on: ~4 s more, with no catch-all
        for _ in range(40):
            time.sleep(0.1)
            steps.append(1)
        return {"status": "trained", "promoted": False}

    started = time.monotonic()
    result = train(metadata, training_that_goes_on, "retrain-goes-on")
    assert time.monotonic() - started < 3, f"ran {len(steps)} steps past a swallowed alarm"
    assert result["status"] == "failed" and result["code"] == "training_deadline"
    assert metadata.get(PROCESSED_EVENTS, "retrain-goes-on")["status"] == "failed"


def test_a_deadline_swallowed_by_a_catch_all_in_the_training_still_fails_the_request(metadata):
    def training_that_swallows_everything(data, **kwargs):
        swallow_the_alarm()
        return {"status": "trained", "promoted": False}

    started = time.monotonic()
    result = train(metadata, training_that_swallows_everything, "retrain-swallowed")
    assert time.monotonic() - started < 4  # stopped by the alarm, not by the end of the sleep
    assert result["status"] == "failed" and result["code"] == "training_deadline"
    assert metadata.get(PROCESSED_EVENTS, "retrain-swallowed")["status"] == "failed"


def settle(metadata, key: str) -> None:
    """What the training does as it finishes unpromoted: its experiment, then the done marker."""
    metadata.put(EXPERIMENTS, "run-1", {"run_id": "run-1", "status": "trained", "promotion": {"promoted": False}})
    metadata.put(PROCESSED_EVENTS, key, {"status": "done", "run_id": "run-1"})


@pytest.mark.parametrize("late", ["alarm swallowed, then settled", "settled, then the alarm"])
def test_a_run_that_settled_its_request_itself_keeps_its_one_record(metadata, late):
    def training(data, key, **kwargs):
        if late == "alarm swallowed, then settled":
            swallow_the_alarm(0.5)
            settle(metadata, key)
        else:
            settle(metadata, key)
            time.sleep(5)  # the alarm goes off after the run recorded itself, before it returned
        return {"status": "trained", "run_id": "run-1", "promoted": False, "version": None}

    result = train(metadata, training, "retrain-settled")
    assert metadata.get(PROCESSED_EVENTS, "retrain-settled") == {"status": "done", "run_id": "run-1"}
    assert [experiment["run_id"] for experiment in metadata.list(EXPERIMENTS)] == ["run-1"]
    assert result["run_id"] == "run-1" and result["status"] != "failed"
