"""The one way every function gets the serving model.

`ModelLoader.get()` returns the champion named by `models/champion.json`:
- serving loads the version's ONNX graph (`model.onnx`, run by onnxruntime:
  `models.runtime`; an MLP's `network.npz` of the same constants, as numpy)
  when its manifest says it passed the agreement fuzz, so `predict` neither
  imports scikit-learn, SciPy or XGBoost nor unpickles; a version without
  one is served from its pipeline;
- every artifact's sha256 is checked against its manifest *before* it is
  read (unpickling runs code: an unregistered file must never load);
- the loaded pipeline is cached for warm invocations, and the pointer is
  re-read at most every `refresh_seconds`, so a promotion is served without a
  redeploy; that re-check runs in a background thread while requests keep
  the current model, so no request waits for a download;
- a refused or unreachable new version is logged and the last good model keeps
  serving; requests hold a reference to one immutable `LoadedModel`, so none
  ever sees a half-swapped model;
- the manifest's decision rule is applied here, and only here: its
  `calibration` (vector scaling of the log-probabilities) and its per-class
  `decision_weights` (tuned on out-of-fold predictions so the rarest class
  reaches RARE_CLASS_MIN_RECALL), so every function decides the same way.
"""


from __future__ import annotations

import gc
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ArtifactIntegrityError, ModelUnavailable, NotFound, ServiceError
from shared.models.layout import (
    NETWORK_WEIGHTS,
    read_champion_version,
    read_manifest,
    read_verified,
    runtime_library_versions,
)
from shared.schema import FEATURES, LABELS
from shared.stores.artifacts.port import ArtifactStore
from shared.structured_logging import get_logger

log = get_logger("model_loading")


@dataclass(frozen=True)
class LoadedModel:
    version: str
    # The scikit-learn pipeline; None when the model is served from its ONNX graph.
    pipeline: Any
    manifest: dict
    # The model's probabilities (`.engine`: "numpy" or "onnxruntime" when portable), or
    # the pipeline's own `predict_proba` (training, drift, a version without a graph).
    pipeline_proba: Callable[[Any], Any] = field(compare=False, repr=False)
    served_from: str = "pipeline"  # "onnx" | "pipeline"

    def __post_init__(self):
        # The decision rule as arrays, converted once: a one-row request otherwise
        # converts the manifest's lists again on every call. Same values, same arithmetic.
        import numpy as np

        calibration = self.manifest.get("calibration")
        if calibration:
            calibration = {key: np.asarray(calibration[key], dtype=float) for key in ("slope", "intercept")}
        weights = self.manifest.get("decision_weights")
        object.__setattr__(self, "_rule", (calibration, None if weights is None else np.asarray(weights)))

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def engine(self) -> str:
        """What computes the probabilities: "numpy", "onnxruntime" or "pipeline"."""
        return getattr(self.pipeline_proba, "engine", "pipeline")

    def probabilities(self, rows) -> Any:
        """Calibrated probabilities, one column per model label."""
        import numpy as np

        return calibrate(self.pipeline_proba(np.asarray(rows, dtype=float)), self._rule[0])

    def predict_labels(self, rows) -> Any:
        import numpy as np

        return np.asarray(self.labels, dtype=object)[decide(self.probabilities(rows), self._rule[1])]

    def predict(self, rows: list[list[float]]) -> list[tuple[str, dict[str, float]]]:
        """(label, probabilities for all five labels) for each row in FEATURES order."""
        probabilities = self.probabilities(rows)
        return probabilities_to_predictions(probabilities, self.labels, decide(probabilities, self._rule[1]))


def calibrate(probabilities, calibration: dict | None):
    """Vector scaling: softmax(slope * log p + intercept), per class; identity without one."""
    import numpy as np

    if not calibration:
        return probabilities
    # The ufuncs themselves, in place: the same arithmetic as np.clip, .max and .sum,
    # without their Python wrappers and temporaries (a one-row request pays those, not the maths).
    logits = np.log(np.minimum(np.maximum(probabilities, 1e-12), 1.0)) * np.asarray(calibration["slope"])
    logits += np.asarray(calibration["intercept"])
    logits -= np.maximum.reduce(logits, axis=1, keepdims=True)
    scaled = np.exp(logits, out=logits)
    return np.divide(scaled, np.add.reduce(scaled, axis=1, keepdims=True), out=scaled)


