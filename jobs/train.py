"""The training job's entry point: `python -m jobs.train --request-id <id>`.

The request arrives by reference: the id of its `training_requests`
document, written by the retrain function before it launched this job. The
command line (visible in `ps`, in the Cloud Run execution's overrides)
carries that id and nothing else; what to train on is read from the store.
The work itself is `shared.training.job.run_training_request`.

Exit 0 when the request is settled (trained, failed for good, duplicate,
requeued); 1 when a retry of the task can help; 2 for a bad id.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from shared.errors import ServiceError, ValidationError
from shared.event_bus.schemas import text_id
from shared.stores.metadata.port import TRAINING_REQUESTS
from shared.structured_logging import get_logger, trace_context
from shared.training.job import run_training_request

log = get_logger("training_job")


def main(argv: list[str] | None = None) -> int:
    from shared import wiring

    parser = argparse.ArgumentParser(prog="python -m jobs.train", description=__doc__.split("\n")[0])
    parser.add_argument("--request-id", required=True, help="id of the request's training_requests document")
    arguments = parser.parse_args(argv)
    try:
        key = text_id(arguments.request_id, "request_id", None)
    except ValidationError as error:
        log.error("training job started with a bad request id", extra={"fields": {"reason": error.message}})
        return 2
    dependencies = wiring.training_job_dependencies()
    settings = dependencies["settings"]
    # Cloud Run names the execution; its retried tasks share it.
    execution = os.environ.get("CLOUD_RUN_EXECUTION")
    try:
        document = dependencies["metadata"].get(TRAINING_REQUESTS, key)
    except ServiceError as error:
        log.error("training job could not read its request; the task will be retried", extra={"fields": {
            "key": key, "reason": error.message}})
        return 1
    if document is None or not isinstance(document.get("request"), dict):
        log.error("training job started for a request that does not exist", extra={"fields": {"key": key}})
        return 2
    request = document["request"]
    with trace_context({"X-Cloud-Trace-Context": request.get("trace_id") or ""}, settings.google_cloud_project):
        try:
            result = run_training_request(request, **dependencies, execution=execution)
        except ServiceError as error:
            log.error("training job failed; the task will be retried", extra={"fields": {
                "key": key, "reason": error.message, "code": error.code}})
            return 1
        finally:
            if hasattr(dependencies["bus"], "join"):  # the local bus delivers in the background
                dependencies["bus"].join()
        log.info("training job finished", extra={"fields": result})
        print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
