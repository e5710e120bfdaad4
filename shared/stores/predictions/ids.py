"""Prediction ids as the service issues them, checked before any store sees
one: other text cannot name a record, and some of it is a path or a reserved
name to Firestore (`a/b`, `..`, `__x__`), which it answers with errors instead
of "not found".

An id is 128 random bits (32 hex digits: unguessable, and spread over
Firestore's key range, which hot-spots on ids that increase) followed by the
record's creation time in microseconds (14 hex digits). SQLite keeps the log in
one B-tree ordered by (time, id), so the time in the id is what finds a record
without a second index on random ids (every commit would dirty a random page
of it). Older releases issued uuid4 hex (32 digits): still valid ids.
"""

from __future__ import annotations

import os
import re
from datetime import datetime

from shared.errors import NotFound
from shared.stores.predictions.micros import to_micros

PREDICTION_ID_PATTERN = "^[0-9a-f]{1,64}$"
_PREDICTION_ID = re.compile(PREDICTION_ID_PATTERN)


_TIME_DIGITS = 14  # microseconds since 1970 up to the year 4254


def new_prediction_id(created_at: datetime) -> str:
    """128 random bits, then `created_at` in µs. Random first: Firestore spreads keys by their
    start, and ids that increase would all land on one tablet; the time last lets SQLite find
    the record by its (time, id) key. The time is also in the record: anyone holding an id
    learns when the prediction was made (SECURITY.md)."""
    return os.urandom(16).hex() + format(to_micros(created_at), f"0{_TIME_DIGITS}x")


def time_in_prediction_id(prediction_id: str) -> int | None:
    """The creation time (µs) an id issued by `new_prediction_id` carries; None for other ids."""
    if len(prediction_id) != 32 + _TIME_DIGITS or not is_prediction_id(prediction_id):
        return None
    return int(prediction_id[32:], 16)


def is_prediction_id(value: object) -> bool:
    return isinstance(value, str) and _PREDICTION_ID.fullmatch(value) is not None


def prediction_not_found(prediction_id: str) -> NotFound:
    shown = prediction_id if len(prediction_id) <= 80 else prediction_id[:80] + "…"
    return NotFound(f"no prediction with id {shown!r}", field="prediction_id")
