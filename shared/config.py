"""All configuration, read in one place from environment variables.

`Settings` lists every variable once, with its one default: defaults make a
bare checkout run locally with no cloud account (a folder for artifacts,
SQLite for records, an in-process event bus).

Each Cloud Function reads only the variables it uses (`FUNCTION_SETTINGS`):
`load_settings(function="predict")` reads and validates predict's variables and returns
an object that has no attribute for anything else, so a function cannot come
to depend on a setting its deployment does not set. `infra/` sets the same
names on each function, and the README's table says who reads what; tests
check the three agree.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from shared.environment import read_variables
from shared.errors import ConfigError

_CHOICES = {
    "artifact_store": ("local", "gcs"),
    "prediction_store": ("sqlite", "firestore"),
    "event_bus": ("local", "pubsub"),
    "training_launcher": ("local", "cloud_run"),
}
# What the job needs after its deadline to record the run and release the lease.
TRAINING_FINISH_MARGIN_SECONDS = 120.0


@dataclass(frozen=True)
class Settings:
    """Every setting; `repr` hides the two secrets."""

    # Backends
    artifact_store: str = "local"          # ARTIFACT_STORE: local | gcs
    prediction_store: str = "sqlite"       # PREDICTION_STORE: sqlite | firestore
    event_bus: str = "local"               # EVENT_BUS: local | pubsub
    local_data_dir: str = ".local"         # LOCAL_DATA_DIR
    artifact_bucket: str = ""              # ARTIFACT_BUCKET
    google_cloud_project: str = ""         # GOOGLE_CLOUD_PROJECT
    firestore_database: str = "(default)"  # FIRESTORE_DATABASE
    # Serving
    model_refresh_seconds: float = 30.0    # MODEL_REFRESH_SECONDS
    require_prediction_log: bool = True    # REQUIRE_PREDICTION_LOG
    max_batch_size: int = 1000             # MAX_BATCH_SIZE
    max_body_bytes: int = 262_144          # MAX_BODY_BYTES
    store_timeout_seconds: float = 5.0     # STORE_TIMEOUT_SECONDS
    prediction_retention_days: int = 365   # PREDICTION_RETENTION_DAYS
    # Topics
    drift_check_topic: str = "drift-check-requests"   # DRIFT_CHECK_TOPIC
    retrain_topic: str = "retrain-requests"           # RETRAIN_TOPIC
    model_promoted_topic: str = "model-promoted"      # MODEL_PROMOTED_TOPIC
    # Drift
    drift_window_hours: float = 24.0       # DRIFT_WINDOW_HOURS
    drift_min_samples: int = 200           # DRIFT_MIN_SAMPLES
    drift_min_outcomes: int = 50           # DRIFT_MIN_OUTCOMES
    drift_false_alarm_rate: float = 0.01   # DRIFT_FALSE_ALARM_RATE (per window, with no drift)
    drift_psi_warning: float = 0.1         # DRIFT_PSI_WARNING
    drift_psi_threshold: float = 0.25      # DRIFT_PSI_THRESHOLD
    drift_wasserstein_threshold: float = 0.1   # DRIFT_WASSERSTEIN_THRESHOLD
    drift_label_js_threshold: float = 0.1  # DRIFT_LABEL_JS_THRESHOLD
    drift_f1_drop_threshold: float = 0.05  # DRIFT_F1_DROP_THRESHOLD
    drift_design_effect: float = 5.0       # DRIFT_DESIGN_EFFECT (most rows of one patient a window may hold)
    retrain_min_changed_labels: int = 600  # RETRAIN_MIN_CHANGED_LABELS (labels in the changed region to retrain)
    retrain_max_wait_nights: int = 1       # RETRAIN_MAX_WAIT_NIGHTS (drift checks a retrain may wait for them)
    drift_estimated_retrain: bool = True   # DRIFT_ESTIMATED_RETRAIN (a significant estimated drop retrains)
    # Training and promotion
    training_seed: int = 42                # TRAINING_SEED
    training_rows: int = 20_000            # TRAINING_ROWS
    training_families: str = "random_forest,xgboost,mlp,hist_gradient_boosting"  # TRAINING_FAMILIES
    search_budget_seconds: float = 240.0   # SEARCH_BUDGET_SECONDS
    rare_class_min_recall: float = 0.9     # RARE_CLASS_MIN_RECALL
    promotion_min_macro_f1: float = 0.5    # PROMOTION_MIN_MACRO_F1
    promotion_f1_tolerance: float = 0.01   # PROMOTION_F1_TOLERANCE
    promotion_max_recall_drop: float = 0.1 # PROMOTION_MAX_RECALL_DROP
    # Change control (shared/governance/change_control.py): beyond these, a challenger waits for approval
    promotion_max_answer_change: float = 0.1       # PROMOTION_MAX_ANSWER_CHANGE (share of answers)
    promotion_max_trusted_recall_drop: float = 0.3 # PROMOTION_MAX_TRUSTED_RECALL_DROP (each class, trusted rows)
    # Labellers (shared/governance/limits.py): outcomes one caller may send per hour
    outcomes_per_caller_per_hour: int = 2000       # OUTCOMES_PER_CALLER_PER_HOUR
    retrain_max_event_age_seconds: float = 3600.0  # RETRAIN_MAX_EVENT_AGE_SECONDS
    training_lease_seconds: float = 3300.0 # TRAINING_LEASE_SECONDS
    training_deadline_seconds: float = 3000.0      # TRAINING_DEADLINE_SECONDS
    training_job_timeout_seconds: float = 7200.0   # TRAINING_JOB_TIMEOUT_SECONDS
    training_launcher: str = "local"       # TRAINING_LAUNCHER: local | cloud_run
    training_job_name: str = ""            # TRAINING_JOB_NAME: projects/P/locations/R/jobs/J
    training_window_days: int = 28         # TRAINING_WINDOW_DAYS
    training_min_rows: int = 2000          # TRAINING_MIN_ROWS
    training_half_life_days: float = 2.0   # TRAINING_HALF_LIFE_DAYS
    training_max_caller_share: float = 0.5  # TRAINING_MAX_CALLER_SHARE: one caller's most of a window's labels
    # Ingestion
    clinical_database_url: str = field(default="", repr=False)  # CLINICAL_DATABASE_URL (a secret)
    ingest_table: str = "clinical_records" # INGEST_TABLE
    ingest_column_map: str = ""            # INGEST_COLUMN_MAP
    ingest_chunk_rows: int = 50_000        # INGEST_CHUNK_ROWS
    pseudonym_key: str = field(default="", repr=False)          # PSEUDONYM_KEY (a secret)
    reference_data_url: str = "https://ghoapi.azureedge.net/api/WHOSIS_000001"  # REFERENCE_DATA_URL
    reference_data_name: str = "who_life_expectancy"  # REFERENCE_DATA_NAME

    @property
    def local_path(self) -> Path:
        return Path(self.local_data_dir)

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.training_families.split(",") if name.strip())


DEFAULTS = Settings()
"""The defaults, for pure code that needs one (e.g. a threshold) without reading the environment."""

# Variables by what they configure; each function's set is a union of these.
_ARTIFACTS = {"artifact_store", "artifact_bucket", "local_data_dir", "google_cloud_project", "store_timeout_seconds"}
_RECORDS = {"prediction_store", "firestore_database", "local_data_dir", "google_cloud_project",
            "store_timeout_seconds", "prediction_retention_days"}
_EVENTS = {"event_bus", "google_cloud_project"}
_DRIFT = {"drift_window_hours", "drift_min_samples", "drift_psi_warning", "drift_psi_threshold",
          "drift_wasserstein_threshold", "drift_label_js_threshold", "drift_f1_drop_threshold", "retrain_topic",
          "drift_min_outcomes", "drift_false_alarm_rate", "drift_design_effect",
          "retrain_min_changed_labels", "retrain_max_wait_nights", "drift_estimated_retrain"}
_TRAINING = {"training_seed", "training_rows", "training_families", "search_budget_seconds",
             "promotion_min_macro_f1", "promotion_f1_tolerance", "promotion_max_recall_drop", "rare_class_min_recall",
             "training_lease_seconds", "training_deadline_seconds", "training_job_timeout_seconds",
             "training_window_days", "training_min_rows", "training_half_life_days", "model_promoted_topic",
             "retrain_topic", "training_max_caller_share", "promotion_max_answer_change",
             "promotion_max_trusted_recall_drop"}
_CLINICAL = {"clinical_database_url", "ingest_table", "ingest_column_map", "ingest_chunk_rows", "pseudonym_key"}

FUNCTION_SETTINGS: dict[str, frozenset[str]] = {
    "predict": frozenset(_ARTIFACTS | _RECORDS | {"model_refresh_seconds", "require_prediction_log",
                                                  "max_batch_size", "max_body_bytes"}),
    "predictions_history": frozenset(_RECORDS),
    "model_metadata": frozenset(_ARTIFACTS | {"model_refresh_seconds"}),
    "record_outcome": frozenset(_RECORDS | {"max_body_bytes", "outcomes_per_caller_per_hour"}),
    # The console reads models and reports (artifacts) and records, runs and reports' index (records).
    "console": frozenset(_ARTIFACTS | _RECORDS),
    "drift_check": frozenset(_ARTIFACTS | _RECORDS | _EVENTS | _DRIFT),
    # retrain only deduplicates and launches; the training job does the training.
    "retrain": frozenset(_RECORDS | {"retrain_max_event_age_seconds", "training_job_timeout_seconds",
                                     "training_launcher", "training_job_name"}),
    # The new model's baseline is the triggering window's inputs (DRIFT_WINDOW_HOURS
    # when the request names none; DRIFT_MIN_SAMPLES of them at least).
    "training_job": frozenset(_ARTIFACTS | _RECORDS | _EVENTS | _TRAINING | {"drift_window_hours",
                                                                            "drift_min_samples"}),
    # The metadata store (ingestion runs, watermark) follows PREDICTION_STORE.
    "ingest_clinical": frozenset(_ARTIFACTS | _RECORDS | _CLINICAL),
    "ingest_reference": frozenset(_ARTIFACTS | _RECORDS | {"reference_data_url", "reference_data_name"}),
}
"""Which settings each entry point of main.py, and the training job
(`python -m jobs.train`), reads. Anything else is read only by the
developer tools (the CLI, the local server), which get every setting."""

_VIEWS: dict[str, type] = {}


def _view(function: str) -> type:
    """A frozen dataclass with only `function`'s settings (built once per function)."""
    if function not in _VIEWS:
        names = FUNCTION_SETTINGS[function]
        namespace = {}
        if "local_data_dir" in names:
            namespace["local_path"] = Settings.local_path
        if "training_families" in names:
            namespace["families"] = Settings.families
        _VIEWS[function] = dataclasses.make_dataclass(
            "".join(part.title() for part in function.split("_")) + "Settings",
            [(f.name, f.type, field(default=f.default, repr=f.repr)) for f in fields(Settings) if f.name in names],
            frozen=True, namespace=namespace)
    return _VIEWS[function]


