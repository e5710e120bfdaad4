"""Prediction ids as the service issues them (uuid4 hex), checked before any
store sees one: other text cannot name a record, and some of it is a path or a
reserved name to Firestore (`a/b`, `..`, `__x__`), which it answers with errors
instead of "not found"."""

from __future__ import annotations

import re

from shared.errors import NotFound

PREDICTION_ID_PATTERN = "^[0-9a-f]{1,64}$"
_PREDICTION_ID = re.compile(PREDICTION_ID_PATTERN)


def is_prediction_id(value: object) -> bool:
    return isinstance(value, str) and _PREDICTION_ID.fullmatch(value) is not None


def prediction_not_found(prediction_id: str) -> NotFound:
    shown = prediction_id if len(prediction_id) <= 80 else prediction_id[:80] + "…"
    return NotFound(f"no prediction with id {shown!r}", field="prediction_id")
