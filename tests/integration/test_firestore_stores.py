"""The Firestore adapters on the emulator: what only a real Firestore can show
-- the training lease under contention, and each prediction's expiry date."""

import os
import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared import wiring
from shared.stores.metadata.port import LEASES
from tests.conftest import register_model
from tests.integration.functions_client import client

pytestmark = pytest.mark.emulator
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def contend(metadata, holders: list[str], now: datetime) -> dict[str, bool]:
    """Every holder asks for the lease at the same moment, each on its own thread."""
    barrier, outcomes = threading.Barrier(len(holders)), {}

    def ask(holder):
        barrier.wait()
        outcomes[holder] = metadata.acquire_lease("training", holder, 600, now)

    threads = [threading.Thread(target=ask, args=(holder,)) for holder in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_of_many_simultaneous_claims_to_the_lease_exactly_one_wins(firestore_env):
    metadata = wiring.metadata_store()
    holders = [f"instance-{index}" for index in range(6)]
    outcomes = contend(metadata, holders, NOW)
    assert len(outcomes) == len(holders)
    winners = [holder for holder, won in outcomes.items() if won]
    assert len(winners) == 1, outcomes
    stored = wiring.metadata_store().client.collection(LEASES).document("training").get().to_dict()
    assert stored["holder"] == winners[0] and stored["expires_at"] == NOW + timedelta(seconds=600)
    # while it is held, nobody else gets it, at once or later; its holder may renew it
    others = [holder for holder in holders if holder != winners[0]]
    assert not any(contend(metadata, others, NOW + timedelta(seconds=10)).values())
    assert metadata.acquire_lease("training", winners[0], 600, NOW + timedelta(seconds=20))


def test_a_lease_is_released_only_by_its_holder_and_lapses_when_it_expires(firestore_env):
    metadata = wiring.metadata_store()
    assert metadata.acquire_lease("training", "a", 600, NOW)
    metadata.release_lease("training", "b")  # not b's to release
    assert not metadata.acquire_lease("training", "b", 600, NOW + timedelta(seconds=1))
    metadata.release_lease("training", "a")
    assert metadata.acquire_lease("training", "b", 600, NOW + timedelta(seconds=2))
    # b's instance dies holding it: after its 600 s, another may train
    assert not metadata.acquire_lease("training", "c", 600, NOW + timedelta(seconds=601))
    assert metadata.acquire_lease("training", "c", 600, NOW + timedelta(seconds=603))


@pytest.mark.parametrize("days", [30, 365])
def test_each_prediction_expires_after_the_retention_period(firestore_env, trained_candidate, days):
    """Firestore's TTL policy (infra/firestore.tf) deletes a record at its
    `expire_at`: a timestamp, PREDICTION_RETENTION_DAYS after it was made."""
    os.environ["PREDICTION_RETENTION_DAYS"] = str(days)
    wiring.reset()
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    response = client("predict").post("/", json={"instances": [
        {"temperature": 36.6, "heart_rate": 80, "blood_pressure": 120}] * 3})
    ids = [item["prediction_id"] for item in response.get_json()["predictions"]]
    collection = wiring.prediction_store().client.collection("predictions")
    for prediction_id in ids:
        document = collection.document(prediction_id).get().to_dict()
        assert isinstance(document["expire_at"], datetime) and document["expire_at"].tzinfo is not None
        assert document["expire_at"] - document["created_at"] == timedelta(days=days)
        assert abs(document["created_at"] - datetime.now(timezone.utc)) < timedelta(minutes=5)
