"""The training job as a real subprocess: `python -m jobs.train`, the entry
point the Cloud Run job runs, with this process's environment.

Like a Cloud Run execution, `launch` returns once the job has started, not
when it ends: a retrain CloudEvent under `make run` is answered in well
under a second. A job that exits non-zero is run again once, as Cloud Run
retries a failed task (`max_retries`); whoever needs the result waits for
it (`wait_all`, or the request's `processed_events` document).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from shared.errors import ServiceUnavailable
from shared.structured_logging import get_logger
from shared.training.launcher.port import JOB_MODULE, job_arguments

log = get_logger("training_launcher")
REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


class LocalTrainingLauncher:
    def __init__(self, timeout_seconds: float | None = None, python: str = sys.executable, max_retries: int = 1):
        self.timeout_seconds = timeout_seconds
        self.python = python
        self.max_retries = max_retries
        self.processes: list[subprocess.Popen] = []
        self._watchers: list[threading.Thread] = []

    def launch(self, request_id: str) -> str:
        execution = f"local-{uuid.uuid4().hex[:12]}"
        process = self._start(request_id, execution)
        watcher = threading.Thread(target=self._watch, args=(request_id, execution, process), daemon=True,
                                   name=f"watch-{execution}")
        self._watchers.append(watcher)
        watcher.start()
        return execution

    def _start(self, request_id: str, execution: str) -> subprocess.Popen:
        # Same working directory (a relative LOCAL_DATA_DIR means the same folder), and this checkout importable.
        python_path = os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), os.environ.get("PYTHONPATH")]))
        environment = dict(os.environ, CLOUD_RUN_EXECUTION=execution, PYTHONPATH=python_path)
        try:
            process = subprocess.Popen([self.python, "-m", JOB_MODULE, *job_arguments(request_id)], env=environment)
        except OSError as error:
            raise ServiceUnavailable(f"the training job could not start: {error}") from None
        self.processes.append(process)
        return process

    def _watch(self, request_id: str, execution: str, process: subprocess.Popen) -> None:
        for attempt in range(self.max_retries + 1):
            try:
                code = process.wait(timeout=self.timeout_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            log.info("local training job finished", extra={"fields": {
                "execution": execution, "exit_code": code, "attempt": attempt + 1}})
            if code in (0, 2) or attempt == self.max_retries:
                return
            try:  # the task's retry: same execution, so the same lease holder
                process = self._start(request_id, execution)
            except ServiceUnavailable:
                return

    def wait_all(self, timeout: float | None = None) -> None:
        """Wait for every job launched so far, retries included (tests, the CLI)."""
        for watcher in list(self._watchers):
            watcher.join(timeout)
