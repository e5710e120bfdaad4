"""One schema per topic: what a message may carry, and nothing else.

Every message is checked here before any handler reads it, on Pub/Sub and on
the local bus alike (`shared.wiring` runs the check). A message that fails is
a `ValidationError` naming the field: the event functions acknowledge it and
log the reason ("message dropped"), which a log-based metric counts and
alerts on. Values are never echoed into the reason: a field that should not
be there may hold health data.

What passes comes back *rebuilt* from the validated fields only: unknown
fields and attributes are refused (not ignored), the message id is replaced
by a digest (its raw text could be anything a publisher chose), and so
nothing a publisher adds reaches a store, an artifact, a log line or a
command line.

Bounds are those the stores and the work accept: ids are what a Firestore
document id and an object path segment accept, windows are bounded (an
hourly re-aggregation at most `MAX_HOURLY_WINDOW_HOURS`), times lie between
`EARLIEST` and a little past now.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from shared.errors import ValidationError
from shared.event_bus.messages import BusMessage, parse_timestamp

# A Firestore document id and a path segment: no '/', no leading '.', not `__x__`.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.@-]{0,63}")  # an operator's user name
PARTITION_PATTERN = re.compile(r"lake/clinical/date=\d{4}-\d{2}-\d{2}")
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
CLOCK_SKEW = timedelta(minutes=5)  # publish times this far ahead are a clock, not a forgery
MAX_WINDOW_HOURS = 24 * 366
MAX_HOURLY_WINDOW_HOURS = 24 * 7  # hourly aggregates re-computed by one message, at most
MAX_REASON_CHARS = 2000
SOURCES = frozenset({"cloud-scheduler", "cli", "console", "operator", "drift-check", "sweep", "test"})
# Attributes a message may carry; googclient_* are set by Google's client libraries.
ATTRIBUTES = frozenset({"source", "report_id", "promotion_id", "traceparent", "tracestate"})


def message_ref(message_id: str) -> str:
    """A stable stand-in for a publisher's message id (dedupe keys and logs use it)."""
    return "m-" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:24]


# Field checkers: (value, field, now) -> the validated value.
def text_id(value, field, now):
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValidationError(f"'{field}' must be an id of letters, digits, '_', '.' or '-' (at most 128)",
                              field=field)
    return value


def operator_name(value, field, now):
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValidationError(f"'{field}' must be a user name (letters, digits, '_.@-', at most 64)", field=field)
    return value


def moment(value, field, now):
    parsed = parse_timestamp(value) if isinstance(value, str) and len(value) <= 40 else None
    if parsed is None or not EARLIEST <= parsed <= now + timedelta(days=1):
        raise ValidationError(f"'{field}' must be an ISO 8601 time after 2000 and not in the future, "
                              "e.g. 2026-01-01T00:00:00Z", field=field)
    return value


def hours(limit: float) -> Callable:
    def check(value, field, now):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 < value <= limit:
            raise ValidationError(f"'{field}' must be a number of hours, more than 0 and at most {limit:g}",
                                  field=field)
        return value
    return check


def one_of(*choices: str) -> Callable:
    def check(value, field, now):
        if value not in choices:
            raise ValidationError(f"'{field}' must be one of {', '.join(choices)}", field=field)
        return value
    return check


def day_or(*words: str) -> Callable:
    def check(value, field, now):
        if isinstance(value, str) and value in words:
            return value
        try:
            day = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            day = None
        if day is None or not EARLIEST.date() <= day <= (now + timedelta(days=1)).date():
            raise ValidationError(f"'{field}' must be {' or '.join(repr(w) for w in words) + ' or ' if words else ''}"
                                  "a date, YYYY-MM-DD", field=field)
        return value
    return check


def hour_or_last_closed(value, field, now):
    return value if value == "last_closed" else moment(value, field, now)


