"""The one place that builds the adapters from configuration.

Each builder is lazy and cached per configuration of the adapter it builds:
nothing is built at import time, and a cloud client is built once per
instance and reused across invocations and across the functions that share a
process. Building twice under a race is harmless (the loser's object is
dropped). Tests pass their own adapters to the service functions instead of
patching.

The `check_drift` and `retrain` runners give each event handler exactly the
adapters it uses; the Pub/Sub-triggered functions and the local event bus both
call them, so a message is handled the same way in the cloud and on a laptop.
"""

from __future__ import annotations

import threading

from shared.config import load_settings

_cache: dict[tuple, object] = {}
_lock = threading.Lock()


def settings(function: str | None = None):
    """`function`'s settings (every setting when None: the CLI and local server)."""
    return load_settings(function=function)


def trace_project(function: str | None = None) -> str:
    """The project trace names in `function`'s log lines belong to ("" when
    unset or misconfigured: the handler reports a configuration error itself)."""
    from shared.errors import ConfigError

    try:
        return settings(function).google_cloud_project
    except (ConfigError, ValueError, AttributeError):
        return ""


def _cached(name: str, key: tuple, build):
    key = (name, *key)
    value = _cache.get(key)
    if value is None:
        value = build()
        with _lock:
            value = _cache.setdefault(key, value)
    return value


def override(name: str, value, current=None) -> None:
    """Use `value` as the `name` adapter (e.g. "event_bus") for these settings: a test seam."""
    current = current or settings()
    with _lock:
        _cache[(name, *_KEYS[name](current))] = value


def reset() -> None:
    """Forget every built adapter (tests change the environment between cases)."""
    with _lock:
        _cache.clear()


# What each adapter depends on: two functions with the same values share one adapter.
_KEYS = {
    "firestore": lambda s: (s.google_cloud_project, s.firestore_database),
    "sqlite": lambda s: (s.local_data_dir, s.store_timeout_seconds),
    "artifact_store": lambda s: (s.artifact_store, s.artifact_bucket, s.google_cloud_project, s.local_data_dir,
                                 s.store_timeout_seconds),
    "prediction_store": lambda s: (s.prediction_store, s.google_cloud_project, s.firestore_database,
                                   s.local_data_dir, s.store_timeout_seconds, s.prediction_retention_days),
    "metadata_store": lambda s: (s.prediction_store, s.google_cloud_project, s.firestore_database,
                                 s.local_data_dir, s.store_timeout_seconds),
    "event_bus": lambda s: (s.event_bus, s.google_cloud_project),
    "model_loader": lambda s: (*_KEYS["artifact_store"](s), s.model_refresh_seconds),
    "training_launcher": lambda s: (s.training_launcher, s.training_job_name, s.training_job_timeout_seconds),
}


def _firestore_client(current):
    def build():
        from google.cloud import firestore

        return firestore.Client(project=current.google_cloud_project, database=current.firestore_database)

    return _cached("firestore", _KEYS["firestore"](current), build)


def _sqlite_database(current):
    from shared.stores.sqlite_database import SqliteDatabase

    return _cached("sqlite", _KEYS["sqlite"](current), lambda: SqliteDatabase(
        current.local_path / "mlops.sqlite3", timeout_seconds=current.store_timeout_seconds))


def artifact_store(current=None):
    current = current or settings()

    def build():
        if current.artifact_store == "gcs":
            from shared.stores.artifacts.gcs import GcsArtifactStore

            return GcsArtifactStore(current.artifact_bucket, project=current.google_cloud_project or None,
                                    timeout=current.store_timeout_seconds)
        from shared.stores.artifacts.local import LocalArtifactStore

        return LocalArtifactStore(current.local_path / "artifacts")

    return _cached("artifact_store", _KEYS["artifact_store"](current), build)


def prediction_store(current=None):
    current = current or settings()

    def build():
        if current.prediction_store == "firestore":
            from shared.stores.predictions.firestore import FirestorePredictionStore

            return FirestorePredictionStore(
                current.google_cloud_project, current.firestore_database, client=_firestore_client(current),
                timeout=current.store_timeout_seconds, retention_days=current.prediction_retention_days)
        from shared.stores.predictions.sqlite import SqlitePredictionStore

        return SqlitePredictionStore(_sqlite_database(current))

    return _cached("prediction_store", _KEYS["prediction_store"](current), build)


