"""Where a model version lives in the artifact store, and how it is identified:
the champion pointer, each version's files, its manifest and its hash."""

from __future__ import annotations

import hashlib
import json

from shared.errors import ArtifactIntegrityError, NotFound
from shared.stores.artifacts.port import ArtifactStore

CHAMPION_POINTER = "models/champion.json"
NETWORK_WEIGHTS = "network.npz"  # an MLP's constants beside its graph (`models.network_weights`)


def model_path(version: str, name: str) -> str:
    return f"models/{version}/{name}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(store: ArtifactStore, version: str, name: str, expected: str | None) -> bytes:
    """One of a version's files, only if its sha256 is the manifest's (`expected`):
    read nothing that was not registered (a pickle runs code; any file decides)."""
    data = store.read_bytes(model_path(version, name))
    actual = sha256_hex(data)
    if actual != expected:
        raise ArtifactIntegrityError(
            f"model {version}: {name} sha256 {actual[:12]}… does not match manifest {str(expected)[:12]}…")
    return data


def read_manifest(store: ArtifactStore, version: str) -> dict:
    return json.loads(store.read_bytes(model_path(version, "manifest.json")))


def read_champion_version(store: ArtifactStore) -> str | None:
    try:
        return json.loads(store.read_bytes(CHAMPION_POINTER))["version"]
    except NotFound:
        return None


def runtime_library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("scikit-learn", "xgboost-cpu", "xgboost", "numpy", "joblib"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions
