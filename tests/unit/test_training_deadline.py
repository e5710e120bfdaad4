"""The training job's hard deadline holds even when the training swallows its
alarm: a catch-all somewhere in the training must not let a run past its
deadline pass for one that finished in time."""

import time

from shared.config import Settings
from shared.stores.metadata.port import PROCESSED_EVENTS
from shared.stores.metadata.sqlite import SqliteMetadataStore
from shared.stores.sqlite_database import SqliteDatabase
from shared.training import job


def test_a_deadline_swallowed_by_a_catch_all_in_the_training_still_fails_the_request(tmp_path, monkeypatch):
    def training_that_swallows_everything(data, **kwargs):
        try:
            time.sleep(5)  # the alarm goes off here
        except Exception:  # noqa: BLE001 -- some library's catch-all, the hazard under test
            pass
        return {"status": "trained", "promoted": False}

    monkeypatch.setattr(job, "train_for_request", training_that_swallows_everything)
    metadata = SqliteMetadataStore(SqliteDatabase(tmp_path / "metadata.sqlite3"))
    started = time.monotonic()
    result = job._train({"key": "retrain-swallowed"}, predictions=None, artifacts=None, metadata=metadata, bus=None,
                        settings=Settings(training_deadline_seconds=0.2))
    assert time.monotonic() - started < 4  # stopped by the alarm, not by the end of the sleep
    assert result["status"] == "failed" and result["code"] == "training_deadline"
    assert metadata.get(PROCESSED_EVENTS, "retrain-swallowed")["status"] == "failed"
