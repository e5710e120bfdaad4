"""Issue 7's load test: 10,000 /predict requests from 32 concurrent clients
(mixed GET, POST JSON, batches of 10, and 5 % invalid requests) against make
run's server on the Firestore emulator. Then every answered prediction must
have exactly one record, and no refused request may have one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading

from bench.load import run_load
from bench.serving import ROOT, start_gunicorn, stop
from tests import emulators

FEATURES = ("temperature", "heart_rate", "blood_pressure")


def request_for(index: int):
    kind = index % 20
    vitals = {"temperature": 36 + (index % 30) / 10, "heart_rate": 60 + index % 80, "blood_pressure": 100 + index % 60}
    query = "&".join(f"{k}={v}" for k, v in vitals.items())
    if kind == 0:
        return "GET", "/predict?temperature=abc&heart_rate=80&blood_pressure=120", None, {}
    if kind in (1, 2):
        body = json.dumps({"instances": [vitals] * 10}).encode()
        return "POST", "/predict", body, {"Content-Type": "application/json"}
    if kind < 8:
        return "POST", "/predict", json.dumps(vitals).encode(), {"Content-Type": "application/json"}
    return "GET", f"/predict?{query}", None, {}


def main(quick: bool = False) -> dict:
    total = 1000 if quick else 10_000
    firestore = emulators.start_firestore()
    data_dir = tempfile.mkdtemp(prefix="bench-load-")
    base_env = dict(os.environ, LOCAL_DATA_DIR=data_dir, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "tools.cli", "bootstrap"], cwd=ROOT, env=base_env, check=True,
                   capture_output=True)
    env = dict(base_env, PREDICTION_STORE="firestore", GOOGLE_CLOUD_PROJECT="demo-load", **firestore.env)
    answered: list[str] = []
    refused = 0
    lock = threading.Lock()

    def on_response(index, status, payload):
        nonlocal refused
        with lock:
            if status == 200:
                body = json.loads(payload)
                answered.extend(item["prediction_id"] for item in body.get("predictions", [body]))
            else:
                refused += 1

    port = emulators.free_port()
    server = start_gunicorn("local_server:app", env, port)
    try:
        result = run_load(f"http://127.0.0.1:{port}", request_for, total, concurrency=32, max_seconds=600,
                          on_response=on_response)
    finally:
        stop(server)
    os.environ.update(firestore.env)
    from google.cloud import firestore as firestore_client

    client = firestore_client.Client(project="demo-load")
    stored = [snapshot.id for snapshot in client.collection("predictions").select([]).stream()]
    firestore.stop()
    summary = result.summary()
    summary.update({
        "answered_predictions": len(answered), "refused_requests": refused, "stored_records": len(stored),
        "every_answer_has_exactly_one_record": sorted(stored) == sorted(answered),
        "duplicate_records": len(stored) - len(set(stored)),
    })
    return summary


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
