"""Instants as integer microseconds since 1970 (UTC), the unit both stores and
the prediction ids keep time in. A module of its own: `ids` and `cursor` both
need it, and `cursor` imports `ids`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // _MICROSECOND


def from_micros(micros: int | None) -> datetime | None:
    """Exact (integer) arithmetic: a float loses microseconds near year 9999."""
    if micros is None:
        return None
    return EPOCH + micros * _MICROSECOND
