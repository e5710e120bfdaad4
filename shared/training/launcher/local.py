"""The training job as a real subprocess: `python -m shared.training.job`, the
entry point the Cloud Run job runs, with this process's environment."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from shared.errors import ServiceUnavailable
from shared.structured_logging import get_logger
from shared.training.launcher.port import JOB_MODULE, job_arguments

log = get_logger("training_launcher")
REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


class LocalTrainingLauncher:
    """`wait=True` (the default) returns when the job has finished, so `make run`
    and the tests see its result; `wait=False` returns once it has started."""

    def __init__(self, wait: bool = True, timeout_seconds: float | None = None, python: str = sys.executable):
        self.wait = wait
        self.timeout_seconds = timeout_seconds
        self.python = python
        self.processes: list[subprocess.Popen] = []

    def launch(self, request: dict) -> str:
        execution = f"local-{uuid.uuid4().hex[:12]}"
        # Same working directory (a relative LOCAL_DATA_DIR means the same folder), and this checkout importable.
        python_path = os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), os.environ.get("PYTHONPATH")]))
        environment = dict(os.environ, CLOUD_RUN_EXECUTION=execution, PYTHONPATH=python_path)
        try:
            process = subprocess.Popen([self.python, "-m", JOB_MODULE, *job_arguments(request)], env=environment)
        except OSError as error:
            raise ServiceUnavailable(f"the training job could not start: {error}") from None
        self.processes.append(process)
        if self.wait:
            code = process.wait(timeout=self.timeout_seconds)
            log.info("local training job finished", extra={"fields": {"execution": execution, "exit_code": code}})
            if code != 0:  # a Cloud Run execution would retry its task; locally the delivery retries
                raise ServiceUnavailable(f"the training job {execution} exited with {code}")
        return execution
