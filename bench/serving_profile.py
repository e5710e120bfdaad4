"""CPU a `/predict` request costs in process, as at one connection: functions-framework's
ASGI app for `predict` (`create_asgi_app(target="predict", source="main.py")`), called
with a GET scope, durable log included, requests spaced by a 50 µs idle pause (a
client's round trip: the loop waits, the caches cool down as between real requests;
back to back, the same app costs ~40 % less and hides what is cold).

Measured as the loop thread's CPU time (`time.thread_time_ns`), steadier than wall
time on a shared machine. The network (MLP) family, trained here into a temporary
data folder, served as `predict` serves it (its `.npz` as numpy) and, interleaved,
with its graph on onnxruntime: the measured reason for that direct path.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY = b"temperature=36&heart_rate=120&blood_pressure=90"


def profile(requests: int, rounds: int) -> dict:
    """In this process (LOCAL_DATA_DIR set, a champion registered): median CPU µs a request per engine."""
    import functions_framework.aio
    import uvloop

    from shared import wiring
    from shared.models.runtime import onnx_predict_proba

    app = functions_framework.aio.create_asgi_app(target="predict", source=str(ROOT / "main.py"))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/", "raw_path": b"/", "root_path": "", "query_string": QUERY,
             "headers": [(b"host", b"localhost"), (b"user-agent", b"bench")], "server": ("127.0.0.1", 8080),
             "client": ("127.0.0.1", 50000)}
    statuses: list[int] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run() -> dict:
        for _ in range(200):
            await app(dict(scope), receive, send)
        model = wiring.model_loader(wiring.settings("predict")).get()
        served = model.pipeline_proba
        models = Path(os.environ["LOCAL_DATA_DIR"]) / "artifacts" / "models"
        graph = (models / model.version / "model.onnx").read_bytes()
        assert served.engine == "numpy", served.engine
        engines = {served.engine: served, "onnxruntime": onnx_predict_proba(graph)}
        cpu = {name: [] for name in engines}
        for _ in range(rounds):
            for name, predict_proba in engines.items():
                # LoadedModel is frozen for requests (none sees a half-swapped model); the
                # bench swaps the engine between rounds, with no request in flight.
                object.__setattr__(model, "pipeline_proba", predict_proba)
                total = 0
                for _ in range(requests):
                    time.sleep(50e-6)
                    started = time.thread_time_ns()
                    await app(dict(scope), receive, send)
                    total += time.thread_time_ns() - started
                cpu[name].append(total / requests / 1000)
        object.__setattr__(model, "pipeline_proba", served)
        assert set(statuses) == {200}, set(statuses)
        return {f"cpu_us_per_request_{name}": round(statistics.median(values), 1) for name, values in cpu.items()} | {
            f"runs_{name}": [round(value, 1) for value in values] for name, values in cpu.items()}

    return uvloop.run(run())


def main(quick: bool = False) -> dict:
    requests, rounds = (200, 3) if quick else (1000, 7)
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, LOCAL_DATA_DIR=folder, OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-m", "tools.cli", "train", "--families", "mlp", "--budget", "5"], cwd=ROOT,
                       env=env, check=True, capture_output=True)
        child = subprocess.run([sys.executable, "-m", "bench.serving_profile", "--child", str(requests), str(rounds)],
                               cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    result = {"family": "mlp", "requests_per_round": requests, "rounds": rounds, "idle_pause_us": 50}
    return result | _last_json_line(child.stdout)


def _last_json_line(text: str) -> dict:
    import json

    return json.loads(text.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        import json

        print(json.dumps(profile(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        print(main(quick="--quick" in sys.argv))
