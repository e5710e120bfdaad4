"""`make emulators` as a new user runs it: on the ports given in the environment,
it creates the topics and push subscriptions the deployment has, a message on
the drift-check topic reaches the local server's /drift_check, and SIGTERM
stops every emulator it started."""

import base64
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import emulators
from tests.conftest import IN_CI, ROOT

pytestmark = [pytest.mark.emulator]


@pytest.fixture
def local_server_stand_in():
    """Records each push it receives, in place of `make run`'s server."""
    received = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.put((self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_emulator_mode_pushes_to_the_local_server_and_stops_on_sigterm(tmp_path, local_server_stand_in):
    if not (emulators.FIRESTORE_JAR.exists() and emulators.PUBSUB_JARS):
        if IN_CI:
            pytest.fail("emulator jars missing in CI")
        pytest.skip("emulator jars are not installed")
    server_port, received = local_server_stand_in
    ports = {name: emulators.free_port() for name in emulators.DEFAULT_PORTS}
    environment = {**os.environ, **{name: str(port) for name, port in ports.items()},
                   "PORT": str(server_port), "LOCAL_DATA_DIR": str(tmp_path), "GOOGLE_CLOUD_PROJECT": "demo-mode"}
    process = subprocess.Popen([sys.executable, "-m", "tests.emulators"], cwd=ROOT, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("In another shell" in line for line in output):
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            output.append(line)
        assert any("In another shell" in line for line in output), "".join(output)
        env_file = tmp_path / "emulators.env"
        exported = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines())
        assert exported["PUBSUB_EMULATOR_HOST"] == f"127.0.0.1:{ports['PUBSUB_EMULATOR_PORT']}"
        assert exported["FIRESTORE_EMULATOR_HOST"] == f"127.0.0.1:{ports['FIRESTORE_EMULATOR_PORT']}"
        assert exported["STORAGE_EMULATOR_HOST"] == f"http://127.0.0.1:{ports['STORAGE_EMULATOR_PORT']}"
        assert exported["EVENT_BUS"] == "pubsub"
        assert exported["PORT"] == str(server_port)  # `. emulators.env && make run` serves where the pushes go

        # What Cloud Scheduler does nightly: publish on the drift-check topic.
        from google.cloud import pubsub_v1

        os.environ["PUBSUB_EMULATOR_HOST"] = exported["PUBSUB_EMULATOR_HOST"]
        publisher = pubsub_v1.PublisherClient()
        topics = emulators.topic_names({})
        for key in ("drift_check", "retrain"):
            publisher.publish(publisher.topic_path("demo-mode", topics[key]),
                              json.dumps({"window_hours": 24, "source": key}).encode()).result(timeout=30)
        pushed = {}
        while len(pushed) < 2:
            path, body = received.get(timeout=60)
            pushed[path] = json.loads(base64.b64decode(body["message"]["data"]))
        assert pushed == {"/drift_check": {"window_hours": 24, "source": "drift_check"},
                          "/retrain": {"window_hours": 24, "source": "retrain"}}
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
    assert returncode == 0
    assert not any(listening(port) for port in ports.values())
    assert not (tmp_path / "emulators.env").exists()