def env_name(field_name: str) -> str:
    return field_name.upper()


def variables_of(function: str) -> list[str]:
    """The environment variables `function` reads, sorted."""
    return sorted(env_name(name) for name in FUNCTION_SETTINGS[function])


_cache: dict[tuple, object] = {}


def load_settings(environ: Mapping[str, str] | None = None, function: str | None = None):
    """Settings from the environment, validated, failing with the variable's name.

    With `function`, only that function's variables are read, and the result
    has only those attributes. Parsed once per distinct configuration: a request re-reads a dozen values.
    """
    environ = os.environ if environ is None else environ
    if function is not None and function not in FUNCTION_SETTINGS:
        raise ValueError(f"unknown function {function!r}")
    names = _variable_names(function)
    raw = read_variables(environ, names)
    key = (function, raw, environ.get("GCP_PROJECT") if function is None or "google_cloud_project" in
           FUNCTION_SETTINGS[function] else None)
    settings = _cache.get(key)
    if settings is None:
        settings = _parse(function, {name for name, _ in names}, dict(zip((n for n, _ in names), raw)), key[2])
        if len(_cache) > 64:  # tests cycle through many configurations
            _cache.clear()
        _cache[key] = settings
    return settings


@functools.cache
def _variable_names(function: str | None) -> tuple[tuple[str, str], ...]:
    """(setting, VARIABLE) pairs `function` reads, computed once: this runs on every request."""
    names = FUNCTION_SETTINGS[function] if function else {f.name for f in fields(Settings)}
    return tuple(sorted((name, env_name(name)) for name in names))


