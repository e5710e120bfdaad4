"""The opaque paging cursor of `/predictions-history`: (created_at, id), base64 JSON.

A cursor comes back from clients, so it is decoded as untrusted input: the
time must be a representable instant and the id one the service issues,
before either reaches a store.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from shared.errors import ValidationError
from shared.records import PredictionRecord
from shared.stores.predictions.ids import is_prediction_id
from shared.stores.predictions.micros import to_micros

_LATEST_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z, the last instant both stores hold


def encode_cursor(created_at: datetime, prediction_id: str) -> str:
    raw = json.dumps({"t": to_micros(created_at), "id": prediction_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        micros, prediction_id = data["t"], data["id"]
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise _invalid() from None
    if type(micros) is not int or not 0 <= micros <= _LATEST_MICROS or not is_prediction_id(prediction_id):
        raise _invalid()
    return micros, prediction_id


def _invalid() -> ValidationError:
    return ValidationError("'cursor' is not a cursor this service issued", field="cursor", code="invalid_cursor")


def page_of(records: list[PredictionRecord], limit: int) -> tuple[list[PredictionRecord], str | None]:
    """One page from `limit + 1` fetched records: the extra one only says a next
    page exists, and the cursor names the last record shown."""
    if len(records) <= limit:
        return records, None
    shown = records[:limit]
    return shown, encode_cursor(shown[-1].created_at, shown[-1].prediction_id)
