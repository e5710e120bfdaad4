"""Issue 11's loop simulation: 30 nights through the real handlers on the
embedded backends (SQLite, a local artifact folder), in three labelling variants.

Each night: `PATIENTS_PER_NIGHT` patients are served by `predict_and_log`
(whatever champion the registry points at); clinicians record outcomes
through `record_outcome`, each 0-48 h after its prediction (late outcomes); at
the end of the night `handle_drift_check_message` checks the night's window
and, if it publishes a retrain request, `handle_retrain_message` runs it.

- nights 1-10: the reference population; from night 11: `tools.population_shift`
  (inputs shift, and the labelling rule changes for part of the space);
- variant `random_20`: clinicians label a random 20 % of predictions;
  variant `sick_only`: they label 20 % of the predictions of a sick class only;
  variant `repeated_3` (issue 20): like `random_20`, but each night's patients
  are a third as many, each measured 3 times (fresh measurement noise).

Two F1 columns. "night": the serving champion's macro-F1 on all that night's
patients (every one, labelled or not). "population": its macro-F1 on
`POPULATION_ROWS` rows drawn once from the night's generator (reference or
shifted, in the variant's shape) and scored through the served model without
logging them, so the loop is unchanged. The night's figure is a sample of
4,000 rows (repeated_3: 1,333 patients x 3) with a rare class in the average:
with one unchanged champion it varies by 0.005-0.008 (SD) from night to night,
by 0.006-0.014 in repeated_3, where a model exactly as good as before the
shift misses "within 0.02 on every one of 18 nights" by noise alone more than
half the time (55-73 %: two champions, normal and bootstrap; issue 20's note,
session 5). The population figure measures what the
target is about, the champion's quality on the night's population; both
judgements are reported, the target is judged on the population's.

Targets (issue 20): no retrain on a stationary night; a retrain within 2
nights of the shift and at most one more (issue 11 asked for none more:
`retrains_after_the_first` still lists them); F1 back within 0.02 of its
pre-shift level within 3 nights, and held. Training is kept fast by settings
(XGBoost only, no search).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from bench.loop_targets import POPULATION_ROWS, SHIFT_NIGHT, judge

NIGHTS = 30
PATIENTS_PER_NIGHT = 4000
LABELLED_SHARE = 0.2
MAX_OUTCOME_DELAY_HOURS = 48
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
# Seeds of the population samples: apart from every night's (1000 + night).
POPULATION_SEEDS = {False: 7_000_001, True: 7_000_002}
FAST_TRAINING = {"TRAINING_FAMILIES": "xgboost", "SEARCH_BUDGET_SECONDS": "0", "TRAINING_ROWS": "5000"}


class InProcessLauncher:
    """Runs the training job's work in this process at the simulated time (the
    real launcher starts a subprocess on the wall clock, which would see no
    recent labels in a simulated January)."""

    def __init__(self, now: datetime, **dependencies):
        self.now, self.dependencies, self.results = now, dependencies, []

    def launch(self, key: str) -> str:
        from shared.stores.metadata.port import TRAINING_REQUESTS
        from shared.training.retrain_handler import train_for_request

        # the job reads its request by key, as jobs/train.py does
        request = self.dependencies["metadata"].get(TRAINING_REQUESTS, key)["request"]
        self.results.append(train_for_request(request.get("data") or {}, key=key,
                                              trigger=request.get("trigger") or {}, now=self.now,
                                              **self.dependencies))
        return f"in-process-{len(self.results)}"


class CollectingBus:
    """Keeps published messages, so the simulation delivers them at simulated times."""

    def __init__(self):
        self.published: list[tuple[str, dict, dict]] = []

    def publish(self, topic: str, data: dict, attributes: dict | None = None) -> str:
        self.published.append((topic, json.loads(json.dumps(data)), dict(attributes or {})))
        return f"sim-{len(self.published)}"


def deciding_statistic(report: dict) -> str:
    """The largest statistic against its threshold, e.g. `heart_rate PSI 0.61`."""
    if report["decision"] == "insufficient_data":
        return "too few rows"
    thresholds = report["thresholds"]
    ratios = []
    for name, feature in report["features"].items():
        ratios.append((feature["psi"] / thresholds["psi_drift"], f"{name} PSI {feature['psi']:.2f}"))
        ratios.append((feature["wasserstein_normalised"] / thresholds["wasserstein_drift"],
                       f"{name} W/std {feature['wasserstein_normalised']:.2f}"))
    js = report["prediction_drift"]["js_distance"]
    ratios.append((js / thresholds["label_js_drift"], f"labels JS {js:.2f}"))
    drop = report["performance"].get("macro_f1_drop")
    if drop is not None:
        ratios.append((drop / thresholds["f1_drop"], f"F1 drop {drop:.3f}"))
    return max(ratios)[1]


def simulate(variant: str, data_dir: str, nights: int = NIGHTS, out=sys.stderr) -> dict:
    from shared import wiring
    from shared.config import load_settings
    from shared.event_bus.messages import BusMessage
    from shared.models.loading import ModelLoader
    from shared.monitoring.drift_check import handle_drift_check_message
    from shared.schema import LABELS, Vitals
    from shared.serving.prediction_service import predict_and_log, record_outcome
    from shared.training.candidates import evaluate
    from shared.training.retrain_handler import handle_retrain_message
    from shared.training.runs import ensure_champion
    settings = load_settings(dict(os.environ, LOCAL_DATA_DIR=data_dir, **FAST_TRAINING))
    predictions, artifacts = wiring.prediction_store(settings), wiring.artifact_store(settings)
    metadata = wiring.metadata_store(settings)
    ensure_champion(artifacts, metadata, rows=settings.training_rows, seed=settings.training_seed)
    loader = ModelLoader(artifacts, refresh_seconds=0)
    rng = np.random.default_rng(11)
    samples = population_samples(variant)
    population_scores: dict[tuple[str, bool], float] = {}
    pending: list[tuple[datetime, str, str]] = []  # (recorded at, prediction id, label)
    table = []
    print(f"\n{variant}: night  population  decision            deciding statistic        retrain  promoted  "
          f"F1 night  F1 pop.", file=out)
    for night in range(1, nights + 1):
        shifted = night >= SHIFT_NIGHT
        opens, closes = START + timedelta(days=night - 1), START + timedelta(days=night)
        X, truth = night_rows(variant, PATIENTS_PER_NIGHT, seed=1000 + night, noise_seed=night, shifted=shifted)
        # The serving instance re-checks the champion in the background and keeps
        # answering with the model it has (`ModelLoader.get`); a night here is served
        # in about a second, so without this wait the old champion answered a
        # timing-dependent part of the night after a promotion (night 13 of one run:
        # 0.917 or 0.922 in two runs of the same code).
        loader.get()
        loader.wait_for_refresh()
        model, served, versions = loader.get(), [], set()
        for offset in range(0, len(X), 250):
            moment = opens + timedelta(hours=20 * offset / len(X))
            answer = predict_and_log([Vitals(*row) for row in X[offset:offset + 250].tolist()], loader=loader,
                                     store=predictions, batch=True, now=moment)
            versions.add(answer["model_version"])
            served.extend((item["prediction_id"], item["prediction"], moment) for item in answer["predictions"])
        predicted = np.array([label for _, label, _ in served], dtype=object)
        champion_f1 = evaluate(truth, predicted)["macro_f1"]
        # the model the night's answers name: its quality on the night's population
        served_version, population_f1 = night_population_f1(model, versions, samples, night, population_scores)
        eligible = predicted != LABELS[0] if variant == "sick_only" else np.ones(len(served), dtype=bool)
        for index in np.flatnonzero(eligible & (rng.random(len(served)) < LABELLED_SHARE)):
            prediction_id, _, moment = served[index]
            delay = timedelta(hours=float(rng.uniform(0, MAX_OUTCOME_DELAY_HOURS)))
            pending.append((moment + delay, prediction_id, truth[index]))
        pending.sort()
        while pending and pending[0][0] < closes:
            recorded, prediction_id, label = pending.pop(0)
            record_outcome(predictions, prediction_id, label, now=recorded)
        bus = CollectingBus()
        check = BusMessage({"window_start": opens.isoformat(), "window_end": closes.isoformat()},
                           message_id=f"{variant}-night-{night}", publish_time=closes)
        report = handle_drift_check_message(check, predictions=predictions, artifacts=artifacts,
                                            metadata=metadata, bus=bus, settings=settings)
        retrain = promoted = None
        started = time.perf_counter()
        for topic, data, attributes in bus.published:
            if topic == settings.retrain_topic:
                request = BusMessage(data, attributes, message_id=f"retrain-{night}", publish_time=closes)
                launcher = InProcessLauncher(closes, predictions=predictions, artifacts=artifacts,
                                             metadata=metadata, bus=bus, settings=settings)
                handle_retrain_message(request, metadata=metadata, launcher=launcher, settings=settings, now=closes)
                retrain = True
                promoted = any(result.get("promoted") for result in launcher.results)
        row = {"night": night, "shifted": shifted, "decision": report["decision"],
               "retrain_wait": (report.get("retrain_wait") or {}).get("message"),
               "deciding": deciding_statistic(report), "retrain": bool(retrain), "promoted": bool(promoted),
               "retrain_reasons": report["reasons"] if retrain else None,
               "served_version": served_version,
               "champion_macro_f1": round(champion_f1, 4), "population_macro_f1": round(population_f1, 4),
               "retrain_seconds": round(time.perf_counter() - started, 1) if retrain else None}
        table.append(row)
        print(f"{variant}: {night:5d}  {'shifted' if shifted else 'reference':10s}  {row['decision']:18s}  "
              f"{row['deciding']:24s}  {'yes' if retrain else '-':7s}  {'yes' if promoted else '-':8s}  "
              f"{champion_f1:.4f}  {population_f1:.4f}", file=out, flush=True)
    return {"nights": table, "targets": judge(table)}


def night_rows(variant: str, rows: int, *, seed: int, noise_seed: int, shifted: bool) -> tuple[np.ndarray, np.ndarray]:
    """`rows` rows as the variant serves them, with their labels (repeated_3:
    a third as many patients, each measured 3 times with fresh noise)."""
    from shared.training.synthetic_data import MEASUREMENT_NOISE
    from tools.population_shift import population

    if variant != "repeated_3":
        return population(rows, seed=seed, shifted=shifted)
    patients, truth = population(rows // 3, seed=seed, shifted=shifted)
    X = np.repeat(patients, 3, axis=0)
    X = np.round(X + np.random.default_rng(noise_seed).normal(0.0, MEASUREMENT_NOISE, X.shape), 1)
    return X, np.repeat(truth, 3)


def population_samples(variant: str, rows: int = POPULATION_ROWS) -> dict:
    """One sample per population, {shifted: (X, labels)}, in the variant's shape,
    drawn once with its own seed (apart from every night's): common random
    numbers, so the population figure changes only when the serving champion
    does. One seed serves the generator and repeated_3's noise (measured
    harmless, |corr| < 0.01; kept so session 5's figures reproduce)."""
    return {shifted: night_rows(variant, rows, seed=POPULATION_SEEDS[shifted], noise_seed=POPULATION_SEEDS[shifted],
                                shifted=shifted) for shifted in (False, True)}


def night_population_f1(model, versions: set, samples: dict, night: int, scores: dict) -> tuple[str, float]:
    """The night's served version (its answers must name one) and that model's
    macro-F1 on the night's population (shifted from `SHIFT_NIGHT`)."""
    if versions != {model.version}:
        raise AssertionError(f"night {night} was served by {sorted(versions)}, not by {model.version} alone")
    return model.version, population_macro_f1(model, samples, night >= SHIFT_NIGHT, scores)


def population_macro_f1(model, samples: dict, shifted: bool, scores: dict) -> float:
    """`model`'s macro-F1 on the night's population sample, cached in `scores`
    (mutated) per (version, population): scoring 200,000 rows costs ~5 s, and
    the sample is fixed, so a version's figure cannot change."""
    from shared.training.candidates import evaluate

    if (model.version, shifted) not in scores:
        sample, truth = samples[shifted]
        scores[model.version, shifted] = evaluate(truth, model.predict_labels(sample))["macro_f1"]
    return scores[model.version, shifted]


def main(quick: bool = False, variants: tuple[str, ...] = ()) -> dict:
    """The three variants (or those named); `quick` stops 3 nights after the shift."""
    from shared import wiring

    results = {}
    for variant in variants or ("random_20", "sick_only", "repeated_3"):
        started = time.perf_counter()
        # The SQLite store's checkpointer thread outlives the run by up to its interval and
        # may write a -wal file while the folder is removed: that lost 3 of 12 runs' JSON.
        with tempfile.TemporaryDirectory(prefix=f"bench-loop-{variant}-", ignore_cleanup_errors=True) as data_dir:
            wiring.reset()
            results[variant] = simulate(variant, data_dir, nights=SHIFT_NIGHT + 3 if quick else NIGHTS)
        wiring.reset()
        results[variant]["seconds"] = round(time.perf_counter() - started, 1)
        for name, target in results[variant]["targets"].items():
            print(f"{variant}: {name}: {target}", file=sys.stderr)
    return results


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    chosen = tuple(arg for arg in sys.argv[1:] if not arg.startswith("--"))
    print(json.dumps(main(quick="--quick" in sys.argv, variants=chosen), indent=2))
