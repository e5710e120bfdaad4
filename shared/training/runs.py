"""A training run end to end: train, compare with the champion, register,
promote if the gate allows, and keep an experiment record.

Used by the CLI's `train`, by the first-model bootstrap, and by the retrain
function, so all three follow one protocol.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from shared.config import DEFAULTS
from shared.errors import PromotionConflict, ServiceError
from shared.models import registry
from shared.models.layout import model_path
from shared.models.loading import load_version
from shared.monitoring.baseline import compute_baseline
from shared.stores.artifacts.port import ArtifactStore
from shared.stores.metadata.port import EXPERIMENTS, MetadataStore
from shared.structured_logging import get_logger
from shared.training.candidates import (
    HOLDOUT_FRACTION,
    SEARCH_SPACES,
    evaluate,
    in_holdout,
    predict_labels,
    train_candidates,
)
from shared.training.promotion_gate import decide_promotion

log = get_logger("training_runs")


@dataclass(frozen=True)
class TrainingOptions:
    """How one run searches and gates; defaults are the configuration's (shared/config.py)."""

    seed: int = DEFAULTS.training_seed
    families: tuple[str, ...] = DEFAULTS.families
    budget_seconds: float = DEFAULTS.search_budget_seconds
    f1_tolerance: float = DEFAULTS.promotion_f1_tolerance
    max_recall_drop: float = DEFAULTS.promotion_max_recall_drop


def code_version() -> str | None:
    """The deployed commit if the build said so, else the checkout's, else unknown."""
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5, cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _champion_metrics_on(store: ArtifactStore, champion_version: str, X_holdout, y_holdout,
                         w_holdout=None) -> dict | None:
    """Score the champion on the challenger's holdout, so both face the same rows."""
    try:
        champion = load_version(store, champion_version)
    except ServiceError as error:
        log.error("champion could not be loaded for comparison; treating it as absent",
                  extra={"fields": {"champion_version": champion_version, "reason": error.message}})
        return None
    return evaluate(y_holdout, predict_labels(champion.pipeline, X_holdout, champion.labels), w_holdout)


def run_training(
    X: np.ndarray,
    y: np.ndarray,
    *,
    store: ArtifactStore,
    metadata: MetadataStore,
    options: TrainingOptions = TrainingOptions(),
    actor: str,
    data_sources: dict,
    trigger: dict | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    baseline_population: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    outcome_reference: tuple[np.ndarray, np.ndarray] | None = None,
    labelled_share: dict[str, float] | None = None,
) -> dict:
    """Returns the experiment record (also stored in `experiments` and beside the version).

    The drift baseline describes `baseline_population` (the inputs the model is
    trained for) when given, else the training rows. With `sample_weight`, the
    champion and the challenger are both scored on the holdout weighted alike.
    `outcome_reference` (labelled production rows) gives the baseline the
    winner's metrics on those of them held out: what the drift check's
    performance test compares outcomes with, each row weighted by the share of
    its predicted class that clinicians label (`labelled_share`), so the
    reference is selected the way the checked outcomes will be.
    """
    run_id = run_id or uuid.uuid4().hex
    started = datetime.now(timezone.utc)
    result = train_candidates(X, y, seed=options.seed, families=options.families,
                              budget_seconds=options.budget_seconds, progress=progress, sample_weight=sample_weight)
    winner = result.winner
    data = result.data
    pointer, generation = registry.read_champion(store)
    champion_version = pointer["version"] if pointer else None
    champion_metrics = (
        _champion_metrics_on(store, champion_version, data.X_holdout, data.y_holdout, data.w_holdout)
        if champion_version else None
    )
    decision = decide_promotion(winner.metrics, champion_metrics, options.f1_tolerance, options.max_recall_drop)
    if baseline_population is not None:
        baseline = compute_baseline(baseline_population,
                                    predict_labels(winner.pipeline, baseline_population, data.labels))
    else:
        baseline = compute_baseline(data.X_train, predict_labels(winner.pipeline, data.X_holdout, data.labels))
    if outcome_reference is not None and len(outcome_reference[1]):
        X_outcomes, y_outcomes = outcome_reference
        held = in_holdout(X_outcomes, y_outcomes)
        predicted = predict_labels(winner.pipeline, X_outcomes[held], data.labels)
        selection = np.array([labelled_share.get(label, 0.0) for label in predicted]) if labelled_share else None
        if selection is not None and not selection.sum():
            selection = None
        baseline["outcome_metrics"] = dict(evaluate(y_outcomes[held], predicted, selection), rows=int(held.sum()),
                                           labelled_share_by_prediction=labelled_share)
    parameters = {"family": winner.family, "params": winner.params, "seed": options.seed,
                  "folds": data.folds, "holdout_fraction": HOLDOUT_FRACTION}
    manifest = registry.register_version(
        store, winner.artifact_bytes, labels=data.labels, metrics=winner.metrics, baseline=baseline,
        data_fingerprint=data.fingerprint, training_parameters=parameters,
    )
    version = manifest["version"]
    promoted = False
    if decision.promote:
        try:
            registry.promote(store, metadata, version, reason="; ".join(decision.reasons), actor=actor,
                             expected=(pointer, generation))
            promoted = True
        except PromotionConflict as conflict:
            decision.promote = False
            decision.reasons.append(conflict.message)
    record = {
        "run_id": run_id,
        "created_at": started.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "actor": actor,
        "trigger": trigger or {},
        "code_version": code_version(),
        "data_sources": data_sources,
        "data_fingerprint": data.fingerprint,
        "notes": data.notes,
        "seed": options.seed,
        "folds": data.folds,
        "search_spaces": {family: SEARCH_SPACES[family] for family in options.families},
        "budget_seconds": options.budget_seconds,
        "budget_exhausted": result.budget_exhausted,
        "candidates": [candidate.summary() for candidate in result.candidates],
        "winner": {"family": winner.family, "params": winner.params, "version": version},
        "champion_before": champion_version,
        "champion_metrics_on_this_holdout": champion_metrics,
        "promotion": dict(decision.to_dict(), promoted=promoted,
                          f1_tolerance=options.f1_tolerance, max_recall_drop=options.max_recall_drop),
    }
    store.write_bytes(model_path(version, "experiment.json"),
                      json.dumps(record, indent=2, ensure_ascii=False, default=str).encode(), "application/json")
    metadata.put(EXPERIMENTS, run_id, record)
    log.info("training run finished", extra={"fields": {
        "run_id": run_id, "version": version, "winner": winner.family,
        "macro_f1": winner.metrics["macro_f1"], "promoted": promoted}})
    return record


def ensure_champion(store: ArtifactStore, metadata: MetadataStore, *, rows: int, seed: int,
                    progress: Callable[[str], None] | None = None) -> dict | None:
    """Train and promote a quick first model when none serves yet (`make run`).

    Only the first XGBoost configuration is fitted, so a new checkout answers
    within seconds; the nightly loop or `cli train` runs the full search.
    """
    pointer, _ = registry.read_champion(store)
    if pointer is not None:
        return None
    from shared.training.synthetic_data import generate_reference_data

    X, y = generate_reference_data(rows, seed=seed)
    return run_training(
        X, y, store=store, metadata=metadata,
        options=TrainingOptions(seed=seed, families=("xgboost",), budget_seconds=0.0),
        actor="bootstrap", data_sources={"reference_generator": {"rows": rows, "seed": seed}},
        progress=progress,
    )
