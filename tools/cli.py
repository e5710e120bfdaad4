"""Command line: `python -m tools.cli --help`.

    bootstrap                  train and promote a first model if none serves
    train [--data PATH] ...    full search, registration, promotion gate
    models list|promote|rollback|history
    experiments list
    drift-check [--hours H | --start T --end T]
    drift-reports list
    drift-demo [--url URL]     normal then shifted traffic against `make run`
    topics create              create the Pub/Sub topics (for the emulator)
    ingest-clinical [--date D] PostgreSQL -> cleaned, de-identified Parquet in the lake
    ingest-reference           WHO GHO reference data -> the lake
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from shared import wiring
from shared.errors import ServiceError, TrainingDataError
from shared.models import registry
from shared.schema import FEATURES
from shared.stores.metadata.port import EXPERIMENTS
from shared.training.candidates import FAMILIES


def load_training_file(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A CSV or Parquet file with the feature columns and `label`."""
    file = Path(path)
    if not file.is_file():
        raise TrainingDataError(f"no such file: {path}")
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as parquet

            table = parquet.read_table(file).to_pydict()
        else:
            import csv

            with open(file, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            table = {name: [row.get(name) for row in rows] for name in (*FEATURES, "label")} if rows else {}
    except (OSError, ValueError, ImportError) as error:
        raise TrainingDataError(f"cannot read {path}: {error}") from None
    missing = [name for name in (*FEATURES, "label") if name not in table]
    if missing:
        raise TrainingDataError(f"{path} lacks the column(s): {', '.join(missing)}")
    try:
        X = np.column_stack([np.asarray(table[name], dtype=float) for name in FEATURES])
    except (TypeError, ValueError):
        raise TrainingDataError(f"{path}: feature columns must be numeric") from None
    return X, np.asarray([str(label).strip() for label in table["label"]], dtype=object)


def _print(document) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def command_bootstrap(args) -> int:
    from shared.training.runs import ensure_champion

    settings = wiring.settings()
    record = ensure_champion(wiring.artifact_store(), wiring.metadata_store(),
                             rows=settings.training_rows, seed=settings.training_seed,
                             progress=lambda message: print(message, file=sys.stderr))
    if record is None:
        print("a champion model is already registered", file=sys.stderr)
    else:
        print(f"registered and promoted first model {record['winner']['version']}", file=sys.stderr)
    return 0


def command_train(args) -> int:
    from shared.training.runs import TrainingOptions, run_training
    from shared.training.synthetic_data import generate_reference_data

    settings = wiring.settings()
    seed = args.seed if args.seed is not None else settings.training_seed
    if args.data:
        X, y = load_training_file(args.data)
        sources = {"file": args.data}
    else:
        rows = args.rows or settings.training_rows
        X, y = generate_reference_data(rows, seed=seed)
        sources = {"reference_generator": {"rows": rows, "seed": seed}}
    families = tuple(args.families.split(",")) if args.families else FAMILIES
    options = TrainingOptions(
        seed=seed, families=families,
        budget_seconds=args.budget if args.budget is not None else settings.search_budget_seconds,
        f1_tolerance=settings.promotion_f1_tolerance, max_recall_drop=settings.promotion_max_recall_drop,
    )
    from tqdm import tqdm

    with tqdm(desc="training", unit="step", file=sys.stderr) as bar:
        def progress(message: str) -> None:
            bar.set_postfix_str(message[:80])
            bar.update(1)

        record = run_training(X, y, store=wiring.artifact_store(), metadata=wiring.metadata_store(),
                              options=options, actor="cli", data_sources=sources, progress=progress)
    summary = {
        "run_id": record["run_id"], "version": record["winner"]["version"], "winner": record["winner"]["family"],
        "candidates": {c["family"]: c["holdout"]["macro_f1"] for c in record["candidates"]},
        "promotion": record["promotion"], "notes": record["notes"],
    }
    _print(summary)
    return 0


def command_models(args) -> int:
    store, metadata = wiring.artifact_store(), wiring.metadata_store()
    if args.models_command == "list":
        pointer, _ = registry.read_champion(store)
        champion = pointer["version"] if pointer else None
        for manifest in registry.list_versions(store):
            print(f"{'*' if manifest['version'] == champion else ' '} {manifest['version']}  "
                  f"macro_f1={manifest['metrics']['macro_f1']:.4f}  "
                  f"{manifest['training_parameters'].get('family', '?')}  {manifest['artifact_size_bytes']} bytes")
        return 0
    if args.models_command == "promote":
        _print(registry.promote(store, metadata, args.version, reason=args.reason or "manual promotion",
                                actor="cli"))
        return 0
    if args.models_command == "rollback":
        _print(registry.rollback(store, metadata, actor="cli", to_version=args.to))
        return 0
    _print(registry.champion_history(metadata, args.limit))
    return 0


def command_experiments(args) -> int:
    records = wiring.metadata_store().list(EXPERIMENTS, args.limit)
    for record in records:
        print(f"{record['created_at']}  {record['run_id']}  winner={record['winner']['family']}  "
              f"version={record['winner']['version']}  promoted={record['promotion']['promoted']}")
    return 0


def command_drift_check(args) -> int:
    from datetime import date, datetime, timezone

    from shared.monitoring.drift_check import run_drift_check, run_partition_drift_check, window_from_request

    settings = wiring.settings()
    if args.lake_partition:
        day = None if args.lake_partition == "latest" else date.fromisoformat(args.lake_partition)
        report = run_partition_drift_check(
            day=day, trigger={"source": "cli"}, artifacts=wiring.artifact_store(settings),
            metadata=wiring.metadata_store(settings), bus=wiring.event_bus(settings), settings=settings)
        _print({key: report[key] for key in ("report_id", "partition", "sample_size", "decision", "reasons",
                                             "plots", "retrain_request_id")})
        return 0
    request = {"window_hours": args.hours, "window_start": args.start, "window_end": args.end}
    start, end = window_from_request({k: v for k, v in request.items() if v}, datetime.now(timezone.utc),
                                     settings.drift_window_hours)
    report = run_drift_check(
        start=start, end=end, trigger={"source": "cli"}, predictions=wiring.prediction_store(settings),
        artifacts=wiring.artifact_store(settings), metadata=wiring.metadata_store(settings),
        bus=wiring.event_bus(settings), settings=settings)
    summary = {key: report[key] for key in ("report_id", "window_start", "window_end", "sample_size", "decision",
                                            "reasons", "plots", "retrain_request_id")}
    _print(summary)
    bus = wiring.event_bus()
    if hasattr(bus, "join") and report.get("retrain_request_id"):
        print("retraining in this process (local event bus)…", file=sys.stderr)
        bus.join()
    return 0


def command_drift_reports(args) -> int:
    from shared.stores.metadata.port import DRIFT_REPORTS

    for report in wiring.metadata_store().list(DRIFT_REPORTS, args.limit):
        print(f"{report['report_id']}  {report['window_start']} → {report['window_end']}  "
              f"n={report['sample_size']}  {report['decision']}")
    return 0


def command_drift_demo(args) -> int:
    from tools.drift_demo import run_demo

    return run_demo(args.url.rstrip("/"), rows=args.rows)


def command_topics(args) -> int:
    from shared.event_bus.pubsub import create_topics

    settings = wiring.settings()
    topics = [settings.drift_check_topic, settings.retrain_topic, settings.model_promoted_topic]
    created = create_topics(settings.google_cloud_project, topics)
    print(f"created: {', '.join(created) or 'none (all existed)'}")
    return 0


def command_ingest_clinical(args) -> int:
    from datetime import date

    from shared.ingestion.clinical import ingest_clinical_configured

    _print(ingest_clinical_configured(
        wiring.settings(), artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(),
        ingestion_date=date.fromisoformat(args.date) if args.date else None))
    return 0


def command_ingest_reference(args) -> int:
    from shared.ingestion.public_dataset import ingest_reference

    settings = wiring.settings()
    _print(ingest_reference(url=settings.reference_data_url, name=settings.reference_data_name,
                            artifacts=wiring.artifact_store(), metadata=wiring.metadata_store()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("bootstrap", help="train and promote a first model if none serves").set_defaults(
        handler=command_bootstrap)
    train = commands.add_parser("train", help="search all families, register, apply the promotion gate")
    train.add_argument("--data", help="CSV or Parquet with temperature, heart_rate, blood_pressure, label")
    train.add_argument("--rows", type=int, help="rows from the reference generator (default TRAINING_ROWS)")
    train.add_argument("--seed", type=int)
    train.add_argument("--families", help=f"comma-separated subset of {','.join(FAMILIES)}")
    train.add_argument("--budget", type=float, help="search time budget in seconds")
    train.set_defaults(handler=command_train)
    models = commands.add_parser("models", help="list, promote, roll back, audit")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    models_commands.add_parser("list")
    promote = models_commands.add_parser("promote")
    promote.add_argument("version")
    promote.add_argument("--reason")
    rollback = models_commands.add_parser("rollback")
    rollback.add_argument("--to", help="version to serve (default: the one before the current champion)")
    history = models_commands.add_parser("history", help="every champion switch, newest first")
    history.add_argument("--limit", type=int, default=50)
    models.set_defaults(handler=command_models)
    experiments = commands.add_parser("experiments", help="training runs")
    experiments.add_argument("action", choices=["list"])
    experiments.add_argument("--limit", type=int, default=50)
    experiments.set_defaults(handler=command_experiments)
    drift = commands.add_parser("drift-check", help="check a window of logged predictions now")
    drift.add_argument("--hours", type=float, help="window length ending now (default DRIFT_WINDOW_HOURS)")
    drift.add_argument("--start", help="window start, ISO 8601")
    drift.add_argument("--end", help="window end, ISO 8601")
    drift.add_argument("--lake-partition", help="check a clinical partition of the lake instead: YYYY-MM-DD or latest")
    drift.set_defaults(handler=command_drift_check)
    reports = commands.add_parser("drift-reports", help="drift reports, newest first")
    reports.add_argument("action", choices=["list"])
    reports.add_argument("--limit", type=int, default=20)
    reports.set_defaults(handler=command_drift_reports)
    demo = commands.add_parser("drift-demo", help="normal then shifted traffic against a running server")
    demo.add_argument("--url", default="http://127.0.0.1:8080")
    demo.add_argument("--rows", type=int, default=600)
    demo.set_defaults(handler=command_drift_demo)
    topics = commands.add_parser("topics", help="Pub/Sub topics")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(handler=command_topics)
    ingest = commands.add_parser("ingest-clinical", help="PostgreSQL -> the lake (watermarked)")
    ingest.add_argument("--date", help="ingestion date to (re)build, YYYY-MM-DD (default today)")
    ingest.set_defaults(handler=command_ingest_clinical)
    commands.add_parser("ingest-reference", help="public reference data -> the lake").set_defaults(
        handler=command_ingest_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
