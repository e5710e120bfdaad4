"""The model registry: versions, the champion pointer, promotion and rollback.

Layout in the artifact store:
    models/<version>/model.joblib      the scikit-learn Pipeline (joblib): training, drift
    models/<version>/model.onnx        the same model as an ONNX graph: serving
                                       (absent when the export is not exact)
    models/<version>/network.npz       an MLP's constants from that graph (float64
                                       arrays, no pickle): served as numpy
    models/<version>/manifest.json     sha256, metrics, schema, labels, versions
    models/<version>/baseline.json     drift reference statistics
    models/<version>/experiment.json   the training run that produced it
    models/champion.json               {"version": ...}: what serves

The manifest is written last: a version without one is not registered. The
pointer is switched with compare-and-swap (a Cloud Storage generation-match
precondition, or a lock locally), so of two concurrent promotions exactly one
wins and the other gets `PromotionConflict`. Every switch is recorded in the
`champion_history` collection: "which model served on date X" has an answer.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from shared.errors import NotFound, PreconditionFailed, PromotionConflict, ValidationError
from shared.models.layout import (
    CHAMPION_POINTER,
    NETWORK_WEIGHTS,
    model_path,
    read_manifest,
    runtime_library_versions,
    sha256_hex,
)
from shared.schema import FEATURE_RANGES, FEATURES
from shared.stores.artifacts.port import ArtifactStore
from shared.stores.metadata.port import CHAMPION_HISTORY, MetadataStore


def new_version_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%S')}Z-{uuid.uuid4().hex[:6]}"


def _json_bytes(document: dict) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str).encode()


def register_version(
    store: ArtifactStore,
    artifact: bytes,
    *,
    labels: list[str],
    metrics: dict,
    baseline: dict,
    data_fingerprint: dict,
    training_parameters: dict,
    experiment: dict | None = None,
    version: str | None = None,
    now: datetime | None = None,
    decision_rule: dict | None = None,
    pipeline=None,
    portable_check_rows: int | None = None,
    graph: bytes | None = None,
) -> dict:
    """Write a version's files (manifest last) and return its manifest.

    `decision_rule` (calibration and per-class decision weights) is what
    `models.loading` applies to every prediction of this version.
    The pipeline (`artifact` unpickled when not given: training made those
    bytes) is exported to ONNX and fuzzed (`models.portable`); the manifest's
    `portable` section records the graph's hash (and the network's weights'),
    the converters and the fuzz's result, or why the version is served from
    its pipeline. `graph`:
    the pipeline's export when training already made it (fuzzed all the same)."""
    from shared.models.portable import export_checked

    now = now or datetime.now(timezone.utc)
    version = version or new_version_id(now)
    if pipeline is None:
        import io

        import joblib

        pipeline = joblib.load(io.BytesIO(artifact))
    graph, weights, portable = export_checked(pipeline, decision_rule, random_rows=portable_check_rows, graph=graph)
    if graph is not None:
        portable.update(artifact="model.onnx", sha256=sha256_hex(graph), size_bytes=len(graph))
    if weights is not None:
        portable["weights"] = {"artifact": NETWORK_WEIGHTS, "sha256": sha256_hex(weights), "size_bytes": len(weights)}
    manifest = {
        "version": version,
        "created_at": now.isoformat(),
        "sha256": sha256_hex(artifact),
        "artifact_size_bytes": len(artifact),
        "features": list(FEATURES),
        "feature_ranges": {name: {"min": low, "max": high, "unit": unit}
                           for name, (low, high, unit) in FEATURE_RANGES.items()},
        "labels": list(labels),
        "metrics": metrics,
        "data_fingerprint": data_fingerprint,
        "training_parameters": training_parameters,
        "library_versions": runtime_library_versions(),
        **{key: value for key, value in (decision_rule or {}).items() if key in ("calibration", "decision_weights")},
        "portable": portable,
    }
    store.write_bytes(model_path(version, "model.joblib"), artifact)
    if graph is not None:
        store.write_bytes(model_path(version, "model.onnx"), graph)
    if weights is not None:
        store.write_bytes(model_path(version, NETWORK_WEIGHTS), weights)
    store.write_bytes(model_path(version, "baseline.json"), _json_bytes(baseline), "application/json")
    if experiment is not None:
        store.write_bytes(model_path(version, "experiment.json"), _json_bytes(experiment), "application/json")
    store.write_bytes(model_path(version, "manifest.json"), _json_bytes(manifest), "application/json")
    return manifest


