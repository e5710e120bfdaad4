"""Run the loop by hand: train, promote and roll back models, check drift,
ingest data. Run it from the repository root with the project's Python:

    .venv/bin/python -m tools.cli --help
    .venv/bin/python -m tools.cli COMMAND --help

It reads the same environment variables as the functions (README,
"Configuration"): with none set it works on `.local/` (what `make run`
serves); with the emulators' or a project's variables, on those.
Every command prints text for people; add `--json` for one JSON document
that scripts can read. Errors go to stderr, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager, redirect_stdout

from shared import wiring
from shared.errors import ServiceError, TrainingDataError
from shared.models import registry
from shared.monitoring.report_html import when
from shared.stores.metadata.port import EXPERIMENTS
from tools import drift_cli, governance_cli, training_cli
from tools.output import PROG, Output

MAX_LIMIT = 1000


def _switch_text(document: dict) -> list[str]:
    settings = wiring.settings()
    return [f"champion is now {document['version']} (was {document['previous_version'] or 'none'})",
            f"running servers switch within MODEL_REFRESH_SECONDS ({settings.model_refresh_seconds:g} s): "
            "until then /predict may still answer with the previous version"]


def command_models(args) -> Output:
    if args.action in governance_cli.MODEL_ACTIONS:
        return governance_cli.command_models(args)
    store, metadata = wiring.artifact_store(), wiring.metadata_store()
    if args.action == "list":
        pointer, _ = registry.read_champion(store)
        champion = pointer["version"] if pointer else None
        versions = [{"version": m["version"], "champion": m["version"] == champion,
                     "macro_f1": m["metrics"]["macro_f1"], "family": m["training_parameters"].get("family"),
                     "artifact_size_bytes": m["artifact_size_bytes"], "created_at": m["created_at"]}
                    for m in registry.list_versions(store)]
        text = [f"{'*' if v['champion'] else ' '} {v['version']}  macro_f1={v['macro_f1']:.4f}  "
                f"{v['family'] or '?'}  {v['artifact_size_bytes']} bytes" for v in versions]
        return Output(versions, text + ["(* serves now)"] if versions else ["no model versions yet"])
    if args.action == "promote":
        document = registry.promote(store, metadata, args.version, reason=args.reason or "manual promotion",
                                    actor="cli")
        return Output(document, _switch_text(document))
    if args.action == "rollback":
        document = registry.rollback(store, metadata, actor="cli", to_version=args.to)
        return Output(document, _switch_text(document))
    history = registry.champion_history(metadata, args.limit)
    text = [f"{when(item['created_at'])}  {item['from_version'] or 'none'} → {item['to_version']}  "
            f"by {item['actor']}: {item['reason']}" for item in history]
    return Output(history, text or ["no champion switch yet"])


def command_experiments(args) -> Output:
    records = wiring.metadata_store().list(EXPERIMENTS, args.limit)
    text = []
    for record in records:
        promotion = record.get("promotion") or {}
        text.append(f"{when(record['created_at'])}  {record['run_id']}  winner={record['winner']['family']}  "
                    f"version={record['winner']['version']}  promoted={'yes' if promotion.get('promoted') else 'no'}")
        text += [f"    gate: {reason}" for reason in promotion.get("reasons") or []]
        text += [f"    note: {note}" for note in promotion.get("notes") or []]
    return Output(records, text or ["no training runs yet"])


def command_topics(args) -> Output:
    from shared.event_bus.pubsub import create_topics

    settings = wiring.settings()
    topics = [settings.drift_check_topic, settings.retrain_topic, settings.model_promoted_topic]
    created = create_topics(settings.google_cloud_project, topics)
    return Output({"created": created, "topics": topics}, [f"created: {', '.join(created) or 'none (all existed)'}"])


def command_ingest_clinical(args) -> Output:
    from datetime import date

    from shared.ingestion.clinical import ingest_clinical_configured

    try:
        day = date.fromisoformat(args.date) if args.date else None
    except ValueError:
        raise TrainingDataError(f"--date must be YYYY-MM-DD, got {args.date!r}") from None
    summary = ingest_clinical_configured(wiring.settings(), artifacts=wiring.artifact_store(),
                                         metadata=wiring.metadata_store(), ingestion_date=day)
    return Output(summary, [json.dumps(summary, indent=2, ensure_ascii=False, default=str)])


def command_ingest_reference(args) -> Output:
    from shared.ingestion.public_dataset import ingest_reference

    settings = wiring.settings()
    summary = ingest_reference(url=settings.reference_data_url, name=settings.reference_data_name,
                               artifacts=wiring.artifact_store(), metadata=wiring.metadata_store())
    return Output(summary, [json.dumps(summary, indent=2, ensure_ascii=False, default=str)])


def command_upgrade_prediction_log(args) -> Output:
    from shared.stores.predictions.sqlite_upgrade import upgrade_prediction_log

    path = wiring.settings().local_path / "mlops.sqlite3"
    result = upgrade_prediction_log(path)
    done = "rebuilt in the (time, id) layout" if result["upgraded"] else "already in the (time, id) layout"
    return Output({"database": str(path), **result}, [f"{path}: {result['rows']} predictions, {done}"])


def limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


class Parser(argparse.ArgumentParser):
    """argparse, with errors that say what to do next."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    # --json before or after the command; SUPPRESS keeps a subcommand's default from undoing the first.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document instead of text")
    parser = Parser(prog=PROG, description=__doc__, parents=[common],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser,
                                     title="commands (each has its own --help)")

    def command(name: str, summary: str, handler: Callable, description: str | None = None):
        sub = commands.add_parser(name, help=summary, description=description or summary, parents=[common])
        sub.set_defaults(handler=handler, command_parser=sub)
        return sub

    def actions(sub):
        group = sub.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser,
                                   title="actions (each has its own --help)")
        sub.set_defaults(action_names=group.choices)
        return group

    def action(group, name: str, summary: str):
        return group.add_parser(name, help=summary, description=summary, parents=[common])

    training_cli.register(command)
    models = actions(command("models", "list, promote, roll back, approve or reject held versions, and audit",
                             command_models))
    action(models, "list", "every registered version; * marks the one serving")
    promote = action(models, "promote", "serve VERSION (recorded in the champion history)")
    promote.add_argument("version", metavar="VERSION", help="a version from `models list`")
    promote.add_argument("--reason", help="why, for the champion history")
    rollback = action(models, "rollback", "serve the previous champion again (or --to VERSION)")
    rollback.add_argument("--to", metavar="VERSION", help="version to serve (default: the one before the champion)")
    history = action(models, "history", "every champion switch, newest first")
    history.add_argument("--limit", type=limit, default=50, help=f"how many (1 to {MAX_LIMIT}, default 50)")
    governance_cli.register(command, actions, action, models)
    experiments = actions(command("experiments", "training runs and what the gate decided", command_experiments))
    experiment_list = action(experiments, "list", "training runs, newest first")
    experiment_list.add_argument("--limit", type=limit, default=50, help=f"how many (1 to {MAX_LIMIT}, default 50)")
    drift = command("drift-check", "check a window of logged predictions (or a lake partition) now; "
                    "prints where to open the report", drift_cli.command_drift_check)
    drift.add_argument("--hours", type=float, help="window length ending now (default DRIFT_WINDOW_HOURS)")
    drift.add_argument("--start", help="window start, ISO 8601 (e.g. 2026-01-01T00:00:00Z)")
    drift.add_argument("--end", help="window end, ISO 8601 (default now)")
    drift.add_argument("--lake-partition", metavar="DATE",
                       help="check a clinical partition of the lake instead: YYYY-MM-DD or latest")
    reports = actions(command("drift-reports", "drift reports and where to open them", drift_cli.command_drift_reports))
    report_list = action(reports, "list", "drift reports, newest first, with the page to open")
    report_list.add_argument("--limit", type=limit, default=20, help=f"how many (1 to {MAX_LIMIT}, default 20)")
    demo = command("drift-demo", "normal, then shifted traffic against a running server: drift, retrain, "
                   "new champion, then no drift on the shifted population", drift_cli.command_drift_demo)
    demo.add_argument("--url", default="http://127.0.0.1:8080", help="the server (default %(default)s)")
    demo.add_argument("--rows", type=int, default=600, help="predictions per simulated day (default %(default)s)")
    retrain = command("retrain", "ask for a retrain now (an operator's request: reason manual, who asked)",
                      drift_cli.command_retrain)
    retrain.add_argument("--requested-by", metavar="NAME", help="who asks, recorded with the run (default: $USER)")
    topics = actions(command("topics", "Pub/Sub topics (for the emulator; Terraform creates them in the cloud)",
                             command_topics))
    action(topics, "create", "create the drift-check, retrain and model-promoted topics if missing")
    ingest = command("ingest-clinical", "PostgreSQL → cleaned, de-identified Parquet in the lake, one day of records",
                     command_ingest_clinical)
    ingest.add_argument("--date", help="day of records to (re)build, YYYY-MM-DD (default yesterday)")
    command("ingest-reference", "the public reference data set (WHO GHO) → the lake", command_ingest_reference)
    command("upgrade-prediction-log", "rebuild a previous release's local prediction log (.local) in the "
            "current layout, in one transaction, keeping every row and outcome; stop the server first",
            command_upgrade_prediction_log)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if "action" in args and args.action is None:
        args.command_parser.error(f"{args.command} needs an action: {', '.join(args.action_names)}")
    with _stdout_to_stderr():
        try:
            output = args.handler(args)
        except ServiceError as error:
            print(f"error: {error.message}", file=sys.stderr)
            return 2
        except (ValueError, OSError) as error:  # bad dates, empty lakes, unreachable stores: said plainly
            print(f"error: {error}", file=sys.stderr)
            return 2
    if getattr(args, "json", False):
        print(json.dumps(output.document, indent=2, ensure_ascii=False, default=str))
    else:
        for line in output.text:
            print(line)
    return output.document.get("exit_status", 0) if isinstance(output.document, dict) else 0


@contextmanager
def _stdout_to_stderr():
    """While a command runs, whatever writes to stdout -- a stray print, a
    library, the local training job's subprocess -- goes to stderr instead:
    stdout carries the command's result and nothing else (`--json | jq` works)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
