"""Direct inference, for the family served from its pipeline
(HistGradientBoosting): the same probabilities as `Pipeline.predict_proba`,
or the pipeline itself when that cannot be shown."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, MinMaxScaler, StandardScaler

from shared.models.inference import AGREEMENT_TOLERANCE, direct_predict_proba, probe_grid
from shared.schema import FEATURE_RANGES, FEATURES
from shared.training.candidates import build_pipeline

FAST_PARAMS = {
    "xgboost": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.3},
    "random_forest": {"n_estimators": 25, "max_depth": 8},
    "mlp": {"hidden_layer_sizes": [16, 8], "alpha": 1e-3},
    "hist_gradient_boosting": {"max_iter": 20},
}


@pytest.fixture(scope="module")
def data(small_dataset):
    X, y = small_dataset
    return X[:1500], LabelEncoder().fit_transform(y[:1500])


def fitted(family, data, **kwargs):
    X, y = data
    return build_pipeline(family, FAST_PARAMS[family], seed=3, **kwargs).fit(X, y)


def fresh_rows(count=300, seed=11):
    rng = np.random.default_rng(seed)
    low = np.array([FEATURE_RANGES[name][0] for name in FEATURES])
    high = np.array([FEATURE_RANGES[name][1] for name in FEATURES])
    return np.round(rng.uniform(low, high, size=(count, len(FEATURES))), 1)


@pytest.mark.parametrize("scaled", [False, True])
def test_hist_gradient_boosting_is_answered_directly_with_the_pipelines_numbers(scaled, data):
    pipeline = fitted("hist_gradient_boosting", data)
    if scaled:  # as trained before the trees lost their scaler
        pipeline.steps[0] = ("scale", StandardScaler())
        pipeline.fit(*data)
    direct = direct_predict_proba(pipeline)
    assert direct != pipeline.predict_proba  # the direct path was kept
    rows = np.vstack([fresh_rows(), [[36.0, 120.0, 90.0]]])
    np.testing.assert_allclose(direct(rows), pipeline.predict_proba(rows), rtol=0, atol=AGREEMENT_TOLERANCE)
    single = direct(np.array([[38.5, 140.0, 90.0]]))
    assert single.shape == (1, 5)
    np.testing.assert_allclose(single, pipeline.predict_proba(np.array([[38.5, 140.0, 90.0]])), rtol=0,
                               atol=AGREEMENT_TOLERANCE)


@pytest.mark.parametrize("family", ["xgboost", "random_forest", "mlp"])
def test_families_served_from_onnx_have_no_direct_path(family, data):
    pipeline = fitted(family, data)
    assert direct_predict_proba(pipeline) == pipeline.predict_proba


def test_a_classifier_without_a_direct_path_is_served_by_the_pipeline(data):
    X, y = data
    pipeline = Pipeline([("scale", StandardScaler()), ("classifier", LogisticRegression(max_iter=200))]).fit(X, y)
    assert direct_predict_proba(pipeline) == pipeline.predict_proba


def test_boosted_trees_send_a_missing_value_where_they_learned_to(data):
    X, y = data
    X = X.copy()
    X[::7, 1] = np.nan  # heart rate missing in training: the trees learn a side for it
    pipeline = build_pipeline("hist_gradient_boosting", FAST_PARAMS["hist_gradient_boosting"], seed=3).fit(X, y)
    direct = direct_predict_proba(pipeline)
    assert direct != pipeline.predict_proba
    rows = fresh_rows(50)
    rows[::2, 1] = np.nan
    np.testing.assert_allclose(direct(rows), pipeline.predict_proba(rows), rtol=0, atol=AGREEMENT_TOLERANCE)


def test_an_unknown_step_is_served_by_the_pipeline(data):
    X, y = data
    pipeline = Pipeline([("scale", MinMaxScaler()),
                         ("classifier", fitted("hist_gradient_boosting", data)[-1])]).fit(X, y)
    assert direct_predict_proba(pipeline) == pipeline.predict_proba


class ShiftedPipeline(Pipeline):
    """A pipeline whose own answer differs from what its steps compute."""

    def predict_proba(self, X, **params):
        return super().predict_proba(X, **params) + 1e-6


def test_a_direct_path_that_disagrees_with_the_pipeline_is_not_used(data, mlops_log):
    model = fitted("hist_gradient_boosting", data)
    pipeline = ShiftedPipeline(model.steps)
    assert direct_predict_proba(pipeline) == pipeline.predict_proba
    assert any("disagrees" in record.getMessage() for record in mlops_log.records)


def test_probe_rows_cover_every_feature_range_ends_included():
    grid = probe_grid(per_feature=5)
    assert grid.shape == (125, 3)
    for column, name in enumerate(FEATURES):
        assert grid[:, column].min() == FEATURE_RANGES[name][0]
        assert grid[:, column].max() == FEATURE_RANGES[name][1]


class HistGradientBoostingClassifier:  # noqa: N801 -- named as the class direct inference dispatches on
    """Looks like HistGradientBoosting to the dispatcher, has no trees to walk."""

    @property
    def _predictors(self):
        raise RuntimeError("trees unavailable")

    def predict_proba(self, X):
        return np.full((len(X), 5), 0.2)


def test_a_direct_path_that_cannot_be_built_leaves_the_pipeline_serving(data, mlops_log):
    pipeline = fitted("hist_gradient_boosting", data)
    pipeline.steps[-1] = ("classifier", HistGradientBoostingClassifier())
    assert direct_predict_proba(pipeline) == pipeline.predict_proba
    assert any("RuntimeError: trees unavailable" in str(getattr(record, "fields", ""))
               for record in mlops_log.records)


def test_default_probe_rows_are_inside_every_range_and_include_its_ends():
    from shared.models.inference import default_probe_rows

    rows = default_probe_rows()
    assert rows.shape == (128, 3) and len(np.unique(rows, axis=0)) == 128
    for column, name in enumerate(FEATURES):
        assert rows[:, column].min() == FEATURE_RANGES[name][0]
        assert rows[:, column].max() == FEATURE_RANGES[name][1]
