"""Training launcher port: start one execution of the training job for a request.

The job gets the id of the request's `training_requests` document, never the
request itself: a command line is visible to anyone who can list processes
or read the execution's overrides.
"""

from __future__ import annotations

from typing import Protocol

JOB_MODULE = "jobs.train"


def job_arguments(request_id: str) -> list[str]:
    """The job's command-line arguments for a request (the same for every adapter)."""
    return ["--request-id", request_id]


class TrainingLauncher(Protocol):
    def launch(self, request_id: str) -> str:
        """Start the job for the stored request `request_id`; return the
        execution's name once it has started. Raise when it could not start."""
