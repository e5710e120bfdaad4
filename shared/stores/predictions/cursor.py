"""The opaque paging cursor of `/predictions-history`: (created_at, id), base64 JSON."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from shared.errors import ValidationError
from shared.records import PredictionRecord


def encode_cursor(created_at: datetime, prediction_id: str) -> str:
    raw = json.dumps({"t": to_micros(created_at), "id": prediction_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        micros, prediction_id = data["t"], data["id"]
        if not isinstance(micros, int) or not isinstance(prediction_id, str):
            raise TypeError
        return micros, prediction_id
    except (ValueError, TypeError, KeyError, UnicodeError):
        raise ValidationError("'cursor' is not a cursor this service issued", field="cursor",
                              code="invalid_cursor") from None


def to_micros(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1_000_000))


def from_micros(micros: int | None) -> datetime | None:
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc)


def page_of(records: list[PredictionRecord], limit: int) -> tuple[list[PredictionRecord], str | None]:
    """One page from `limit + 1` fetched records: the extra one only says a next
    page exists, and the cursor names the last record shown."""
    if len(records) <= limit:
        return records, None
    shown = records[:limit]
    return shown, encode_cursor(shown[-1].created_at, shown[-1].prediction_id)
