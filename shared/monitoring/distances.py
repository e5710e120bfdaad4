"""Distances between two binned distributions, and the chi-square test of
homogeneity: pure functions on counts, no decision here (`statistics.py`
holds the thresholds and decides)."""

from __future__ import annotations

import numpy as np

PSI_EPSILON = 1e-4
MIN_EXPECTED_COUNT = 5  # chi-square's rule of thumb: smaller bins are pooled


def _proportions(counts, epsilon: float = 0.0) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    shares = counts / total if total else np.zeros_like(counts)
    return np.maximum(shares, epsilon) if epsilon else shares


def population_stability_index(reference_counts, current_counts, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bins; empty bins get `epsilon`."""
    reference = _proportions(reference_counts, epsilon)
    current = _proportions(current_counts, epsilon)
    return float(np.sum((current - reference) * np.log(current / reference)))


def wasserstein_from_histograms(reference_counts, current_counts, bin_width: float) -> float:
    """W1 between two distributions on the same equal-width bins: the area
    between their CDFs."""
    reference_cdf = np.cumsum(_proportions(reference_counts))
    current_cdf = np.cumsum(_proportions(current_counts))
    return float(np.sum(np.abs(reference_cdf - current_cdf)) * bin_width)


def jensen_shannon_distance(p, q) -> float:
    """sqrt of the JS divergence, base 2: 0 for equal, 1 for disjoint distributions."""
    p, q = _proportions(p), _proportions(q)
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return float(np.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2)))


def _pool_adjacent(table: np.ndarray, expected_in_window: np.ndarray, min_expected: float) -> np.ndarray:
    """Merge neighbouring bins until each expects at least `min_expected` in the window
    (ordered bins: a small window keeps a coarser test instead of losing it)."""
    groups, current, expected = [], [], 0.0
    for column, value in enumerate(expected_in_window):
        current.append(column)
        expected += value
        if expected >= min_expected:
            groups.append(current)
            current, expected = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return np.column_stack([table[:, group].sum(axis=1) for group in groups])


def chi_square_homogeneity(reference_counts, current_counts, min_expected: float = MIN_EXPECTED_COUNT,
                           ordered: bool = False) -> tuple[float, float]:
    """(statistic, p-value) of Pearson's chi-square test that both samples come
    from one distribution over the same bins. Bins empty in both are dropped;
    bins where the window expects fewer than `min_expected` counts are pooled
    into one (or, for `ordered` bins such as a feature's quantile bins, with
    their neighbours), so the chi-square approximation holds for small windows.

    Counts may be fractional: effective counts (counts / design effect) give
    the Rao-Scott first-order correction for rows that are not independent
    (`dependence.py`)."""
    from scipy.stats import chi2

    table = np.vstack([np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected_in_window = table.sum(axis=0) * table[1].sum() / table.sum()
    small = expected_in_window < min_expected
    if ordered:
        table = _pool_adjacent(table, expected_in_window, min_expected)
    elif small.sum() > 0:
        table = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(chi2.sf(statistic, table.shape[1] - 1))
