"""Reference statistics stored with each model version, for drift monitoring.

Per feature:
- `bin_edges`: quantile edges of the training data (10 bins by default); the
  outer bins are open-ended so every future value falls in one;
- `counts`: the training rows in each of those bins (PSI compares against them);
- `fine_histogram`: counts on 1,000 equal-width bins over the plausible range,
  so a Wasserstein distance can be computed from streamed counts alone;
- mean, std, min, max.
Plus the distribution of predicted labels on the holdout.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from shared.schema import FEATURE_RANGES, FEATURES, LABELS

DEFAULT_BINS = 10
FINE_BINS = 1000


def quantile_bin_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> list[float]:
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    return [float(edge) for edge in edges]


def coarse_bin_index(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Bin of each value; the first and last bins extend to -inf and +inf."""
    inner = np.asarray(edges[1:-1], dtype=float)
    return np.searchsorted(inner, values, side="right")


def coarse_bin_count(edges: list[float]) -> int:
    return max(1, len(edges) - 1)


def fine_bin_index(values: np.ndarray, feature: str) -> np.ndarray:
    low, high, _ = FEATURE_RANGES[feature]
    index = np.floor((values - low) / (high - low) * FINE_BINS).astype(np.int64)
    return np.clip(index, 0, FINE_BINS - 1)


def compute_baseline(X: np.ndarray, predicted_labels, bins: int = DEFAULT_BINS) -> dict:
    features = {}
    for column, name in enumerate(FEATURES):
        values = np.asarray(X[:, column], dtype=float)
        edges = quantile_bin_edges(values, bins)
        counts = np.bincount(coarse_bin_index(values, edges), minlength=coarse_bin_count(edges))
        fine = np.bincount(fine_bin_index(values, name), minlength=FINE_BINS)
        low, high, _ = FEATURE_RANGES[name]
        features[name] = {
            "bin_edges": edges,
            "counts": counts.tolist(),
            "fine_histogram": {"low": low, "high": high, "counts": fine.tolist()},
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    label_counts = Counter(map(str, predicted_labels))
    total = sum(label_counts.values()) or 1
    return {
        "rows": int(len(X)),
        "features": features,
        "predicted_labels": {label: label_counts.get(label, 0) / total for label in LABELS},
        "predicted_label_rows": int(sum(label_counts.values())),  # the chi-square test needs the counts
    }
