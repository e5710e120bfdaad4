"""What a drift-check request asks for: the window's bounds, or a lake
partition's day. A field that makes no sense is a `ValidationError` naming
it: retrying cannot fix it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from shared.errors import ValidationError


def window_from_request(data: dict, event_time: datetime, default_hours: float) -> tuple[datetime, datetime]:
    """The window a trigger asks for: explicit bounds, or the `window_hours`
    (default DRIFT_WINDOW_HOURS) before the event's publish time -- which a
    redelivery repeats, so it checks the same window. A field that makes no
    sense is a `ValidationError` naming it: retrying cannot fix it."""
    end = _requested_time(data, "window_end") or event_time.astimezone(timezone.utc)
    start = _requested_time(data, "window_start")
    if start is None:
        hours = data.get("window_hours") or default_hours
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24 * 366:
            raise ValidationError("'window_hours' must be a number of hours, more than 0 and at most a year",
                                  field="window_hours")
        start = end - timedelta(hours=hours)
    if start >= end:
        raise ValidationError("'window_start' must be before 'window_end'", field="window_start")
    return start, end


def _requested_time(data: dict, field: str) -> datetime | None:
    from shared.event_bus.messages import parse_timestamp

    value = data.get(field)
    if value is None or value == "":
        return None
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        raise ValidationError(f"'{field}' must be an ISO 8601 time, e.g. 2026-01-01T00:00:00Z", field=field)
    return moment


def _requested_day(value) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError("'lake_partition' must be 'latest' or a date, YYYY-MM-DD",
                              field="lake_partition") from None
