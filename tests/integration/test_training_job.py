"""The training job: launched by the retrain function, run as a real process,
bounded by its hard deadline, patient with a busy lease, and never training
twice for one request."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from shared import wiring
from shared.event_bus.local import LocalEventBus
from shared.event_bus.messages import BusMessage
from shared.models import registry
from shared.stores.metadata.port import DRIFT_REPORTS, EXPERIMENTS, LEASES, PROCESSED_EVENTS, TRAINING_REQUESTS
from shared.training.heartbeat import HEARTBEAT_SECONDS, STALE_HEARTBEATS, STARTUP_GRACE_SECONDS
from shared.training.job import run_training_request
from shared.training.launcher.port import JOB_MODULE, job_arguments
from shared.training.retrain_handler import MAX_LAUNCHES, handle_retrain_message
from tests.conftest import PROJECT, ROOT, register_model


class RecordingLauncher:
    """Counts launches instead of starting a job: for the function's own decisions."""

    def __init__(self):
        self.requests = []

    def launch(self, request_id: str) -> str:
        self.requests.append(request_id)
        return f"execution-{len(self.requests)}"


def message(report_id="r-1", message_id="m-1", publish_time=None):
    return BusMessage({"reason": "drift", "report_id": report_id}, {}, message_id,
                      publish_time or datetime.now(timezone.utc))


def store_report(metadata, report_id="r-1") -> None:
    """The drift report a retrain request names as its evidence."""
    metadata.put(DRIFT_REPORTS, report_id, {"report_id": report_id, "decision": "drift", "source": "predictions",
                                            "window_start": "2026-01-01T00:00:00+00:00",
                                            "window_end": "2026-01-02T00:00:00+00:00"})