def decide(probabilities, decision_weights: list[float] | None):
    """The column chosen for each row: argmax of probability x the class's decision weight."""
    import numpy as np

    weights = np.ones(probabilities.shape[1]) if decision_weights is None else np.asarray(decision_weights)
    return np.argmax(probabilities * weights, axis=1)


def probabilities_to_predictions(probabilities, model_labels: list[str],
                                 decided=None) -> list[tuple[str, dict[str, float]]]:
    """Map a model's probability columns to every public label (absent ones get 0)."""
    decided = decide(probabilities, None) if decided is None else decided
    results = []
    for row, best in zip(probabilities.tolist(), decided.tolist()):  # Python floats, as float() makes them
        by_label = dict.fromkeys(LABELS, 0.0)
        for label, probability in zip(model_labels, row):
            by_label[label] = round(probability, 6)
        results.append((model_labels[best], by_label))
    return results


def load_serving_version(store: ArtifactStore, version: str) -> LoadedModel:
    """What serves a version: its ONNX graph when the manifest says it agreed
    with the pipeline, else the pipeline (`load_version`)."""
    manifest = read_manifest(store, version)
    portable = manifest.get("portable") or {}
    if portable.get("served_from") != "onnx":
        log.warning("model served from its pipeline (no portable artifact)",
                    extra={"fields": {"model_version": version, "reason": portable.get("reason", "none exported")}})
        return load_version(store, version, manifest)
    if manifest.get("features") != list(FEATURES):
        raise ArtifactIntegrityError(f"model {version} expects features {manifest.get('features')}")
    graph = read_verified(store, version, portable.get("artifact", "model.onnx"), portable.get("sha256"))
    weights = _network_weights(store, version, portable.get("weights"))
    from shared.models.runtime import served_predict_proba

    try:
        predict_proba = served_predict_proba(graph, weights)
    except Exception as error:  # noqa: BLE001 -- a corrupt graph: refuse, never crash the server
        raise ArtifactIntegrityError(f"model {version}: the ONNX graph could not be loaded: "
                                     f"{type(error).__name__}: {error}") from None
    if weights is not None and predict_proba.engine != "numpy":
        log.warning("the network's weights did not read; serving its graph on onnxruntime",
                    extra={"fields": {"model_version": version}})
    return LoadedModel(version=version, pipeline=None, manifest=manifest, pipeline_proba=predict_proba,
                       served_from="onnx")


def _network_weights(store: ArtifactStore, version: str, entry: dict | None) -> bytes | None:
    """The MLP's `.npz` when the manifest names one and its bytes match their
    sha256; else None (a version registered before it, or a mismatch: the
    graph, which the fuzz also certified, serves on onnxruntime)."""
    if not entry:
        return None
    try:
        return read_verified(store, version, entry.get("artifact", NETWORK_WEIGHTS), entry.get("sha256"))
    except (ArtifactIntegrityError, NotFound) as error:
        log.warning("the network's weights are refused; serving its graph on onnxruntime",
                    extra={"fields": {"model_version": version, "reason": error.message}})
        return None


def load_version(store: ArtifactStore, version: str, manifest: dict | None = None) -> LoadedModel:
    """Download, verify and unpickle one registered version's pipeline (training, drift)."""
    import joblib

    manifest = manifest or read_manifest(store, version)
    if manifest.get("features") != list(FEATURES):
        raise ArtifactIntegrityError(f"model {version} expects features {manifest.get('features')}")
    data = read_verified(store, version, "model.joblib", manifest.get("sha256"))
    try:
        pipeline = joblib.load(io.BytesIO(data))
    except Exception as error:  # a truncated or corrupt pickle: refuse, never crash the server
        raise ArtifactIntegrityError(f"model {version} could not be unpickled: {type(error).__name__}") from None
    warn_on_library_mismatch(version, manifest.get("library_versions", {}))
    return LoadedModel(version=version, pipeline=pipeline, manifest=manifest,
                       pipeline_proba=pipeline.predict_proba)


