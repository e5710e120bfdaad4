"""The HTTP contract, as pure functions over the parts of a request.

Entry points hand over the method, query parameters, content type and body
bytes; everything here is testable without a server. Every refusal is a
`ValidationError` subclass naming the offending field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType, ValidationError
from shared.schema import FEATURES, Vitals, parse_label, parse_vitals, refuse_unknown_fields
from shared.stores.predictions.ids import is_prediction_id

HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 500


@dataclass(frozen=True)
class PredictRequest:
    instances: list[Vitals]
    batch: bool


def allowed_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """What an endpoint answers: its methods, HEAD wherever GET is, and OPTIONS."""
    answered = [name for method in methods for name in ((method, "HEAD") if method == "GET" else (method,))]
    return (*answered, "OPTIONS")


def require_method(method: str, allowed: Sequence[str]) -> None:
    """HEAD is served as GET (the server drops the body); OPTIONS is answered by the endpoint."""
    if method.upper() not in allowed_methods(allowed)[:-1]:
        error = MethodNotAllowed(method[:20], allowed)
        error.allowed = allowed_methods(allowed)  # the Allow header lists HEAD and OPTIONS too
        raise error


def single_query_value(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name) or []
    if len(values) > 1:
        raise ValidationError(f"'{name}' was given more than once", field=name, code="duplicate_field")
    return values[0] if values else None


def parse_json_body(content_type: str | None, body: bytes, max_body_bytes: int) -> Any:
    if len(body) > max_body_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_body_bytes} bytes", field="body")
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json", field="content-type")
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValidationError("the body is not valid JSON", field="body", code="malformed_json") from None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """json.loads keeps the last of a duplicated key; refuse it, as in the query string."""
    document = {}
    for key, value in pairs:
        if key in document:
            shown = key if len(key) <= 100 else key[:100] + "…"
            raise ValidationError(f"'{shown}' was given more than once", field=shown, code="duplicate_field")
        document[key] = value
    return document


def parse_predict_request(
    method: str,
    query: Mapping[str, Sequence[str]],
    content_type: str | None,
    body: bytes,
    *,
    max_batch: int,
    max_body_bytes: int,
) -> PredictRequest:
    """Inputs come from the query string (GET or POST, as the original demo)
    or from a JSON body: one object, or {"instances": [...]} for a batch."""
    require_method(method, ("GET", "POST"))
    refuse_unknown_fields(query, FEATURES)
    in_query = any(name in query for name in FEATURES)
    has_body = bool(body.strip()) if method.upper() == "POST" else False
    if in_query and has_body:
        raise ValidationError("send inputs either as query parameters or as a JSON body, not both",
                              field="body", code="ambiguous_input")
    if not has_body:
        values = {name: single_query_value(query, name) for name in FEATURES}
        return PredictRequest([parse_vitals(values)], batch=False)
    payload = parse_json_body(content_type, body, max_body_bytes)
    if isinstance(payload, dict) and "instances" in payload:
        refuse_unknown_fields(payload, ("instances",))
        instances = payload["instances"]
        if not isinstance(instances, list) or not instances:
            raise ValidationError("'instances' must be a non-empty list of objects", field="instances",
                                  code="invalid_instances")
        if len(instances) > max_batch:
            raise PayloadTooLarge(f"a batch holds at most {max_batch} instances, got {len(instances)}",
                                  field="instances")
        return PredictRequest(
            [parse_vitals(item, field_prefix=f"instances[{index}].") for index, item in enumerate(instances)],
            batch=True,
        )
    if not isinstance(payload, dict):
        raise ValidationError("the body must be a JSON object", field="body", code="not_an_object")
    return PredictRequest([parse_vitals(payload)], batch=False)


def parse_history_query(method: str, query: Mapping[str, Sequence[str]]) -> tuple[int, str | None]:
    require_method(method, ("GET",))
    refuse_unknown_fields(query, ("limit", "cursor"))
    raw_limit = single_query_value(query, "limit")
    limit = HISTORY_DEFAULT_LIMIT
    if raw_limit is not None:
        text = raw_limit.strip(" ")
        if not text.isascii() or not text.isdigit() or len(text) > 6:
            raise ValidationError("'limit' must be an integer", field="limit", code="not_an_integer")
        limit = int(text)
        if not 1 <= limit <= HISTORY_MAX_LIMIT:
            raise ValidationError(f"'limit' must be between 1 and {HISTORY_MAX_LIMIT}", field="limit",
                                  code="out_of_range")
    cursor = single_query_value(query, "cursor")
    return limit, cursor or None


def parse_outcome_request(method: str, content_type: str | None, body: bytes, max_body_bytes: int) -> tuple[str, str]:
    require_method(method, ("POST",))
    payload = parse_json_body(content_type, body, max_body_bytes)
    if not isinstance(payload, dict):
        raise ValidationError("the body must be a JSON object", field="body", code="not_an_object")
    refuse_unknown_fields(payload, ("prediction_id", "label"))
    return parse_prediction_id(payload.get("prediction_id")), parse_label(payload.get("label"))


def parse_prediction_id(value: Any, field: str = "prediction_id") -> str:
    if value is None or value == "":
        raise ValidationError(f"'{field}' is required", field=field, code="missing_field")
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be a string", field=field, code="not_a_string")
    if not is_prediction_id(value):
        raise ValidationError(f"'{field}' must be an id as /predict returns it: 1 to 64 characters 0-9 a-f",
                              field=field, code="invalid_id")
    return value
