import pytest

from shared.config import load_settings
from shared.errors import ConfigError


def test_defaults_are_local():
    settings = load_settings({})
    assert (settings.artifact_store, settings.prediction_store, settings.event_bus) == ("local", "sqlite", "local")
    assert settings.require_prediction_log is True


def test_values_are_converted():
    settings = load_settings({"MODEL_REFRESH_SECONDS": "2.5", "MAX_BATCH_SIZE": "10",
                              "REQUIRE_PREDICTION_LOG": "false"})
    assert settings.model_refresh_seconds == 2.5 and settings.max_batch_size == 10
    assert settings.require_prediction_log is False


@pytest.mark.parametrize("environ, field", [
    ({"MAX_BATCH_SIZE": "many"}, "MAX_BATCH_SIZE"),
    ({"REQUIRE_PREDICTION_LOG": "maybe"}, "REQUIRE_PREDICTION_LOG"),
    ({"ARTIFACT_STORE": "s3"}, "ARTIFACT_STORE"),
    ({"ARTIFACT_STORE": "gcs"}, "ARTIFACT_BUCKET"),
    ({"PREDICTION_STORE": "firestore"}, "GOOGLE_CLOUD_PROJECT"),
])
def test_bad_configuration_fails_fast_naming_the_variable(environ, field):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.field == field
