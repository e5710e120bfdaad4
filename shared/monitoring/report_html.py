"""A drift report as one self-contained HTML page: the decision and what
decided it, every statistic against its threshold, and the plots inline --
written beside `report.json`, openable from a laptop or a bucket with nothing
else. Jinja2 (already installed with Flask) escapes every value."""

from __future__ import annotations

import base64

from jinja2 import Environment, select_autoescape

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Drift report {{ report.report_id }}: {{ report.decision }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
 table { border-collapse: collapse; margin: 1rem 0; }
 th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
 th:first-child, td:first-child { text-align: left; }
 .decision { display: inline-block; padding: .2rem .8rem; border-radius: .3rem; font-weight: bold; }
 .drift, .degraded { background: #f8d7da; } .warning { background: #fff3cd; } .ok { background: #d4edda; }
 .insufficient_data { background: #e2e3e5; }
 img { max-width: 100%; }
</style>
</head>
<body>
<h1>Drift report <code>{{ report.report_id }}</code></h1>
<p><span class="decision {{ report.decision }}">{{ report.decision }}</span>
 {{ report.sample_size }} rows from {{ report.window_start }} to {{ report.window_end }}
 ({{ report.source }}{% if report.partition %}: {{ report.partition }}{% endif %}),
 compared with champion <code>{{ report.champion_version }}</code>'s training data.</p>
<h2>What decided it</h2>
{% if report.reasons %}<ul>{% for reason in report.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
{% else %}<p>Every statistic is below its threshold.</p>{% endif %}
{% if report.retrain_request_id %}
<p>Retrain requested: message <code>{{ report.retrain_request_id }}</code>.</p>
{% endif %}
<p>A difference triggers a retrain only when it is real and large: a feature drifts when its chi-square
 test's p-value is below α = {{ t.alpha_per_test }} and W/std ≥ {{ t.wasserstein_drift }} or PSI ≥ {{ t.psi_drift }}
 (a warning when the test holds and PSI ≥ {{ t.psi_warning }}, short of the drift sizes);
 predicted labels drift when their chi-square p is
 below α and the Jensen-Shannon distance ≥ {{ t.label_js_drift }}; performance is degraded when macro-F1 on
 clinicians' outcomes is ≥ {{ t.f1_drop }} below the champion's on the same predicted labels and the upper end of
 its bootstrap interval is below it too. Fewer than {{ t.min_samples }} rows decide nothing about the distributions.</p>
<h2>Features</h2>
<table>
<tr><th>feature</th><th>status</th><th>chi-square p</th><th>PSI</th><th>W/std</th><th>reference mean</th>
<th>window mean</th></tr>
{% for name, f in report.features.items() %}
<tr><td>{{ name }}</td><td class="{{ f.status }}">{{ f.status }}</td><td>{{ "%.2g"|format(f.chi_square_p_value) }}</td>
<td>{{ "%.3f"|format(f.psi) }}</td>
<td>{{ "%.3f"|format(f.wasserstein_normalised) }}</td><td>{{ number(f.reference_mean) }}</td>
<td>{{ number(f.window_mean) }}</td></tr>
{% endfor %}
</table>
<h2>Predicted labels</h2>
<p class="{{ p.status }}">Jensen-Shannon distance {{ "%.3f"|format(p.js_distance) }}: {{ p.status }}</p>
<table>
<tr><th>label</th><th>reference share</th><th>window count</th></tr>
{% for label, count in p.window.items() %}
<tr><td>{{ label }}</td><td>{{ number(p.reference.get(label)) }}</td><td>{{ count }}</td></tr>
{% endfor %}
</table>
<h2>Performance on clinicians' outcomes</h2>
{% set perf = report.performance %}
<p class="{{ perf.status }}">{{ perf.status }}: {{ perf.outcomes }} outcomes in the window
 (at least {{ t.min_outcomes or 50 }} are needed to judge).</p>
<table>
<tr><td>macro-F1 on the window's outcomes</td><td>{{ number(perf.macro_f1) }}</td></tr>
<tr><td>upper end of its bootstrap interval</td><td>{{ number(perf.macro_f1_upper_bound) }}</td></tr>
<tr><td>reference: the champion on the same predicted labels</td><td>{{ number(perf.reference_macro_f1) }}</td></tr>
<tr><td>champion's holdout macro-F1</td><td>{{ number(perf.champion_holdout_macro_f1) }}</td></tr>
<tr><td>drop</td><td>{{ number(perf.macro_f1_drop) }}</td></tr>
{% for label, row in (perf.per_class or {}).items() %}
<tr><td>recall of {{ label }} ({{ row.support }} outcomes)</td><td>{{ number(row.recall) }}</td></tr>
{% endfor %}
</table>
{% set est = report.estimated_performance %}{% if est %}
<h2>Estimated performance before labels (CBPE)</h2>
<p>From the calibrated probabilities of {{ est.rows }} predictions; realised on {{ est.realised_outcomes }}
 outcomes recorded in the window. Blind to a change of labelling rule (concept shift).</p>
<table>
<tr><th>measure</th><th>estimated</th><th>95 % interval</th><th>realised</th></tr>
<tr><td>macro-F1</td><td>{{ number(est.macro_f1) }}</td><td>{{ est.macro_f1_interval|join(" – ") }}</td>
<td>{{ number(est.realised_macro_f1) }}</td></tr>
{% for label, row in est.per_class.items() %}
<tr><td>recall of {{ label }}</td><td>{{ number(row.recall) }}</td><td>{{ (row.interval or [])|join(" – ") }}</td>
<td>{{ number(row.realised) }}</td></tr>
{% endfor %}
</table>{% endif %}
{% if report.rows_left_out %}<p>Left out: {{ report.rows_left_out.exact_repeats }} exact repeats,
 {{ report.rows_left_out.other_model_versions }} predictions and
 {{ report.rows_left_out.other_model_version_outcomes }} outcomes of other model versions.</p>{% endif %}
<h2>Plots</h2>
{% for name, png in plots.items() %}
<figure><img alt="{{ name }}: baseline and window shares per bin" src="data:image/png;base64,{{ png }}">
<figcaption>{{ name }}</figcaption></figure>
{% endfor %}
<p><small>Created {{ report.created_at }}.
 The same report as JSON: <code>report.json</code> beside this page.</small></p>
</body>
</html>
"""

_environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _environment.from_string(_TEMPLATE)


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def render_report_html(report: dict, plots: dict[str, bytes]) -> str:
    """The page for `report` (as stored), with `plots` (feature -> PNG bytes) inline."""
    inline = {name: base64.b64encode(png).decode("ascii") for name, png in plots.items()}
    return _template.render(report=report, t=report["thresholds"], p=report["prediction_drift"], plots=inline,
                            number=_number)
