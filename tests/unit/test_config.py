from dataclasses import fields

import pytest

from shared.config import DEFAULTS, FUNCTION_SETTINGS, Settings, load_settings, validate_all, variables_of
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


@pytest.mark.parametrize("variable, value", [
    ("MAX_BATCH_SIZE", "many"),          # int
    ("MAX_BATCH_SIZE", "2.5"),
    ("DRIFT_PSI_THRESHOLD", "high"),     # float
    ("STORE_TIMEOUT_SECONDS", "5s"),
    ("REQUIRE_PREDICTION_LOG", "maybe"),  # bool
])
def test_a_bad_value_fails_fast_naming_the_variable_and_the_value(variable, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert caught.value.field == variable
    assert variable in caught.value.message and repr(value) in caught.value.message


@pytest.mark.parametrize("variable, value, choices", [
    ("ARTIFACT_STORE", "s3", ("local", "gcs")),
    ("PREDICTION_STORE", "postgres", ("sqlite", "firestore")),
    ("EVENT_BUS", "kafka", ("local", "pubsub")),
])
def test_a_bad_choice_fails_fast_naming_the_variable_and_the_choices(variable, value, choices):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert caught.value.field == variable
    assert variable in caught.value.message and all(choice in caught.value.message for choice in choices)


@pytest.mark.parametrize("environ, missing", [
    ({"ARTIFACT_STORE": "gcs"}, "ARTIFACT_BUCKET"),
    ({"PREDICTION_STORE": "firestore"}, "GOOGLE_CLOUD_PROJECT"),
    ({"EVENT_BUS": "pubsub"}, "GOOGLE_CLOUD_PROJECT"),
    ({"TRAINING_LAUNCHER": "cloud_run"}, "TRAINING_JOB_NAME"),
    ({"TRAINING_LAUNCHER": "vertex"}, "TRAINING_LAUNCHER"),
    # a lease that could expire under a training still within its deadline
    ({"TRAINING_DEADLINE_SECONDS": "3200"}, "TRAINING_LEASE_SECONDS"),
    ({"TRAINING_LEASE_SECONDS": "600"}, "TRAINING_LEASE_SECONDS"),
    # a job that could not wait out another training's lease and then hold its own
    ({"TRAINING_JOB_TIMEOUT_SECONDS": "6600"}, "TRAINING_JOB_TIMEOUT_SECONDS"),
    ({"TRAINING_LEASE_SECONDS": "3600"}, "TRAINING_JOB_TIMEOUT_SECONDS"),
])
def test_a_missing_required_setting_is_named(environ, missing):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.field == missing and missing in caught.value.message


def test_a_function_reads_only_its_own_variables():
    settings = load_settings({"MAX_BATCH_SIZE": "10", "INGEST_CHUNK_ROWS": "not a number"}, function="predict")
    assert settings.max_batch_size == 10
    with pytest.raises(AttributeError):
        settings.ingest_chunk_rows  # noqa: B018 -- predict has no such setting


def test_a_bad_value_fails_only_the_functions_that_read_it():
    environ = {"INGEST_CHUNK_ROWS": "many"}
    for function in FUNCTION_SETTINGS:
        if "INGEST_CHUNK_ROWS" in variables_of(function):
            with pytest.raises(ConfigError) as caught:
                load_settings(environ, function=function)
            assert caught.value.field == "INGEST_CHUNK_ROWS"
        else:
            assert load_settings(environ, function=function) is not None
    with pytest.raises(ConfigError):
        validate_all(environ)


def test_a_function_view_keeps_the_one_default():
    view = load_settings({}, function="drift_check")
    everything = load_settings({})
    for name in FUNCTION_SETTINGS["drift_check"]:
        assert getattr(view, name) == getattr(everything, name) == getattr(DEFAULTS, name)


@pytest.mark.parametrize("environ, field", [
    ({"STORE_TIMEOUT_SECONDS": "nan"}, "STORE_TIMEOUT_SECONDS"),
    ({"STORE_TIMEOUT_SECONDS": "0"}, "STORE_TIMEOUT_SECONDS"),
    ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
    ({"DRIFT_WINDOW_HOURS": "inf"}, "DRIFT_WINDOW_HOURS"),
    ({"TRAINING_MAX_CALLER_SHARE": "0"}, "TRAINING_MAX_CALLER_SHARE"),
    ({"TRAINING_MAX_CALLER_SHARE": "1.5"}, "TRAINING_MAX_CALLER_SHARE"),
])
def test_values_out_of_range_name_the_variable(environ, field):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.field == field


def test_every_setting_is_read_by_a_function_or_only_by_the_tools():
    read = set().union(*FUNCTION_SETTINGS.values())
    tools_only = {f.name for f in fields(Settings)} - read
    assert tools_only == {"drift_check_topic"}  # Cloud Scheduler publishes there; the CLI and demo do locally


def test_a_parsed_configuration_is_reused_until_the_environment_changes():
    first = load_settings({"MAX_BATCH_SIZE": "7"}, function="predict")
    assert load_settings({"MAX_BATCH_SIZE": "7"}, function="predict") is first
    assert load_settings({"MAX_BATCH_SIZE": "8"}, function="predict").max_batch_size == 8


def test_the_training_time_limits_agree_at_their_limits():
    settings = load_settings({"TRAINING_DEADLINE_SECONDS": "100", "TRAINING_LEASE_SECONDS": "220",
                              "TRAINING_JOB_TIMEOUT_SECONDS": "560"})
    assert (settings.training_deadline_seconds, settings.training_lease_seconds,
            settings.training_job_timeout_seconds) == (100, 220, 560)
    defaults = load_settings({})
    assert defaults.training_deadline_seconds < defaults.training_lease_seconds < defaults.training_job_timeout_seconds
