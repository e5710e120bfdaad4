"""Issue 2's serving benchmark, on loopback, through make run's server.

For each of: /predict with SQLite logging, /predict with the Firestore
emulator (make run's server: 2 uvicorn workers), and a bare functions-framework
function (same model, no logging; Flask under gunicorn, 2 workers x 4 threads):
requests/s, p50 and p99 of single
predictions, medians of several runs; then the cold start (process launch to
the first 200 from /predict), median of 5.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.load import run_load
from tests import emulators

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["temperature=36&heart_rate=120&blood_pressure=90", "temperature=38.5&heart_rate=140&blood_pressure=90",
           "temperature=36.7&heart_rate=72&blood_pressure=118", "temperature=34.9&heart_rate=59&blood_pressure=89"]
WORKERS, THREADS = 2, 4


def start_gunicorn(app: str, env: dict, port: int, asgi: bool = True) -> subprocess.Popen:
    """`app` under gunicorn: uvicorn workers for an ASGI app (local_server's), threads for a WSGI one."""
    worker = ["-k", "uvicorn_worker.UvicornWorker"] if asgi else ["--threads", str(THREADS)]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), *worker, "-b", f"127.0.0.1:{port}",
         "--timeout", "0", app],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/", process)
    return process


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60.0, want_200: bool = False) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if not want_200 or response.status == 200:
                    return time.perf_counter() - started
        except urllib.error.HTTPError as error:
            if not want_200:
                return time.perf_counter() - started
            if error.code != 503:
                raise
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} not ready")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def measure(url_path: str, port: int, total: int, concurrency: int, runs: int) -> dict:
    def request(index):
        return "GET", f"{url_path}?{QUERIES[index % len(QUERIES)]}", None, {}

    run_load(f"http://127.0.0.1:{port}", request, 200, concurrency)  # warm-up: model load, connections
    results = [run_load(f"http://127.0.0.1:{port}", request, total, concurrency).summary() for _ in range(runs)]
    return {
        "concurrency": concurrency, "runs": runs, "requests_per_run": total,
        "rps": statistics.median(r["rps"] for r in results),
        "p50_ms": statistics.median(r["p50_ms"] for r in results),
        "p99_ms": statistics.median(r["p99_ms"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


def cold_starts(env: dict, workers: int, runs: int = 5) -> dict:
    """Process launch to the first 200 from /predict (model load included)."""
    timings = []
    for _ in range(runs):
        port = emulators.free_port()
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "local_server.py"], cwd=ROOT,
                                   env=dict(env, PORT=str(port), WORKERS=str(workers)),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(f"http://127.0.0.1:{port}/predict?{QUERIES[0]}", process, want_200=True)
            timings.append(time.perf_counter() - started)
        finally:
            stop(process)
    return {"median": round(statistics.median(timings), 3), "runs": [round(t, 3) for t in timings]}


def main(quick: bool = False) -> dict:
    total, runs = (500, 3) if quick else (2000, 5)
    data_dir = tempfile.mkdtemp(prefix="bench-serving-")
    env = dict(os.environ, LOCAL_DATA_DIR=data_dir, OMP_NUM_THREADS="1", MODEL_REFRESH_SECONDS="30")
    subprocess.run([sys.executable, "-m", "tools.cli", "bootstrap"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    results: dict = {"workers": WORKERS, "threads": THREADS}
    # Cold starts first, on a quiet machine: nothing else running, no emulator.
    results["cold_start_seconds"] = {f"workers_{workers}": cold_starts(env, workers) for workers in (1, 2)}
    firestore = emulators.start_firestore()
    try:
        variants = {
            "predict_sqlite": ("local_server:app", "/predict", env),
            "predict_firestore_emulator": ("local_server:app", "/predict",
                                           dict(env, PREDICTION_STORE="firestore", GOOGLE_CLOUD_PROJECT="demo-bench",
                                                **firestore.env)),
            "bare_function": ("bench.bare_app:app", "/", env),
        }
        for name, (app, path, variant_env) in variants.items():
            port = emulators.free_port()
            process = start_gunicorn(app, dict(variant_env, THREADS=str(THREADS)), port, asgi=app.startswith("local"))
            try:
                results[name] = {f"c{c}": measure(path, port, total, c, runs) for c in (1, 8)}
            finally:
                stop(process)
            print(name, json.dumps(results[name]), file=sys.stderr)
    finally:
        firestore.stop()
    for key in ("c1", "c8"):
        results[f"p50_ratio_sqlite_vs_bare_{key}"] = round(
            results["predict_sqlite"][key]["p50_ms"] / results["bare_function"][key]["p50_ms"], 3)
    shutil.rmtree(data_dir, ignore_errors=True)
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
