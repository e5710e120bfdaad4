"""One PNG per feature: reference vs window shares on the baseline's bins,
for people who would rather look than read."""

from __future__ import annotations

import io

import numpy as np


def feature_plot_png(name: str, feature_report: dict, bin_edges: list[float], unit: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    reference = np.asarray(feature_report["reference_counts"], dtype=float)
    window = np.asarray(feature_report["window_counts"], dtype=float)
    reference = reference / reference.sum() if reference.sum() else reference
    window = window / window.sum() if window.sum() else window
    labels = [f"<{bin_edges[1]:g}"] + [f"{low:g}–{high:g}" for low, high in zip(bin_edges[1:-2], bin_edges[2:-1])] \
        + [f"≥{bin_edges[-2]:g}"] if len(bin_edges) > 2 else ["all"]
    figure = Figure(figsize=(8, 4), dpi=100)
    axes = figure.subplots()
    positions = np.arange(len(reference))
    axes.bar(positions - 0.2, reference, width=0.4, label="baseline (training data)")
    axes.bar(positions + 0.2, window, width=0.4, label="window (logged predictions)")
    axes.set_xticks(positions, labels[: len(positions)], rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("share of rows")
    axes.set_title(f"{name} ({unit}): {feature_report['status']} — PSI {feature_report['psi']:.3f}, "
                   f"W/std {feature_report['wasserstein_normalised']:.3f}")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
