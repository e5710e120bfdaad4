"""The training job as a Cloud Run job execution, with the request's id as its
argument (`RunJob` overrides); the call returns once the execution is
created, not when it finishes."""

from __future__ import annotations

from shared.errors import ServiceUnavailable
from shared.training.launcher.port import job_arguments


class CloudRunTrainingLauncher:
    def __init__(self, job_name: str, client=None, timeout: float = 30.0):
        self.job_name = job_name  # projects/P/locations/R/jobs/J
        self._client = client
        self.timeout = timeout

    @property
    def client(self):
        if self._client is None:
            from google.cloud import run_v2

            self._client = run_v2.JobsClient()
        return self._client

    def launch(self, request_id: str) -> str:
        from google.api_core import exceptions
        from google.cloud import run_v2

        overrides = run_v2.RunJobRequest.Overrides(
            container_overrides=[run_v2.RunJobRequest.Overrides.ContainerOverride(args=job_arguments(request_id))])
        try:
            operation = self.client.run_job(request=run_v2.RunJobRequest(name=self.job_name, overrides=overrides),
                                            timeout=self.timeout)
        except exceptions.GoogleAPICallError as error:
            raise ServiceUnavailable(f"could not run the training job: {type(error).__name__}") from None
        return getattr(operation.metadata, "name", "") or self.job_name
