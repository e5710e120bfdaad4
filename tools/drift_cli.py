"""The command line's drift and retrain commands (`drift-check`, `drift-reports`,
`drift-demo`, `retrain`). Registered by tools.cli."""

from __future__ import annotations

import sys

from shared import wiring
from shared.monitoring.report_html import when
from tools.output import Output


def wait_for_local_training(bus) -> None:
    """On the local event bus the training job runs as a subprocess of this
    process: wait until it ends, so the command reports its result."""
    if not hasattr(bus, "join"):
        return
    print("retraining: the training job runs as a subprocess (local event bus)…", file=sys.stderr)
    bus.join()
    launcher = wiring.training_launcher()
    if hasattr(launcher, "wait_all"):  # the launch returns once the job has started: wait for its end
        launcher.wait_all()


def _report_output(report: dict, keys: tuple[str, ...]) -> Output:
    """A drift report's summary, with locations a person can open."""
    artifacts = wiring.artifact_store()
    summary = {key: report.get(key) for key in keys}
    summary["plots"] = {name: artifacts.location(path) for name, path in report["plots"].items()}
    summary["html"] = artifacts.location(report["html"]) if report.get("html") else None
    scope = report.get("partition") or f"{when(report['window_start'])} → {when(report['window_end'])}"
    text = [f"drift report {report['report_id']} ({scope}, {report['sample_size']} rows): {report['decision']}"]
    text += [f"  {reason}" for reason in report["reasons"]]
    if report.get("retrain_request_id"):
        text.append(f"retrain requested: message {report['retrain_request_id']}")
    if summary["html"]:
        text.append(f"open the report: {summary['html']}")
        text.append(f"or in the console: {console_url(report['report_id'])}")
    return Output(summary, text)


def console_url(report_id: str) -> str:
    """The report's page in the console of `make run` (PORT): it reads the report
    from whichever artifact store is configured, so this opens in emulator mode too."""
    import os

    return f"http://127.0.0.1:{os.environ.get('PORT') or 8080}/console/drift-reports/{report_id}/report.html"


def command_drift_check(args) -> Output:
    from datetime import datetime, timezone

    from shared.monitoring.drift_check import run_drift_check, run_partition_drift_check, window_from_request

    settings = wiring.settings()
    if args.lake_partition:
        from shared.monitoring.drift_check import _requested_day

        day = None if args.lake_partition == "latest" else _requested_day(args.lake_partition)
        report = run_partition_drift_check(
            day=day, trigger={"source": "cli"}, artifacts=wiring.artifact_store(settings),
            metadata=wiring.metadata_store(settings), bus=wiring.event_bus(settings), settings=settings)
        return _report_output(report, ("report_id", "partition", "sample_size", "decision", "reasons",
                                       "retrain_request_id"))
    request = {"window_hours": args.hours, "window_start": args.start, "window_end": args.end}
    start, end = window_from_request({k: v for k, v in request.items() if v}, datetime.now(timezone.utc),
                                     settings.drift_window_hours)
    report = run_drift_check(
        start=start, end=end, trigger={"source": "cli"}, predictions=wiring.prediction_store(settings),
        artifacts=wiring.artifact_store(settings), metadata=wiring.metadata_store(settings),
        bus=wiring.event_bus(settings), settings=settings)
    if report.get("retrain_request_id"):
        wait_for_local_training(wiring.event_bus())
    return _report_output(report, ("report_id", "window_start", "window_end", "sample_size", "decision", "reasons",
                                   "retrain_request_id"))


def command_drift_reports(args) -> Output:
    from shared.stores.metadata.port import DRIFT_REPORTS

    artifacts = wiring.artifact_store()
    reports = wiring.metadata_store().list(DRIFT_REPORTS, args.limit)
    documents = [{key: report.get(key) for key in ("report_id", "window_start", "window_end", "sample_size",
                                                   "decision")}
                 | {"html": artifacts.location(report["html"]) if report.get("html") else None}
                 for report in reports]
    text = [f"{d['report_id']}  {when(d['window_start'])} → {when(d['window_end'])}  n={d['sample_size']}  "
            f"{d['decision']}" + (f"\n    {d['html']}\n    {console_url(d['report_id'])}" if d["html"] else "")
            for d in documents]
    return Output(documents, text or ["no drift reports yet"])


def command_drift_demo(args) -> Output:
    from tools.drift_demo import run_demo

    status = run_demo(args.url.rstrip("/"), rows=args.rows, out=sys.stderr)
    return Output({"exit_status": status}, [] if status == 0 else ["the demo did not complete: see above"])


def command_retrain(args) -> Output:
    """An operator's retrain request, on the retrain topic like the loop's own:
    `reason: manual` and who asked (the retrain schema refuses a request that
    names neither a drift report nor an operator)."""
    import getpass

    from shared.event_bus.schemas import RETRAIN, validate_data

    settings = wiring.settings()
    data = validate_data({"reason": "manual", "requested_by": args.requested_by or getpass.getuser(),
                          "source": "cli"}, RETRAIN)
    bus = wiring.event_bus(settings)
    message_id = bus.publish(settings.retrain_topic, data, {"source": "cli"})
    wait_for_local_training(bus)
    return Output({"message_id": message_id, **data},
                  [f"retrain requested by {data['requested_by']}: message {message_id}"])
