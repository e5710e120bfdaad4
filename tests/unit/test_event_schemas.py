"""The topic schemas accept every message this project publishes and refuse
what it never sends; the depth check refuses nesting without parsing."""

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.errors import ValidationError
from shared.event_bus.messages import MAX_JSON_DEPTH, BusMessage, json_too_deep
from shared.event_bus.schemas import (
    DRIFT_CHECK,
    INGEST_CLINICAL,
    INGEST_REFERENCE,
    MODEL_PROMOTED,
    RETRAIN,
    message_ref,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]


def scheduler_messages() -> list[tuple[str, dict]]:
    """Cloud Scheduler's messages as infra/scheduler.tf writes them."""
    text = (ROOT / "infra" / "scheduler.tf").read_text()
    found = []
    for topic, body in re.findall(r'topic\s*=\s*"(\w+)".*?data\s*=\s*\{([^}]*)\}', text, re.S):
        data = {}
        for name, value in re.findall(r'(\w+)\s*=\s*("[^"]*"|\d+)', body):
            data[name] = json.loads(value)
        found.append((topic, data))
    return found


SCHEMAS = {"drift_check": DRIFT_CHECK, "ingest_clinical": INGEST_CLINICAL, "ingest_reference": INGEST_REFERENCE}


def test_every_scheduled_message_passes_its_topic_schema():
    messages = scheduler_messages()
    assert len(messages) == 4
    for topic, data in messages:
        validate(BusMessage(data, {"source": "cloud-scheduler"}, "1234567890"), SCHEMAS[topic])


@pytest.mark.parametrize("data", [
    # what drift_check publishes for a window of predictions, and for a lake partition
    {"reason": "psi temperature 0.31 > 0.2", "report_id": "20260101T000000Z-abcdef123456", "source": "predictions",
     "window_start": "2026-01-01T00:00:00+00:00", "window_end": "2026-01-02T00:00:00+00:00"},
    {"reason": "x", "report_id": "lake-2026-11-21-abcdef123456", "source": "lake",
     "partition": "lake/clinical/date=2026-11-21"},
    {"reason": "manual", "requested_by": "ops.lead@example.org"},  # an operator's
    {"request_id": "retrain-manual-m-0123456789abcdef01234567", "source": "sweep"},  # a requeue or the sweep
])
def test_what_the_loop_publishes_on_the_retrain_topic_passes(data):
    validated = validate(BusMessage(data, {"report_id": "r-1", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16
                                           + "-01"}, "m-1"), RETRAIN)
    assert validated.data == data and validated.message_id == message_ref("m-1") != "m-1"
    assert set(validated.attributes) == {"report_id"}  # the trace rides on, but is not kept


def test_the_model_promoted_notice_passes_its_schema():
    validate(BusMessage({"version": "20260101T000000Z-abc123", "previous_version": None, "run_id": "0" * 32,
                         "promotion_id": "retrain-r-1"}, {"promotion_id": "retrain-r-1"}, "1"), MODEL_PROMOTED)


@pytest.mark.parametrize("schema, data, field", [
    (DRIFT_CHECK, {"aggregation": "hourly", "window_hours": 169}, "window_hours"),
    (DRIFT_CHECK, {"window_hours": True}, "window_hours"),
    (DRIFT_CHECK, {"window_start": "0001-01-01T00:00:00Z"}, "window_start"),
    (DRIFT_CHECK, {"lake_partition": "2026-13-45"}, "lake_partition"),
    (DRIFT_CHECK, {"source": "someone"}, "source"),
    (RETRAIN, {"report_id": ".."}, "report_id"),
    (RETRAIN, {"report_id": "__x__"}, "report_id"),
    (RETRAIN, {"report_id": "r-1", "reason": "x" * 2001}, "reason"),
    (RETRAIN, {"report_id": "r-1", "partition": "lake/clinical/date=2026-01-01/../x"}, "partition"),
    (RETRAIN, {"report_id": "r-1", "extra": 1}, "data"),
    (MODEL_PROMOTED, {"version": "a/b"}, "version"),
    (INGEST_CLINICAL, {"date": "2026-01-01T00:00:00"}, "date"),
    (INGEST_REFERENCE, {"url": "http://example.org"}, "data"),
])
def test_fields_outside_the_schema_are_refused_by_name(schema, data, field):
    with pytest.raises(ValidationError) as refused:
        validate(BusMessage(data, {}, "m-1"), schema)
    assert refused.value.field == field


def test_a_publish_time_ahead_of_the_clock_is_refused_a_little_ahead_is_not():
    now = datetime.now(timezone.utc)
    validate(BusMessage({"reason": "manual", "requested_by": "ops"}, {}, "m", now + timedelta(minutes=4)), RETRAIN)
    with pytest.raises(ValidationError) as refused:
        validate(BusMessage({"reason": "manual", "requested_by": "ops"}, {}, "m", now + timedelta(hours=1)), RETRAIN)
    assert refused.value.field == "publishTime"


def test_the_depth_check_counts_brackets_outside_strings_only():
    assert not json_too_deep("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert json_too_deep("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert json_too_deep('{"a":' * 100_000)  # found before any parser recurses
    assert not json_too_deep(json.dumps({"text": "[" * 1000, "escaped": '\\"[[[[' * 100}))
