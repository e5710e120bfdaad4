"""One PNG per feature: reference vs window shares on the baseline's bins,
for people who would rather look than read."""

from __future__ import annotations

import io

import numpy as np


def bin_labels(bin_edges: list[float]) -> list[str]:
    """Labels of the baseline's bins (the outer ones open-ended), every edge
    with the same number of decimals: the fewest that keep the edges apart."""
    inner = bin_edges[1:-1]
    if not inner:
        return ["all"]
    decimals = next((d for d in range(4) if len({round(edge, d) for edge in inner}) == len(inner)), 4)
    text = [f"{edge:.{decimals}f}" for edge in inner]
    return [f"<{text[0]}"] + [f"{low}–{high}" for low, high in zip(text, text[1:])] + [f"≥{text[-1]}"]


def plot_title(name: str, feature_report: dict) -> str:
    """The unit goes on the x axis: "mmHg (systolic)" inside parentheses read as `mmHg (systolic))`."""
    from shared.monitoring.report_html import feature_name

    return (f"{feature_name(name)}: {feature_report['status']} — PSI {feature_report['psi']:.3f}, "
            f"W/std {feature_report['wasserstein_normalised']:.3f}")


def feature_plot_png(name: str, feature_report: dict, bin_edges: list[float], unit: str,
                     baseline_label: str = "baseline") -> bytes:
    """`baseline_label` names what the champion was compared with (its training
    data, or the production window it was retrained on); the legend sits
    below the axes, never over the bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    reference = np.asarray(feature_report["reference_counts"], dtype=float)
    window = np.asarray(feature_report["window_counts"], dtype=float)
    reference = reference / reference.sum() if reference.sum() else reference
    window = window / window.sum() if window.sum() else window
    labels = bin_labels(bin_edges)
    figure = Figure(figsize=(8, 4.4), dpi=100, layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(reference))
    axes.bar(positions - 0.2, reference, width=0.4, label=baseline_label)
    axes.bar(positions + 0.2, window, width=0.4, label="window (logged predictions)")
    axes.set_xticks(positions, labels[: len(positions)], rotation=45, ha="right", fontsize=8)
    axes.set_xlabel(unit)
    axes.set_ylabel("share of rows")
    axes.set_title(plot_title(name, feature_report))
    figure.legend(loc="outside lower center", ncols=2, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
