"""What each console page shows, read from the stores: paged and capped.

Every read here is bounded: metadata lists take a limit, predictions are read
a page at a time up to `SCAN_CAP` rows, and model manifests are read for the
newest `limit` versions only. Documents are read defensively (`.get`): fields
other parts of the loop add later (approvals, outcome history, estimated
performance) show up when present and are simply absent otherwise.
"""

from __future__ import annotations

import json
from collections import Counter

from shared.errors import NotFound, ValidationError
from shared.governance.approvals import list_pending
from shared.models import registry
from shared.models.layout import model_path
from shared.schema import LABELS
from shared.stores.metadata.port import CHAMPION_HISTORY, DRIFT_REPORTS, EXPERIMENTS
from shared.stores.predictions.cursor import encode_cursor

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
SCAN_CAP = 2000  # predictions read at most per page of the predictions view, or per overview
MAX_VERSIONS = 50
MAX_REPORTS = 60
APPROVER_PREFIX = "approval:"  # how change control names the actor of an approved promotion


def champion(artifacts) -> dict | None:
    """The pointer (who switched, when, why) joined with the version's manifest."""
    pointer, _ = registry.read_champion(artifacts)
    if pointer is None:
        return None
    try:
        manifest = _manifest(artifacts, pointer["version"])
    except NotFound:
        manifest = {}
    return {**pointer, "approved_by": approver(pointer), "metrics": manifest.get("metrics") or {},
            "family": (manifest.get("training_parameters") or {}).get("family"),
            "created_at": manifest.get("created_at")}


def _manifest(artifacts, version: str) -> dict:
    return json.loads(artifacts.read_bytes(model_path(version, "manifest.json")))


def experiment_for(version: str, experiments: list[dict]) -> dict | None:
    return next((record for record in experiments if (record.get("winner") or {}).get("version") == version), None)


def pending_approvals(metadata, limit: int = 50) -> list[dict]:
    """Challengers change control holds for a person's `models approve`."""
    return list_pending(metadata, limit)


def approver(switch: dict) -> str | None:
    """Who approved a switch: change control records the actor as `approval:NAME`."""
    actor = str(switch.get("actor") or "")
    return switch.get("approved_by") or (actor[len(APPROVER_PREFIX):] if actor.startswith(APPROVER_PREFIX) else None)


def overview(artifacts, metadata, predictions) -> dict:
    experiments = metadata.list(EXPERIMENTS, 20)
    current = champion(artifacts)
    promoted_by = experiment_for(current["version"], experiments) if current else None
    reports = metadata.list(DRIFT_REPORTS, MAX_REPORTS)
    return {
        "champion": current,
        "promotion": (promoted_by or {}).get("promotion"),
        "run_id": (promoted_by or {}).get("run_id"),
        "pending_approvals": pending_approvals(metadata),
        "latest_report": _report_summary(reports[0]) if reports else None,
        "daily": daily_series(predictions, reports),
    }


def daily_series(predictions, reports: list[dict], scan_cap: int = SCAN_CAP) -> dict:
    """Per UTC day: traffic and labelled share from the newest `scan_cap`
    predictions; realised (and, when reports carry it, estimated) macro-F1
    from the drift reports, by the day their window ends."""
    traffic, labelled = Counter(), Counter()
    rows, cursor = 0, None
    while rows < scan_cap:
        page, cursor = predictions.list_predictions(min(500, scan_cap - rows), cursor)
        for record in page:
            day = record.created_at.date().isoformat()
            traffic[day] += 1
            labelled[day] += record.outcome_label is not None
        rows += len(page)
        if not cursor or not page:
            break
    realised, estimated = {}, {}
    for report in reversed(reports):  # oldest first: the newest report of a day wins
        day = str(report.get("window_end") or report.get("created_at") or "")[:10]
        performance = report.get("performance") or {}
        if day and isinstance(performance.get("macro_f1"), (int, float)):
            realised[day] = performance["macro_f1"]
        estimate = _estimated_macro_f1(report)
        if day and estimate is not None:
            estimated[day] = estimate
    days = sorted(traffic)
    return {
        "days": days, "traffic": [traffic[day] for day in days],
        "labelled_share": [labelled[day] / traffic[day] for day in days],
        "scanned": rows, "capped": bool(cursor) and rows >= scan_cap,
        "performance_days": sorted(set(realised) | set(estimated)),
        "realised": realised, "estimated": estimated,
    }


def _estimated_macro_f1(report: dict) -> float | None:
    """CBPE's estimate, wherever a report version keeps it."""
    for key in ("estimated_performance", "cbpe"):
        value = (report.get(key) or {}).get("macro_f1") if isinstance(report.get(key), dict) else None
        if isinstance(value, (int, float)):
            return value
    return None