def prediction_committer(current=None):
    """The group committer in front of the prediction store: one per instance."""
    current = current or settings()

    def build():
        from shared.serving.group_commit import GroupCommitter

        return GroupCommitter(prediction_store(current))

    return _cached("prediction_committer", _KEYS["prediction_store"](current), build)


def metadata_store(current=None):
    current = current or settings()

    def build():
        if current.prediction_store == "firestore":
            from shared.stores.metadata.firestore import FirestoreMetadataStore

            return FirestoreMetadataStore(current.google_cloud_project, current.firestore_database,
                                          client=_firestore_client(current))
        from shared.stores.metadata.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(_sqlite_database(current))

    return _cached("metadata_store", _KEYS["metadata_store"](current), build)


def event_bus(current=None):
    current = current or settings()

    def build():
        if current.event_bus == "pubsub":
            from shared.event_bus.pubsub import PubSubEventBus

            return PubSubEventBus(current.google_cloud_project)
        from shared.event_bus.local import LocalEventBus

        return LocalEventBus(subscribers=_local_subscribers())

    return _cached("event_bus", _KEYS["event_bus"](current), build)


def _local_subscribers() -> dict:
    """Locally, the bus hands drift-check and retrain requests straight to the
    same runners the Pub/Sub-triggered functions call."""
    everything = settings()
    return {everything.drift_check_topic: check_drift, everything.retrain_topic: retrain}


def model_loader(current=None):
    current = current or settings()

    def build():
        from shared.models.loading import ModelLoader

        return ModelLoader(artifact_store(current), refresh_seconds=current.model_refresh_seconds)

    return _cached("model_loader", _KEYS["model_loader"](current), build)


def drift_check_dependencies() -> dict:
    """What the drift check takes, built from drift_check's settings."""
    from shared.governance.quarantine import labels_without_quarantined

    current = settings("drift_check")
    predictions = labels_without_quarantined(prediction_store(current), metadata_store(current))
    return {"predictions": predictions, "artifacts": artifact_store(current),
            "metadata": metadata_store(current), "bus": event_bus(current), "settings": current}


def retrain_dependencies() -> dict:
    """What the retrain function takes: it only deduplicates and launches."""
    current = settings("retrain")
    return {"metadata": metadata_store(current), "launcher": training_launcher(current), "settings": current}


def training_job_dependencies() -> dict:
    """What the training job takes, built from the job's settings."""
    from shared.governance.quarantine import labels_without_quarantined

    current = settings("training_job")
    predictions = labels_without_quarantined(prediction_store(current), metadata_store(current))
    return {"predictions": predictions, "artifacts": artifact_store(current),
            "metadata": metadata_store(current), "bus": event_bus(current), "settings": current}


def training_launcher(current=None):
    """How the retrain function starts the training job: a Cloud Run job
    execution, or locally the same entry point as a subprocess."""
    current = current or settings()

    def build():
        if current.training_launcher == "cloud_run":
            from shared.training.launcher.cloud_run import CloudRunTrainingLauncher

            return CloudRunTrainingLauncher(current.training_job_name)
        from shared.training.launcher.local import LocalTrainingLauncher

        return LocalTrainingLauncher(timeout_seconds=current.training_job_timeout_seconds)

    return _cached("training_launcher", _KEYS["training_launcher"](current), build)


def check_drift(message) -> dict:
    """Handle one drift-check request (the function and the local bus both call
    this), validated against the topic's schema first."""
    from shared.event_bus.schemas import DRIFT_CHECK, validate
    from shared.monitoring.drift_check import handle_drift_check_message

    message = validate(message, DRIFT_CHECK)
    dependencies = drift_check_dependencies()
    result = handle_drift_check_message(message, **dependencies)
    if message.data.get("aggregate_hour"):  # the hourly trigger also sweeps stranded training work
        from shared.training.sweep import sweep_stranded_training

        sweep_stranded_training(dependencies["metadata"], dependencies["bus"], dependencies["settings"])
    return result


def retrain(message) -> dict:
    """Handle one retrain request (the function and the local bus both call
    this), validated against the topic's schema first."""
    from shared.event_bus.schemas import RETRAIN, validate
    from shared.training.retrain_handler import handle_retrain_message

    return handle_retrain_message(validate(message, RETRAIN), **retrain_dependencies())
