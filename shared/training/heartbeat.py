"""The training job's heartbeat: what keeps its lease, and its request, alive.

A lease held for a whole training (an hour) strands the request for an hour
when the job dies: its retry, a new execution, waits the lease out. Instead
the lease lives only `LEASE_TTL_HEARTBEATS` (1.5) heartbeats past its last
renewal and a thread renews it every `HEARTBEAT_SECONDS` (a failed beat is
tried again a quarter beat later); the same beat stamps the request document
(`heartbeat_at`), so the retrain function and the hourly sweep can tell a
running request from a stranded one. A dead job stops beating; a retry
polling every quarter beat takes over at most 1.5 + 0.25 beats after the
death: within two heartbeats.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone

from shared.stores.metadata.port import TRAINING_REQUESTS
from shared.structured_logging import get_logger

log = get_logger("training_job")
HEARTBEAT_SECONDS = 30.0
LEASE_TTL_HEARTBEATS = 1.5  # the lease outlives its last renewal by this many beats
STALE_HEARTBEATS = 3  # a request whose job has not beaten for this long is stranded
STARTUP_GRACE_SECONDS = 600.0  # from launch to the first beat (a cold image pull)


def lease_ttl(heartbeat_seconds: float = HEARTBEAT_SECONDS) -> float:
    return LEASE_TTL_HEARTBEATS * heartbeat_seconds


def stranded(request_document: dict, now: datetime, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> bool:
    """Whether a launched request's job shows no sign of life: no beat for
    `STALE_HEARTBEATS` beats, or none at all within the start-up grace."""
    if request_document.get("status") not in ("launching", "launched"):
        return False
    beat = request_document.get("heartbeat_at")
    if beat:
        return (now - datetime.fromisoformat(beat)).total_seconds() > STALE_HEARTBEATS * heartbeat_seconds
    launched = request_document.get("launched_at") or request_document.get("created_at")
    return (now - datetime.fromisoformat(launched)).total_seconds() > STARTUP_GRACE_SECONDS


class Heartbeat:
    """Beats on a daemon thread until stopped: stamps the request and, once
    `holding` is set, renews the lease. A beat that fails is logged; a lease
    lost to someone else sets `lost` (the job then stops before promoting)."""

    def __init__(self, metadata, key: str, *, lease: str, holder: str,
                 seconds: float = HEARTBEAT_SECONDS, clock: Callable[[], datetime] | None = None):
        self.metadata, self.key, self.lease, self.holder = metadata, key, lease, holder
        self.seconds = seconds
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.holding = False
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{key}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.seconds)

    def _run(self) -> None:
        pause = self.seconds
        while not self._stop.wait(pause):
            pause = self.seconds if self.beat() else self.seconds / 4

    def beat(self) -> bool:
        """One beat; False when the store did not take it (tried again sooner)."""
        now = self.clock()
        try:
            if self.holding and not self.metadata.acquire_lease(self.lease, self.holder, lease_ttl(self.seconds),
                                                                 now):
                self.lost.set()
                log.error("training lease lost to another holder", extra={"fields": {"key": self.key}})
            document = self.metadata.get(TRAINING_REQUESTS, self.key)
            if document is not None and document.get("status") in ("launching", "launched"):
                self.metadata.put(TRAINING_REQUESTS, self.key, dict(document, heartbeat_at=now.isoformat(),
                                                                   status="launched"))
            return True
        except Exception as error:  # noqa: BLE001 -- a missed beat is tried again a quarter beat later
            log.warning("heartbeat failed", extra={"fields": {"key": self.key, "error": type(error).__name__}})
            return False