def partition(value, field, now):
    if not isinstance(value, str) or not PARTITION_PATTERN.fullmatch(value):
        raise ValidationError(f"'{field}' must be lake/clinical/date=YYYY-MM-DD", field=field)
    day_or()(value.rsplit("=", 1)[1], field, now)
    return value


def free_text(value, field, now):
    """Accepted for its shape only: handlers never store or log it verbatim."""
    if not isinstance(value, str) or len(value) > MAX_REASON_CHARS:
        raise ValidationError(f"'{field}' must be text of at most {MAX_REASON_CHARS} characters", field=field)
    return value


def source(value, field, now):
    return one_of(*sorted(SOURCES))(value, field, now)


@dataclass(frozen=True)
class Schema:
    topic: str
    fields: dict[str, Callable]
    rule: Callable[[dict], None] | None = None  # across fields


def _drift_check_rule(data: dict) -> None:
    if data.get("aggregation") == "hourly" and "window_hours" in data:
        hours(MAX_HOURLY_WINDOW_HOURS)(data["window_hours"], "window_hours", None)


def _retrain_rule(data: dict) -> None:
    """Every retrain names its evidence (a drift report) or is an operator's
    request: training costs an hour of a CPU, not something any message buys."""
    if "report_id" in data or "request_id" in data:
        return
    if data.get("reason") != "manual" or "requested_by" not in data:
        raise ValidationError("a retrain request names its drift 'report_id', or is an operator's: "
                              "reason 'manual' and 'requested_by'", field="report_id")


DRIFT_CHECK = Schema("drift-check", {
    "window_hours": hours(MAX_WINDOW_HOURS), "window_start": moment, "window_end": moment,
    "lake_partition": day_or("latest"), "aggregation": one_of("hourly"), "aggregate_hour": hour_or_last_closed,
    "source": source,
}, _drift_check_rule)
RETRAIN = Schema("retrain", {
    "reason": free_text, "report_id": text_id, "requested_by": operator_name, "request_id": text_id,
    "source": one_of("predictions", "lake", *sorted(SOURCES)), "partition": partition,
    "window_start": moment, "window_end": moment,
}, _retrain_rule)
MODEL_PROMOTED = Schema("model-promoted", {
    "version": text_id, "previous_version": lambda v, f, n: v if v is None else text_id(v, f, n),
    "run_id": text_id, "promotion_id": text_id,
})
INGEST_CLINICAL = Schema("ingest-clinical", {"date": day_or(), "source": source})
INGEST_REFERENCE = Schema("ingest-reference", {"source": source})


def validate(message: BusMessage, schema: Schema, now: datetime | None = None) -> BusMessage:
    """The message rebuilt from its validated fields; `ValidationError` naming the first bad one."""
    now = now or datetime.now(timezone.utc)
    if message.publish_time > now + CLOCK_SKEW:
        raise ValidationError("'publishTime' is in the future", field="publishTime")
    attributes = {}
    for name, value in message.attributes.items():
        if name.startswith("googclient_"):
            continue
        if name not in ATTRIBUTES:
            raise ValidationError("an attribute messages do not carry (only source, report_id, promotion_id, "
                                  "traceparent, tracestate)", field="attributes")
        if name in ("source", "report_id", "promotion_id"):
            attributes[name] = (source if name == "source" else text_id)(value, f"attributes.{name}", now)
    data = validate_data(message.data, schema, now)
    return BusMessage(data=data, attributes=attributes, message_id=message_ref(message.message_id),
                      publish_time=message.publish_time)


def validate_data(data: dict, schema: Schema, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    unknown = sorted(set(data) - set(schema.fields))
    if unknown:
        # The name is not echoed: a field that should not exist may be named after what it holds.
        raise ValidationError(f"a field the {schema.topic} topic does not have ({len(unknown)} unknown)",
                              field="data")
    checked = {name: schema.fields[name](value, name, now) for name, value in data.items()
               if value is not None}
    if schema.rule is not None:
        schema.rule(checked)
    return checked