def model_history(artifacts, metadata, limit: int = MAX_VERSIONS) -> dict:
    """The newest `limit` versions, each with the gate's decision, and every champion switch."""
    manifests = sorted((path for path in artifacts.list_paths("models/") if path.endswith("/manifest.json")),
                       reverse=True)[:limit]
    experiments = {(record.get("winner") or {}).get("version"): record
                   for record in metadata.list(EXPERIMENTS, 4 * limit)}
    current = champion(artifacts)
    versions = []
    for path in manifests:
        manifest = json.loads(artifacts.read_bytes(path))
        record = experiments.get(manifest["version"]) or {}
        versions.append({"version": manifest["version"], "created_at": manifest.get("created_at"),
                         "family": (manifest.get("training_parameters") or {}).get("family"),
                         "macro_f1": (manifest.get("metrics") or {}).get("macro_f1"),
                         "champion": bool(current) and current["version"] == manifest["version"],
                         "run_id": record.get("run_id"), "actor": record.get("actor"),
                         "promotion": record.get("promotion") or {}})
    switches = [dict(item, rollback=str(item.get("reason") or "").startswith("rollback"), approved_by=approver(item))
                for item in metadata.list(CHAMPION_HISTORY, 4 * limit)]
    return {"champion": current, "versions": versions, "switches": switches}


def experiments(metadata, limit: int = 20) -> list[dict]:
    return metadata.list(EXPERIMENTS, limit)


def drift_reports(metadata, limit: int = MAX_REPORTS) -> list[dict]:
    return [_report_summary(report) for report in metadata.list(DRIFT_REPORTS, limit)]


def _report_summary(report: dict) -> dict:
    performance = report.get("performance") or {}
    return {key: report.get(key) for key in ("report_id", "created_at", "window_start", "window_end", "partition",
                                             "source", "sample_size", "decision", "reasons", "champion_version",
                                             "retrain_request_id")} | {
        "has_page": bool(report.get("html")), "outcomes": performance.get("outcomes"),
        "macro_f1": performance.get("macro_f1"), "estimated_macro_f1": _estimated_macro_f1(report)}


def drift_report_page(artifacts, metadata, report_id: str) -> bytes:
    """The stored report page: found through its metadata, so no path comes from the URL."""
    report = metadata.get(DRIFT_REPORTS, report_id) if _plain_id(report_id) else None
    if report is None or not report.get("html"):
        raise NotFound(f"no drift report {report_id[:100]!r}", field="report_id")
    return artifacts.read_bytes(report["html"])


def _plain_id(text: str) -> bool:
    """Ids as the loop writes them: an ASCII letter or digit first (never `..` or
    Firestore's reserved `__x__`), then letters, digits, `-`, `_` and `.`."""
    return (0 < len(text) <= 100 and text.isascii() and text[0].isalnum()
            and all(character.isalnum() or character in "-_." for character in text))


def parse_page_size(raw: str | None) -> int:
    if raw in (None, ""):
        return PAGE_SIZE
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}", field="limit")
    return int(raw)


def prediction_rows(predictions, *, limit: int = PAGE_SIZE, cursor: str | None = None, label: str | None = None,
                    version: str | None = None, scan_cap: int = SCAN_CAP) -> dict:
    """Newest first, filtered by predicted label and model version, reading at
    most `scan_cap` rows: the next cursor resumes where the scan stopped."""
    if label and label not in LABELS:
        raise ValidationError(f"label must be one of {', '.join(LABELS)}", field="label")
    if version and not _plain_id(version):
        raise ValidationError("version must be a model version id", field="version")
    filtered = bool(label or version)
    rows, scanned = [], 0
    while scanned < scan_cap:
        size = min(min(500, max(5 * limit, 100)) if filtered else limit - len(rows), scan_cap - scanned)
        page, next_cursor = predictions.list_predictions(size, cursor)
        scanned += len(page)
        for position, record in enumerate(page):
            if (not label or record.prediction == label) and (not version or record.model_version == version):
                rows.append(record.to_api())
                if len(rows) == limit:
                    more = position + 1 < len(page) or next_cursor is not None
                    return _rows_page(rows, encode_cursor(record.created_at, record.prediction_id) if more else None,
                                      scanned, label, version, limit)
        cursor = next_cursor
        if not cursor:
            break
    return _rows_page(rows, cursor, scanned, label, version, limit)


def _rows_page(rows: list[dict], cursor: str | None, scanned: int, label, version, limit: int) -> dict:
    return {"rows": rows, "next_cursor": cursor, "scanned": scanned, "label": label, "version": version,
            "limit": limit, "labels": list(LABELS), "outcomes": sum(1 for row in rows if row.get("outcome"))}
