"""The drift report's HTML page and the plots' labels."""

import re

import numpy as np
import pytest

from shared.monitoring.baseline import compute_baseline
from shared.monitoring.plots import bin_labels, feature_plot_png, plot_title
from shared.monitoring.report_html import describe_baseline, feature_name, render_report_html
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
        assert f"<td>{feature_name(name)}</td>" in page and f"{feature['psi']:.3f}" in page
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
    assert title.startswith("Blood pressure: ok — PSI 0.000") and "mmHg" not in title
    assert title.count("(") == title.count(")")
    png = feature_plot_png("blood_pressure", feature, report["baseline"]["features"]["blood_pressure"]["bin_edges"],
                           "mmHg (systolic)")
    assert png.startswith(b"\x89PNG")


def test_the_page_fits_a_phone_and_gives_times_to_the_second(report):
    page = render_report_html(dict(report, created_at="2026-01-01T00:00:00.123456+00:00",
                                   window_start="2025-12-31T00:00:00.654321Z"), {})
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "2026-01-01 00:00:00 UTC" in page and "2025-12-31 00:00:00 UTC" in page
    assert ".123456" not in page and ".654321" not in page


def test_means_carry_units_and_cells_are_coloured_by_severity(report):
    page = render_report_html(report, {})
    temperature = report["features"]["temperature"]
    assert f"{temperature['reference_mean']:.4g} °C" in page
    assert f'<td class="drift">{temperature["psi"]:.3f}</td>' in page  # shifted by 2 °C: PSI far past 0.25
    calm = dict(report, features={"temperature": dict(temperature, psi=0.055, wasserstein_normalised=0.01)})
    assert '<td class="ok">0.055</td>' in render_report_html(calm, {})
    warned = dict(report, features={"temperature": dict(temperature, psi=0.12, wasserstein_normalised=0.01)})
    assert '<td class="warning">0.120</td>' in render_report_html(warned, {})


def test_what_was_not_measured_reads_n_a_never_zero_or_none(report):
    performance = dict(report["performance"], outcomes=0, macro_f1=0.0, macro_f1_upper_bound=None,
                       macro_f1_drop=None, champion_holdout_macro_f1=None)
    page = render_report_html(dict(report, performance=performance,
                                   baseline_source={"holdout_macro_f1": 0.93, "description": "x"}), {})
    section = page[page.index("Performance on clinicians"):page.index("<h2>Plots")]
    assert "macro-F1 on the window's outcomes</td><td>n/a" in section
    assert "None" not in page and "—" not in section
    assert "holdout macro-F1</td><td>0.93<" in section  # known from the manifest when the baseline lacks it


class Files:
    def __init__(self, files):
        self.files = files

    def read_bytes(self, path):
        return self.files[path]


def test_the_baseline_is_named_for_what_it_is(report):
    import json

    retrained = Files({"models/v2/experiment.json": json.dumps({"data_sources": {"baseline": {
        "source": "predictions", "window_start": "2026-01-01T00:00:00.5Z", "window_end": "2026-01-02T00:00:00Z",
        "rows": 600}}}).encode(), "models/v2/manifest.json": b'{"metrics": {"macro_f1": 0.91}}'})
    described = describe_baseline(retrained, "v2", {"rows": 600})
    assert described["label"] == "baseline (retraining window)" and described["holdout_macro_f1"] == 0.91
    assert "600 logged predictions from 2026-01-01 00:00:00 UTC" in described["description"]
    first = describe_baseline(Files({"models/v1/experiment.json": b'{"data_sources": {"reference_generator": {}}}'}),
                              "v1", {"rows": 4000})
    assert first["label"] == "baseline (training data)" and first["holdout_macro_f1"] is None
    page_text = render_report_html(dict(report, baseline_source=described), {})
    assert "the production window it was retrained on" in page_text and "training data" not in page_text


def test_the_page_lists_each_labeller_and_flags_the_one_far_below_its_peers(report):
    labellers = {"callers": {
        "ana@clinic.example": {"labels": 40, "agreement_with_champion": 0.95, "agreement_with_peers": 0.97,
                               "flagged": False},
        "<b>mallory@attacker.example</b>": {"labels": 113, "agreement_with_champion": 0.0,
                                           "agreement_with_peers": 0.02, "flagged": True}}}
    page = render_report_html(dict(report, labellers=labellers), {})
    assert "<h2>Labellers</h2>" in page
    assert "<td>ana@clinic.example</td><td>40</td>" in page
    assert "&lt;b&gt;mallory@attacker.example&lt;/b&gt;" in page and "<b>mallory" not in page  # escaped
    assert page.count('class="drift">yes</td>') == 1 and page.count('class="ok">no</td>') == 1
    assert "<h2>Labellers</h2>" not in render_report_html(report, {})
