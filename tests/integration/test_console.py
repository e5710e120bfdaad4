"""The console function through functions-framework, on the real local stores
(and the report page on fake-gcs-server): pages, JSON, filters and paging,
escaping, and the 4xx answers for bad input."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared import wiring
from shared.records import PredictionRecord
from shared.schema import LABELS
from shared.stores.metadata.port import CHAMPION_HISTORY, DRIFT_REPORTS, EXPERIMENTS
from tests.conftest import register_model
from tests.integration.functions_client import client

PAGES = ["/", "/models", "/experiments", "/drift-reports", "/predictions"]
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def console():
    return client("console")


@pytest.fixture
def champion(trained_candidate):
    return register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())


def save_predictions(count: int, versions: tuple[str, ...] = ("v1", "v2")) -> list[PredictionRecord]:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    records = [PredictionRecord(prediction_id=uuid.uuid4().hex, created_at=start + timedelta(minutes=index),
                                temperature=37.0, heart_rate=80.0, blood_pressure=120.0,
                                prediction=LABELS[index % 3], probabilities={LABELS[index % 3]: 0.9},
                                model_version=versions[index % len(versions)]) for index in range(count)]
    wiring.prediction_store().save_predictions(records)
    return records


def test_every_page_opens_as_html_and_as_json(console, champion):
    for path in PAGES:
        page = console.get(path)
        assert page.status_code == 200, path
        assert page.content_type.startswith("text/html")
        assert '<meta name="viewport"' in page.get_data(as_text=True)
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert console.get(path, query_string={"format": "json"}).status_code == 200
    overview = json.loads(console.get("/", query_string={"format": "json"}).data)
    assert overview["champion"]["version"] == champion["version"]
    assert f'data-champion="{champion["version"]}"' in console.get("/").get_data(as_text=True)


def test_every_value_is_escaped(console, champion):
    metadata = wiring.metadata_store()
    metadata.put(CHAMPION_HISTORY, "hostile", {"created_at": "2026-01-01T00:00:00Z", "from_version": HOSTILE,
                                               "to_version": champion["version"], "reason": HOSTILE,
                                               "actor": HOSTILE})
    metadata.put(EXPERIMENTS, "hostile", {"run_id": "hostile", "created_at": "2026-01-01T00:00:00Z",
                                          "actor": HOSTILE, "winner": {"family": HOSTILE, "version": HOSTILE},
                                          "promotion": {"promoted": False, "reasons": [HOSTILE]},
                                          "candidates": [{"family": HOSTILE}], "data_sources": {HOSTILE: {}}})
    metadata.put(DRIFT_REPORTS, "hostile", {"report_id": "hostile", "created_at": "2026-01-01T00:00:00Z",
                                            "decision": HOSTILE, "reasons": [HOSTILE], "sample_size": HOSTILE})
    for path in PAGES:
        text = console.get(path).get_data(as_text=True)
        assert "<script" not in text, path
    assert "&lt;script&gt;" in console.get("/models").get_data(as_text=True)
    assert "&lt;script&gt;" in console.get("/experiments").get_data(as_text=True)


def test_predictions_filter_by_label_and_version_and_page_without_repeats(console):
    records = save_predictions(90)
    wanted = {record.prediction_id for record in records
              if record.prediction == LABELS[1] and record.model_version == "v2"}
    seen, cursor = [], None
    for _ in range(20):
        query = {"format": "json", "label": LABELS[1], "version": "v2", "limit": "4"}
        page = json.loads(console.get("/predictions", query_string=query | ({"cursor": cursor} if cursor else {})).data)
        assert all(row["prediction"] == LABELS[1] and row["model_version"] == "v2" for row in page["rows"])
        seen += [row["prediction_id"] for row in page["rows"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and set(seen) == wanted
    created = [row["created_at"] for row in json.loads(console.get(
        "/predictions", query_string={"format": "json", "limit": "200"}).data)["rows"]]
    assert created == sorted(created, reverse=True) and len(created) == 90


def test_a_page_reads_at_most_its_scan_cap():
    from shared.console.queries import prediction_rows

    save_predictions(60)
    page = prediction_rows(wiring.prediction_store(), label=LABELS[0], version="nowhere", scan_cap=25)
    assert page["rows"] == [] and page["scanned"] == 25 and page["next_cursor"]  # resumable, not a full scan


@pytest.mark.parametrize("query, field", [
    ({"label": "NOT A LABEL"}, "label"), ({"limit": "0"}, "limit"), ({"limit": "abc"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"), ({"version": "../x"}, "version"), ({"format": "xml"}, "format"),
])
def test_bad_input_is_a_4xx_json_error_naming_the_field(console, query, field):
    answer = console.get("/predictions", query_string=query)
    assert answer.status_code == 400 and answer.content_type == "application/json"
    assert json.loads(answer.data)["error"]["field"] == field


@pytest.mark.parametrize("path", ["/nothing", "/drift-reports/missing/report.html", "/drift-reports/../report.html",
                                  "/drift-reports/__x__/report.html", "/drift-reports/%C3%A9t%C3%A9/report.html",
                                  "/drift-reports/..%2F..%2Fmodels/report.html", "/models/extra"])
def test_unknown_pages_are_404(console, path):
    assert console.get(path).status_code == 404
    assert console.get(path, headers={"Accept": "text/html"}).content_type.startswith("text/html")


def test_only_reads_are_answered(console):
    answer = console.post("/", data=b"{}")
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert console.head("/models").status_code == 200


def store_report(report_id: str, page: bytes) -> None:
    artifacts = wiring.artifact_store()
    artifacts.write_bytes(f"reports/drift/{report_id}/report.html", page, "text/html")
    wiring.metadata_store().put(DRIFT_REPORTS, report_id, {
        "report_id": report_id, "created_at": "2026-01-01T00:00:00Z", "decision": "ok", "reasons": [],
        "sample_size": 300, "html": f"reports/drift/{report_id}/report.html"})


def test_a_drift_report_opens_from_the_local_artifact_store(console):
    store_report("20260101T000000Z-local", b"<!doctype html><title>local report</title>")
    listing = console.get("/drift-reports").get_data(as_text=True)
    assert 'href="/drift-reports/20260101T000000Z-local/report.html"' in listing
    page = console.get("/drift-reports/20260101T000000Z-local/report.html")
    assert page.status_code == 200 and b"local report" in page.data


@pytest.mark.emulator
def test_a_drift_report_opens_from_the_emulated_bucket(console, gcs_env):
    store_report("20260101T000000Z-gcs", b"<!doctype html><title>report in the bucket</title>")
    assert wiring.artifact_store().location("reports/drift/x").startswith("gs://")
    page = console.get("/drift-reports/20260101T000000Z-gcs/report.html")
    assert page.status_code == 200 and b"report in the bucket" in page.data


@pytest.mark.emulator
def test_every_page_opens_on_the_emulators(firestore_env, gcs_env, trained_candidate):
    manifest = register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    save_predictions(30)
    store_report("20260101T000000Z-emulated", b"<!doctype html><title>emulated</title>")
    console = client("console")
    for path in PAGES:
        assert console.get(path).status_code == 200, path
    overview = json.loads(console.get("/", query_string={"format": "json"}).data)
    assert overview["champion"]["version"] == manifest["version"] and overview["daily"]["traffic"] == [30]
    rows = json.loads(console.get("/predictions", query_string={"format": "json", "label": LABELS[0]}).data)
    assert len(rows["rows"]) == 10
    assert console.get("/drift-reports/20260101T000000Z-emulated/report.html").status_code == 200
    for reserved in ("__x__", "..", "a" * 101):  # never reaches Firestore as a document id
        assert console.get(f"/drift-reports/{reserved}/report.html").status_code == 404


def test_fields_other_parts_of_the_loop_add_are_shown_when_present(console, champion):
    from shared.governance.approvals import PENDING_APPROVALS

    metadata = wiring.metadata_store()
    metadata.put(DRIFT_REPORTS, "estimated", {
        "report_id": "estimated", "created_at": "2026-01-02T00:00:00Z", "window_end": "2026-01-02T00:00:00Z",
        "decision": "ok", "reasons": [], "sample_size": 300, "performance": {"outcomes": 0, "macro_f1": None},
        "estimated_performance": {"macro_f1": 0.8765}})
    metadata.put(PENDING_APPROVALS, "v9", {"version": "v9", "created_at": "2026-01-02T00:00:00Z", "status": "pending",
                                           "actor": "retrain", "held_because": ["answers changed on 30 %"]})
    metadata.put(CHAMPION_HISTORY, "approved", {"created_at": "2026-01-03T00:00:00Z", "from_version": "v1",
                                                "to_version": "v8", "reason": "approved", "actor": "approval:Ana Ruiz"})
    overview = console.get("/").get_data(as_text=True)
    assert "estimated 0.8765" in overview and "<code>v9</code>" in overview and "answers changed on 30 %" in overview
    assert '<td data-label="approved by">Ana Ruiz</td>' in console.get("/models").get_data(as_text=True)
    assert "0.8765" in console.get("/drift-reports").get_data(as_text=True)
    daily = json.loads(console.get("/", query_string={"format": "json"}).data)["daily"]
    assert daily["estimated"] == {"2026-01-02": 0.8765} and daily["realised"] == {}


def test_an_excused_recall_loss_is_shown_with_both_views(console):
    """Review 20.6: the operator sees why a challenger that lost recall on every row still won."""
    metadata = wiring.metadata_store()
    metadata.put(EXPERIMENTS, "excused", {
        "run_id": "excused", "created_at": "2026-01-02T00:00:00Z", "winner": {"family": "xgboost", "version": "v9"},
        "promotion": {"promoted": True, "reasons": [], "recall_excused": {"ENFERMEDAD LEVE": {
            "all_rows": {"support": 349, "champion_rows": 338, "challenger_rows": 287, "p_value": 6e-15},
            "since_rows": {"support": 23, "champion_rows": 23, "challenger_rows": 22, "p_value": 0.5,
                           "loss_upper_bound": 0.0435}}}}})
    text = console.get("/experiments").get_data(as_text=True)
    assert "Recall loss excused by the rows since a change" in text
    assert "<td data-label=\"every row\">287 vs 338 of 349</td>" in text
    assert "<td data-label=\"rows since the change\">22 vs 23 of 23</td>" in text and ">0.0435<" in text


def test_a_refused_recall_loss_is_shown_with_both_views(console):
    """An operator sees why the served model is still the one it is (the loop's night-12 refusals)."""
    wiring.metadata_store().put(EXPERIMENTS, "refused", {
        "run_id": "refused", "created_at": "2026-01-02T00:00:00Z", "winner": {"family": "xgboost", "version": "v9"},
        "promotion": {"promoted": False, "reasons": [], "recall_refused": {
            "ENFERMEDAD LEVE": {"all_rows": {"support": 352, "champion_rows": 340, "challenger_rows": 290},
                                "since_rows": {"support": 20, "champion_rows": 20, "challenger_rows": 17,
                                               "loss_upper_bound": 0.15}},
            "ENFERMEDAD AGUDA": {"all_rows": {"support": 90, "champion_rows": 80, "challenger_rows": 60},
                                 "since_rows": None},
            "TERMINAL": {"all_rows": {"support": 40, "champion_rows": 38, "challenger_rows": 30},
                         "since_rows": {"support": 24, "judged": False, "why": "the rare class"}},
            "ENFERMEDAD GRAVE": {"all_rows": {"support": 40, "champion_rows": 38, "challenger_rows": 30},
                                 "since_rows": {"support": 3, "judged": False, "why": "fewer than 5 rows since"}},
            "ENFERMEDAD CRÓNICA": {"all_rows": {"support": 90, "champion_rows": 80, "challenger_rows": 60},
                                   "since_rows": {"support": 119, "champion_rows": 115, "challenger_rows": 100,
                                                  "loss_upper_bound": 0.2,
                                                  "rows_by_source": {"holdout": 20, "cross_fitted": 99}}}}}})
    text = console.get("/experiments").get_data(as_text=True)
    assert "Recall loss that refused the challenger" in text and "excused by the rows" not in text
    assert "<td data-label=\"rows since the change\">17 vs 20 of 20</td>" in text and ">0.15<" in text
    # the evidence's sources, when rows were cross-fitted (training.cross_fitting)
    assert "100 vs 115 of 119 (20 held out, 99 cross-fitted)</td>" in text
    assert "<td data-label=\"every row\">60 vs 80 of 90</td><td data-label=\"rows since the change\">not asked" in text
    # review 20.R1: the rare class is "not judged", never "0 vs 0"; a view not asked says why
    assert "30 vs 38 of 40</td><td data-label=\"rows since the change\">not judged (the rare class: 24 rows)" in text
    assert "not asked (fewer than 5 rows since: 3 rows)" in text and "0 vs 0" not in text
