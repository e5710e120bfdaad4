"""A drift report as one self-contained HTML page: the decision and what
decided it, every statistic against its threshold (coloured by severity),
and the plots inline -- written beside `report.json`, openable from a laptop
or a bucket with nothing else, readable at phone width. Jinja2 escapes
every value; what was not measured reads "n/a", never 0."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from jinja2 import Environment, select_autoescape

from shared.schema import FEATURE_RANGES

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Drift report {{ report.report_id }}: {{ report.decision }}</title>
<style>
 * { box-sizing: border-box; }
 body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 60rem; color: #222;
        line-height: 1.4; }
 h1 { font-size: 1.4rem; } h1 code { overflow-wrap: anywhere; }
 .table-wrap { overflow-x: auto; max-width: 100%; }
 table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
 th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
 th:first-child, td:first-child { text-align: left; }
 code { overflow-wrap: anywhere; }
 .decision { display: inline-block; padding: .2rem .8rem; border-radius: .3rem; font-weight: bold; }
 .drift, .degraded { background: #f8d7da; } .warning { background: #fff3cd; } .ok { background: #d4edda; }
 .insufficient_data, .na { background: #e2e3e5; }
 .legend span { display: inline-block; padding: 0 .4rem; margin-right: .3rem; border-radius: .2rem; }
 img { max-width: 100%; height: auto; }
 figure { margin: 1rem 0; }
</style>
</head>
<body>
<h1>Drift report <code>{{ report.report_id }}</code></h1>
<p><span class="decision {{ report.decision }}">{{ report.decision }}</span>
 {{ report.sample_size }} predictions from {{ when(report.window_start) }} to {{ when(report.window_end) }}
 ({{ report.source }}{% if report.partition %}: {{ report.partition }}{% endif %}),
 compared with the baseline of champion <code>{{ report.champion_version }}</code>:
 {{ baseline.get("description") or "its baseline (stored with the model)" }}.</p>
<h2>What decided it</h2>
{% if report.reasons %}<ul>{% for reason in report.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
{% else %}<p>Every statistic is below its threshold.</p>{% endif %}
{% if report.retrain_request_id %}
<p>Retrain requested: message <code>{{ report.retrain_request_id }}</code>.</p>
{% endif %}
<p>A difference triggers a retrain only when it is real and large: a feature drifts when its chi-square
 test's p-value is below α = {{ t.alpha_per_test }} and W/std ≥ {{ t.wasserstein_drift }} or PSI ≥ {{ t.psi_drift }}
 (a warning when only one holds, or PSI ≥ {{ t.psi_warning }}); predicted labels drift when their chi-square p is
 below α and the Jensen-Shannon distance ≥ {{ t.label_js_drift }}; performance is degraded when macro-F1 on
 clinicians' outcomes is ≥ {{ t.f1_drop }} below the champion's on the same predicted labels and the upper end of
 its bootstrap interval is below it too. Fewer than {{ t.min_samples }} rows decide nothing about the distributions.</p>
<h2>Features</h2>
<p class="legend">Cells coloured by severity: <span class="ok">below the warning level</span><span class="warning">warning
 level</span><span class="drift">drift threshold reached</span></p>
<div class="table-wrap"><table>
<tr><th>feature</th><th>status</th><th>chi-square p</th><th>PSI</th><th>W/std</th><th>baseline mean</th>
<th>window mean</th></tr>
{% for name, f in report.features.items() %}
<tr><td>{{ feature_name(name) }}</td><td class="{{ f.status }}">{{ f.status }}</td>
<td class="{{ 'drift' if f.chi_square_p_value is not none and f.chi_square_p_value < t.alpha_per_test else '' }}">{{ fixed(f.chi_square_p_value, "%.2g") }}</td>
<td class="{{ severity(f.psi, t.psi_warning, t.psi_drift) }}">{{ fixed(f.psi, "%.3f") }}</td>
<td class="{{ severity(f.wasserstein_normalised, none, t.wasserstein_drift) }}">{{ fixed(f.wasserstein_normalised, "%.3f") }}</td>
<td>{{ measured(f.reference_mean, unit(name)) }}</td><td>{{ measured(f.window_mean, unit(name)) }}</td></tr>
{% endfor %}
</table></div>
<h2>Predicted labels</h2>
<p class="{{ p.status }}">Jensen-Shannon distance {{ fixed(p.js_distance, "%.3f") }}: {{ p.status }}</p>
<div class="table-wrap"><table>
<tr><th>label</th><th>baseline share</th><th>window count</th></tr>
{% for label, count in p.window.items() %}
<tr><td>{{ label }}</td><td>{{ number(p.reference.get(label)) }}</td><td>{{ count }}</td></tr>
{% endfor %}
</table></div>
<h2>Performance on clinicians' outcomes</h2>
{% set perf = report.performance %}
{% set measured_f1 = perf.outcomes %}
<p class="{{ perf.status }}">{{ perf.status }}: {{ perf.outcomes }} outcomes in the window
 (at least {{ t.min_outcomes or 50 }} are needed to judge).</p>
<div class="table-wrap"><table>
<tr><td>macro-F1 on the window's outcomes</td><td>{{ number(perf.macro_f1) if measured_f1 else "n/a" }}</td></tr>
<tr><td>upper end of its bootstrap interval</td><td>{{ number(perf.macro_f1_upper_bound) if measured_f1 else "n/a" }}</td></tr>
<tr><td>reference: the champion on the same predicted labels</td><td>{{ number(perf.reference_macro_f1) }}</td></tr>
<tr><td>champion's holdout macro-F1</td><td>{{ number(perf.champion_holdout_macro_f1 if perf.champion_holdout_macro_f1 is not none else baseline.get("holdout_macro_f1")) }}</td></tr>
<tr><td>drop</td><td>{{ number(perf.macro_f1_drop) if measured_f1 else "n/a" }}</td></tr>
{% for label, row in (perf.per_class or {}).items() %}
<tr><td>recall of {{ label }} ({{ row.support }} outcomes)</td><td>{{ number(row.recall) if row.support else "n/a" }}</td></tr>
{% endfor %}
</table></div>
<h2>Plots</h2>
{% for name, png in plots.items() %}
<figure><img alt="{{ feature_name(name) }}: baseline and window shares per bin" src="data:image/png;base64,{{ png }}">
<figcaption>{{ feature_name(name) }}, in {{ unit(name) }}</figcaption></figure>
{% endfor %}
<p><small>Created {{ when(report.created_at) }}.
 The same report as JSON: <code>report.json</code> beside this page.</small></p>
</body>
</html>
"""

_environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _environment.from_string(_TEMPLATE)

FEATURE_NAMES = {"temperature": "Temperature", "heart_rate": "Heart rate", "blood_pressure": "Blood pressure"}


def feature_name(name: str) -> str:
    """What a person calls a feature: `heart_rate` -> `Heart rate`."""
    return FEATURE_NAMES.get(name) or name.replace("_", " ").capitalize()


def unit(name: str) -> str:
    return FEATURE_RANGES[name][2] if name in FEATURE_RANGES else ""


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def _fixed(value, pattern: str) -> str:
    return "n/a" if value is None else pattern % value


def _measured(value, unit_text: str) -> str:
    """A mean with its unit; the qualifier in "mmHg (systolic)" is left to the plot caption."""
    if value is None:
        return "n/a"
    return f"{value:.4g} {unit_text.split(' (')[0]}".strip()


def _severity(value, warning, drift) -> str:
    if value is None:
        return "na"
    if drift is not None and value >= drift:
        return "drift"
    if warning is not None and value >= warning:
        return "warning"
    return "ok"


def when(text) -> str:
    """An ISO time to the second: `2026-12-05 03:19:42 UTC`."""
    if not text:
        return "n/a"
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return str(text)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo else "")


def describe_baseline(artifacts, version: str, baseline: dict) -> dict:
    """What the champion's baseline is, in words, for the report and the plots'
    legend: the production window a retrained model was fitted to, or its
    training data. Also the champion's holdout macro-F1 (from its manifest)."""
    from shared.models.layout import model_path

    def read(name: str) -> dict:
        try:
            return json.loads(artifacts.read_bytes(model_path(version, name)))
        except Exception:  # noqa: BLE001 -- a missing or unreadable file only loses the description
            return {}

    source = (read("experiment.json").get("data_sources") or {}).get("baseline") or {}
    holdout = (read("manifest.json").get("metrics") or {}).get("macro_f1")
    rows = baseline.get("rows")
    if source.get("window_start"):
        return {"label": "baseline (retraining window)", "holdout_macro_f1": holdout,
                "description": f"the {rows} logged predictions from {when(source['window_start'])} to "
                               f"{when(source.get('window_end'))}, the production window it was retrained on"}
    return {"label": "baseline (training data)", "holdout_macro_f1": holdout,
            "description": f"its training data ({rows} rows)" if rows else "its training data"}


def render_report_html(report: dict, plots: dict[str, bytes]) -> str:
    """The page for `report` (as stored), with `plots` (feature -> PNG bytes) inline."""
    inline = {name: base64.b64encode(png).decode("ascii") for name, png in plots.items()}
    baseline = report.get("baseline_source") or {}
    return _template.render(report=report, t=report["thresholds"], p=report["prediction_drift"], plots=inline,
                            number=_number, fixed=_fixed, measured=_measured, severity=_severity, when=when,
                            feature_name=feature_name, unit=unit, baseline=baseline)
