"""The model's public contract: features, plausible ranges, labels, and the
validation that turns untrusted request values into numbers.

The ranges are plausibility limits for an adult's vital signs, not clinical
reference ranges: anything outside them is far more likely a unit or typing
error than a real measurement, so it is refused instead of predicted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ValidationError

FEATURES: tuple[str, ...] = ("temperature", "heart_rate", "blood_pressure")

# (minimum, maximum, unit) -- inclusive.
FEATURE_RANGES: dict[str, tuple[float, float, str]] = {
    "temperature": (25.0, 45.0, "°C"),
    "heart_rate": (20.0, 250.0, "bpm"),
    "blood_pressure": (40.0, 300.0, "mmHg (systolic)"),
}

# The public contract: these exact strings, in this order (the order fixes the
# rows and columns of every confusion matrix we record).
LABELS: tuple[str, ...] = (
    "NO ENFERMO",
    "ENFERMEDAD LEVE",
    "ENFERMEDAD AGUDA",
    "ENFERMEDAD CRÓNICA",
    "ENFERMEDAD TERMINAL",
)

# Numbers as text: ASCII decimal notation only. Python's float() also takes
# "3_6", Arabic-Indic or full-width digits, which no client means to send.
DECIMAL_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_DECIMAL = re.compile(DECIMAL_PATTERN)
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ASCII_SPACE = " \t\r\n"
# Longest numeric text we accept; longer strings are refused before they are parsed.
MAX_NUMBER_TEXT = 100


@dataclass(frozen=True)
class Vitals:
    temperature: float
    heart_rate: float
    blood_pressure: float

    def as_row(self) -> list[float]:
        return [self.temperature, self.heart_rate, self.blood_pressure]

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in FEATURES}


def parse_number(value: Any, field: str) -> float:
    """Return `value` as a finite float inside the field's plausible range."""
    if value is None or value == "":
        raise ValidationError(f"'{field}' is required", field=field, code="missing_field")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValidationError(f"'{field}' must be a number", field=field, code="not_a_number")
    if isinstance(value, str):
        text = value.strip(_ASCII_SPACE)
        if not text:
            raise ValidationError(f"'{field}' is required", field=field, code="missing_field")
        if len(text) > MAX_NUMBER_TEXT:
            raise ValidationError(f"'{field}' is longer than {MAX_NUMBER_TEXT} characters", field=field,
                                  code="too_long")
        if _NON_FINITE.fullmatch(text):
            raise ValidationError(f"'{field}' must be a finite number", field=field, code="not_finite")
        if not _DECIMAL.fullmatch(text):
            raise ValidationError(f"'{field}' must be a decimal number in ASCII digits", field=field,
                                  code="not_a_number")
        number = float(text)
    else:
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number):
        raise ValidationError(f"'{field}' must be a finite number", field=field, code="not_finite")
    low, high, unit = FEATURE_RANGES[field]
    if not low <= number <= high:
        raise ValidationError(
            f"'{field}' must be between {low:g} and {high:g} {unit}, got {number:g}",
            field=field,
            code="out_of_range",
        )
    return number


def parse_vitals(values: Mapping[str, Any], *, field_prefix: str = "") -> Vitals:
    """Validate one instance; error fields are prefixed (e.g. `instances[3].`)."""
    if not isinstance(values, Mapping):
        raise ValidationError(
            "each instance must be a JSON object with temperature, heart_rate and blood_pressure",
            field=field_prefix.rstrip(".") or None,
            code="not_an_object",
        )
    refuse_unknown_fields(values, FEATURES, prefix=field_prefix)
    parsed = {}
    for name in FEATURES:
        try:
            parsed[name] = parse_number(values.get(name), name)
        except ValidationError as error:
            error.field = field_prefix + name
            raise
    return Vitals(**parsed)


def parse_label(value: Any, field: str = "label") -> str:
    if value is None:
        raise ValidationError(f"'{field}' is required", field=field, code="missing_field")
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be a string", field=field, code="not_a_string")
    if value not in LABELS:
        raise ValidationError(
            f"'{field}' must be one of: {', '.join(LABELS)}", field=field, code="unknown_label"
        )
    return value


def refuse_unknown_fields(values: Mapping[str, Any], known: tuple[str, ...], *, prefix: str = "") -> None:
    """A field we do not read is refused rather than silently ignored: it is
    most likely a typo (`heartrate`) or a unit the caller thinks we honour."""
    for name in values:
        if name not in known:
            shown = name if len(name) <= 100 else name[:100] + "…"
            raise ValidationError(f"'{shown}' is not a field here; expected {', '.join(known)}",
                                  field=prefix + shown, code="unknown_field")
