"""The command line's training commands (`bootstrap`, `train`) and the
training-file reader the governance commands share. Registered by tools.cli."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from shared import wiring
from shared.errors import TrainingDataError
from shared.models import registry
from shared.schema import FEATURES
from shared.training.candidates import FAMILIES
from tools.output import PROG, Output


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


def command_bootstrap(args) -> Output:
    from shared.training.runs import ensure_champion

    settings = wiring.settings()
    record = ensure_champion(wiring.artifact_store(), wiring.metadata_store(),
                             rows=settings.training_rows, seed=settings.training_seed,
                             progress=lambda message: print(message, file=sys.stderr))
    if record is None:
        pointer, _ = registry.read_champion(wiring.artifact_store())
        return Output({"created": False, "version": pointer["version"] if pointer else None},
                      ["a champion model is already registered; nothing to do"])
    version = record["winner"]["version"]
    return Output({"created": True, "version": version}, [f"registered and promoted a first model: {version}"])


def command_train(args) -> Output:
    from shared.governance.change_control import ChangeBounds
    from shared.training.retrain_handler import gate_rules
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
    families = tuple(name.strip() for name in args.families.split(",")) if args.families else FAMILIES
    unknown = [name for name in families if name not in FAMILIES]
    if unknown:
        raise TrainingDataError(f"unknown model family {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    options = TrainingOptions(
        seed=seed, families=families,
        budget_seconds=args.budget if args.budget is not None else settings.search_budget_seconds,
        gate=gate_rules(settings), rare_class_min_recall=settings.rare_class_min_recall,
        change_bounds=ChangeBounds.from_settings(settings),
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
    promotion = record["promotion"]
    text = [f"run {summary['run_id']}: winner {summary['winner']}, version {summary['version']}"]
    text += [f"  {family:15s} holdout macro-F1 {score:.4f}" for family, score in summary["candidates"].items()]
    if promotion.get("held_for_approval"):
        text.append("held for approval: " + "; ".join(promotion["change_control"]["reasons"])
                    + f" (see `{PROG} models pending`)")
    text.append("promoted: now serving" if promotion["promoted"] else
                f"not promoted: {'; '.join(promotion.get('reasons') or ['the gate refused it'])}")
    text += [f"note: {note}" for note in summary["notes"]]
    return Output(summary, text)


def register(command) -> None:
    """Add `bootstrap` and `train` to tools.cli's parser."""
    command("bootstrap", "train and promote a quick first model if none serves (what `make run` does first)",
            command_bootstrap)
    train = command("train", "search every model family, register the winner, apply the promotion gate",
                    command_train)
    train.add_argument("--data", metavar="PATH",
                       help="CSV or Parquet with temperature, heart_rate, blood_pressure, label "
                            "(default: the synthetic reference data)")
    train.add_argument("--rows", type=int, help="rows from the reference generator (default TRAINING_ROWS)")
    train.add_argument("--seed", type=int, help="seed of the split, folds and models (default TRAINING_SEED)")
    train.add_argument("--families", help=f"comma-separated subset of {','.join(FAMILIES)}")
    train.add_argument("--budget", type=float, metavar="SECONDS",
                       help="search time budget (default SEARCH_BUDGET_SECONDS)")
