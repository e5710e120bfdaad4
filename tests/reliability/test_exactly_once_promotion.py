"""Exactly-once promotion: a retrain request whose delivery dies right after
each step of the promotion, then is redelivered, promotes once -- on the local
stores and on the Firestore emulator with fake-gcs-server.

The crash is injected by wrapping the real adapters: the call completes, then
the process "dies" (an exception no handler catches), as a killed instance would.
"""

import os
from datetime import datetime, timezone

import pytest

from shared import wiring
from shared.errors import ChampionUnavailable, TrainingDeadlineExceeded
from shared.event_bus.local import LocalEventBus
from shared.event_bus.messages import BusMessage
from shared.models import registry
from shared.models.layout import CHAMPION_POINTER, model_path
from shared.stores.metadata.port import CHAMPION_HISTORY, EXPERIMENTS, PROCESSED_EVENTS, PROMOTIONS
from shared.training.job import run_training_request
from tests.conftest import register_model


class Crash(BaseException):
    """The instance died: nothing in the service may catch this."""


class CrashAfter:
    """A real adapter, except that the first `method` call matching `when` completes and then dies."""

    def __init__(self, target, method: str, when):
        self._target, self._method, self._when, self.armed = target, method, when, False

    def __getattr__(self, name):
        attribute = getattr(self._target, name)
        if name != self._method:
            return attribute

        def call(*args, **kwargs):
            result = attribute(*args, **kwargs)
            if self.armed and self._when(*args):
                self.armed = False
                raise Crash(f"died right after {self._method}{args[:1]}")
            return result

        return call


# (step, which adapter, its method, which call)
STEPS = [
    ("promotion intent", "metadata", "create", lambda collection, *_: collection == PROMOTIONS),
    ("pointer switch", "artifacts", "write_if_generation_matches", lambda path, *_: path == CHAMPION_POINTER),
    ("audit entry", "metadata", "create", lambda collection, *_: collection == CHAMPION_HISTORY),
    ("promoted event", "bus", "publish", lambda topic, *_: topic == "model-promoted"),
    ("intent closed", "metadata", "put", lambda collection, *_: collection == PROMOTIONS),
    ("done-marker", "metadata", "put", lambda collection, *_: collection == PROCESSED_EVENTS),
]


def train(message: BusMessage, dependencies: dict) -> dict:
    """The training job's run for this request (what the retrain function launches);
    a second call is the retried task of the same execution."""
    request = {"key": f"retrain-{message.data['report_id']}", "data": message.data,
               "trigger": {"message_id": message.message_id, "reason": message.data.get("reason"),
                           "report_id": message.data["report_id"]}}
    return run_training_request(request, **dependencies, execution="e-1")


@pytest.fixture(params=["local", "emulators"])
def backend(request, quick_training_env):
    os.environ["PROMOTION_MAX_RECALL_DROP"] = "1"  # the gate is not under test: the run must reach the promotion
    wiring.reset()
    if request.param == "emulators":
        request.applymarker(pytest.mark.emulator)
        request.getfixturevalue("firestore_env")
        request.getfixturevalue("gcs_env")
    return request.param


def dependencies_with_crash(step: str, weak_candidate):
    _, adapter, method, when = next(entry for entry in STEPS if entry[0] == step)
    dependencies = dict(wiring.training_job_dependencies(), bus=LocalEventBus())
    champion = register_model(dependencies["artifacts"], weak_candidate, metadata=dependencies["metadata"])
    crashing = CrashAfter(dependencies[adapter], method, when)
    dependencies[adapter] = crashing
    return dependencies, crashing, champion


