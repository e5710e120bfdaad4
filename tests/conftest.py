"""Fixtures shared by every tier.

Emulators are session fixtures on free loopback ports. Outside CI a missing
emulator (or optional test tool) skips its tests with the reason; with
CI=true it fails the run.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")

from shared import wiring  # noqa: E402
from shared.structured_logging import get_logger  # noqa: E402
from tests import emulators  # noqa: E402

# The project's handler is installed now, not by whichever test logs first, so
# the `mlops` logger is non-propagating before any test and pytest's capture
# (caplog included) attaches to it for every test phase.
get_logger("tests")

PROJECT = "demo-mlops-test"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch):
    """Each test starts local-only, with its own data folder and fresh adapters."""
    saved = dict(os.environ)
    for name in ("ARTIFACT_STORE", "PREDICTION_STORE", "EVENT_BUS", "ARTIFACT_BUCKET", "GOOGLE_CLOUD_PROJECT"):
        os.environ.pop(name, None)
    os.environ["LOCAL_DATA_DIR"] = str(tmp_path / "local")
    wiring.reset()
    yield
    os.environ.clear()
    os.environ.update(saved)
    wiring.reset()
    gc.unfreeze()  # ModelLoader freezes the process's objects after each model it loads


@pytest.fixture(autouse=True)
def no_leaked_log_handlers():
    """A handler left on the `mlops` logger keeps capturing (and holding) every
    later test's records: fail the test that leaks one."""
    logger = logging.getLogger("mlops")
    before = list(logger.handlers)
    yield
    leaked = [handler for handler in logger.handlers if handler not in before]
    for handler in leaked:
        logger.removeHandler(handler)
    assert not leaked, f"the test left handlers on the 'mlops' logger: {leaked}"


@pytest.fixture
def mlops_log(caplog):
    """`caplog` for the project's logger, at INFO and above; `.records` are the
    current test phase's. pytest attaches caplog to non-propagating loggers
    itself, and detaches it after each phase: never add its handler by hand."""
    with caplog.at_level(logging.INFO, logger="mlops"):
        yield caplog


def start_emulator(starter):
    """`starter()`, or skip (fail with CI=true) when its emulator is missing here."""
    try:
        return starter()
    except emulators.EmulatorUnavailable as error:
        if IN_CI:
            pytest.fail(f"emulator missing in CI: {error}")
        pytest.skip(f"emulator unavailable: {error}")


def require_module(name: str):
    """Import an optional test tool: skip without it locally, fail with CI=true."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        if IN_CI:
            pytest.fail(f"{name} is required in CI: {error}", pytrace=False)
        pytest.skip(f"{name} is not installed: {error}", allow_module_level=True)


@pytest.fixture(scope="session")
def firestore_emulator():
    emulator = start_emulator(emulators.start_firestore)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def pubsub_emulator():
    emulator = start_emulator(emulators.start_pubsub)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def gcs_emulator():
    emulator = start_emulator(emulators.start_fake_gcs)
    yield emulator
    emulator.stop()


def clear_firestore(emulator) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"http://{emulator.host}/emulator/v1/projects/{PROJECT}/databases/(default)/documents", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def firestore_env(firestore_emulator):
    """Environment for the Firestore adapters, on an emptied emulator."""
    clear_firestore(firestore_emulator)
    os.environ.update(firestore_emulator.env)
    os.environ.update({"GOOGLE_CLOUD_PROJECT": PROJECT, "PREDICTION_STORE": "firestore"})
    wiring.reset()
    return firestore_emulator


@pytest.fixture
def gcs_env(gcs_emulator, request):
    """Environment for the Cloud Storage adapter, with a fresh bucket per test."""
    import hashlib
    import re

    # Parametrised tests share a long prefix: the digest keeps their buckets apart.
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + f"-{digest}-b"
    os.environ.update(gcs_emulator.env)
    os.environ.update({"GOOGLE_CLOUD_PROJECT": PROJECT, "ARTIFACT_STORE": "gcs", "ARTIFACT_BUCKET": bucket})
    emulators.create_bucket(bucket, PROJECT)
    wiring.reset()
    return bucket


@pytest.fixture(scope="session")
def small_dataset():
    from shared.training.synthetic_data import generate_reference_data

    return generate_reference_data(3000, seed=7)


@pytest.fixture(scope="session")
def trained_candidate(small_dataset):
    """One quickly trained XGBoost candidate, reused by tests that need a model."""
    from shared.training.candidates import train_candidates

    X, y = small_dataset
    return train_candidates(X, y, seed=7, families=("xgboost",), budget_seconds=0.0)


def register_model(store, result, metadata=None, promote: bool = True, version: str | None = None):
    """Register `result`'s winner in `store` (and make it champion)."""
    from shared.models import registry
    from shared.monitoring.baseline import compute_baseline
    from shared.stores.metadata.sqlite import SqliteMetadataStore
    from shared.stores.sqlite_database import SqliteDatabase

    data = result.data
    manifest = registry.register_version(
        store, result.winner.artifact_bytes, labels=data.labels, metrics=result.winner.metrics,
        baseline=compute_baseline(data.X_train, data.y_holdout), data_fingerprint=data.fingerprint,
        training_parameters={"family": result.winner.family}, version=version,
        portable_check_rows=20_000,  # the ONNX agreement fuzz, sized for tests (registration uses 200,000)
    )
    if promote:
        metadata = metadata or SqliteMetadataStore(SqliteDatabase(Path(os.environ["LOCAL_DATA_DIR"]) / "m.db"))
        registry.promote(store, metadata, manifest["version"], reason="test", actor="test")
    return manifest


@pytest.fixture(scope="session")
def weak_candidate():
    """A deliberately weak champion (300 rows), so a retrain reliably beats it."""
    from shared.training.candidates import train_candidates
    from shared.training.synthetic_data import generate_reference_data

    X, y = generate_reference_data(300, seed=8)
    return train_candidates(X, y, seed=8, families=("xgboost",), budget_seconds=0.0)


@pytest.fixture
def quick_training_env():
    """Retraining that takes seconds: one family, no search; until production
    labels fill them, the 3,000 reference rows are its bootstrap."""
    os.environ.update({"TRAINING_FAMILIES": "xgboost", "TRAINING_ROWS": "3000", "TRAINING_MIN_ROWS": "3000",
                       "SEARCH_BUDGET_SECONDS": "0", "MODEL_REFRESH_SECONDS": "1"})
    wiring.reset()


@pytest.fixture(scope="session")
def postgres_server():
    from tests.postgres import start_postgres

    server = start_emulator(start_postgres)
    yield server
    server.stop()
