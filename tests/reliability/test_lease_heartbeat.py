"""The training lease belongs to a request's running job and lives only as
long as its heartbeat: a live job keeps it past its TTL, a dead job's retry
takes it within two heartbeats of the death (bench/fail_safe.py times it with a killed
process)."""

import time
from datetime import datetime, timezone

from shared import wiring
from shared.stores.metadata.port import LEASES, TRAINING_REQUESTS
from shared.training.heartbeat import Heartbeat, lease_ttl
from shared.training.job import TRAINING_LEASE, run_training_request

BEAT = 0.4
LIVE_BEAT = 1.0  # half a beat of slack per renewal: room for a loaded machine


class Acquired(Exception):
    """Stops the job right after it took the lease: only the takeover is under test."""


class RecordsTakeover:
    """The real metadata store; notes when `holder` first gets the lease, then stops the job."""

    def __init__(self, metadata, holder_prefix):
        self._metadata, self.prefix, self.taken_at = metadata, holder_prefix, None

    def __getattr__(self, name):
        return getattr(self._metadata, name)

    def acquire_lease(self, name, holder, ttl_seconds, now):
        taken = self._metadata.acquire_lease(name, holder, ttl_seconds, now)
        if taken and holder.startswith(self.prefix) and self.taken_at is None:
            self.taken_at = time.monotonic()
        return taken

    def get(self, collection, document_id):
        if self.taken_at is not None and collection != TRAINING_REQUESTS:
            raise Acquired()
        return self._metadata.get(collection, document_id)


def test_a_beating_job_keeps_its_lease_past_its_ttl():
    metadata = wiring.metadata_store()
    assert metadata.acquire_lease(TRAINING_LEASE, "alive/e-1", lease_ttl(LIVE_BEAT), datetime.now(timezone.utc))
    with Heartbeat(metadata, "alive", lease=TRAINING_LEASE, holder="alive/e-1", seconds=LIVE_BEAT) as heartbeat:
        heartbeat.holding = True
        time.sleep(3 * lease_ttl(LIVE_BEAT))
        assert not metadata.acquire_lease(TRAINING_LEASE, "other/e-9", lease_ttl(LIVE_BEAT), datetime.now(timezone.utc))
        assert not heartbeat.lost.is_set()
    assert metadata.get(LEASES, TRAINING_LEASE)["holder"] == "alive/e-1"


def test_a_dead_jobs_retry_takes_the_lease_within_two_heartbeats():
    metadata, settings = wiring.metadata_store(), wiring.settings("training_job")
    request = {"key": "retrain-r-dead", "trigger": {"reason": "drift", "report_id": "r-dead"}}
    # the dead job's last beat, just now: its lease has two beats to live
    assert metadata.acquire_lease(TRAINING_LEASE, "retrain-r-dead/e-1", lease_ttl(BEAT), datetime.now(timezone.utc))
    died = time.monotonic()
    recording = RecordsTakeover(metadata, "retrain-r-dead/e-2")
    try:
        run_training_request(request, predictions=None, artifacts=None, metadata=recording, bus=None,
                             settings=settings, execution="e-2", heartbeat_seconds=BEAT)
    except Acquired:
        pass
    assert recording.taken_at is not None
    took = recording.taken_at - died
    assert took <= 2 * BEAT, f"the retry took the lease after {took:.2f} s ({took / BEAT:.1f} heartbeats)"