def _parse(function: str | None, names, raw: dict, gcp_project: str | None):
    values = {}
    for setting in fields(Settings):
        if setting.name in names and raw.get(setting.name) not in (None, ""):
            values[setting.name] = _convert(setting.name, setting.type, raw[setting.name])
    if "google_cloud_project" in names and "google_cloud_project" not in values and gcp_project:
        values["google_cloud_project"] = gcp_project
    settings = (_view(function) if function else Settings)(**values)
    for name, choices in _CHOICES.items():
        if name in names and getattr(settings, name) not in choices:
            raise ConfigError(f"{env_name(name)} must be one of {', '.join(choices)}", field=env_name(name))
    if getattr(settings, "artifact_store", None) == "gcs" and not settings.artifact_bucket:
        raise ConfigError("ARTIFACT_BUCKET is required when ARTIFACT_STORE=gcs", field="ARTIFACT_BUCKET")
    needs_project = (getattr(settings, "prediction_store", None) == "firestore"
                     or getattr(settings, "event_bus", None) == "pubsub")
    if needs_project and not settings.google_cloud_project:
        raise ConfigError("GOOGLE_CLOUD_PROJECT is required for Firestore and Pub/Sub", field="GOOGLE_CLOUD_PROJECT")
    for name in ("max_batch_size", "max_body_bytes", "ingest_chunk_rows", "training_rows", "drift_min_samples",
                 "outcomes_per_caller_per_hour"):
        if name in names and getattr(settings, name) < 1:
            raise ConfigError(f"{env_name(name)} must be at least 1", field=env_name(name))
    for name in ("store_timeout_seconds", "drift_window_hours", "training_lease_seconds"):
        if name in names and not getattr(settings, name) > 0:
            raise ConfigError(f"{env_name(name)} must be greater than 0", field=env_name(name))
    for name in ("retrain_min_changed_labels", "retrain_max_wait_nights"):
        if name in names and getattr(settings, name) < 0:
            raise ConfigError(f"{env_name(name)} must be 0 or more", field=env_name(name))
    if "drift_design_effect" in names and not settings.drift_design_effect >= 1:
        raise ConfigError("DRIFT_DESIGN_EFFECT must be at least 1", field="DRIFT_DESIGN_EFFECT")
    if "training_max_caller_share" in names and not 0 < settings.training_max_caller_share <= 1:
        raise ConfigError("TRAINING_MAX_CALLER_SHARE must be in (0, 1]", field="TRAINING_MAX_CALLER_SHARE")
    for name in ("promotion_max_answer_change", "promotion_max_trusted_recall_drop"):
        if name in names and not 0 <= getattr(settings, name) <= 1:
            raise ConfigError(f"{env_name(name)} must be between 0 and 1", field=env_name(name))
    if getattr(settings, "training_launcher", None) == "cloud_run" and not settings.training_job_name:
        raise ConfigError("TRAINING_JOB_NAME is required when TRAINING_LAUNCHER=cloud_run", field="TRAINING_JOB_NAME")
    if {"training_deadline_seconds", "training_lease_seconds", "training_job_timeout_seconds"} <= set(names):
        check_training_time_limits(settings)
    return settings


