"""The console's pages: which query feeds which template, and the rendering.

`render_page(name, path, query, stores)` answers one request path with
(status, content type, body); the HTTP entry point only parses and maps
errors. Each page is also available as JSON (`?format=json`): the same data
the template gets.
"""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.console import charts, queries
from shared.errors import NotFound, ValidationError
from shared.monitoring.report_html import when  # one time format on every page

_environment: Environment | None = None


def environment() -> Environment:
    """Built once per instance: the templates are parsed on first use."""
    global _environment
    if _environment is None:
        built = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                            autoescape=select_autoescape(default=True, default_for_string=True))
        built.filters["when"] = when
        built.filters["num"] = number
        built.filters["percent"] = percent
        _environment = built
    return _environment


def number(value, digits: int = 4) -> str:
    """n/a for what was not measured; never a Python `None`."""
    if value is None or value == "":
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


PAGES = ("overview", "models", "experiments", "drift-reports", "predictions")


def route(path: str) -> tuple[str, str | None]:
    """(page, argument) for a request path; NotFound for anything else."""
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts:
        return "overview", None
    if len(parts) == 1 and parts[0] in PAGES:
        return parts[0], None
    if len(parts) == 3 and parts[0] == "drift-reports" and parts[2] == "report.html":
        return "drift-report", parts[1]
    raise NotFound(f"no console page at /{path.strip('/')[:200]}", field="path")


def page_data(page: str, argument: str | None, query: dict[str, str], *, artifacts, metadata, predictions) -> dict:
    if page == "overview":
        return queries.overview(artifacts, metadata, predictions)
    if page == "models":
        return queries.model_history(artifacts, metadata)
    if page == "experiments":
        return {"experiments": queries.experiments(metadata)}
    if page == "drift-reports":
        return {"reports": queries.drift_reports(metadata)}
    if page == "predictions":
        return queries.prediction_rows(predictions, limit=queries.parse_page_size(query.get("limit")),
                                       cursor=query.get("cursor") or None, label=query.get("label") or None,
                                       version=query.get("version") or None)
    raise NotFound(f"no console page {page!r}", field="path")


def render_page(path: str, query: dict[str, str], *, root: str, artifacts, metadata, predictions
                ) -> tuple[int, str, bytes]:
    """Answer one GET: (status, content type, body)."""
    output = query.get("format") or "html"
    if output not in ("html", "json"):
        raise ValidationError("format must be html or json", field="format")
    page, argument = route(path)
    if page == "drift-report":
        return 200, "text/html; charset=utf-8", queries.drift_report_page(artifacts, metadata, argument)
    data = page_data(page, argument, query, artifacts=artifacts, metadata=metadata, predictions=predictions)
    if output == "json":
        return 200, "application/json", json.dumps(data, ensure_ascii=False, default=str).encode()
    template = environment().get_template(f"{page}.html")
    body = template.render(data=data, root=root, page=page, charts=_charts(page, data), query=query)
    return 200, "text/html; charset=utf-8", body.encode()


def _charts(page: str, data: dict) -> list:
    if page != "overview":
        return []
    daily = data["daily"]
    performance = {"realised (outcomes)": daily["realised"]}  # short: legends sit side by side
    if daily["estimated"]:
        performance["estimated (CBPE)"] = daily["estimated"]
    return [
        charts.bar_chart("Predictions per day", daily["days"], daily["traffic"], "predictions"),
        charts.line_chart("Share of predictions with an outcome, per day", daily["days"],
                          {"labelled share": dict(zip(daily["days"], daily["labelled_share"]))}, "share"),
        charts.line_chart("Performance per day (drift checks)", daily["performance_days"], performance,
                          "macro-F1"),
    ]


def render_error(status: int, message: str, *, root: str) -> bytes:
    return environment().get_template("error.html").render(status=status, message=message, root=root,
                                                           page="error", data={}).encode()
