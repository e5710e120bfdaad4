"""A follow-up retrain asked for by a drift report that is not "drift" is not
lost when the check dies between storing its report and publishing: the
redelivery publishes it (once), on the embedded stores."""

import pytest

from shared import wiring
from shared.event_bus.local import LocalEventBus
from shared.monitoring.drift_check import run_drift_check
from shared.monitoring.retrain_rules import FOLLOW_UP
from shared.monitoring.retrain_wait import RETRAIN_WAITS
from shared.stores.metadata.port import DRIFT_REPORTS, TRAINING_REQUESTS
from shared.training.retrain_handler import handle_retrain_message
from tests.conftest import register_model
from tests.integration.test_hourly_drift import WINDOW_END, WINDOW_START, log_traffic


@pytest.fixture
def champion(trained_candidate):
    return register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())


def test_a_due_follow_up_survives_a_check_that_died_before_publishing(champion):
    store, metadata = wiring.prediction_store(), wiring.metadata_store()
    log_traffic(store, rows_per_hour=200, seed=14, label_every=2, version=champion["version"])
    # the retrain after a drift went ahead with 500 of 600 labels; this champion is the one it promoted
    metadata.put(RETRAIN_WAITS, FOLLOW_UP, {"status": "pending", "from_champion": "the-previous-champion",
                                            "labels": 500, "needed": 600, "share": 0.5, "outcomes_by_report": {},
                                            "requested_by": "an-earlier-report",
                                            "changed_since": "2026-01-11T00:00:00Z"})
    bus = LocalEventBus()

    def check():
        return run_drift_check(start=WINDOW_START, end=WINDOW_END, predictions=store,
                               artifacts=wiring.artifact_store(), metadata=metadata, bus=bus,
                               settings=wiring.settings())

    report = check()
    assert report["decision"] != "drift" and report["retrain_request_id"] is not None
    assert report["retrain_follow_up"]["status"] == "published" and len(bus.published) == 1
    metadata.put(DRIFT_REPORTS, report["report_id"], dict(report, retrain_request_id=None))  # died before publishing
    assert check()["retrain_request_id"] is not None and len(bus.published) == 2
    assert check()["retrain_request_id"] is not None and len(bus.published) == 2  # done: no third
    # the follow-up's retrain weighs the labels from before the change down, like the first retrain
    handle_retrain_message(bus.published[0][1], metadata=metadata, launcher=NoLauncher(),
                           settings=wiring.settings(), now=bus.published[0][1].publish_time)
    trigger = metadata.get(TRAINING_REQUESTS, f"retrain-{report['report_id']}")["request"]["trigger"]
    assert trigger["changed_since"] == "2026-01-11T00:00:00Z"


class NoLauncher:
    def launch(self, key: str) -> str:
        return "not-started"