def validate_all(environ: Mapping[str, str] | None = None) -> None:
    """Fail at start, naming the variable, if any function's settings are invalid."""
    for function in FUNCTION_SETTINGS:
        load_settings(environ, function)


def check_training_time_limits(settings) -> None:
    """Deadline < lease < job timeout, each with room to finish, so that no
    lease expires under a running training, and a job can wait out one whole
    other training's lease before it must give its request back."""
    margin = TRAINING_FINISH_MARGIN_SECONDS
    if settings.training_lease_seconds < settings.training_deadline_seconds + margin:
        raise ConfigError(f"TRAINING_LEASE_SECONDS must be at least TRAINING_DEADLINE_SECONDS + {margin:.0f}: "
                          "a lease that expires under a running training lets a second one start",
                          field="TRAINING_LEASE_SECONDS")
    if settings.training_job_timeout_seconds < 2 * settings.training_lease_seconds + margin:
        raise ConfigError(f"TRAINING_JOB_TIMEOUT_SECONDS must be at least 2 x TRAINING_LEASE_SECONDS + {margin:.0f}: "
                          "room to wait out another training's lease, then hold its own",
                          field="TRAINING_JOB_TIMEOUT_SECONDS")


def _convert(name: str, type_name: str, raw: str):
    try:
        if type_name == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes")
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
        return raw.strip()
    except ValueError:
        raise ConfigError(f"{env_name(name)} has an invalid value: {raw!r}", field=env_name(name)) from None
