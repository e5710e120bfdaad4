"""Start `make run`'s server (bootstrap + local_server.py) for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.conftest import ROOT
from tests.emulators import free_port


class LocalServer:
    def __init__(self, env: dict[str, str], workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, **env, PORT=str(self.port), WORKERS=str(workers), OMP_NUM_THREADS="1")
        self.process = None

    def start(self, bootstrap: bool = True, timeout: float = 120.0) -> LocalServer:
        if bootstrap:
            subprocess.run([sys.executable, "-m", "tools.cli", "bootstrap"], cwd=ROOT, env=self.env, check=True,
                           capture_output=True, timeout=timeout)
        self.process = subprocess.Popen([sys.executable, "local_server.py"], cwd=ROOT, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).close()
                return self
            except OSError as error:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-2000:]}") from error
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(2)  # Ctrl-C, as a person would
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
