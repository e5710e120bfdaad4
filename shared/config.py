"""All configuration, read in one place from environment variables.

Every variable here appears in the README's configuration table and in
`infra/`. Defaults make a bare checkout run locally with no cloud account:
a folder for artifacts, SQLite for records, an in-process event bus.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from shared.errors import ConfigError

_CHOICES = {
    "artifact_store": ("local", "gcs"),
    "prediction_store": ("sqlite", "firestore"),
    "event_bus": ("local", "pubsub"),
}


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
    drift_psi_warning: float = 0.1         # DRIFT_PSI_WARNING
    drift_psi_threshold: float = 0.25      # DRIFT_PSI_THRESHOLD
    drift_wasserstein_threshold: float = 0.1   # DRIFT_WASSERSTEIN_THRESHOLD
    drift_label_js_threshold: float = 0.1  # DRIFT_LABEL_JS_THRESHOLD
    drift_f1_drop_threshold: float = 0.05  # DRIFT_F1_DROP_THRESHOLD
    # Training and promotion
    training_seed: int = 42                # TRAINING_SEED
    training_rows: int = 20_000            # TRAINING_ROWS
    training_families: str = "random_forest,xgboost,mlp"  # TRAINING_FAMILIES
    search_budget_seconds: float = 240.0   # SEARCH_BUDGET_SECONDS
    promotion_f1_tolerance: float = 0.01   # PROMOTION_F1_TOLERANCE
    promotion_max_recall_drop: float = 0.1 # PROMOTION_MAX_RECALL_DROP
    retrain_max_event_age_seconds: float = 3600.0  # RETRAIN_MAX_EVENT_AGE_SECONDS
    training_lease_seconds: float = 900.0  # TRAINING_LEASE_SECONDS
    training_lake_days: int = 0            # TRAINING_LAKE_DAYS
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


def env_name(field_name: str) -> str:
    return field_name.upper()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, failing fast with the variable's name."""
    environ = os.environ if environ is None else environ
    values = {}
    for setting in fields(Settings):
        raw = environ.get(env_name(setting.name))
        if raw is None or raw == "":
            continue
        values[setting.name] = _convert(setting.name, setting.type, raw)
    if "google_cloud_project" not in values and environ.get("GCP_PROJECT"):
        values["google_cloud_project"] = environ["GCP_PROJECT"]
    settings = Settings(**values)
    for name, choices in _CHOICES.items():
        if getattr(settings, name) not in choices:
            raise ConfigError(f"{env_name(name)} must be one of {', '.join(choices)}", field=env_name(name))
    if settings.artifact_store == "gcs" and not settings.artifact_bucket:
        raise ConfigError("ARTIFACT_BUCKET is required when ARTIFACT_STORE=gcs", field="ARTIFACT_BUCKET")
    needs_project = settings.prediction_store == "firestore" or settings.event_bus == "pubsub"
    if needs_project and not settings.google_cloud_project:
        raise ConfigError(
            "GOOGLE_CLOUD_PROJECT is required for Firestore and Pub/Sub", field="GOOGLE_CLOUD_PROJECT"
        )
    return settings


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
            return float(raw)
        return raw.strip()
    except ValueError:
        raise ConfigError(f"{env_name(name)} has an invalid value: {raw!r}", field=env_name(name)) from None
