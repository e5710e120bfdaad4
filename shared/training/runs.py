"""A training run end to end: load the recent champions, train, score them all
on the same evaluation rows, decide with the gate, register, keep an
experiment record, and promote exactly once (`training.promotion`).

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
from shared.errors import ChampionUnavailable, ServiceError
from shared.governance.change_control import ChangeBounds
from shared.models import registry
from shared.models.layout import model_path
from shared.models.loading import load_version
from shared.monitoring.baseline import compute_baseline
from shared.monitoring.estimated_performance import reference_from_model  # CBPE's holdout reference
from shared.stores.artifacts.port import ArtifactStore
from shared.stores.metadata.port import EXPERIMENTS, MetadataStore
from shared.structured_logging import get_logger
from shared.training.candidates import SEARCH_SPACES, SPLIT, evaluate, in_holdout, predict_labels, train_candidates
from shared.training.cross_fitting import since_change_evidence
from shared.training.promotion import Publish, complete_promotion, open_intent
from shared.training.promotion_gate import Contender, EvaluationRows, GateRules, decide_promotion

log = get_logger("training_runs")


@dataclass(frozen=True)
class TrainingOptions:
    """How one run searches and gates; defaults are the configuration's (shared/config.py)."""

    seed: int = DEFAULTS.training_seed
    families: tuple[str, ...] = DEFAULTS.families
    budget_seconds: float = DEFAULTS.search_budget_seconds
    gate: GateRules = GateRules()
    rare_class_min_recall: float = DEFAULTS.rare_class_min_recall
    # Change control after the gate (shared/governance): None promotes whatever the gate passes.
    change_bounds: ChangeBounds | None = ChangeBounds()

# The anti-slide bar is the best of this many recent champions (the current included).
RECENT_CHAMPIONS = 3


def code_version() -> str | None:
    """The deployed commit if the build said so, else the checkout's, else unknown."""
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5, cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def recent_champion_versions(store: ArtifactStore, metadata: MetadataStore, current: str,
                             limit: int = RECENT_CHAMPIONS) -> list[str]:
    """The current champion, then the versions that served before it, newest
    first; a version an operator rolled back from is not a bar to reach."""
    history = registry.champion_history(metadata, limit=50)
    rolled_back = {entry["from_version"] for entry in history if str(entry.get("reason", "")).startswith("rollback")}
    versions = [current]
    for entry in history:
        version = entry["to_version"]
        if version not in versions and version not in rolled_back:
            versions.append(version)
    return versions[:limit]


