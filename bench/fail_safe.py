"""Event functions that fail safe (issue 24), the figures the issue names:

- `/retrain` under `make run` answers once the training job has *started*
  (target: within 2 s): the real local server (`local_server.py`, gunicorn,
  two workers), manual retrain CloudEvents posted one after another.
- A killed training job's retry takes the lease within 2 heartbeats: a real
  job process (`run_training_request`, as `jobs.train` runs it) holding the
  lease is SIGKILLed mid-training; a second execution of the same request
  polls for the lease; the seconds from the kill to the takeover, also in
  heartbeats.
- The ten-year hourly re-aggregation is refused by the drift-check schema.

`python -m bench.fail_safe [--quick]`.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK_TRAINING = {"TRAINING_FAMILIES": "xgboost", "TRAINING_ROWS": "3000", "TRAINING_MIN_ROWS": "3000",
                  "SEARCH_BUDGET_SECONDS": "0", "OMP_NUM_THREADS": "1"}
HEARTBEAT_SECONDS = 2.0  # the deployed beat is 30 s; the ratio is what matters


def retrain_answer_seconds(requests: int) -> list[float]:
    """Answer times of `requests` manual retrain CloudEvents on the local server."""
    from tests.e2e.server import LocalServer

    folder = tempfile.mkdtemp(prefix="bench-fail-safe-")
    training = {name: value for name, value in QUICK_TRAINING.items() if name != "OMP_NUM_THREADS"}
    server = LocalServer({"LOCAL_DATA_DIR": folder, **training}).start(bootstrap=False)
    seconds = []
    try:
        for _ in range(requests):
            headers = {"Content-Type": "application/json", "ce-id": uuid.uuid4().hex, "ce-specversion": "1.0",
                       "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "ce-source": "//bench"}
            from shared.event_bus.messages import envelope

            body = json.dumps(envelope({"reason": "manual", "requested_by": "bench"})).encode()
            request = urllib.request.Request(server.url + "/retrain", data=body, headers=headers, method="POST")
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as response:
                assert response.status == 200, response.status
            seconds.append(time.perf_counter() - started)
    finally:
        # the server and the jobs it started share its session: stop them all
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    return seconds


JOB = """
import sys
from shared import wiring
from shared.training.job import run_training_request
request = {"key": sys.argv[1], "trigger": {"reason": "manual", "requested_by": "bench"}}
run_training_request(request, **wiring.training_job_dependencies(), execution="e-1",
                     heartbeat_seconds=float(sys.argv[2]))
"""


def takeover_seconds(heartbeat: float) -> float:
    """Seconds from SIGKILL of a lease-holding job to its retry holding the lease."""
    from shared import wiring
    from shared.config import load_settings
    from shared.stores.metadata.port import LEASES
    from shared.training.job import TRAINING_LEASE, run_training_request

    folder = tempfile.mkdtemp(prefix="bench-takeover-")
    # a training long enough (tens of seconds) to be killed mid-way
    environment = dict(os.environ, LOCAL_DATA_DIR=folder, **dict(
                           QUICK_TRAINING, TRAINING_ROWS="20000", TRAINING_MIN_ROWS="20000",
                           TRAINING_FAMILIES="random_forest,xgboost"),
                       PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    settings = load_settings(environment, function="training_job")
    metadata = wiring.metadata_store(settings)
    key = f"retrain-bench-{uuid.uuid4().hex[:8]}"
    job = subprocess.Popen([sys.executable, "-c", JOB, key, str(heartbeat)], cwd=ROOT, env=environment,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (metadata.get(LEASES, TRAINING_LEASE) or {}).get("holder") != f"{key}/e-1":
        if time.monotonic() > deadline or job.poll() is not None:
            raise RuntimeError("the job never took the lease")
        time.sleep(0.05)
    time.sleep(1.5 * heartbeat)  # it beats at least once
    job.kill()
    killed = time.monotonic()
    job.wait()

    class Taken(Exception):
        pass

    class Recording:
        def __getattr__(self, name):
            return getattr(metadata, name)

        def acquire_lease(self, name, holder, ttl, now):
            if metadata.acquire_lease(name, holder, ttl, now):
                raise Taken(time.monotonic())
            return False

    try:
        run_training_request({"key": key, "trigger": {}}, predictions=None, artifacts=None, metadata=Recording(),
                             bus=None, settings=settings, execution="e-2", heartbeat_seconds=heartbeat)
    except Taken as taken:
        return taken.args[0] - killed
    raise RuntimeError("the retry returned without taking the lease (did the job finish before the kill?)")


def main(quick: bool = False) -> dict:
    from shared.errors import ValidationError
    from shared.event_bus.messages import BusMessage
    from shared.event_bus.schemas import DRIFT_CHECK, MAX_HOURLY_WINDOW_HOURS, validate

    answers = retrain_answer_seconds(3 if quick else 5)
    takeovers = [takeover_seconds(HEARTBEAT_SECONDS) for _ in range(2 if quick else 5)]
    try:
        validate(BusMessage({"aggregation": "hourly", "window_hours": 87600}), DRIFT_CHECK)
        ten_years = "accepted"
    except ValidationError as error:
        ten_years = f"refused ({error.field}: at most {MAX_HOURLY_WINDOW_HOURS} hours)"
    return {
        "retrain_answer_seconds": {"runs": [round(s, 3) for s in answers],
                                   "median": round(statistics.median(answers), 3), "max": round(max(answers), 3),
                                   "target": 2.0},
        "lease_takeover_after_kill": {"heartbeat_seconds": HEARTBEAT_SECONDS,
                                      "runs_seconds": [round(s, 2) for s in takeovers],
                                      "median_seconds": round(statistics.median(takeovers), 2),
                                      "max_heartbeats": round(max(takeovers) / HEARTBEAT_SECONDS, 2),
                                      "target_heartbeats": 2},
        "hourly_ten_years": ten_years,
    }


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
