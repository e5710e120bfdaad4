"""The drift report's HTML page and the plots' labels."""

import re

import numpy as np
import pytest

from shared.monitoring.baseline import compute_baseline
from shared.monitoring.plots import bin_labels, feature_plot_png, plot_title
from shared.monitoring.report_html import render_report_html
from shared.monitoring.statistics import DriftThresholds, WindowAggregator, evaluate_window
from shared.records import WindowChunk
from shared.training.synthetic_data import generate_reference_data


@pytest.fixture(scope="module")
def report():
    X, y = generate_reference_data(3000, seed=1)
    baseline = compute_baseline(X, y)
    shifted = X + np.array([2.0, 30.0, 0.0])
    aggregate = WindowAggregator(baseline).consume([WindowChunk(shifted, list(y), [None] * len(y))])
    evaluation = evaluate_window(aggregate, {"macro_f1": 0.9}, DriftThresholds())
    return {"report_id": "20260101T000000Z-abc", "created_at": "2026-01-01T00:00:00Z", "source": "predictions",
            "window_start": "2025-12-31T00:00:00Z", "window_end": "2026-01-01T00:00:00Z",
            "champion_version": "v1", "trigger": {}, **evaluation, "plots": {}, "retrain_request_id": "m-1",
            "baseline": baseline}


def test_the_page_says_the_decision_and_what_decided_it(report):
    plots = {name: b"\x89PNG" + name.encode() for name in report["features"]}
    page = render_report_html(report, plots)
    assert report["decision"] == "drift"
    assert 'class="decision drift">drift<' in page
    for reason in report["reasons"]:
        assert reason.replace("'", "&#39;") in page
    for name, feature in report["features"].items():
        assert f"<td>{name}</td>" in page and f"{feature['psi']:.3f}" in page
    assert page.count("data:image/png;base64,") == 3
    assert not re.search(r'(src|href)="(https?:)?//', page)  # self-contained: nothing fetched
    assert "m-1" in page


def test_values_are_escaped(report):
    page = render_report_html(dict(report, reasons=["<script>alert(1)</script>"]), {})
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("edges, expected", [
    ([20.0, 63.3, 68.5, 100.32000000000002, 177.6], ["<63", "63–68", "68–100", "≥100"]),
    ([32.7, 36.3, 36.5, 41.0], ["<36.3", "36.3–36.5", "≥36.5"]),
    ([1.0, 2.0], ["all"]),
])
def test_bin_labels_share_one_precision(edges, expected):
    assert bin_labels(edges) == expected


def test_the_plot_is_a_png_titled_without_the_unit(report):
    feature = report["features"]["blood_pressure"]
    title = plot_title("blood_pressure", feature)
    assert title.startswith("blood_pressure: ok — PSI 0.000") and "mmHg" not in title
    assert title.count("(") == title.count(")")
    png = feature_plot_png("blood_pressure", feature, report["baseline"]["features"]["blood_pressure"]["bin_edges"],
                           "mmHg (systolic)")
    assert png.startswith(b"\x89PNG")
