"""Registry, promotion gate end to end, rollback and audit, on local stores."""

import json

import numpy as np
import pytest

from shared.errors import NotFound, PromotionConflict, ValidationError
from shared.models import registry
from shared.models.layout import model_path, sha256_hex
from shared.models.loading import load_version
from shared.stores.artifacts.local import LocalArtifactStore
from shared.stores.metadata.port import EXPERIMENTS
from shared.stores.metadata.sqlite import SqliteMetadataStore
from shared.stores.sqlite_database import SqliteDatabase
from shared.training.runs import TrainingOptions, run_training
from shared.training.synthetic_data import generate_reference_data
from tests.conftest import register_model

QUICK = TrainingOptions(seed=3, families=("xgboost",), budget_seconds=0.0)


def make_stores(path):
    return LocalArtifactStore(path / "artifacts"), SqliteMetadataStore(SqliteDatabase(path / "m.db"))


@pytest.fixture
def stores(tmp_path):
    return make_stores(tmp_path)


def run(stores, X, y, actor="test"):
    store, metadata = stores
    return run_training(X, y, store=store, metadata=metadata, options=QUICK, actor=actor, data_sources={"test": 1})


def test_registered_version_has_manifest_baseline_and_matching_hash(stores, trained_candidate):
    store, _ = stores
    manifest = register_model(store, trained_candidate, promote=False)
    version = manifest["version"]
    assert sha256_hex(store.read_bytes(model_path(version, "model.joblib"))) == manifest["sha256"]
    for key in ("metrics", "data_fingerprint", "features", "labels", "library_versions", "training_parameters"):
        assert key in manifest
    baseline = json.loads(store.read_bytes(model_path(version, "baseline.json")))
    X_train = trained_candidate.data.X_train
    for column, name in enumerate(["temperature", "heart_rate", "blood_pressure"]):
        feature = baseline["features"][name]
        assert sum(feature["counts"]) == len(X_train)
        assert feature["bin_edges"][0] == X_train[:, column].min()
        assert feature["bin_edges"][-1] == X_train[:, column].max()
        assert len(feature["counts"]) == len(feature["bin_edges"]) - 1 <= 10


def test_gate_promotes_a_better_model_and_refuses_a_worse_one(stores):
    store, metadata = stores
    X, y = generate_reference_data(3000, seed=3)
    first = run(stores, X[:300], y[:300])
    assert first["promotion"]["promoted"] and first["champion_before"] is None
    better = run(stores, X, y)
    assert better["promotion"]["promoted"], better["promotion"]
    champion = registry.read_champion(store)[0]["version"]
    assert champion == better["winner"]["version"]
    rng = np.random.default_rng(0)
    worse = run(stores, X, rng.permutation(y))  # labels shuffled: nothing to learn
    assert not worse["promotion"]["promoted"]
    assert registry.read_champion(store)[0]["version"] == champion
    assert worse["winner"]["version"] in [m["version"] for m in registry.list_versions(store)]
    stored = metadata.get(EXPERIMENTS, worse["run_id"])
    assert stored["promotion"]["reasons"] and not stored["promotion"]["promoted"]
    copy = json.loads(store.read_bytes(model_path(worse["winner"]["version"], "experiment.json")))
    assert copy["run_id"] == worse["run_id"]
    assert {"data_fingerprint", "candidates", "search_spaces", "code_version", "notes"} <= set(copy)


def test_promotion_conflict_when_the_champion_changed(stores, trained_candidate):
    store, metadata = stores
    a = register_model(store, trained_candidate, promote=False)
    b = register_model(store, trained_candidate, promote=False)
    seen = registry.read_champion(store)
    registry.promote(store, metadata, a["version"], reason="first", actor="x", expected=seen)
    with pytest.raises(PromotionConflict):
        registry.promote(store, metadata, b["version"], reason="stale", actor="y", expected=seen)
    assert registry.read_champion(store)[0]["version"] == a["version"]


def test_rollback_and_audit_trail(stores, trained_candidate):
    store, metadata = stores
    a = register_model(store, trained_candidate, metadata=metadata)
    b = register_model(store, trained_candidate, metadata=metadata)
    registry.rollback(store, metadata, actor="cli")
    assert registry.read_champion(store)[0]["version"] == a["version"]
    history = registry.champion_history(metadata)
    assert [(h["from_version"], h["to_version"]) for h in history] == [
        (b["version"], a["version"]), (a["version"], b["version"]), (None, a["version"])]
    assert history[0]["actor"] == "cli" and "rollback" in history[0]["reason"]
    with pytest.raises(NotFound):
        registry.promote(store, metadata, "no-such-version", reason="", actor="cli")


def test_loaded_champion_predicts(stores, trained_candidate):
    store, _ = stores
    manifest = register_model(store, trained_candidate)
    model = load_version(store, manifest["version"])
    assert model.predict([[39.5, 130, 110]])[0][0] == "ENFERMEDAD AGUDA"


