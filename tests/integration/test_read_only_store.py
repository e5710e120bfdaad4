"""A store that cannot be written -- here the SQLite group-commit lock file
cannot be opened (a directory stands in its place: an OSError even root
gets, as on a read-only or full disk) -- is a 503, never a 500. The mapping
is the HTTP adapters' (`functions.http_adapter.store_fault`), so it holds on
every endpoint."""

import os
from pathlib import Path

import pytest

from shared import wiring
from tests.conftest import register_model
from tests.integration.functions_client import client

QUERY = "/?temperature=36.6&heart_rate=80&blood_pressure=120"


@pytest.fixture
def prediction_id_in_an_unwritable_store(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    prediction_id = client("predict").get(QUERY).get_json()["prediction_id"]
    lock = Path(os.environ["LOCAL_DATA_DIR"]) / "mlops.sqlite3.write-lock"
    lock.unlink()
    lock.mkdir()
    wiring.reset()  # a fresh instance: the lock file is opened on its first write
    return prediction_id


def test_an_unwritable_store_is_a_503_for_predict(prediction_id_in_an_unwritable_store):
    # /record_outcome writes without the group-commit lock; its read-only answer was already a 503
    response = client("predict").get(QUERY)
    assert response.status_code == 503, response.get_data()[:300]
    assert response.get_json()["error"]["code"] == "store_unavailable"
    assert response.headers["Retry-After"]


def test_a_commit_sqlite_refuses_in_place_is_a_503_json_not_a_hang(trained_candidate):
    """The in-place commit's own error path (`save_predictions_nowait` raising, not
    meeting another writer): every request in the group answers 503 JSON, none hangs."""
    import threading

    from shared.stores.sqlite_database import SqliteDatabase

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    assert client("predict").get(QUERY).status_code == 200  # the store and its schema exist
    # A real SQLite error that is not SQLITE_BUSY ("no such table"), standing in for a full disk
    SqliteDatabase(Path(os.environ["LOCAL_DATA_DIR"]) / "mlops.sqlite3").connection().execute("DROP TABLE predictions")
    answered = {}
    request = threading.Thread(target=lambda: answered.update(response=client("predict").get(QUERY)), daemon=True)
    request.start()
    request.join(20)
    assert "response" in answered, "the request was never answered: its commit's waiter was never settled"
    response = answered["response"]
    assert response.status_code == 503, response.get_data()[:300]
    assert response.get_json()["error"]["code"] == "store_unavailable"