def warn_on_library_mismatch(model_version: str, trained_with: dict[str, str]) -> list[str]:
    runtime = runtime_library_versions()
    mismatches = [
        f"{package} trained={trained} runtime={runtime[package]}"
        for package, trained in trained_with.items()
        if package in runtime and runtime[package] != trained
    ]
    if mismatches:
        log.warning("model library versions differ from the runtime's",
                    extra={"fields": {"model_version": model_version, "mismatches": mismatches}})
    return mismatches


class ModelLoader:
    """Caches the champion and re-checks the pointer every `refresh_seconds`."""

    def __init__(self, store: ArtifactStore, refresh_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._current: LoadedModel | None = None
        self._checked_at: float | None = None
        self._refused: dict[str, str] = {}  # version -> reason, so a bad version is not re-downloaded
        self._lock = threading.Lock()  # held while a refresh runs (a background one releases it)
        self._refresher: threading.Thread | None = None

    def get(self) -> LoadedModel:
        """The serving model; waits only while none has been loaded yet."""
        current = self.get_nowait()
        if current is not None:
            return current
        with self._lock:
            if self._current is None:
                self._refresh()
            if self._current is None:
                raise ModelUnavailable("no verified model is available to serve yet")
            return self._current

    def get_nowait(self) -> LoadedModel | None:
        """The serving model at once, or None before the first load.

        When the pointer is due for a re-check, one background thread
        refreshes while every request keeps the current model: a download and
        unpickling (a promotion, a slow store) never holds a request up.
        """
        current = self._current
        if current is not None and self._due() and self._lock.acquire(blocking=False):
            if self._due():
                self._refresher = threading.Thread(target=self._refresh_then_release, name="model-refresh",
                                                   daemon=True)
                self._refresher.start()
            else:
                self._lock.release()
        return current

    def wait_for_refresh(self, timeout: float | None = None) -> None:
        """Block until a background refresh in progress has finished (tests, tools)."""
        refresher = self._refresher
        if refresher is not None:
            refresher.join(timeout)

    def _refresh_then_release(self) -> None:
        try:
            self._refresh()
        finally:
            self._lock.release()

    def _due(self) -> bool:
        # With nothing to serve yet, retry soon: a cold start that met a dead
        # store should recover within a second of the store coming back.
        interval = self.refresh_seconds if self._current is not None else min(self.refresh_seconds, 1.0)
        return self._checked_at is None or self.clock() - self._checked_at >= interval

    def _refresh(self) -> None:
        version = None
        try:
            version = read_champion_version(self.store)
            if version is None:
                log.warning("no champion model registered")
            elif self._current is None or version != self._current.version:
                if version in self._refused and self._current is not None:
                    pass  # already refused; keep serving the last good model quietly
                else:
                    self._current = load_serving_version(self.store, version)
                    self._refused.pop(version, None)
                    # The libraries and the model live as long as the process: keep them out of
                    # the collector's full scans (~110,000 objects, ~40 ms that stalled every
                    # request in flight). A replaced model is still freed by reference counting;
                    # only garbage cycles that exist at this moment stay (no collection first: it
                    # would cost the same 40 ms on the first request).
                    gc.freeze()
                    log.info("serving model", extra={"fields": {"model_version": version,
                                                                 "engine": self._current.engine}})
        except ServiceError as error:
            if isinstance(error, ArtifactIntegrityError) and version is not None:
                self._refused[version] = error.message
            log.error("model refresh refused; keeping the last good model",
                      extra={"fields": {"reason": error.message, "error_code": error.code,
                                        "serving_version": self._current.version if self._current else None}})
        except (OSError, ValueError, KeyError) as error:
            log.error("model refresh failed; keeping the last good model",
                      extra={"fields": {"reason": f"{type(error).__name__}: {error}"}})
        # Back off the pointer check whether or not it worked: a dead store must
        # not turn every request into a slow failing download.
        self._checked_at = self.clock()
