"""Domain errors, one tree, so entry points can map them to status codes.

    ServiceError                  base of everything raised on purpose
    ├── ValidationError           bad input; names the offending field (400)
    │   ├── PayloadTooLarge       body or batch over the limit (413)
    │   ├── UnsupportedMediaType  a body that is not JSON (415)
    │   └── MethodNotAllowed      a verb the endpoint does not take (405)
    ├── NotFound                  an unknown id or version (404)
    ├── ServiceUnavailable        a dependency is down; retry later (503)
    │   ├── ModelUnavailable      no servable model yet
    │   └── StoreUnavailable      a store did not answer in time
    ├── ArtifactIntegrityError    an artifact does not match its manifest
    ├── PreconditionFailed        someone else changed an object first
    │   └── PromotionConflict     a concurrent promotion won the race
    ├── LeaseHeld                 another worker holds the training lease
    └── TrainingDataError         data that cannot train a model
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: `code` is a stable machine-readable identifier."""

    code = "error"

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


class PayloadTooLarge(ValidationError):
    code = "payload_too_large"


class UnsupportedMediaType(ValidationError):
    code = "unsupported_media_type"


class MethodNotAllowed(ValidationError):
    code = "method_not_allowed"


class NotFound(ServiceError):
    code = "not_found"


class ServiceUnavailable(ServiceError):
    code = "unavailable"


class ModelUnavailable(ServiceUnavailable):
    code = "model_unavailable"


class StoreUnavailable(ServiceUnavailable):
    code = "store_unavailable"


class ArtifactIntegrityError(ServiceError):
    code = "artifact_integrity"


class PreconditionFailed(ServiceError):
    code = "precondition_failed"


class PromotionConflict(PreconditionFailed):
    code = "promotion_conflict"


class LeaseHeld(ServiceError):
    code = "lease_held"


class TrainingDataError(ServiceError):
    code = "training_data"


class PoisonMessage(ServiceError):
    """A message that can never be processed; acknowledged and dropped."""

    code = "poison_message"


class ConfigError(ServiceError):
    code = "config"


class IngestionConfigError(ServiceError):
    code = "ingestion_config"


class ReferenceDataInvalid(ServiceError):
    code = "reference_data_invalid"
