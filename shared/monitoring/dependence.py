"""Rows that are not independent: the same patient measured several times.

A hospital logs one patient's vitals several times a day (a re-query, a
refresh, a second measurement). Those rows are correlated, so a window of n
rows carries the information of fewer patients, and a chi-square test that
counts every row as a new patient calls a stationary window "drift" (40 % of
windows of 67 patients x 3 at n = 201, before this module).

Two defences, applied in this order:
1. exact repeats are collapsed before counting (`aggregator.py`);
2. the chi-square tests use *effective* counts, the counts divided by the
   design effect D (Rao and Scott's first-order correction): the variance of
   a bin's share among clustered rows is at most D times the independent one
   when no patient contributes more than D rows to the window (D = 1 + (m - 1)
   * ICC <= m). D is the configured `DRIFT_DESIGN_EFFECT` (default 5: up to
   five measurements of a patient in a window are tolerated); a baseline
   taken from a production window (`from_production_window`) is discounted
   by the same D, as its rows repeat patients the same way. The price is power: a window of n rows is tested as n / D
   patients, so a shift needs about D times as many rows to be found.
"""

from __future__ import annotations

import numpy as np


def effective_counts(counts, design_effect: float) -> np.ndarray:
    """Counts as many independent rows as they are worth: counts / D (D >= 1)."""
    return np.asarray(counts, dtype=float) / max(1.0, float(design_effect))
