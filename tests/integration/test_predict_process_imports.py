"""`predict` as deployed (`functions-framework --target predict --source
main.py`) serves the champion's ONNX graph without importing scikit-learn,
SciPy, XGBoost or joblib and without unpickling anything: a `sitecustomize`
audit hook in the live process records every such import and unpickling.

The control case serves a version registered without a graph: the same hook
must then see the pipeline unpickled, or the check proves nothing."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shared import wiring
from shared.config import DEFAULTS
from tests.conftest import ROOT, register_model
from tests.emulators import free_port

AUDIT = Path(__file__).parent / "import_audit"
FORBIDDEN = ("import sklearn", "import scipy", "import xgboost", "import joblib", "unpickle", "call pickle")


def serve_and_audit(tmp_path, environment: dict[str, str]) -> tuple[dict, list[str]]:
    """Start predict as deployed, answer one prediction, stop; (answer, audit lines)."""
    log = tmp_path / "audit.log"
    port = free_port()
    env = dict(os.environ, **environment, PYTHONPATH=str(AUDIT), IMPORT_AUDIT_LOG=str(log), OMP_NUM_THREADS="1")
    # `functions-framework ...` run by this interpreter (a copied virtualenv's scripts may name another)
    process = subprocess.Popen([sys.executable, "-m", "functions_framework", "--target", "predict",
                                "--source", "main.py", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        answer, deadline = None, time.monotonic() + 60
        while answer is None and time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/?temperature=38.5&heart_rate=120&blood_pressure=90"
                with urllib.request.urlopen(url, timeout=5) as response:
                    answer = json.loads(response.read())
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(process.stderr.read().decode()[-2000:]) from None
                time.sleep(0.1)
        assert answer is not None, "predict never answered"
    finally:
        process.terminate()
        process.wait(15)
    return answer, log.read_text().splitlines() if log.exists() else []


def register_champion(trained_candidate, served_from_pipeline: bool = False) -> dict:
    store = wiring.artifact_store()
    manifest = register_model(store, trained_candidate, promote=False)
    if served_from_pipeline:  # as a version registered before ONNX export
        manifest["portable"] = {"served_from": "pipeline", "reason": "test control"}
        store.write_bytes(f"models/{manifest['version']}/manifest.json", json.dumps(manifest).encode())
    register_model(store, trained_candidate, promote=False)  # an unrelated version: only the champion loads
    from shared.models import registry

    registry.switch_champion(store, manifest["version"], reason="test", actor="test")
    return manifest


def backend_environment() -> dict[str, str]:
    names = ("LOCAL_DATA_DIR", "ARTIFACT_STORE", "ARTIFACT_BUCKET", "PREDICTION_STORE", "GOOGLE_CLOUD_PROJECT",
             "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
    return {name: os.environ[name] for name in names if name in os.environ}


DEFAULT_FAMILIES = DEFAULTS.families


@pytest.fixture(scope="module", params=DEFAULT_FAMILIES)
def family_candidate(request, small_dataset):
    """A quickly trained candidate of each family a retrain may choose by default."""
    from shared.training.candidates import train_candidates

    X, y = small_dataset
    return train_candidates(X[:1500], y[:1500], seed=7, families=(request.param,), budget_seconds=0.0)


def imported_packages(audit: list[str]) -> set[str]:
    return {line.split()[1].split(".")[0] for line in audit if line.startswith("import ")}


def test_predict_on_embedded_backends_never_imports_the_training_libraries(tmp_path, family_candidate):
    manifest = register_champion(family_candidate)
    assert manifest["portable"]["served_from"] == "onnx", manifest["portable"].get("reason")
    answer, audit = serve_and_audit(tmp_path, backend_environment())
    assert answer["model_version"] == manifest["version"]
    assert [line for line in audit if line.startswith(FORBIDDEN)] == []
    assert "onnx" not in imported_packages(audit)  # the graph is run, never parsed with onnx (+0.5 s)
    # The network serves from its weights as numpy (measured: onnxruntime's run was the largest
    # piece of a one-connection request); the tree families on onnxruntime.
    network = manifest["training_parameters"]["family"] == "mlp"
    assert ("onnxruntime" in imported_packages(audit)) is not network


@pytest.mark.emulator
def test_predict_on_the_emulators_never_imports_the_training_libraries(tmp_path, trained_candidate, firestore_env,
                                                                      gcs_env):
    manifest = register_champion(trained_candidate)
    answer, audit = serve_and_audit(tmp_path, backend_environment())
    assert answer["model_version"] == manifest["version"]
    assert [line for line in audit if line.startswith(FORBIDDEN)] == []


def test_the_audit_sees_a_pipeline_being_unpickled(tmp_path, trained_candidate):
    manifest = register_champion(trained_candidate, served_from_pipeline=True)
    answer, audit = serve_and_audit(tmp_path, backend_environment())
    assert answer["model_version"] == manifest["version"]
    assert any(line.startswith("import sklearn") for line in audit)
    assert any(line.startswith("import xgboost") for line in audit)
    assert any(line.startswith("unpickle") for line in audit)
