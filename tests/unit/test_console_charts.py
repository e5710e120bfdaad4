"""The console's inline SVG charts: a missing day is a gap, not a zero; few
enough day labels never to overlap; the legend above the plot; text escaped."""

import re

from shared.console.charts import TOP, bar_chart, line_chart

DAYS = [f"2026-01-{day:02d}" for day in range(1, 31)]


def test_a_day_without_a_value_is_a_gap_not_a_zero():
    svg = str(line_chart("F1", DAYS[:3], {"realised": {DAYS[0]: 0.9, DAYS[2]: 0.8}}, "macro-F1"))
    assert svg.count("<circle") == 2
    assert "2026-01-02" not in re.sub(r"<text[^>]*>[^<]*</text>", "", svg)  # only as an axis label, if at all


def test_day_labels_are_few_enough_not_to_overlap():
    svg = str(bar_chart("Traffic", DAYS, list(range(30)), "predictions"))
    assert svg.count(">01-") <= 6 and svg.count("<rect") == 30


def test_the_legend_sits_above_the_plot_area():
    svg = str(line_chart("F1", DAYS[:2], {"a": {DAYS[0]: 1.0}, "b": {DAYS[1]: 0.5}}, "macro-F1"))
    legend_boxes = re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="12"', svg)
    assert len(legend_boxes) == 2 and all(float(y) + 12 <= TOP for y in legend_boxes)


def test_text_is_escaped_and_empty_series_say_so():
    svg = str(line_chart("<b>x</b>", DAYS[:1], {"<i>": {DAYS[0]: 0.5}}, "<u>"))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "<i>" not in svg
    assert "nothing recorded yet" in str(bar_chart("Traffic", [], [], "predictions"))
