"""The training job: one retrain request trained, gated and promoted, as long as
training needs, outside any function's time limit.

Run as `python -m shared.training.job --request '<json>'`: by a Cloud Run job
execution in the cloud (the request arrives as an argument override), by a
subprocess locally (`make run`, the tests). Same training, registry and gate
code as `cli train`: `run_training`.

Time limits agree (checked by `shared.config.check_training_time_limits`):
- TRAINING_DEADLINE_SECONDS bounds the whole training -- data loading, search,
  refits, registration -- by an alarm that interrupts it wherever it is.
- The lease outlives the deadline plus a margin to record the run, so no
  second training starts under a running one; it expires by itself if the
  job is killed, and a retried task of the same execution takes it back.
- The job's time limit outlives the lease; what is left of it is how long a
  job waits for another one's lease before it puts its request back on the
  retrain topic -- a request is never dropped because the lease was busy.

A promotion is marked done before its `model-promoted` notice is published:
a failed publish is logged (and alerted on), never trained again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from shared.config import TRAINING_FINISH_MARGIN_SECONDS, Settings
from shared.errors import ServiceError, TrainingDeadlineExceeded
from shared.stores.metadata.port import EXPERIMENTS, PROCESSED_EVENTS, PROMOTIONS, TRAINING_REQUESTS
from shared.structured_logging import get_logger, trace_context
from shared.training.retrain_handler import train_for_request

log = get_logger("training_job")
TRAINING_LEASE = "training"
LEASE_POLL_SECONDS = (1.0, 30.0)  # first and longest pause between attempts at a busy lease


@contextlib.contextmanager
def hard_deadline(seconds: float) -> Iterator[None]:
    """Raise `TrainingDeadlineExceeded` in this (main) thread once `seconds` pass.

    SIGALRM interrupts between bytecodes, so a long fit stops at its next tree,
    boosting round or epoch rather than at the next configuration's start.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("hard_deadline needs the main thread (signals are delivered there)")

    def expire(signum, frame):
        raise TrainingDeadlineExceeded(f"training ran past its deadline of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_training_request(request: dict, *, predictions, artifacts, metadata, bus, settings: Settings,
                         execution: str | None = None, clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep) -> dict:
    """Train for one request under the lease; returns what happened.

    Raises only for failures a retry of the task can fix (a store down).
    """
    key = request["key"]
    holder = f"{key}/{execution or uuid.uuid4().hex}"
    done = metadata.get(PROCESSED_EVENTS, key)
    if done is not None:
        return {"status": "duplicate", "key": key, "previous": done}
    wait_until = clock() + max(0.0, settings.training_job_timeout_seconds - settings.training_lease_seconds
                               - TRAINING_FINISH_MARGIN_SECONDS)
    pause, longest_pause = LEASE_POLL_SECONDS
    while not metadata.acquire_lease(TRAINING_LEASE, holder, settings.training_lease_seconds,
                                     datetime.now(timezone.utc)):
        if clock() >= wait_until:
            return _requeue(request, metadata=metadata, bus=bus, settings=settings)
        sleep(min(pause, max(0.0, wait_until - clock())))
        pause = min(pause * 2, longest_pause)
    try:
        done = metadata.get(PROCESSED_EVENTS, key)  # a twin may have finished while we waited
        if done is not None:
            return {"status": "duplicate", "key": key, "previous": done}
        return _train(request, predictions=predictions, artifacts=artifacts, metadata=metadata, bus=bus,
                      settings=settings)
    finally:
        metadata.release_lease(TRAINING_LEASE, holder)


def _train(request: dict, *, predictions, artifacts, metadata, bus, settings: Settings) -> dict:
    key, trigger = request["key"], request.get("trigger") or {}
    started = datetime.now(timezone.utc)

    def train_or_resume() -> dict:
        return train_for_request(request.get("data") or {}, key=key, trigger=trigger, predictions=predictions,
                                 artifacts=artifacts, metadata=metadata, bus=bus, settings=settings, now=started)

    try:
        with hard_deadline(settings.training_deadline_seconds):
            return train_or_resume()
    except TrainingDeadlineExceeded as error:
        if metadata.get(PROMOTIONS, key) is not None:
            # The promotion was decided before the alarm: its remaining steps are
            # short and safe to repeat, so finish them rather than fail the request.
            log.warning("deadline passed after the promotion was decided; finishing it", extra={"fields": {
                "key": key}})
            return train_or_resume()
        # A retry would run out the same way: record the failure, settle the request, alert.
        run_id = uuid.uuid4().hex
        metadata.put(EXPERIMENTS, run_id, {
            "run_id": run_id, "created_at": started.isoformat(), "status": "failed", "reason": error.message,
            "trigger": trigger, "promotion": {"promoted": False, "reasons": [error.message]},
            "winner": {"family": None, "version": None}})
        metadata.put(PROCESSED_EVENTS, key, {"created_at": started.isoformat(), "status": "failed",
                                             "run_id": run_id, "reason": error.message})
        log.error("retrain failed; champion untouched", extra={"fields": {
            "key": key, "run_id": run_id, "reason": error.message, "code": error.code}})
        return {"status": "failed", "reason": error.message, "run_id": run_id, "code": error.code}


def _requeue(request: dict, *, metadata, bus, settings: Settings) -> dict:
    """The lease stayed busy for all the time this job may wait: hand the
    request back to the retrain topic instead of dropping it."""
    key = request["key"]
    metadata.put(TRAINING_REQUESTS, key, {"created_at": datetime.now(timezone.utc).isoformat(),
                                          "status": "requeued", "request": request})
    trigger = request.get("trigger") or {}
    data = {"reason": trigger.get("reason"), "report_id": trigger.get("report_id")}
    attributes = {"report_id": trigger["report_id"]} if trigger.get("report_id") else {}
    if not trigger.get("report_id"):  # keep the dedupe key of a request without a report
        data["report_id"] = key.removeprefix("retrain-")
    message_id = bus.publish(settings.retrain_topic, data, attributes)
    log.warning("training lease busy for the whole wait; request put back on the topic", extra={"fields": {
        "key": key, "message_id": message_id}})
    return {"status": "requeued", "key": key, "message_id": message_id}


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when the request is settled (trained, failed for good, duplicate,
    requeued); 1 when a retry of the task can help."""
    from shared import wiring

    parser = argparse.ArgumentParser(prog="python -m shared.training.job", description=__doc__.split("\n")[0])
    parser.add_argument("--request", required=True, help="the retrain request as JSON (see retrain_handler)")
    arguments = parser.parse_args(argv)
    try:
        request = json.loads(arguments.request)
        if not isinstance(request, dict) or not isinstance(request.get("key"), str):
            raise ValueError("the request must be a JSON object with a string 'key'")
    except ValueError as error:
        log.error("training job started with a bad request", extra={"fields": {"reason": str(error)}})
        return 2
    dependencies = wiring.training_job_dependencies()
    settings = dependencies["settings"]
    # Cloud Run names the execution; its retried tasks share it, and so the lease.
    execution = os.environ.get("CLOUD_RUN_EXECUTION")
    with trace_context({"X-Cloud-Trace-Context": request.get("trace_id") or ""}, settings.google_cloud_project):
        try:
            result = run_training_request(request, **dependencies, execution=execution)
        except ServiceError as error:
            log.error("training job failed; the task will be retried", extra={"fields": {
                "key": request["key"], "reason": error.message, "code": error.code}})
            return 1
        finally:
            if hasattr(dependencies["bus"], "join"):  # the local bus delivers in the background
                dependencies["bus"].join()
        log.info("training job finished", extra={"fields": result})
        print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
