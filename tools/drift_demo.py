"""The loop, shown against a running `make run` (or any deployment URL).

1. a "day" of normal traffic, then a drift check of its window: no drift;
2. a "day" of shifted traffic (`tools.population_shift`: fever and
   tachycardia far more common, and a changed labelling rule), with
   clinicians' outcomes, then a drift check of that window: drift, a retrain
   request on the bus, a training run on the labelled production data, and --
   if it passes the gate -- a new champion that /predict serves without a
   restart, whose baseline is the shifted day's population;
3. another shifted day and its check: the shift has been learned, no drift.
(After input drift a retrain waits for labels in the changed region, for one
night by default: the demo then sends a second shifted, labelled day first.)

Requests go only to the given URL (loopback by default).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from shared.event_bus.messages import envelope
from shared.schema import FEATURES
from tools.population_shift import population


def _call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None,
          timeout: float = 60.0) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json_or_none(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json_or_none(error.read())


def _json_or_none(text: bytes):
    """JSON bodies decoded; an event function's plain "OK" is None."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def send_day(base_url: str, rows: int, seed: int, shifted: bool, outcomes: bool) -> None:
    X, truth = population(rows, seed=seed, shifted=shifted)
    for start in range(0, rows, 200):
        part = X[start:start + 200]
        status, body = _call(f"{base_url}/predict", "POST",
                             {"instances": [dict(zip(FEATURES, row)) for row in part.tolist()]})
        if status != 200:
            raise RuntimeError(f"/predict answered {status}: {body}")
        if outcomes:
            for item, label in zip(body["predictions"], truth[start:start + 200]):
                _call(f"{base_url}/record_outcome", "POST", {"prediction_id": item["prediction_id"], "label": label})


def trigger_drift_check(base_url: str, start: datetime, end: datetime) -> None:
    """POST a CloudEvent (binary mode), as Eventarc would after Cloud Scheduler."""
    headers = {"ce-id": f"demo-{end.timestamp()}", "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
               "ce-source": "//pubsub.googleapis.com/projects/local/topics/drift-check-requests",
               "ce-time": end.isoformat().replace("+00:00", "Z")}
    data = {"window_start": start.isoformat(), "window_end": end.isoformat()}
    status, body = _call(f"{base_url}/drift_check", "POST", envelope(data), headers, timeout=300)
    if status != 200:
        raise RuntimeError(f"/drift_check answered {status}: {body}")


def _held_for_approval(metadata, champion: str) -> dict | None:
    from shared.governance.approvals import list_pending

    return next((item for item in list_pending(metadata) if item["expected_version"] == champion), None)


def run_demo(base_url: str, rows: int = 600, wait_seconds: float = 900.0, out=sys.stdout) -> int:
    from shared import wiring
    from shared.monitoring.drift_check import report_id_for
    from shared.stores.metadata.port import DRIFT_REPORTS

    def say(message: str) -> None:
        print(message, file=out, flush=True)

    status, model = _call(f"{base_url}/model")
    if status != 200:
        say(f"no model is served at {base_url} ({status}); start `make run` first")
        return 1
    say(f"champion: {model['version']}")
    metadata = wiring.metadata_store()

    def day_and_check(title: str, seed: int, shifted: bool) -> dict | None:
        start = datetime.now(timezone.utc)
        say(f"sending a day of {title} traffic: {rows} predictions" + (", labelled by clinicians" if shifted else ""))
        send_day(base_url, rows, seed, shifted, outcomes=shifted)
        end = datetime.now(timezone.utc)
        trigger_drift_check(base_url, start, end)
        report = metadata.get(DRIFT_REPORTS, report_id_for(start, end))
        if report is None:
            say("the drift report is not in this shell's store: run the demo with the server's environment")
            return None
        say(f"drift check {report['report_id']} against {report['champion_version']}: {report['decision']}")
        for name, feature in report["features"].items():
            say(f"  {name:15s} PSI {feature['psi']:.3f}  W/std {feature['wasserstein_normalised']:.3f}  "
                f"{feature['status']}")
        performance = report["performance"]
        say(f"  predicted labels JS {report['prediction_drift']['js_distance']:.3f}; outcomes "
            f"{performance['outcomes']}, macro-F1 {performance['macro_f1']}, {performance['status']}")
        if report.get("html"):
            say(f"  open the report: {wiring.artifact_store().location(report['html'])}")
        return report

    if day_and_check("normal", 101, shifted=False) is None:
        return 1
    report = day_and_check("shifted (fever, tachycardia, a new rule for acute cases)", 202, shifted=True)
    if report is None:
        return 1
    if report["decision"] == "drift" and not report.get("retrain_request_id"):
        # the waiting rule (RETRAIN_MIN_CHANGED_LABELS / RETRAIN_MAX_WAIT_NIGHTS): one more night of labels
        say(f"  {report.get('retrain_wait', {}).get('message', 'no retrain requested yet')}")
        report = day_and_check("shifted, the next night,", 404, shifted=True)
        if report is None:
            return 1
    if report["decision"] != "drift":
        say("no drift: nothing to retrain")
        return 0
    say(f"retrain requested ({report['retrain_request_id']}); waiting for a new champion…")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        status, current = _call(f"{base_url}/model")
        if status == 200 and current["version"] != model["version"]:
            say(f"new champion served: {current['version']} (holdout macro-F1 {current['metrics']['macro_f1']:.4f}, "
                f"was {model['metrics']['macro_f1']:.4f})")
            break
        held = _held_for_approval(metadata, model["version"])
        if held:  # change control (issue 26): beyond the bounds a person decides
            say(f"the new model {held['version']} waits for approval: {'; '.join(held['held_because'])}\n"
                f"  see `python -m tools.cli models pending`; `models approve {held['version']} --by NAME` "
                "promotes it, then run the demo's last step again")
            return 1
        time.sleep(2)
    else:
        say("no new champion within the wait: see `python -m tools.cli experiments list` for the gate's decision")
        return 1
    served = 0  # every worker must serve the new champion (MODEL_REFRESH_SECONDS) before the next day
    while served < 10 and time.monotonic() < deadline:
        status, body = _call(f"{base_url}/predict?temperature=36.6&heart_rate=80&blood_pressure=120")
        served = served + 1 if status == 200 and body["model_version"] == current["version"] else 0
        time.sleep(0.5)
    again = day_and_check("shifted, again,", 303, shifted=True)
    if again is None:
        return 1
    say("the shift was learned: no drift on the shifted population" if again["decision"] != "drift"
        else "still drift on the shifted population: see the report's reasons")
    return 0 if again["decision"] != "drift" else 1
