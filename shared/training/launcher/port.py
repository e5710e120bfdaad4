"""Training launcher port: start one execution of the training job for a request."""

from __future__ import annotations

from typing import Protocol

JOB_MODULE = "shared.training.job"


def job_arguments(request: dict) -> list[str]:
    """The job's command-line arguments for `request` (the same for every adapter)."""
    import json

    return ["--request", json.dumps(request, sort_keys=True, default=str)]


class TrainingLauncher(Protocol):
    def launch(self, request: dict) -> str:
        """Start the job for `request`; return the execution's name. Raise when it could not start."""