@pytest.mark.parametrize("step", [entry[0] for entry in STEPS])
def test_a_crash_after_each_step_still_promotes_exactly_once(step, backend, weak_candidate):
    dependencies, crashing, champion = dependencies_with_crash(step, weak_candidate)
    store, metadata, bus = dependencies["artifacts"], dependencies["metadata"], dependencies["bus"]
    message = BusMessage({"reason": "drift", "report_id": f"crash-{step}"}, {}, "m-1", datetime.now(timezone.utc))
    crashing.armed = True
    with pytest.raises(Crash):
        train(message, dependencies)
    assert not crashing.armed, "the crash point was never reached"
    retried = train(message, dependencies)
    assert retried["status"] == ("duplicate" if step == "done-marker" else "resumed")
    assert retried.get("previous", retried)["promoted"]
    assert train(message, dependencies)["status"] == "duplicate"

    pointer = registry.read_champion(store)[0]
    experiments = metadata.list(EXPERIMENTS)
    assert len(experiments) == 1 and experiments[0]["promotion"]["promoted"]  # trained once
    promoted = experiments[0]["winner"]["version"]
    assert pointer["version"] == promoted and pointer["previous_version"] == champion["version"]
    assert [m["version"] for m in registry.list_versions(store)] == [champion["version"], promoted]
    switches = [h for h in registry.champion_history(metadata) if h["to_version"] == promoted]
    assert len(switches) == 1 and switches[0]["promotion_id"] == f"retrain-crash-{step}"
    events = [m for topic, m in bus.published if topic == "model-promoted"]
    assert {m.attributes["promotion_id"] for m in events} == {f"retrain-crash-{step}"}
    assert {m.data["version"] for m in events} == {promoted}
    # Only a death between the publish and the outbox update can repeat the
    # event, with the same promotion_id for subscribers to drop it.
    assert len(events) == (2 if step == "promoted event" else 1)
    assert metadata.get(PROMOTIONS, f"retrain-crash-{step}")["status"] == "done"
    assert metadata.get(PROCESSED_EVENTS, f"retrain-crash-{step}")["promoted"]


def test_an_unloadable_champion_means_refuse_and_retry_later(backend, weak_candidate):
    """Not "no champion": a model trained on anything would otherwise be promoted unchecked."""
    dependencies = dict(wiring.training_job_dependencies(), bus=LocalEventBus())
    store, metadata = dependencies["artifacts"], dependencies["metadata"]
    champion = register_model(store, weak_candidate, metadata=metadata)
    good_bytes = store.read_bytes(model_path(champion["version"], "model.joblib"))
    store.write_bytes(model_path(champion["version"], "model.joblib"), b"not the registered artifact")
    message = BusMessage({"reason": "drift", "report_id": "unloadable"}, {}, "m-2", datetime.now(timezone.utc))
    with pytest.raises(ChampionUnavailable):
        train(message, dependencies)
    assert registry.read_champion(store)[0]["version"] == champion["version"]
    assert len(registry.list_versions(store)) == 1 and not metadata.list(EXPERIMENTS)
    assert metadata.get(PROCESSED_EVENTS, "retrain-unloadable") is None  # redelivered later
    store.write_bytes(model_path(champion["version"], "model.joblib"), good_bytes)
    assert train(message, dependencies)["status"] == "trained"


class DeadlineAfter(CrashAfter):
    """The training's hard deadline fires right after the matching call (the alarm, not a death)."""

    def __getattr__(self, name):
        call = super().__getattr__(name)
        if name != self._method:
            return call

        def expire(*args, **kwargs):
            try:
                return call(*args, **kwargs)
            except Crash:
                raise TrainingDeadlineExceeded("training ran past its deadline of 1 s") from None

        return expire


def test_a_deadline_after_the_promotion_was_decided_finishes_it(backend, weak_candidate):
    dependencies = dict(wiring.training_job_dependencies(), bus=LocalEventBus())
    champion = register_model(dependencies["artifacts"], weak_candidate, metadata=dependencies["metadata"])
    metadata = DeadlineAfter(dependencies["metadata"], "create", lambda collection, *_: collection == PROMOTIONS)
    metadata.armed = True
    dependencies["metadata"] = metadata
    message = BusMessage({"reason": "drift", "report_id": "late"}, {}, "m-1", datetime.now(timezone.utc))

    result = train(message, dependencies)

    assert not metadata.armed, "the deadline never fired"
    assert result["status"] == "resumed" and result["promoted"]
    assert registry.read_champion(dependencies["artifacts"])[0]["version"] == result["version"] != champion["version"]
    experiments = metadata.list(EXPERIMENTS)
    assert len(experiments) == 1 and experiments[0]["promotion"]["promoted"]  # trained once, not recorded failed
    assert metadata.get(PROMOTIONS, "retrain-late")["status"] == "done"
    assert metadata.get(PROCESSED_EVENTS, "retrain-late")["promoted"]
