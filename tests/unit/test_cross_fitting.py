"""Rows since a change, cross-fitted for the gate's view since it (`training.cross_fitting`)."""

import json
from datetime import datetime, timezone

import numpy as np

from shared.models.layout import model_path
from shared.schema import LABELS
from shared.stores.artifacts.local import LocalArtifactStore
from shared.training import cross_fitting
from shared.training.decision_rule import fit_decision_rule
from shared.training.holdout import prepare_data
from shared.training.search import cv_folds, encode
from shared.training.synthetic_data import generate_reference_data

CHANGED = datetime(2026, 1, 11, tzinfo=timezone.utc)


def prepared(rows=3000, seed=4):
    X, y = generate_reference_data(rows, seed=seed)
    since = (np.arange(rows) >= rows // 2) & (y == LABELS[1])
    data = prepare_data(X, y, seed=seed, weights=np.where(np.arange(rows) >= rows // 2, 1.0, 0.3), since_change=since)
    out_of_fold = np.random.default_rng(seed).dirichlet(np.ones(len(data.labels)), size=len(data.y_train))
    return data, out_of_fold


def test_each_row_since_is_scored_out_of_fold_by_a_rule_fitted_without_it(monkeypatch):
    """The fold model that held a row out made its probabilities; the decision
    rule applied to them is fitted, as the served one is, on the other folds'
    out-of-fold rows only: a row's label reaches neither."""
    data, out_of_fold = prepared()
    rows_fitted = []

    def spy(probabilities, *args, **kwargs):
        rows_fitted.append({row.tobytes() for row in probabilities})
        return fit_decision_rule(probabilities, *args, **kwargs)

    monkeypatch.setattr(cross_fitting, "fit_decision_rule", spy)
    served = fit_decision_rule(out_of_fold, encode(data.y_train, data.labels), len(data.labels) - 1)
    crossed = cross_fitting.cross_fit_since_change(out_of_fold, data, 4, served)
    since = np.flatnonzero(data.since_change_train)
    assert len(crossed.y_true) == len(since) > 50 and list(crossed.y_true) == list(data.y_train[since])
    assert np.array_equal(crossed.X, data.X_train[since])
    for index in since:  # fitted in every fold's rule but the one that scored it
        assert sum(out_of_fold[index].tobytes() in fitted for fitted in rows_fitted) == len(rows_fitted) - 1
    from shared.models.loading import calibrate, decide

    expected = {}
    for train_index, test_index in cv_folds(data, 4):
        rule = fit_decision_rule(out_of_fold[train_index], encode(data.y_train, data.labels)[train_index],
                                 len(data.labels) - 1, sample_weight=data.w_train[train_index])
        decided = decide(calibrate(out_of_fold[test_index], rule["calibration"]), rule["decision_weights"])
        expected.update(zip(test_index, np.asarray(data.labels, dtype=object)[decided]))
    assert list(crossed.predictions) == [expected[index] for index in since]


def test_nothing_is_cross_fitted_without_rows_since_a_change():
    data, out_of_fold = prepared()
    served = fit_decision_rule(out_of_fold, encode(data.y_train, data.labels), len(data.labels) - 1)
    data.since_change_train = np.zeros(len(data.y_train), dtype=bool)
    assert cross_fitting.cross_fit_since_change(out_of_fold, data, 4, served) is None
    data.since_change_train = None
    assert cross_fitting.cross_fit_since_change(out_of_fold, data, 4, served) is None


def test_cross_fitted_rows_are_used_only_against_a_champion_that_cannot_have_trained_on_them(tmp_path):
    """A champion whose labels end by the change, or learnt from the generator
    alone, never saw a row labelled since it; any other (a follow-up's champion,
    a file of unknown rows, an unreadable record) might have, and a row it
    memorised flatters it in a way the loss bound is not monotone in: then the
    view since stays the holdout's alone."""
    store = LocalArtifactStore(tmp_path)

    def champion(version, labels_until=None, sources=None):
        store.write_bytes(model_path(version, "baseline.json"), json.dumps({"labels_until": labels_until}).encode(),
                          "application/json")
        if sources is not None:
            store.write_bytes(model_path(version, "experiment.json"), json.dumps({"data_sources": sources}).encode(),
                              "application/json")
        return version

    may = cross_fitting.champion_may_have_trained_since
    assert not may(store, champion("before", "2026-01-10T00:00:00+00:00"), CHANGED)
    assert not may(store, champion("at", "2026-01-11T00:00:00+00:00"), CHANGED)
    assert may(store, champion("after", "2026-01-12T00:00:00+00:00"), CHANGED)
    assert not may(store, champion("generator", sources={"reference_generator": {"rows": 10}}), CHANGED)
    assert may(store, champion("file", sources={"file": "rows.csv"}), CHANGED)
    assert may(store, champion("no-record"), CHANGED)
    assert may(store, "missing", CHANGED)
