"""Serving targets (issues 14 and 25), measured with wrk on loopback.

1. Side by side with the peer (FastAPI + uvicorn serving the same model from
   memory, no durable log): `side_by_side.py` from the shared peer-bench
   folder (PEER_BENCH_DIR, default ../shared/peer-bench beside the checkout).
   Targets since `predict` serves the ONNX graph (issue 25): req/s at 16
   connections >= 1.3x the peer, p99 <= 1.0x, p50 at one connection <= 0.8x,
   cold start (launch to first answer, one process as deployed) <= 0.5x.
2. On the Firestore emulator, one worker as deployed: p50 at 1 connection
   against the latency of one committed write through the same adapter
   (target: at most 1.5 ms more), and req/s at 1, 8 and 32 connections
   (target: growing with concurrency: group commit).

On a shared machine figures move from run to run: compare ratios from one run.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.serving import ROOT, stop, wait_for
from tests import emulators

QUERY = "/predict?temperature=36&heart_rate=120&blood_pressure=90"


def peer_bench_dir() -> Path | None:
    candidates = [os.environ.get("PEER_BENCH_DIR"), ROOT.parent / "shared" / "peer-bench",
                  ROOT.parents[1] / "shared" / "peer-bench"]
    return next((Path(c) for c in candidates if c and (Path(c) / "side_by_side.py").exists()), None)


def side_by_side(rounds: int) -> dict:
    folder = peer_bench_dir()
    if folder is None:
        return {"skipped": "side_by_side.py not found: set PEER_BENCH_DIR"}
    output = subprocess.run([sys.executable, str(folder / "side_by_side.py"), str(rounds)], cwd=ROOT,
                            env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                            check=True).stdout
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 8 and cells[0] in ("project", "peer"):
            rows[cells[0]] = dict(zip(("rps_c16", "p50_c16_ms", "p99_c16_ms", "p50_c1_ms", "rps_c1", "non_2xx",
                                       "cold_start_s"), map(float, cells[1:])))
    project, peer = rows["project"], rows["peer"]
    ratios = {"rps_c16": project["rps_c16"] / peer["rps_c16"], "p99_c16": project["p99_c16_ms"] / peer["p99_c16_ms"],
              "p50_c1": project["p50_c1_ms"] / peer["p50_c1_ms"],
              "cold_start": project["cold_start_s"] / peer["cold_start_s"]}
    targets = {"rps_c16": ratios["rps_c16"] >= 1.3, "p99_c16": ratios["p99_c16"] <= 1.0,
               "p50_c1": ratios["p50_c1"] <= 0.8, "cold_start": ratios["cold_start"] <= 0.5}
    return {"rounds": rounds, "project": project, "peer": peer,
            "ratios": {name: round(value, 3) for name, value in ratios.items()}, "targets_met": targets,
            "table": [line for line in output.splitlines() if line.startswith(("|", "model", "ratio"))]}


def wrk(port: int, connections: int, seconds: int) -> dict:
    output = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
                             f"http://127.0.0.1:{port}{QUERY}"], capture_output=True, text=True, check=True).stdout

    def milliseconds(percent):
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\b", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), "p50_ms": milliseconds(50),
            "p99_ms": milliseconds(99), "non_2xx": int(errors.group(1)) if errors else 0}


def committed_write_ms(env: dict, writes: int) -> float:
    """Median latency of one prediction record committed through the Firestore adapter."""
    os.environ.update({key: env[key] for key in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")})
    from shared.records import PredictionRecord
    from shared.stores.predictions.firestore import FirestorePredictionStore
    from shared.stores.predictions.ids import new_prediction_id

    store = FirestorePredictionStore(env["GOOGLE_CLOUD_PROJECT"])
    timings = []
    for _ in range(writes):
        created = datetime.now(timezone.utc)
        record = PredictionRecord(prediction_id=new_prediction_id(created), created_at=created,
                                  temperature=36.0, heart_rate=120.0, blood_pressure=90.0, prediction="NO ENFERMO",
                                  probabilities={"NO ENFERMO": 1.0}, model_version="bench")
        started = time.perf_counter()
        store.save_predictions([record])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[writes // 10:])  # the first commits warm the channel


def on_firestore_emulator(rounds: int, seconds: int) -> dict:
    data_dir = tempfile.mkdtemp(prefix="bench-peer-")
    base = dict(os.environ, LOCAL_DATA_DIR=data_dir, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "tools.cli", "bootstrap"], cwd=ROOT, env=base, check=True,
                   capture_output=True)
    firestore = emulators.start_firestore()
    try:
        env = dict(base, PREDICTION_STORE="firestore", GOOGLE_CLOUD_PROJECT="demo-peer", **firestore.env)
        port = emulators.free_port()
        server = subprocess.Popen([sys.executable, "local_server.py"], cwd=ROOT,
                                  env=dict(env, PORT=str(port), WORKERS="1"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(f"http://127.0.0.1:{port}{QUERY}", server, want_200=True)
            wrk(port, 8, 2)  # warm-up
            runs, writes = {1: [], 8: [], 32: []}, []
            for _ in range(rounds):  # interleaved: the machine's load moves both alike
                writes.append(committed_write_ms(env, 150))
                for connections, results in runs.items():
                    results.append(wrk(port, connections, seconds))
            write_ms = statistics.median(writes)
        finally:
            stop(server)
    finally:
        firestore.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    by_connections = {
        f"c{c}": {key: statistics.median(run[key] for run in results) for key in ("rps", "p50_ms", "p99_ms")}
        | {"non_2xx": sum(run["non_2xx"] for run in results)}
        for c, results in runs.items()
    }
    rps = [by_connections[f"c{c}"]["rps"] for c in (1, 8, 32)]
    return {"workers": 1, "rounds": rounds, "committed_write_ms": round(write_ms, 3), **by_connections,
            "p50_c1_over_write_ms": round(by_connections["c1"]["p50_ms"] - write_ms, 3),
            "targets_met": {"p50_c1_within_write_plus_1_5_ms": by_connections["c1"]["p50_ms"] <= write_ms + 1.5,
                            "rps_grows_with_connections": rps[0] < rps[1] < rps[2]}}


def main(quick: bool = False) -> dict:
    rounds, seconds = (1, 3) if quick else (3, 8)
    subprocess.run([sys.executable, "-m", "tools.cli", "bootstrap"], cwd=ROOT, check=True, capture_output=True)
    results = {"side_by_side": side_by_side(rounds)}
    if shutil.which("wrk"):
        results["firestore_emulator"] = on_firestore_emulator(rounds, seconds)
    else:
        results["firestore_emulator"] = {"skipped": "wrk is not installed (side_by_side.py installs it)"}
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