def test_a_first_model_trained_on_noise_is_not_promoted(stores):
    store, _ = stores
    X, y = generate_reference_data(1500, seed=4)
    noise = run(stores, X, np.random.default_rng(1).permutation(y))
    assert not noise["promotion"]["promoted"] and registry.read_champion(store) == (None, None)
    assert "floor" in " ".join(noise["promotion"]["reasons"])


def test_retraining_on_the_champions_exact_data_promotes_nothing(stores):
    store, metadata = stores
    X, y = generate_reference_data(1500, seed=4)
    first = run(stores, X, y)
    again = run(stores, X, y)
    assert first["promotion"]["promoted"] and not again["promotion"]["promoted"]
    assert again["promotion"]["champion_macro_f1"] == again["promotion"]["challenger_macro_f1"]
    assert registry.read_champion(store)[0]["version"] == first["winner"]["version"]
    with pytest.raises(ValidationError, match="no-op"):
        registry.promote(store, metadata, first["winner"]["version"], reason="again", actor="cli")


def test_the_gate_is_told_which_rows_were_seen_since_a_change(stores):
    """A drift retrain's rows of patients seen since the change travel with their
    rows into the holdout, where the gate judges recall on them (promotion_gate)."""
    X, y = generate_reference_data(3000, seed=5)
    run(stores, X, y)  # a champion
    since = np.arange(len(y)) % 2 == 0
    store, metadata = stores
    record = run_training(X, y, store=store, metadata=metadata, options=QUICK, actor="test", data_sources={},
                          since_change=since)
    from shared.training.holdout import in_holdout

    assert record["promotion"]["rows_since_change"] == int(since[in_holdout(X, y)].sum()) > 0
    assert run(stores, X, y)["promotion"]["rows_since_change"] is None


CHANGED = {"weights": {"pre_change": {"changed_since": "2026-01-11T00:00:00+00:00"}}}


def test_after_a_labelling_change_the_rows_since_it_decide_a_relabelled_class(tmp_path, caplog):
    """End to end: the champion learnt MILD under the old rule; the new rule
    calls MILD with heart rate >= 100 ACUTE. The challenger, trained mostly on
    new labels, loses MILD recall on the old labels (96 vs 135 of 157) but not
    on the 52 rows labelled since the change (47 vs 44): promoted with the
    excuse recorded; without the rows since, refused."""
    X, y = generate_reference_data(3000, seed=5)
    X_old, y_old = generate_reference_data(2000, seed=6)
    X_new, y_new = generate_reference_data(2000, seed=7)
    y_new[(y_new == "ENFERMEDAD LEVE") & (X_new[:, 1] >= 100)] = "ENFERMEDAD AGUDA"
    X2, y2 = np.vstack([X_old, X_new]), np.concatenate([y_old, y_new])
    new = np.arange(len(y2)) >= len(y_old)
    since = new & (y2 == "ENFERMEDAD LEVE")
    options = TrainingOptions(seed=3, families=("xgboost",), budget_seconds=0.0, change_bounds=None)
    decisions = []
    for view in (since, None):
        store, metadata = make_stores(tmp_path / ("since" if view is not None else "all"))
        run_training(X, y, store=store, metadata=metadata, options=options, actor="test",
                     data_sources={"reference_generator": {"rows": 3000, "seed": 5}})
        record = run_training(X2, y2, store=store, metadata=metadata, options=options, actor="test",
                              data_sources=CHANGED, sample_weight=np.where(new, 1.0, 0.05), since_change=view)
        decisions.append(record["promotion"])
    excused, refused = decisions
    assert excused["promoted"] and not refused["promoted"]
    assert list(excused["recall_excused"]) == ["ENFERMEDAD LEVE"] and refused["recall_excused"] == {}
    since_rows = excused["recall_excused"]["ENFERMEDAD LEVE"]["since_rows"]
    assert since_rows["support"] == 240 and since_rows["rows_by_source"] == {"holdout": 52, "cross_fitted": 188}
    assert "(52 held out, 188 cross-fitted)" in " ".join(excused["reasons"])
    assert "recall of 'ENFERMEDAD LEVE' drops" in " ".join(refused["reasons"])
    # a refusal's rule-3 figures are data too, in the record and in the run's log line
    assert excused["recall_refused"] == {} and refused["recall_refused"]["ENFERMEDAD LEVE"]["since_rows"] == {
        "support": 0, "judged": False, "why": "no change detected", "rows_by_source": {}}  # review 20.R1: and why
    finished = [record.fields for record in caplog.records if record.getMessage() == "training run finished"]
    assert finished[-1]["recall_refused"] == refused["recall_refused"] and finished[-2]["recall_refused"] is None
