"""Cleaning one chunk of extracted clinical records with Polars.

Every row either comes out clean -- numbers, Celsius, plausible ranges, one of
the five labels -- or goes to quarantine with the first reason that applies:
`duplicate`, `missing:<field>`, `not_a_number:<field>`, `out_of_range:<field>`,
`unknown_label`. Nothing is silently dropped.
"""

from __future__ import annotations

import unicodedata

import polars as pl

from shared.schema import FEATURE_RANGES, FEATURES, LABELS


def _fold(text: str) -> str:
    """Upper case, no accents, single spaces: 'Enfermedad crónica ' -> 'ENFERMEDAD CRONICA'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).upper().split())


LABEL_ALIASES: dict[str, str] = {_fold(label): label for label in LABELS}
LABEL_ALIASES.update({
    "SANO": LABELS[0], "NO ENFERMEDAD": LABELS[0], "NINGUNA": LABELS[0],
    "LEVE": LABELS[1], "AGUDA": LABELS[2], "CRONICA": LABELS[3], "TERMINAL": LABELS[4],
})


def normalize_label(value: str | None) -> str | None:
    return LABEL_ALIASES.get(_fold(value)) if isinstance(value, str) else None


def clean_chunk(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clean rows, quarantined rows with `reason`); both keep the source columns."""
    numeric = frame.with_columns(
        [pl.col(name).cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False).alias(f"_{name}")
         for name in FEATURES]
    )
    unit = pl.col("temperature_unit").cast(pl.Utf8).str.strip_chars().str.to_uppercase()
    numeric = numeric.with_columns(
        pl.when(unit.is_in(["F", "°F", "FAHRENHEIT"]))
        .then(((pl.col("_temperature") - 32) * 5 / 9).round(2))
        .otherwise(pl.col("_temperature"))
        .alias("_temperature"),
        pl.col("diagnosis").map_elements(normalize_label, return_dtype=pl.Utf8).alias("_label"),
    )
    reason = pl.when(pl.col("duplicate_rank") > 1).then(pl.lit("duplicate"))
    for name in FEATURES:
        raw_missing = pl.col(name).is_null() | (pl.col(name).cast(pl.Utf8).str.strip_chars() == "")
        reason = reason.when(raw_missing).then(pl.lit(f"missing:{name}"))
        reason = reason.when(pl.col(f"_{name}").is_null() | pl.col(f"_{name}").is_nan()).then(
            pl.lit(f"not_a_number:{name}"))
        low, high, _ = FEATURE_RANGES[name]
        reason = reason.when((pl.col(f"_{name}") < low) | (pl.col(f"_{name}") > high)).then(
            pl.lit(f"out_of_range:{name}"))
    reason = reason.when(pl.col("_label").is_null()).then(pl.lit("unknown_label")).otherwise(pl.lit(None))
    flagged = numeric.with_columns(reason.alias("reason"))
    clean = flagged.filter(pl.col("reason").is_null()).with_columns(
        [pl.col(f"_{name}").alias(name) for name in FEATURES] + [pl.col("_label").alias("label")]
    )
    quarantine = flagged.filter(pl.col("reason").is_not_null()).with_columns(
        [pl.col(f"_{name}").alias(name) for name in FEATURES] + [pl.col("_label").alias("label")]
    )
    return clean, quarantine