def read_baseline(store: ArtifactStore, version: str) -> dict:
    return json.loads(store.read_bytes(model_path(version, "baseline.json")))


def read_champion(store: ArtifactStore) -> tuple[dict | None, object | None]:
    """The pointer document and its generation, or (None, None) if none yet."""
    try:
        data, generation = store.read_with_generation(CHAMPION_POINTER)
    except NotFound:
        return None, None
    return json.loads(data), generation


def list_versions(store: ArtifactStore) -> list[dict]:
    manifests = []
    for path in store.list_paths("models/"):
        if path.endswith("/manifest.json"):
            manifests.append(json.loads(store.read_bytes(path)))
    return sorted(manifests, key=lambda manifest: manifest["created_at"])


def switch_champion(
    store: ArtifactStore,
    version: str,
    *,
    reason: str,
    actor: str,
    expected: tuple[dict | None, object | None] | None = None,
    now: datetime | None = None,
    promotion_id: str | None = None,
) -> dict:
    """Point the champion at `version` if nobody switched it since `expected`
    (what the caller read before deciding; read now when omitted). Returns the
    new pointer document. Promoting the version already serving is refused."""
    now = now or datetime.now(timezone.utc)
    try:
        read_manifest(store, version)
    except NotFound:
        raise NotFound(f"unknown model version {version!r}", field="version") from None
    pointer, generation = expected if expected is not None else read_champion(store)
    previous = pointer["version"] if pointer else None
    if previous == version:
        raise ValidationError(f"{version} is already the champion: promoting it again is a no-op", field="version")
    document = {"version": version, "previous_version": previous, "updated_at": now.isoformat(),
                "reason": reason, "actor": actor, "promotion_id": promotion_id}
    try:
        store.write_if_generation_matches(CHAMPION_POINTER, _json_bytes(document), generation)
    except PreconditionFailed:
        raise PromotionConflict(
            f"the champion changed while promoting {version}; re-read it and decide again", field="version"
        ) from None
    return document


def audit_id(switched_at: str, version: str) -> str:
    """The `champion_history` id of one switch: the same for a retried write."""
    stamp = datetime.fromisoformat(switched_at).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{version}"


def record_switch(metadata: MetadataStore, document: dict) -> None:
    """The audit entry of a pointer switch, written once however often it is retried."""
    metadata.create(CHAMPION_HISTORY, audit_id(document["updated_at"], document["version"]), {
        "created_at": document["updated_at"], "from_version": document["previous_version"],
        "to_version": document["version"], "reason": document["reason"], "actor": document["actor"],
        "promotion_id": document.get("promotion_id"),
    })


def promote(
    store: ArtifactStore,
    metadata: MetadataStore,
    version: str,
    *,
    reason: str,
    actor: str,
    expected: tuple[dict | None, object | None] | None = None,
    now: datetime | None = None,
) -> dict:
    """A manual switch (CLI promote, rollback): pointer, then its audit entry.
    Training runs go through `training.promotion`, which survives a crash between the two."""
    document = switch_champion(store, version, reason=reason, actor=actor, expected=expected, now=now)
    record_switch(metadata, document)
    return document


def champion_history(metadata: MetadataStore, limit: int = 100) -> list[dict]:
    return metadata.list(CHAMPION_HISTORY, limit)


def rollback(store: ArtifactStore, metadata: MetadataStore, *, actor: str, to_version: str | None = None) -> dict:
    """Serve `to_version`, or by default the version that served before the current one."""
    pointer, generation = read_champion(store)
    if pointer is None:
        raise NotFound("there is no champion to roll back from")
    if to_version is None:
        to_version = pointer.get("previous_version")
        if not to_version:
            raise ValidationError("the champion has no previous version; name one with --to", field="version")
    return promote(store, metadata, to_version, reason=f"rollback from {pointer['version']}", actor=actor,
                   expected=(pointer, generation))