def load_champions(store: ArtifactStore, metadata: MetadataStore, current: str | None) -> tuple[list, list[str]]:
    """The recent champions' models, current first. The current one must load:
    otherwise the gate would compare with nothing, so refuse and retry later."""
    if current is None:
        return [], []
    models, notes = [], []
    for version in recent_champion_versions(store, metadata, current):
        try:
            models.append(load_version(store, version))
        except (ServiceError, OSError, ValueError) as error:
            reason = getattr(error, "message", str(error))
            if version == current:
                log.error("champion could not be loaded for comparison; refusing to decide",
                          extra={"fields": {"champion_version": version, "reason": reason}})
                raise ChampionUnavailable(
                    f"the champion {version} cannot be loaded ({reason}); no promotion is decided without it. "
                    "Retry later, or roll back to a loadable version") from None
            notes.append(f"earlier champion {version} could not be loaded and is left out of the bar: {reason}")
        else:
            if models[-1].manifest.get("training_parameters", {}).get("split") != SPLIT:
                notes.append(f"champion {version} was trained under another split: some evaluation rows may be "
                             "in its training data, which can only flatter it")
    return models, notes


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
    since_change: np.ndarray | None = None,
    outcome_reference: tuple[np.ndarray, np.ndarray] | None = None,
    labelled_share: dict[str, float] | None = None,
    promotion_key: str | None = None,
    publish_promoted: Publish | None = None,
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
    `promotion_key` names the promotion's outbox entry (the request's dedupe
    key; the run id by default); `publish_promoted(data, attributes)` sends
    the model-promoted event, if any.
    """
    run_id = run_id or uuid.uuid4().hex
    started = datetime.now(timezone.utc)
    pointer, _ = registry.read_champion(store)
    champion_version = pointer["version"] if pointer else None
    champions, gate_notes = load_champions(store, metadata, champion_version)  # before spending time training
    result = train_candidates(X, y, seed=options.seed, families=options.families,
                              budget_seconds=options.budget_seconds, progress=progress, sample_weight=sample_weight,
                              rare_class_min_recall=options.rare_class_min_recall, since_change=since_change)
    winner = result.winner
    data = result.data
    evidence = since_change_evidence(result.cross_fitted, champions, store, data_sources)
    champion_metrics, decision = _score_and_decide(winner, champions, data, options, evidence)
    baseline = _winner_baseline(winner, data, baseline_population, outcome_reference, labelled_share)
    # the drift check leaves out outcomes recorded before this: already learnt from (monitoring/learnt_outcomes.py)
    baseline["labels_until"] = (data_sources.get("window") or {}).get("end")
    parameters = {"family": winner.family, "params": winner.params, "seed": options.seed,
                  "folds": data.folds, "split": SPLIT}
    manifest = registry.register_version(
        store, winner.artifact_bytes, labels=data.labels, metrics=winner.metrics, baseline=baseline,
        data_fingerprint=data.fingerprint, training_parameters=parameters, decision_rule=winner.decision_rule,
        graph=winner.graph,
    )
    version = manifest["version"]
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
        "winner": {"family": winner.family, "params": winner.params, "version": version,
                   "serving": manifest["portable"]},  # ONNX (and its agreement fuzz), or why the pipeline serves
        "champion_before": champion_version,
        # per-class figures of each champion on the evaluation rows; the decision quotes their macro-F1
        "champions_on_evaluation_rows": {v: {"per_class": m["per_class"]} for v, m in champion_metrics.items()},
        "promotion": dict(decision.to_dict(), promoted=False, notes=gate_notes, rules=options.gate.__dict__.copy()),
    }
    held = _review_change(record, decision.promote, champions, store, baseline_population, options.change_bounds)
    _save_experiment(store, metadata, record)
    if held:
        from shared.governance.approvals import hold

        hold(metadata, record, promotion_key=promotion_key or run_id)
    elif decision.promote:
        intent = open_intent(metadata, promotion_key or run_id, version=version, expected_version=champion_version,
                             reason="; ".join(decision.reasons), actor=actor, run_id=run_id)
        closed = complete_promotion(intent, store=store, metadata=metadata, publish=publish_promoted)
        record = settle_experiment(store, metadata, closed) or record
    log.info("training run finished", extra={"fields": {
        "run_id": run_id, "version": version, "winner": winner.family,
        "macro_f1": winner.metrics["macro_f1"], "promoted": record["promotion"]["promoted"],
        "recall_excused": record["promotion"].get("recall_excused") or None,
        "recall_refused": record["promotion"].get("recall_refused") or None}})
    return record


def _review_change(record: dict, promote: bool, champions, store, recent_inputs, bounds) -> bool:
    """Change control after the gate passed (shared/governance/approvals.py):
    True when the challenger must wait for approval; the measure goes into the record."""
    if not promote or not champions or bounds is None:
        return False
    from shared.governance import approvals, trusted_set

    review = approvals.review_change(champions[0], load_version(store, record["winner"]["version"]),
                                     trusted=trusted_set.load(store), recent_inputs=recent_inputs, bounds=bounds)
    record["promotion"]["change_control"] = review
    record["promotion"]["held_for_approval"] = review["held"]
    return review["held"]


def _score_and_decide(winner, champions, data, options: TrainingOptions, since_evidence=None):
    """Score every recent champion on the evaluation rows the challenger was scored
    on (none of them trained on those), then let the gate decide; the current one
    also on the cross-fitted rows since a change (`since_evidence`, `cross_fitting`)."""
    predictions = {model.version: model.predict_labels(data.X_holdout) for model in champions}
    champion_metrics = {model.version: evaluate(data.y_holdout, predictions[model.version], data.w_holdout)
                        for model in champions}
    decision = decide_promotion(
        Contender(None, winner.metrics, data.labels, data.fingerprint["sha256"], winner.holdout_predictions,
                  winner.decision_rule.get("rare_class_promise")),
        [Contender(model.version, champion_metrics[model.version], model.labels,
                   model.manifest.get("data_fingerprint", {}).get("sha256"), predictions[model.version])
         for model in champions],
        options.gate, EvaluationRows(data.y_holdout, data.w_holdout, data.since_change_holdout, since_evidence))
    return champion_metrics, decision


def _winner_baseline(winner, data, population, outcome_reference, labelled_share) -> dict:
    """The drift baseline stored with the winner: the population it is trained for
    (else its training rows), and its metrics on held-out production outcomes,
    selected the way clinicians select the outcomes the drift check will compare."""
    rule = winner.decision_rule
    if population is not None:
        baseline = compute_baseline(population, predict_labels(winner.pipeline, population, data.labels, rule))
        baseline["from_production_window"] = True  # its rows repeat patients: the drift tests discount them
    else:
        baseline = compute_baseline(data.X_train, winner.holdout_predictions)
    baseline["estimation_reference"] = reference_from_model(winner.pipeline, data.X_holdout, data.y_holdout,
                                                            data.labels, rule)
    if outcome_reference is not None and len(outcome_reference[1]):
        X_outcomes, y_outcomes = outcome_reference
        held = in_holdout(X_outcomes, y_outcomes)
        predicted = predict_labels(winner.pipeline, X_outcomes[held], data.labels, rule)
        selection = np.array([labelled_share.get(label, 0.0) for label in predicted]) if labelled_share else None
        if selection is not None and not selection.sum():
            selection = None
        baseline["outcome_metrics"] = dict(evaluate(y_outcomes[held], predicted, selection), rows=int(held.sum()),
                                           labelled_share_by_prediction=labelled_share)
    return baseline


def _save_experiment(store: ArtifactStore, metadata: MetadataStore, record: dict) -> None:
    store.write_bytes(model_path(record["winner"]["version"], "experiment.json"),
                      json.dumps(record, indent=2, ensure_ascii=False, default=str).encode(), "application/json")
    metadata.put(EXPERIMENTS, record["run_id"], record)


def settle_experiment(store: ArtifactStore, metadata: MetadataStore, intent: dict) -> dict | None:
    """Write the promotion's outcome into its run's experiment record (safe to repeat)."""
    record = metadata.get(EXPERIMENTS, intent["run_id"])
    if record is None:
        return None
    record["promotion"]["promoted"] = intent["status"] == "done"
    if intent.get("closing_reason"):
        record["promotion"]["promote"] = False
        record["promotion"]["reasons"].append(intent["closing_reason"])
    _save_experiment(store, metadata, record)
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
