"""The registry on fake-gcs-server: generation preconditions make concurrent
promotions safe, and a rollback is served after the refresh interval."""

import os
import threading
import time

from shared import wiring
from shared.errors import PromotionConflict
from shared.models import registry
from tests.conftest import register_model
from tests.integration.functions_client import client


def test_two_concurrent_promotions_exactly_one_wins(gcs_env, trained_candidate):
    store, metadata = wiring.artifact_store(), wiring.metadata_store()
    champion = register_model(store, trained_candidate, metadata=metadata)
    challengers = [register_model(store, trained_candidate, promote=False) for _ in range(2)]
    seen = registry.read_champion(store)
    barrier = threading.Barrier(2)
    outcomes = {}

    def promote(manifest):
        barrier.wait()
        try:
            registry.promote(store, metadata, manifest["version"], reason="race", actor="test", expected=seen)
            outcomes[manifest["version"]] = "won"
        except PromotionConflict as conflict:
            outcomes[manifest["version"]] = conflict.code

    threads = [threading.Thread(target=promote, args=(m,)) for m in challengers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["promotion_conflict", "won"]
    winner = next(version for version, outcome in outcomes.items() if outcome == "won")
    pointer = registry.read_champion(store)[0]
    assert pointer["version"] == winner and pointer["previous_version"] == champion["version"]


def test_rollback_is_served_after_the_refresh_interval(gcs_env, trained_candidate):
    os.environ["MODEL_REFRESH_SECONDS"] = "1"
    store, metadata = wiring.artifact_store(), wiring.metadata_store()
    first = register_model(store, trained_candidate, metadata=metadata)
    second = register_model(store, trained_candidate, metadata=metadata)
    predict = client("predict")
    query = "/?temperature=36.6&heart_rate=80&blood_pressure=120"
    assert predict.get(query).get_json()["model_version"] == second["version"]
    registry.rollback(store, metadata, actor="test")
    deadline = time.monotonic() + 10
    served = None
    while time.monotonic() < deadline:
        served = predict.get(query).get_json()["model_version"]
        if served == first["version"]:
            break
        time.sleep(0.2)
    assert served == first["version"]
