"""Event functions acknowledge (and log) a message a retry cannot fix, whatever
exception its bad field raises, and raise only when a retry can help."""

import errno
import logging

import pytest

from shared import wiring
from shared.errors import LeaseHeld, ServiceUnavailable
from shared.stores.metadata.port import DRIFT_REPORTS
from tests.conftest import register_model
from tests.integration.events import post_event, pubsub_cloud_event
from tests.integration.functions_client import client


@pytest.fixture
def event_log():
    """The records the event functions log (our loggers do not propagate to pytest's)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("mlops.events")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.mark.parametrize("data, field", [
    ({"window_hours": [1]}, "window_hours"),
    ({"window_hours": {"h": 1}}, "window_hours"),
    ({"window_hours": "abc"}, "window_hours"),
    ({"window_hours": -5}, "window_hours"),
    ({"window_hours": 1e400}, "window_hours"),
    ({"window_end": 12345}, "window_end"),
    ({"window_end": "yesterday"}, "window_end"),
    ({"window_start": ["2026-01-01"]}, "window_start"),
    ({"window_start": "2026-01-02T00:00:00Z", "window_end": "2026-01-01T00:00:00Z"}, "window_start"),
    ({"lake_partition": 5}, "lake_partition"),
    ({"lake_partition": "2026-13-45"}, "lake_partition"),
])
def test_a_drift_request_with_a_bad_field_is_acknowledged_and_logged(trained_candidate, event_log, data, field):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    response = post_event(client("drift_check", "cloudevent"), pubsub_cloud_event(data))
    assert response.status_code == 200  # acknowledged: Pub/Sub must not redeliver it
    dropped = [record for record in event_log if record.getMessage().startswith("message dropped")]
    assert dropped and dropped[0].levelno == logging.ERROR and dropped[0].fields["field"] == field
    assert wiring.metadata_store().list(DRIFT_REPORTS) == []


def test_a_missing_champion_is_retried_not_dropped():
    response = post_event(client("drift_check", "cloudevent"), pubsub_cloud_event({"window_hours": 1}))
    assert response.status_code == 503  # ModelUnavailable: a retry can help once a model is promoted


@pytest.mark.parametrize("failure, status", [
    (lambda: ServiceUnavailable("could not run the training job"), 503),
    (lambda: OSError(errno.EROFS, "Read-only file system"), 503),  # a read-only or full store
    (lambda: LeaseHeld("held"), 409),
])
def test_a_failure_left_for_a_retry_is_a_json_4xx_or_503_never_a_500(trained_candidate, failure, status):
    from functions_framework import create_app

    from functions.http_adapter import answer_framework_errors_as_json
    from tests.integration.functions_client import SOURCE

    class Unreachable:  # the launch fails in a way a retry can get past
        def launch(self, request_id):
            raise failure()

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    wiring.override("training_launcher", Unreachable())
    retrain = answer_framework_errors_as_json(create_app("retrain", SOURCE, "cloudevent")).test_client()
    response = post_event(retrain, pubsub_cloud_event({"reason": "manual", "requested_by": "ops"}))
    assert response.status_code == status  # not 2xx: Pub/Sub redelivers
    error = response.get_json()["error"]
    assert error["code"] in ("service_unavailable", "conflict") and error["message"].startswith("retry later")
    assert retrain.get("/").get_json()["error"]["code"] == "method_not_allowed"


def test_the_hourly_aggregate_before_the_first_model_is_acknowledged_not_retried(event_log):
    """Every hour until a model is promoted: retrying cannot create one, so
    the message is acknowledged (no dead letter, no incident every hour) and
    logged at INFO, not as a dropped message."""
    response = post_event(client("drift_check", "cloudevent"), pubsub_cloud_event({"aggregate_hour": "last_closed"}))
    assert response.status_code == 200
    assert not [record for record in event_log if record.levelno >= logging.WARNING]
