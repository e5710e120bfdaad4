"""No request stranded: a training job that dies right after the champion
pointer switched is finished by the next hourly sweep -- the audit entry and
the model-promoted notice appear once, no second model is trained."""

from datetime import datetime, timedelta, timezone

import pytest

from shared import wiring
from shared.event_bus.local import LocalEventBus
from shared.event_bus.messages import BusMessage
from shared.event_bus.schemas import RETRAIN, validate
from shared.models import registry
from shared.models.layout import CHAMPION_POINTER
from shared.stores.metadata.port import EXPERIMENTS, PROMOTIONS, TRAINING_REQUESTS
from shared.training.heartbeat import HEARTBEAT_SECONDS, STALE_HEARTBEATS
from shared.training.job import run_training_request
from shared.training.retrain_handler import handle_retrain_message
from shared.training.sweep import sweep_stranded_training
from tests.conftest import register_model
from tests.integration.events import post_event, pubsub_cloud_event
from tests.integration.functions_client import client
from tests.reliability.test_exactly_once_promotion import Crash, CrashAfter


class InProcessLauncher:
    """Runs the job for the stored request right away, as `jobs.train` would."""

    def __init__(self, dependencies):
        self.dependencies, self.launched = dependencies, []

    def launch(self, request_id: str) -> str:
        self.launched.append(request_id)
        request = self.dependencies["metadata"].get(TRAINING_REQUESTS, request_id)["request"]
        self.result = run_training_request(request, **self.dependencies, execution=f"e-{len(self.launched)}")
        return f"e-{len(self.launched)}"


@pytest.fixture
def crashed_after_the_switch(weak_candidate, quick_training_env):
    import os

    os.environ["PROMOTION_MAX_RECALL_DROP"] = "1"  # the gate is not under test: the run must reach the promotion
    wiring.reset()
    dependencies = dict(wiring.training_job_dependencies(), bus=LocalEventBus())
    champion = register_model(dependencies["artifacts"], weak_candidate, metadata=dependencies["metadata"])
    key = "retrain-manual-m-stranded"
    request = {"key": key, "data": {}, "trigger": {"reason": "manual", "requested_by": "ops"}}
    started = datetime.now(timezone.utc)
    dependencies["metadata"].put(TRAINING_REQUESTS, key, {
        "created_at": started.isoformat(), "launched_at": started.isoformat(), "status": "launched",
        "launches": 1, "request": request})
    crashing = CrashAfter(dependencies["artifacts"], "write_if_generation_matches",
                          lambda path, *_: path == CHAMPION_POINTER)
    crashing.armed = True
    with pytest.raises(Crash):
        run_training_request(request, **dict(dependencies, artifacts=crashing), execution="e-0")
    switched = registry.read_champion(dependencies["artifacts"])[0]["version"]
    assert switched != champion["version"] and dependencies["metadata"].get(PROMOTIONS, key)["status"] == "pending"
    return dependencies, key, champion, switched


def test_the_sweep_finishes_a_promotion_interrupted_after_the_switch(crashed_after_the_switch):
    dependencies, key, champion, switched = crashed_after_the_switch
    metadata, bus, settings = dependencies["metadata"], dependencies["bus"], dependencies["settings"]
    # while the job still beats, the sweep leaves it alone
    assert sweep_stranded_training(metadata, LocalEventBus(), settings) == []
    later = datetime.now(timezone.utc) + timedelta(seconds=STALE_HEARTBEATS * HEARTBEAT_SECONDS + 1)
    sweeper = LocalEventBus()
    assert sweep_stranded_training(metadata, sweeper, settings, now=later) == [key]
    [(topic, resume)] = sweeper.published
    assert topic == settings.retrain_topic
    launcher = InProcessLauncher(dependencies)
    result = handle_retrain_message(validate(resume, RETRAIN), metadata=metadata, launcher=launcher,
                                    settings=wiring.settings("retrain"), now=later)
    assert result["status"] == "launched" and launcher.launched == [key]
    assert launcher.result["status"] == "resumed" and launcher.result["version"] == switched
    assert metadata.get(PROMOTIONS, key)["status"] == "done"
    switches = [entry for entry in registry.champion_history(metadata) if entry["to_version"] == switched]
    assert len(switches) == 1 and switches[0]["promotion_id"] == key
    assert [message.data["version"] for topic, message in bus.published if topic == "model-promoted"] == [switched]
    assert len(metadata.list(EXPERIMENTS)) == 1  # resumed, not trained again
    assert sweep_stranded_training(metadata, LocalEventBus(), settings, now=later) == []


def test_the_hourly_trigger_runs_the_sweep(crashed_after_the_switch):
    dependencies, key, _, _ = crashed_after_the_switch
    request = dependencies["metadata"].get(TRAINING_REQUESTS, key)
    stale = (datetime.now(timezone.utc) - timedelta(seconds=STALE_HEARTBEATS * HEARTBEAT_SECONDS + 5)).isoformat()
    dependencies["metadata"].put(TRAINING_REQUESTS, key, dict(request, heartbeat_at=stale))
    bus = LocalEventBus()  # no subscribers: the resume is only recorded
    wiring.override("event_bus", bus)
    response = post_event(client("drift_check", "cloudevent"),
                          pubsub_cloud_event({"aggregate_hour": "last_closed", "source": "cloud-scheduler"}))
    assert response.status_code == 200
    assert [(topic, message.data) for topic, message in bus.published] == [
        (wiring.settings().retrain_topic, {"request_id": key, "source": "sweep"})]


def test_a_resume_naming_no_stored_request_is_refused():
    from shared.errors import ValidationError

    message = validate(BusMessage({"request_id": "retrain-nothing", "source": "sweep"}, {}, "m-1"), RETRAIN)
    with pytest.raises(ValidationError) as refused:
        handle_retrain_message(message, metadata=wiring.metadata_store(), launcher=None, settings=wiring.settings())
    assert refused.value.field == "request_id"
