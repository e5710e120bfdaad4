"""Hourly aggregates: the drift check's cost made flat in the day's traffic.

An hour is counted once -- the predictions made in it into the champion
baseline's bins, the clinician outcomes recorded in it into a confusion
matrix -- and stored as one small document (`drift_aggregates`, ~25 KB,
whatever the hour's traffic): the unit of work. The hourly trigger counts the
hour that just closed; the nightly check merges the window's 24 units in
O(bins) and reads no record at all.

- Idempotent: a unit's id is (champion, hour), and a stored unit is reused.
- Resumable: a check that stops half-way keeps every unit it stored; the
  redelivery counts only the hours still missing.
- Closed hours only: an hour is counted once it ended `CLOSE_GRACE` ago, so
  a prediction logged in its last second is not missed.
- Per champion: the bins are the champion's baseline, and only the
  champion's own predictions (and outcomes on them) are counted, so after a
  promotion the nightly check counts the window's hours again for the new
  champion, and the unit says how many rows of other versions it left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from shared.monitoring.statistics import WindowAggregator
from shared.records import isoformat
from shared.stores.metadata.port import DRIFT_AGGREGATES, MetadataStore
from shared.stores.predictions.port import PredictionStore
from shared.structured_logging import get_logger

log = get_logger("drift_aggregates")
HOUR = timedelta(hours=1)
CLOSE_GRACE = timedelta(minutes=5)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def last_closed_hour(now: datetime) -> datetime:
    """The start of the newest hour that ended at least CLOSE_GRACE before `now`."""
    return floor_hour(now - CLOSE_GRACE) - HOUR


def hours_between(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = floor_hour(start)
    while hour < end:
        yield hour
        hour += HOUR


def aggregate_id(champion: str, hour: datetime) -> str:
    return f"{champion}-{hour.strftime('%Y%m%dT%H')}"


def hour_counts(hour: datetime, *, champion: str, baseline: dict, predictions: PredictionStore,
                metadata: MetadataStore, now: datetime | None = None) -> dict:
    """The stored unit of `hour` for `champion`, counted and stored first if absent."""
    now = now or datetime.now(timezone.utc)
    if hour + HOUR + CLOSE_GRACE > now:
        raise ValueError(f"the hour starting {isoformat(hour)} has not closed yet")
    document_id = aggregate_id(champion, hour)
    stored = metadata.get(DRIFT_AGGREGATES, document_id)
    if stored is not None:
        return stored["counts"]
    aggregator = WindowAggregator(baseline, model_version=champion)
    for chunk in predictions.iter_window(hour, hour + HOUR):
        aggregator.add_predictions(chunk)
    for chunk in predictions.iter_outcomes_recorded(hour, hour + HOUR):
        aggregator.add_outcomes(chunk)
    counts = aggregator.to_counts()
    metadata.put(DRIFT_AGGREGATES, document_id, {
        "created_at": now.isoformat(), "champion_version": champion, "hour_start": isoformat(hour),
        "hour_end": isoformat(hour + HOUR), "rows": counts["rows"], "counts": counts})
    log.info("hourly drift aggregate stored", extra={"fields": {"aggregate_id": document_id,
                                                                "rows": counts["rows"]}})
    return counts


def aggregate_window(start: datetime, end: datetime, *, champion: str, baseline: dict,
                     predictions: PredictionStore, metadata: MetadataStore,
                     now: datetime | None = None, learnt_until: datetime | None = None) -> WindowAggregator:
    """Merge the hourly units of [start, end) (hour-aligned), counting the missing ones first;
    the outcomes of units that end by `learnt_until` are left out (`learnt_outcomes.py`)."""
    aggregator = WindowAggregator(baseline, model_version=champion, learnt_until=learnt_until)
    for hour in hours_between(start, end):
        aggregator.add_counts(hour_counts(hour, champion=champion, baseline=baseline, predictions=predictions,
                                          metadata=metadata, now=now),
                              outcomes=learnt_until is None or hour + HOUR > learnt_until)
    return aggregator