def run_job(request: dict, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """The job as the launcher runs it: the request stored, its id on the command line."""
    wiring.metadata_store().put(TRAINING_REQUESTS, request["key"], {"status": "launched", "request": request,
                                                                     "created_at": "2026-01-01T00:00:00+00:00"})
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", JOB_MODULE, *job_arguments(request["key"])], cwd=ROOT,
                            env=dict(os.environ), capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


def test_the_function_launches_once_per_request_while_the_job_may_still_run():
    metadata, launcher, settings = wiring.metadata_store(), RecordingLauncher(), wiring.settings()
    store_report(metadata)
    first = handle_retrain_message(message(), metadata=metadata, launcher=launcher, settings=settings)
    assert first["status"] == "launched" and first["execution"] == "execution-1"
    assert launcher.requests == ["retrain-r-1"]  # by reference: the id of the stored request
    stored = metadata.get(TRAINING_REQUESTS, "retrain-r-1")
    assert stored["request"]["trigger"] == {"reason": "drift", "report_id": "r-1"}
    assert stored["request"]["data"]["window_start"] == "2026-01-01T00:00:00+00:00"  # the report's window
    again = handle_retrain_message(message(message_id="m-2"), metadata=metadata, launcher=launcher,
                                   settings=settings)
    assert again["status"] == "already_launched" and len(launcher.requests) == 1


def test_a_request_whose_job_stopped_beating_is_launched_again_then_given_up(mlops_log):
    metadata, launcher, settings = wiring.metadata_store(), RecordingLauncher(), wiring.settings()
    store_report(metadata)
    start = datetime.now(timezone.utc)

    def deliver(at):
        return handle_retrain_message(message(publish_time=at), metadata=metadata, launcher=launcher,
                                      settings=settings, now=at)["status"]

    assert deliver(start) == "launched"
    # no beat yet: the job is given its start-up grace
    assert deliver(start + timedelta(seconds=STARTUP_GRACE_SECONDS - 1)) == "already_launched"
    # it beats: alive while the beats keep coming, stranded three beats after the last
    beat = start + timedelta(seconds=STARTUP_GRACE_SECONDS - 1)
    metadata.put(TRAINING_REQUESTS, "retrain-r-1", dict(metadata.get(TRAINING_REQUESTS, "retrain-r-1"),
                                                        heartbeat_at=beat.isoformat()))
    assert deliver(beat + timedelta(seconds=STALE_HEARTBEATS * HEARTBEAT_SECONDS - 1)) == "already_launched"
    later = beat + timedelta(seconds=STALE_HEARTBEATS * HEARTBEAT_SECONDS + 1)
    assert deliver(later) == "launched" and len(launcher.requests) == 2
    for _ in range(3, MAX_LAUNCHES + 1):
        later += timedelta(seconds=STARTUP_GRACE_SECONDS + 1)
        assert deliver(later) == "launched"
    later += timedelta(seconds=STARTUP_GRACE_SECONDS + 1)
    assert deliver(later) == "failed" and len(launcher.requests) == MAX_LAUNCHES  # bounded, then surfaced
    assert metadata.get(TRAINING_REQUESTS, "retrain-r-1")["status"] == "failed"
    assert metadata.get(PROCESSED_EVENTS, "retrain-r-1")["status"] == "failed"
    assert any(record.getMessage().startswith("training request failed") and record.levelname == "ERROR"
               for record in mlops_log.records)
    assert deliver(later + timedelta(seconds=1)) == "duplicate"


def test_a_failed_launch_raises_so_pub_sub_redelivers():
    from shared.errors import ServiceUnavailable

    class Unreachable:
        def launch(self, request):
            raise ServiceUnavailable("Cloud Run API unreachable")

    metadata = wiring.metadata_store()
    store_report(metadata)
    with pytest.raises(ServiceUnavailable):
        handle_retrain_message(message(), metadata=metadata, launcher=Unreachable(), settings=wiring.settings())
    # stored, not launched: the redelivery finds no heartbeat and, past the grace, launches
    assert metadata.get(TRAINING_REQUESTS, "retrain-r-1")["status"] == "launching"


@pytest.mark.slow
def test_the_hard_deadline_stops_the_whole_training_not_only_new_configurations(weak_candidate):
    """Every family with no search budget still fits for much longer than 3 s;
    the deadline stops it mid-fit, records the failure and frees the lease."""
    os.environ.update({"TRAINING_ROWS": "60000", "TRAINING_FAMILIES": "random_forest,xgboost,mlp",
                       "SEARCH_BUDGET_SECONDS": "0", "TRAINING_DEADLINE_SECONDS": "3",
                       "TRAINING_LEASE_SECONDS": "123", "TRAINING_JOB_TIMEOUT_SECONDS": "366"})
    wiring.reset()
    champion = register_model(wiring.artifact_store(), weak_candidate, metadata=wiring.metadata_store())
    trace = "5e0c63257de34c92bf9efcd03927272e"
    result, seconds = run_job({"key": "retrain-deadline", "trigger": {"reason": "test"}, "trace_id": trace})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failure = next(line for line in lines if line["message"].startswith("retrain failed"))
    assert failure["logging.googleapis.com/trace"] == f"projects/local/traces/{trace}"  # the retrain's trace
    assert json.loads(result.stdout.strip().splitlines()[-1])["code"] == "training_deadline"
    assert seconds < 3 + 25  # the deadline, plus starting Python and recording the failure
    metadata = wiring.metadata_store()
    done = metadata.get(PROCESSED_EVENTS, "retrain-deadline")
    assert done["status"] == "failed" and "deadline" in done["reason"]
    assert metadata.get(LEASES, "training") is None
    assert registry.read_champion(wiring.artifact_store())[0]["version"] == champion["version"]


def test_a_job_started_with_a_bad_request_exits_without_retrying():
    for request_id in ("a/b/c", "r" * 1600, "no-such-request"):
        result = subprocess.run([sys.executable, "-m", JOB_MODULE, "--request-id", request_id], cwd=ROOT,
                                env=dict(os.environ), capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "training job started" in result.stderr, result.stderr[-500:]


def test_a_busy_lease_is_waited_for_then_the_request_goes_back_on_the_topic():
    """Past the time the job may wait, the request is republished, not dropped;
    and the function launches a requeued request again."""
    settings, metadata, bus = wiring.settings(), wiring.metadata_store(), LocalEventBus()
    metadata.acquire_lease("training", "another-job", 3600, datetime.now(timezone.utc))
    clock, pauses = [0.0], []

    def sleep(seconds):
        pauses.append(seconds)
        clock[0] += seconds

    request = {"key": "retrain-r-9", "trigger": {"reason": "drift", "report_id": "r-9"}}
    result = run_training_request(request, predictions=None, artifacts=None, metadata=metadata, bus=bus,
                                  settings=settings, clock=lambda: clock[0], sleep=sleep)
    assert result["status"] == "requeued"
    waited = settings.training_job_timeout_seconds - settings.training_lease_seconds - 120
    assert sum(pauses) == pytest.approx(waited) and waited >= settings.training_lease_seconds
    assert pauses[:3] == [1.0, 2.0, 4.0] and max(pauses) <= HEARTBEAT_SECONDS / 4
    [(topic, republished)] = bus.published
    assert topic == settings.retrain_topic and republished.data == {"request_id": "retrain-r-9", "source": "sweep"}
    assert metadata.get(TRAINING_REQUESTS, "retrain-r-9")["status"] == "requeued"
    launcher = RecordingLauncher()
    relaunch = handle_retrain_message(republished, metadata=metadata, launcher=launcher, settings=settings)
    assert relaunch["status"] == "launched" and launcher.requests == ["retrain-r-9"]


@pytest.mark.slow
@pytest.mark.emulator
def test_a_failed_model_promoted_publish_never_trains_again(pubsub_emulator, weak_candidate, quick_training_env):
    """The promoted-notice topic does not exist on the emulator: the publish
    fails, the task fails for a retry -- and the retry only publishes again
    (the promotion's outbox entry), never trains a second model."""
    from shared.errors import ServiceUnavailable
    from shared.event_bus.pubsub import PubSubEventBus

    os.environ.update(pubsub_emulator.env)
    os.environ["MODEL_PROMOTED_TOPIC"] = f"missing-{time.time_ns()}"
    os.environ["PROMOTION_MAX_RECALL_DROP"] = "1"  # the gate is not under test: the run must reach the promotion
    wiring.reset()
    dependencies = dict(wiring.training_job_dependencies(), bus=PubSubEventBus(PROJECT))
    champion = register_model(dependencies["artifacts"], weak_candidate, metadata=dependencies["metadata"])
    request = {"key": "retrain-notice", "trigger": {"reason": "test"}}
    for _ in range(2):  # the first attempt and the task's retry
        with pytest.raises(ServiceUnavailable):
            run_training_request(request, **dependencies, execution="e-1")
    promoted = registry.read_champion(dependencies["artifacts"])[0]["version"]
    assert promoted != champion["version"]
    assert len(dependencies["metadata"].list(EXPERIMENTS)) == 1  # trained once
    assert dependencies["metadata"].get(LEASES, "training") is None


def test_the_cloud_run_launcher_runs_the_job_with_the_request_id_as_its_argument():
    from google.cloud import run_v2

    from shared.training.launcher.cloud_run import CloudRunTrainingLauncher

    class Jobs:
        def run_job(self, request, timeout):
            self.request = request
            return type("Operation", (), {"metadata": run_v2.Execution(name="executions/abc")})()

    jobs = Jobs()
    launcher = CloudRunTrainingLauncher("projects/p/locations/europe-west1/jobs/training", client=jobs)
    assert launcher.launch("retrain-r-1") == "executions/abc"
    assert jobs.request.name == "projects/p/locations/europe-west1/jobs/training"
    [override] = jobs.request.overrides.container_overrides
    assert list(override.args) == job_arguments("retrain-r-1") == ["--request-id", "retrain-r-1"]
