"""A drift report as one self-contained HTML page: the decision and what
decided it, every statistic against its threshold (coloured by severity),
and the plots inline -- written beside `report.json`, openable from a laptop
or a bucket with nothing else, readable at phone width. Jinja2 escapes
every value; what was not measured reads "n/a", never 0."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.schema import FEATURE_RANGES

_environment = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                           autoescape=select_autoescape(default=True, default_for_string=True))
_template = _environment.get_template("drift_report.html")

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
