"""The training job: one retrain request trained, gated and promoted, as long as
training needs, outside any function's time limit.

Run as `python -m jobs.train --request-id <id>` (`jobs/train.py`): by a Cloud
Run job execution in the cloud, by a subprocess locally (`make run`, the
tests). The request arrives by reference -- the id of its
`training_requests` document -- never on the command line. Same training,
registry and gate code as `cli train`: `run_training`.

Time limits agree (checked by `shared.config.check_training_time_limits`):
- TRAINING_DEADLINE_SECONDS bounds the whole training -- data loading, search,
  refits, registration -- by an alarm that interrupts it wherever it is.
- The lease lives 1.5 heartbeats past its last renewal and a heartbeat
  thread renews it (`heartbeat`), so no second training starts under a
  running one, and a killed job's retry takes it within two heartbeats.
- What is left of the job's time limit after TRAINING_LEASE_SECONDS is how
  long a job waits for another one's lease before it puts its request back
  on the retrain topic -- a request is never dropped because the lease was busy.

A promotion is marked done before its `model-promoted` notice is published:
a failed publish is logged (and alerted on), never trained again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from shared.config import TRAINING_FINISH_MARGIN_SECONDS, Settings
from shared.errors import TrainingDeadlineExceeded
from shared.stores.metadata.port import EXPERIMENTS, PROCESSED_EVENTS, PROMOTIONS, TRAINING_REQUESTS
from shared.structured_logging import get_logger
from shared.training.heartbeat import HEARTBEAT_SECONDS, Heartbeat, lease_ttl
from shared.training.retrain_handler import train_for_request

log = get_logger("training_job")
TRAINING_LEASE = "training"
LEASE_POLL_SECONDS = (1.0, 30.0)  # first and longest pause between attempts at a busy lease
DEADLINE_REPEAT_SECONDS = 1.0  # the deadline's alarm goes off again this often until the training stops


@contextlib.contextmanager
def hard_deadline(seconds: float, expired: list | None = None) -> Iterator[None]:
    """Raise `TrainingDeadlineExceeded` in this (main) thread once `seconds` pass.

    SIGALRM interrupts between bytecodes, so a long fit stops at its next tree,
    boosting round or epoch rather than at the next configuration's start.
    The alarm also appends to `expired`: a library cleaning up after the
    interruption can replace our exception with its own (a thread pool
    interrupted while starting raises AttributeError), and the caller must
    still know the deadline passed. It repeats every `DEADLINE_REPEAT_SECONDS`
    until the block ends: one alarm that a catch-all swallowed would otherwise
    leave the rest of the training without a limit.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("hard_deadline needs the main thread (signals are delivered there)")

    def expire(signum, frame):
        if expired is not None:
            expired.append(True)
        raise TrainingDeadlineExceeded(f"training ran past its deadline of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, DEADLINE_REPEAT_SECONDS)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        except TrainingDeadlineExceeded:  # an alarm landed just before: `expired` says so; the next is 1 s away
            signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_training_request(request: dict, *, predictions, artifacts, metadata, bus, settings: Settings,
                         execution: str | None = None, clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep,
                         heartbeat_seconds: float = HEARTBEAT_SECONDS) -> dict:
    """Train for one request under the lease, beating all along; returns what happened.

    Raises only for failures a retry of the task can fix (a store down).
    """
    key = request["key"]
    holder = f"{key}/{execution or uuid.uuid4().hex}"
    done = metadata.get(PROCESSED_EVENTS, key)
    if done is not None:
        return {"status": "duplicate", "key": key, "previous": done}
    wait_until = clock() + max(0.0, settings.training_job_timeout_seconds - settings.training_lease_seconds
                               - TRAINING_FINISH_MARGIN_SECONDS)
    # Polled every quarter beat at most: a dead holder's lease is taken within two beats of its death.
    longest_pause = min(LEASE_POLL_SECONDS[1], heartbeat_seconds / 4)
    pause = min(LEASE_POLL_SECONDS[0], longest_pause)
    with Heartbeat(metadata, key, lease=TRAINING_LEASE, holder=holder, seconds=heartbeat_seconds) as heartbeat:
        while not metadata.acquire_lease(TRAINING_LEASE, holder, lease_ttl(heartbeat_seconds),
                                         datetime.now(timezone.utc)):
            if clock() >= wait_until:
                return _requeue(request, metadata=metadata, bus=bus, settings=settings)
            sleep(min(pause, max(0.0, wait_until - clock())))
            pause = min(pause * 2, longest_pause)
        heartbeat.holding = True
        try:
            done = metadata.get(PROCESSED_EVENTS, key)  # a twin may have finished while we waited
            if done is not None:
                return {"status": "duplicate", "key": key, "previous": done}
            return _train(request, predictions=predictions, artifacts=artifacts, metadata=metadata, bus=bus,
                          settings=settings)
        finally:
            heartbeat.holding = False
            metadata.release_lease(TRAINING_LEASE, holder)


def _train(request: dict, *, predictions, artifacts, metadata, bus, settings: Settings,
           train: Callable[..., dict] | None = None) -> dict:
    key, trigger = request["key"], request.get("trigger") or {}
    started = datetime.now(timezone.utc)
    train = train or train_for_request

    def train_or_resume() -> dict:
        return train(request.get("data") or {}, key=key, trigger=trigger, predictions=predictions,
                     artifacts=artifacts, metadata=metadata, bus=bus, settings=settings, now=started)

    expired: list = []
    result = None
    try:
        with hard_deadline(settings.training_deadline_seconds, expired):
            result = train_or_resume()
        if not expired:
            return result
        # The alarm went off and something inside swallowed it: the run went on past its deadline.
        raise TrainingDeadlineExceeded(f"training ran past its deadline of {settings.training_deadline_seconds:g} s")
    except Exception as raised:  # noqa: BLE001 -- only the deadline's, whatever type it surfaced as
        if not expired and not isinstance(raised, TrainingDeadlineExceeded):
            raise
        error = raised if isinstance(raised, TrainingDeadlineExceeded) else TrainingDeadlineExceeded(
            f"training ran past its deadline of {settings.training_deadline_seconds:g} s")
        if metadata.get(PROMOTIONS, key) is not None:
            # The promotion was decided before the alarm: its remaining steps are
            # short and safe to repeat, so finish them rather than fail the request.
            log.warning("deadline passed after the promotion was decided; finishing it", extra={"fields": {
                "key": key}})
            return train_or_resume()
        settled = metadata.get(PROCESSED_EVENTS, key)
        if settled is not None:
            # The run recorded itself (done or failed) before or after a swallowed alarm: one
            # request keeps one record, never a second, contradicting "failed" over its marker.
            log.warning("training ran past its deadline but recorded itself; keeping its record", extra={
                "fields": {"key": key, "run_id": settled.get("run_id"), "status": settled.get("status")}})
            return result or {"status": "recorded_before_deadline", "key": key, "run_id": settled.get("run_id"),
                              "previous": settled}
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
    document = metadata.get(TRAINING_REQUESTS, key) or {}
    metadata.put(TRAINING_REQUESTS, key, {**document, "status": "requeued", "request": request,
                                          "requeued_at": datetime.now(timezone.utc).isoformat()})
    # by reference: the request document is the request; the message only names it
    message_id = bus.publish(settings.retrain_topic, {"request_id": key, "source": "sweep"}, {})
    log.warning("training lease busy for the whole wait; request put back on the topic", extra={"fields": {
        "key": key, "message_id": message_id}})
    return {"status": "requeued", "key": key, "message_id": message_id}
