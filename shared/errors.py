"""Domain errors, one tree, so entry points can map them to status codes.

Each class carries the HTTP status an entry point answers with (`status`) and a
stable machine-readable `code`; the HTTP adapter reads both from the error
itself, never from its message.

    ServiceError                  base of everything raised on purpose (500)
    ├── ValidationError           bad input; names the offending field (400)
    │   ├── PayloadTooLarge       body or batch over the limit (413)
    │   ├── UnsupportedMediaType  a body that is not JSON (415)
    │   └── MethodNotAllowed      a verb the endpoint does not take (405; `allowed`)
    ├── NotFound                  an unknown id or version (404)
    ├── TooManyRequests           a caller over its rate limit (429)
    ├── ServiceUnavailable        a dependency is down; retry later (503)
    │   ├── ModelUnavailable      no servable model yet
    │   ├── ChampionUnavailable   the champion cannot be loaded to compare with
    │   └── StoreUnavailable      a store did not answer in time
    ├── ArtifactIntegrityError    an artifact does not match its manifest
    ├── PreconditionFailed        someone else changed an object first (409)
    │   └── PromotionConflict     a concurrent promotion won the race
    ├── LeaseHeld                 another worker holds the training lease
    ├── TrainingDataError         data that cannot train a model
    ├── PoisonMessage             an event that can never be processed: acknowledged, dropped
    ├── ConfigError               a setting with a bad value; names the variable
    ├── IngestionConfigError      INGEST_TABLE / INGEST_COLUMN_MAP that cannot map the source
    ├── ReferenceDataInvalid      a public data set whose payload fails validation
    └── TrainingDeadlineExceeded  training ran past its hard deadline
"""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    """Base class: `code` is a stable machine-readable identifier, `status` the HTTP answer."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


class ValidationError(ServiceError):
    code = "invalid_input"
    status = 400


class PayloadTooLarge(ValidationError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(ValidationError):
    code = "unsupported_media_type"
    status = 415


class MethodNotAllowed(ValidationError):
    code = "method_not_allowed"
    status = 405

    def __init__(self, method: str, allowed: Sequence[str]):
        super().__init__(f"method {method} is not allowed here; use {' or '.join(allowed)}", field="method")
        self.allowed = tuple(allowed)


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class TooManyRequests(ServiceError):
    code = "too_many_requests"
    status = 429


class ServiceUnavailable(ServiceError):
    code = "unavailable"
    status = 503


class ModelUnavailable(ServiceUnavailable):
    code = "model_unavailable"


class ChampionUnavailable(ServiceUnavailable):
    """Refuse to decide and retry later: an unloadable champion is never "no champion"."""

    code = "champion_unavailable"


class StoreUnavailable(ServiceUnavailable):
    code = "store_unavailable"


class ArtifactIntegrityError(ServiceError):
    code = "artifact_integrity"


class PreconditionFailed(ServiceError):
    code = "precondition_failed"
    status = 409


class PromotionConflict(PreconditionFailed):
    code = "promotion_conflict"


class LeaseHeld(ServiceError):
    code = "lease_held"


class TrainingDataError(ServiceError):
    code = "training_data"


class PoisonMessage(ServiceError):
    code = "poison_message"


class ConfigError(ServiceError):
    code = "config"


class IngestionConfigError(ServiceError):
    code = "ingestion_config"


class ReferenceDataInvalid(ServiceError):
    code = "reference_data_invalid"


class TrainingDeadlineExceeded(ServiceError):
    """The training job ran past TRAINING_DEADLINE_SECONDS and was stopped."""

    code = "training_deadline"
