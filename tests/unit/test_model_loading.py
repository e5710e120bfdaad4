import gc
import json
import threading

import numpy as np
import pytest

from shared.errors import ModelUnavailable
from shared.models.agreement import PROBABILITY_TOLERANCE
from shared.models.layout import model_path
from shared.models.loading import ModelLoader, load_version, probabilities_to_predictions, warn_on_library_mismatch
from shared.schema import LABELS
from shared.serving.prediction_service import describe_model
from shared.stores.artifacts.local import LocalArtifactStore
from tests.conftest import register_model


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path):
    return LocalArtifactStore(tmp_path / "artifacts")


def test_no_champion_means_model_unavailable(store):
    with pytest.raises(ModelUnavailable):
        ModelLoader(store).get()


def test_loads_and_caches_the_champion(store, trained_candidate):
    manifest = register_model(store, trained_candidate)
    loader = ModelLoader(store, refresh_seconds=60, clock=FakeClock())
    first = loader.get()
    assert first.version == manifest["version"]
    assert loader.get() is first  # cached, no re-download
    label, probabilities = first.predict([[36.6, 72, 118]])[0]
    assert label in LABELS and set(probabilities) == set(LABELS)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_the_champion_is_served_from_its_onnx_graph_with_the_pipelines_probabilities(store, trained_candidate):
    manifest = register_model(store, trained_candidate)
    model = ModelLoader(store).get()
    assert model.served_from == "onnx" and model.pipeline is None  # nothing unpickled
    assert manifest["portable"]["agreement"]["decision_disagreements"] == 0
    rows = np.array([[36.6, 72, 118], [38.5, 140, 90], [34.9, 59, 89]])
    pipeline = load_version(store, manifest["version"]).pipeline
    np.testing.assert_allclose(model.pipeline_proba(rows), pipeline.predict_proba(rows), rtol=0,
                               atol=PROBABILITY_TOLERANCE)


def test_a_version_without_a_portable_graph_is_served_from_its_pipeline(store, trained_candidate):
    manifest = register_model(store, trained_candidate)
    manifest_path = store.root / model_path(manifest["version"], "manifest.json")
    manifest["portable"] = {"served_from": "pipeline", "reason": "registered before ONNX export"}
    manifest_path.write_text(json.dumps(manifest))
    model = ModelLoader(store).get()
    assert model.served_from == "pipeline" and model.pipeline is not None
    assert describe_model(model)["served_with"] == {"artifact": "pipeline", "engine": "pipeline"}
    label, _ = model.predict([[36.6, 72, 118]])[0]
    assert label in LABELS


def test_every_model_loaded_is_kept_out_of_full_garbage_collections(store, trained_candidate):
    first = register_model(store, trained_candidate)
    clock = FakeClock()
    loader = ModelLoader(store, refresh_seconds=30, clock=clock)
    gc.unfreeze()
    assert loader.get().version == first["version"]
    after_first = gc.get_freeze_count()
    assert after_first > 10_000  # the libraries and the model
    second = register_model(store, trained_candidate)
    clock.now += 31
    loader.get_nowait()
    loader.wait_for_refresh(30)
    assert loader.get().version == second["version"]
    assert gc.get_freeze_count() > after_first  # the promoted model too


def test_new_champion_is_picked_up_after_the_refresh_interval(store, trained_candidate):
    first = register_model(store, trained_candidate)
    clock = FakeClock()
    loader = ModelLoader(store, refresh_seconds=30, clock=clock)
    assert loader.get().version == first["version"]
    second = register_model(store, trained_candidate)
    clock.now += 29
    assert loader.get().version == first["version"]
    clock.now += 2
    assert loader.get().version == first["version"]  # at once: the new one loads in the background
    loader.wait_for_refresh()
    assert loader.get().version == second["version"]


def test_tampered_artifact_is_refused_and_the_previous_model_keeps_serving(store, trained_candidate, mlops_log):
    good = register_model(store, trained_candidate)
    clock = FakeClock()
    loader = ModelLoader(store, refresh_seconds=1, clock=clock)
    assert loader.get().version == good["version"]
    bad = register_model(store, trained_candidate)
    path = store.root / model_path(bad["version"], "model.onnx")  # what serving reads
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    clock.now += 2
    served = loader.get()
    loader.wait_for_refresh()
    assert served.version == good["version"] == loader.get().version
    assert any("does not match manifest" in str(getattr(r, "fields", {}).get("reason"))
               for r in mlops_log.records if r.levelname == "ERROR")


class BlockingStore(LocalArtifactStore):
    """A store whose reads wait for `release`: a slow download."""

    def __init__(self, root):
        super().__init__(root)
        self.release = threading.Event()
        self.blocking = False

    def read_bytes(self, path):
        if self.blocking:
            assert self.release.wait(10)
        return super().read_bytes(path)


