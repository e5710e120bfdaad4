"""The prediction store is unreachable: a bounded, clear 503 -- or, if the
operator chose so, an answer that says it was not logged."""

import os
import time

from shared import wiring
from tests import emulators
from tests.conftest import PROJECT, register_model
from tests.integration.functions_client import client

QUERY = "/?temperature=36.6&heart_rate=80&blood_pressure=120"


def point_firestore_at_nothing():
    os.environ.update({"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{emulators.free_port()}",
                       "GOOGLE_CLOUD_PROJECT": PROJECT, "PREDICTION_STORE": "firestore",
                       "STORE_TIMEOUT_SECONDS": "1"})
    wiring.reset()


def test_unreachable_store_is_a_bounded_503(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate)
    point_firestore_at_nothing()
    started = time.monotonic()
    response = client("predict").get(QUERY)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "store_unavailable"
    assert time.monotonic() - started < 10


def test_serving_without_logging_says_so(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate)
    point_firestore_at_nothing()
    os.environ["REQUIRE_PREDICTION_LOG"] = "false"
    response = client("predict").get(QUERY)
    assert response.status_code == 200
    assert response.get_json()["logged"] is False
