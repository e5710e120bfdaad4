"""Issue 26's label attack, against a running `make run` (loopback by default).

1. A day of 2,000 normal predictions, 20 % labelled truthfully by three
   clinicians (each with an ID token of its own; locally tokens are read,
   not verified, so the script mints unsigned ones).
2. The attacker, one caller, lists every id through /predictions-history and
   relabels the febrile predictions (temperature >= 38.6, heart rate < 125:
   ENFERMEDAD AGUDA by the reference rule) as NO ENFERMO, overwriting
   clinicians' labels where there are some; then posts a drift check of the day.
3. Waits for the training run, then asks the served model about 200 fresh
   febrile inputs: the share answered as before is the figure to watch
   (issue 26: at least 90 % until someone approves).

    .venv/bin/python -m tools.label_attack --url http://127.0.0.1:8126
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from datetime import datetime, timezone

import numpy as np

from shared.schema import FEATURES
from shared.training.synthetic_data import generate_reference_data
from tools.drift_demo import _call, trigger_drift_check

CLINICIANS = ("ana@clinic.example", "ben@clinic.example", "carla@clinic.example")
ATTACKER = "labeller@attacker.example"


def unsigned_token(email: str) -> str:
    """An ID token as Cloud Run forwards it: signature removed (the local server verifies nothing)."""
    def part(document: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'email': email})}.SIGNATURE_REMOVED_BY_GOOGLE"


def as_caller(email: str) -> dict:
    return {"Authorization": f"Bearer {unsigned_token(email)}"}


def febrile(X: np.ndarray) -> np.ndarray:
    return (X[:, 0] >= 38.6) & (X[:, 1] < 125)


def answers(base_url: str, X: np.ndarray) -> list[str]:
    status, body = _call(f"{base_url}/predict", "POST", {"instances": [dict(zip(FEATURES, r)) for r in X.tolist()]})
    if status != 200:
        raise RuntimeError(f"/predict answered {status}: {body}")
    return [item["prediction"] for item in body["predictions"]]


def run_attack(base_url: str, rows: int = 2000, seed: int = 5, wait_seconds: float = 900.0, out=sys.stdout) -> dict:
    def say(message: str) -> None:
        print(message, file=out, flush=True)

    _, model = _call(f"{base_url}/model")
    X_fresh, _ = generate_reference_data(20_000, seed=77)
    fresh = X_fresh[febrile(X_fresh)][:200]
    before = answers(base_url, fresh)
    counts = {str(label): int(count) for label, count in zip(*np.unique(before, return_counts=True))}
    say(f"champion {model['version']}: fresh febrile inputs answered {counts}")
    start = datetime.now(timezone.utc)
    X, y = generate_reference_data(rows, seed=seed)
    labelled = np.random.default_rng(seed + 1000).random(rows) < 0.2
    for offset in range(0, rows, 200):
        status, body = _call(f"{base_url}/predict", "POST",
                             {"instances": [dict(zip(FEATURES, r)) for r in X[offset:offset + 200].tolist()]})
        for i, item in enumerate(body["predictions"], start=offset):
            if labelled[i]:
                _call(f"{base_url}/record_outcome", "POST", {"prediction_id": item["prediction_id"], "label": y[i]},
                      as_caller(CLINICIANS[i % len(CLINICIANS)]))
    say(f"{rows} predictions, {int(labelled.sum())} labelled truthfully by {len(CLINICIANS)} clinicians")
    relabelled = overwritten = 0
    cursor = None
    while True:
        status, page = _call(f"{base_url}/predictions-history?limit=500" + (f"&cursor={cursor}" if cursor else ""))
        for item in page["predictions"]:
            vitals = item["inputs"]
            if item["created_at"] >= start.isoformat().replace("+00:00", "Z") and vitals["temperature"] >= 38.6 \
                    and vitals["heart_rate"] < 125:
                overwritten += "outcome" in item
                status, _ = _call(f"{base_url}/record_outcome", "POST",
                                  {"prediction_id": item["prediction_id"], "label": "NO ENFERMO"}, as_caller(ATTACKER))
                relabelled += status == 200
        cursor = page.get("next_cursor")
        if not cursor or page["predictions"][-1]["created_at"] < start.isoformat().replace("+00:00", "Z"):
            break
    say(f"attacker relabelled {relabelled} febrile predictions as NO ENFERMO ({overwritten} over clinicians' labels)")
    from shared import wiring
    from shared.stores.metadata.port import EXPERIMENTS

    runs_before = {r["run_id"] for r in wiring.metadata_store().list(EXPERIMENTS, 200)}
    trigger_drift_check(base_url, start, datetime.now(timezone.utc))
    say("drift check posted; waiting for a training run…")
    deadline = time.monotonic() + wait_seconds
    run = None
    while time.monotonic() < deadline and run is None:
        run = next((r for r in wiring.metadata_store().list(EXPERIMENTS, 200) if r["run_id"] not in runs_before), None)
        time.sleep(2)
    if run is None:
        say("no training run within the wait (no drift?)")
    else:
        promotion = run["promotion"]
        say(f"training run {run['run_id']}: gate {'passed' if promotion.get('promote') else 'refused'}; "
            + ("held for approval: " + "; ".join(promotion["change_control"]["reasons"])
               if promotion.get("held_for_approval") else f"promoted={promotion['promoted']}"))
    time.sleep(2)
    after = answers(base_url, fresh)
    same = float(np.mean(np.asarray(before) == np.asarray(after)))
    say(f"fresh febrile inputs answered as before: {same:.1%} (served {_call(f'{base_url}/model')[1]['version']})")
    return {"relabelled": relabelled, "overwritten": overwritten, "answered_as_before": same,
            "run": run and {"run_id": run["run_id"], "promotion": run["promotion"].get("held_for_approval")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.label_attack", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5, help="seed of the day's traffic")
    arguments = parser.parse_args(argv)
    result = run_attack(arguments.url, rows=arguments.rows, seed=arguments.seed)
    return 0 if result["answered_as_before"] >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