def test_requests_keep_the_current_model_while_a_refresh_is_slow(tmp_path, trained_candidate):
    store = BlockingStore(tmp_path / "artifacts")
    first = register_model(store, trained_candidate)
    clock = FakeClock()
    loader = ModelLoader(store, refresh_seconds=30, clock=clock)
    assert loader.get().version == first["version"]
    second = register_model(store, trained_candidate)
    clock.now += 31
    store.blocking = True
    served = []
    requests = [threading.Thread(target=lambda: served.append(loader.get().version)) for _ in range(8)]
    for request in requests:
        request.start()
    for request in requests:
        request.join(2)
    assert served == [first["version"]] * 8  # none waited for the download
    store.release.set()
    loader.wait_for_refresh(10)
    assert loader.get().version == second["version"]


@pytest.mark.parametrize("artifact", ["model.onnx", "model.joblib"])
def test_tampered_first_model_is_never_served(store, trained_candidate, artifact):
    bad = register_model(store, trained_candidate)
    if artifact == "model.joblib":  # served from its pipeline: the pickle is what must be checked
        _serve_from_pipeline(store, bad)
    (store.root / model_path(bad["version"], artifact)).write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable):
        ModelLoader(store).get()


@pytest.mark.parametrize("artifact", ["model.onnx", "model.joblib"])
def test_truncated_artifact_with_matching_hash_is_refused(store, trained_candidate, artifact):
    bad = register_model(store, trained_candidate)
    path = store.root / model_path(bad["version"], artifact)
    truncated = path.read_bytes()[:100]
    path.write_bytes(truncated)
    manifest_path = store.root / model_path(bad["version"], "manifest.json")
    manifest = json.loads(manifest_path.read_text())
    import hashlib

    if artifact == "model.joblib":
        manifest["portable"] = {"served_from": "pipeline"}
        manifest["sha256"] = hashlib.sha256(truncated).hexdigest()
    else:
        manifest["portable"]["sha256"] = hashlib.sha256(truncated).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelUnavailable):
        ModelLoader(store).get()


def _serve_from_pipeline(store, manifest: dict) -> None:
    path = store.root / model_path(manifest["version"], "manifest.json")
    path.write_text(json.dumps(dict(manifest, portable={"served_from": "pipeline"})))


def test_probabilities_cover_every_label_even_when_the_model_lacks_some():
    results = probabilities_to_predictions(np.array([[0.2, 0.8], [0.9, 0.1]]), ["NO ENFERMO", "ENFERMEDAD AGUDA"])
    assert results[0][0] == "ENFERMEDAD AGUDA" and results[1][0] == "NO ENFERMO"
    assert results[0][1]["ENFERMEDAD TERMINAL"] == 0.0 and results[0][1]["ENFERMEDAD AGUDA"] == 0.8


def test_library_mismatch_is_reported():
    assert warn_on_library_mismatch("v", {"scikit-learn": "0.0.1"}) == [
        f"scikit-learn trained=0.0.1 runtime={__import__('sklearn').__version__}"]
    assert warn_on_library_mismatch("v", {"scikit-learn": __import__("sklearn").__version__}) == []


@pytest.fixture(scope="module")
def network_candidate(small_dataset):
    from shared.training.candidates import train_candidates

    X, y = small_dataset
    return train_candidates(X[:1500], y[:1500], seed=7, families=("mlp",), budget_seconds=0.0)


def test_a_network_serves_from_its_weights_file_as_numpy(store, network_candidate):
    manifest = register_model(store, network_candidate)
    assert manifest["portable"]["weights"]["artifact"] == "network.npz"
    model = ModelLoader(store).get()
    assert model.served_from == "onnx" and model.pipeline_proba.engine == "numpy"
    assert describe_model(model)["served_with"] == {"artifact": "onnx", "engine": "numpy"}  # what /model says
    rows = np.array([[36.6, 72, 118], [38.5, 140, 90], [34.9, 59, 89]])
    np.testing.assert_allclose(model.pipeline_proba(rows), load_version(store, manifest["version"]).pipeline
                               .predict_proba(rows), rtol=0, atol=PROBABILITY_TOLERANCE)


@pytest.mark.parametrize("case", ["registered-before-the-file", "file-changed", "file-missing"])
def test_a_network_without_a_matching_weights_file_serves_its_graph_on_onnxruntime(store, network_candidate, case):
    manifest = register_model(store, network_candidate)
    weights_path = store.root / model_path(manifest["version"], "network.npz")
    if case == "registered-before-the-file":
        manifest["portable"].pop("weights")
        (store.root / model_path(manifest["version"], "manifest.json")).write_text(json.dumps(manifest))
    elif case == "file-changed":
        weights_path.write_bytes(weights_path.read_bytes() + b"\0")
    else:
        weights_path.unlink()
    model = ModelLoader(store).get()
    assert model.served_from == "onnx" and model.pipeline_proba.engine == "onnxruntime"
    assert describe_model(model)["served_with"] == {"artifact": "onnx", "engine": "onnxruntime"}
    assert model.predict([[36.6, 72, 118]])[0][0] in LABELS
