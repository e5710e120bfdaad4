"""Clinical ingestion against a real PostgreSQL 15, reference ingestion
against a local HTTP server with recorded responses, and training and drift
on the lake."""

import io
import json
import threading
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import psycopg
import pytest

from shared import wiring
from shared.errors import IngestionConfigError, ReferenceDataInvalid, ServiceUnavailable
from shared.ingestion import lake
from shared.ingestion.clinical import SourceMapping, ingest_clinical
from shared.ingestion.deidentification import OUTPUT_COLUMNS, pseudonymize
from shared.ingestion.public_dataset import ingest_reference
from shared.training.synthetic_data import generate_reference_data

pytestmark = pytest.mark.emulator
KEY = b"test-key-1"
DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)

SCHEMA = """
DROP TABLE IF EXISTS clinical_records;
CREATE TABLE clinical_records (
    id BIGSERIAL PRIMARY KEY, patient_id TEXT, patient_name TEXT, document_number TEXT, phone TEXT, email TEXT,
    address TEXT, recorded_at TIMESTAMPTZ, temperature TEXT, temperature_unit TEXT, heart_rate TEXT,
    blood_pressure TEXT, diagnosis TEXT, notes TEXT)
"""
INSERT = ("INSERT INTO clinical_records (patient_id, patient_name, document_number, phone, email, address, "
          "recorded_at, temperature, temperature_unit, heart_rate, blood_pressure, diagnosis, notes) "
          "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def identity(index: int) -> dict:
    return {"patient_id": f"PAC-{index % 40:04d}", "patient_name": f"Paciente Nombre{index % 40} Apellido",
            "document_number": f"{10000000 + index % 40}Z", "phone": f"+34 600 {index % 40:03d} 111",
            "email": f"paciente{index % 40}@hospital.example", "address": f"Calle Falsa {index % 40}, Madrid"}


def seed(url: str, good: int, start_index: int = 0, bad: bool = True, day: date = DAY1) -> dict:
    """Insert `good` clean rows recorded on `day` (some in °F, labels in variant
    spellings) and, with `bad`, one seeded case of each defect. Returns what to expect."""
    X, y = generate_reference_data(good, seed=start_index + 1)
    variants = {"ENFERMEDAD CRÓNICA": "enfermedad cronica", "ENFERMEDAD LEVE": "Leve"}
    rows, expected_reasons = [], Counter()
    base = datetime(day.year, day.month, day.day, 8, 30, tzinfo=timezone.utc) - timedelta(seconds=start_index)
    for offset, (vitals, label) in enumerate(zip(X.tolist(), y)):
        index = start_index + offset
        temperature, unit = (round(vitals[0] * 9 / 5 + 32, 1), "F") if index % 10 == 0 else (vitals[0], "C")
        note = f"nota: {identity(index)['patient_name']}"
        rows.append((*identity(index).values(), base + timedelta(seconds=index), str(temperature), unit,
                     str(vitals[1]), str(vitals[2]), variants.get(label, label), note))
    if bad:
        defects = [
            ("missing:temperature", {"temperature": None}), ("missing:heart_rate", {"heart_rate": ""}),
            ("not_a_number:blood_pressure", {"blood_pressure": "ciento veinte"}),
            ("out_of_range:blood_pressure", {"blood_pressure": "400"}),
            ("out_of_range:heart_rate", {"heart_rate": "5"}),
            ("out_of_range:temperature", {"temperature": "120", "unit": "F"}),  # 48.9 °C
            ("unknown_label", {"diagnosis": "gripe"}),
        ]
        for number, (reason, change) in enumerate(defects):
            index = start_index + good + number
            row = [*identity(index).values(), base + timedelta(seconds=index), change.get("temperature", "37.0"),
                   change.get("unit", "C"), change.get("heart_rate", "80"), change.get("blood_pressure", "120"),
                   change.get("diagnosis", "NO ENFERMO"), "nota"]
            rows.append(tuple(row))
            expected_reasons[reason] += 1
        rows.append(rows[0])  # an exact duplicate of the first clean row of this batch
        rows.append(rows[1])
        expected_reasons["duplicate"] += 2
    with psycopg.connect(url) as connection:
        connection.cursor().executemany(INSERT, rows)
    return {"clean": good, "reasons": expected_reasons}


@pytest.fixture
def database(postgres_server):
    with psycopg.connect(postgres_server.url) as connection:
        connection.execute(SCHEMA)
    return postgres_server.url


def run(url, day, key=KEY, chunk_rows=64, artifacts=None):
    return ingest_clinical(database_url=url, mapping=SourceMapping(), key=key,
                           artifacts=artifacts or wiring.artifact_store(), metadata=wiring.metadata_store(),
                           ingestion_date=day, chunk_rows=chunk_rows)


def lake_frame(root: str, day: date) -> pl.DataFrame:
    frames = list(lake.iter_partition_frames(wiring.artifact_store(), day, root))
    return pl.concat(frames) if frames else pl.DataFrame()


def test_clean_rows_quarantine_and_no_identifier_survives(database):
    expected = seed(database, good=150)
    summary = run(database, DAY1)
    clean = lake_frame(lake.CLINICAL, DAY1)
    quarantine = lake_frame(lake.QUARANTINE, DAY1)
    assert summary["rows_read"] == 150 + 7 + 2
    assert clean.height == summary["rows_written"] == expected["clean"]
    assert clean.columns == OUTPUT_COLUMNS
    assert summary["parts"] == 3  # 159 rows in chunks of 64
    assert Counter(quarantine.get_column("reason").to_list()) == expected["reasons"]
    assert summary["quarantined_by_reason"] == dict(expected["reasons"])
    fahrenheit = clean.filter(pl.col("temperature") < 30)
    assert fahrenheit.height == 0  # every °F row was converted
    assert set(clean.get_column("label").to_list()) <= {"NO ENFERMO", "ENFERMEDAD LEVE", "ENFERMEDAD AGUDA",
                                                         "ENFERMEDAD CRÓNICA", "ENFERMEDAD TERMINAL"}
    assert clean.get_column("recorded_date").dtype == pl.Date
    store = wiring.artifact_store()
    raw = b"".join(store.read_bytes(path) for path in store.list_paths("lake/"))
    decoded = "".join(json.dumps(lake.read_frame(store, path).to_dicts(), default=str)
                      for path in store.list_paths("lake/") if path.endswith(".parquet"))
    decoded += json.dumps(wiring.metadata_store().list("ingestion_runs"))
    for index in range(40):
        for value in identity(index).values():
            assert value not in decoded and value.encode() not in raw, value
    assert "nota" not in decoded


def test_pseudonyms_link_across_runs_only_with_the_same_key(database):
    seed(database, good=30, bad=False)
    run(database, DAY1)
    first = lake_frame(lake.CLINICAL, DAY1).get_column("patient_pseudonym").to_list()
    run(database, DAY1)  # a re-run of the day, same key
    assert lake_frame(lake.CLINICAL, DAY1).get_column("patient_pseudonym").to_list() == first
    assert first[0] == pseudonymize("PAC-0000", KEY)
    run(database, DAY1, key=b"another-key")
    other = lake_frame(lake.CLINICAL, DAY1).get_column("patient_pseudonym").to_list()
    assert other != first and len(set(first) & set(other)) == 0


DAY3 = date(2026, 11, 22)


def committed_objects_only(day: date) -> bool:
    store = wiring.artifact_store()
    commit = lake.read_commit(store, day)
    present = {path for root in (lake.CLINICAL, lake.QUARANTINE)
               for path in store.list_paths(lake.partition_prefix(root, day))}
    return present == {lake.commit_path(day), *commit["parts"], *commit["quarantine_parts"]}


def test_any_day_in_any_order_yields_exactly_that_days_rows_once(database):
    expected = {DAY1: seed(database, 40, bad=False, day=DAY1)["clean"],
                DAY2: seed(database, 25, start_index=1000, bad=False, day=DAY2)["clean"],
                DAY3: seed(database, 10, start_index=2000, bad=False, day=DAY3)["clean"]}
    for day in (DAY2, DAY1, DAY3, DAY1, DAY2, DAY2):
        summary = run(database, day, chunk_rows=16)
        assert summary["rows_read"] == expected[day]
    for day, rows in expected.items():
        frame = lake_frame(lake.CLINICAL, day)
        assert frame.height == rows
        assert set(frame.get_column("recorded_date").to_list()) == {day}
        assert frame.unique().height == rows  # once
        assert committed_objects_only(day)
    assert lake.partition_dates(wiring.artifact_store()) == [DAY1, DAY2, DAY3]
    seed(database, 3, start_index=500, bad=False, day=DAY1)  # recorded on day 1, arrived late
    assert run(database, DAY1)["rows_read"] == 43
    assert lake_frame(lake.CLINICAL, DAY1).height == 43 and lake_frame(lake.CLINICAL, DAY2).height == 25


class CrashingStore:
    """The real local store, dying at the n-th write or delete: a process killed mid-ingestion."""

    def __init__(self, store, writes_before_crash: int | None = None, crash_on_delete: bool = False):
        self.store, self.writes_left, self.crash_on_delete = store, writes_before_crash, crash_on_delete

    def write_bytes(self, path, data, content_type="application/octet-stream"):
        if self.writes_left is not None:
            if self.writes_left == 0:
                raise RuntimeError(f"crash before writing {path}")
            self.writes_left -= 1
        return self.store.write_bytes(path, data, content_type)

    def delete(self, path):
        if self.crash_on_delete:
            raise RuntimeError(f"crash before deleting {path}")
        return self.store.delete(path)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_crash_at_any_point_leaves_the_previous_or_the_complete_new_partition(database):
    seed(database, 100, bad=False, day=DAY1)
    run(database, DAY1, chunk_rows=32)
    before = lake_frame(lake.CLINICAL, DAY1).sort(OUTPUT_COLUMNS)
    seed(database, 30, start_index=1000, day=DAY1)  # more rows, and some to quarantine
    store = wiring.artifact_store()
    for writes in range(0, 6):  # 130+ rows in chunks of 32: dies while staging, before the commit
        with pytest.raises(RuntimeError):
            run(database, DAY1, chunk_rows=32, artifacts=CrashingStore(store, writes_before_crash=writes))
        assert lake_frame(lake.CLINICAL, DAY1).sort(OUTPUT_COLUMNS).equals(before)
    with pytest.raises(RuntimeError):  # died after the commit, while removing the old parts
        run(database, DAY1, chunk_rows=32, artifacts=CrashingStore(store, crash_on_delete=True))
    after = lake_frame(lake.CLINICAL, DAY1)
    assert after.height == 130 and after.unique().height == 130
    assert not committed_objects_only(DAY1)  # orphans are there, but nobody reads them
    with pytest.raises(RuntimeError):  # a day never ingested before: no partition at all
        run(database, DAY2, artifacts=CrashingStore(store, writes_before_crash=0))
    assert lake.partition_dates(store) == [DAY1]
    assert run(database, DAY1, chunk_rows=32)["rows_written"] == 130
    assert committed_objects_only(DAY1)


def test_training_and_drift_from_the_lake(database, quick_training_env):
    from shared.event_bus.messages import BusMessage
    from shared.monitoring.drift_check import run_partition_drift_check
    from shared.training.retrain_handler import handle_retrain_message

    today = datetime.now(timezone.utc).date()
    seed(database, good=300, bad=False, day=today)
    run(database, today)
    dependencies = wiring.retrain_dependencies()
    result = handle_retrain_message(BusMessage({"reason": "manual", "requested_by": "ops"}, {}, "lake-1",
                                               datetime.now(timezone.utc)), **dependencies)
    assert result["status"] == "launched"
    dependencies["launcher"].wait_all(timeout=300)  # the job runs as a subprocess: wait for its result
    record = dependencies["metadata"].list("experiments")[0]
    sources = record["data_sources"]
    assert sources["lake"]["rows"] == 300 and sources["lake"]["partitions"] == [today.isoformat()]
    assert record["data_fingerprint"]["rows"] == 300 + sources["reference"]["rows"]
    drift = wiring.drift_check_dependencies()

    def check_partition():
        return run_partition_drift_check(artifacts=drift["artifacts"], metadata=drift["metadata"],
                                         bus=drift["bus"], settings=drift["settings"])

    report = check_partition()
    assert report["sample_size"] == 300 and report["source"] == "lake"
    # the champion was trained on this partition's labels: no new evidence about it, none judged again
    assert report["performance"]["outcomes"] == 0
    assert report["learnt_outcomes"]["left_out"] == 300 and "trained on them" in report["learnt_outcomes"]["basis"]
    # the report id follows the partition's content: same rows, same id; new rows, a new report
    run(database, today)
    assert check_partition()["report_id"] == report["report_id"]
    seed(database, good=20, start_index=5000, bad=False, day=today)
    run(database, today)
    again = check_partition()
    assert again["report_id"] != report["report_id"] and again["sample_size"] == 320
    # the next day's labels are new evidence: judged
    tomorrow = today + timedelta(days=1)
    seed(database, good=300, start_index=9000, bad=False, day=tomorrow)
    run(database, tomorrow)
    judged = check_partition()
    assert judged["performance"]["outcomes"] == 300 and judged["performance"]["macro_f1"] > 0.5


class RecordedResponses(BaseHTTPRequestHandler):
    """Serves the queued (status, body) pairs in order; loopback only."""

    queue: list = []

    def do_GET(self):  # noqa: N802 -- the stdlib's name
        status, body = self.queue.pop(0) if self.queue else (500, b"{}")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def gho_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedResponses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    RecordedResponses.queue = []
    yield RecordedResponses.queue, f"http://127.0.0.1:{server.server_port}/api/WHOSIS_000001"
    server.shutdown()


GHO = json.dumps({"@odata.context": "https://ghoapi.azureedge.net/api/$metadata#WHOSIS_000001", "value": [
    {"Id": 1, "IndicatorCode": "WHOSIS_000001", "SpatialDimType": "COUNTRY", "SpatialDim": "ESP", "TimeDim": 2019,
     "Dim1": "SEX_BTSX", "NumericValue": 83.2, "Value": "83.2"},
    {"Id": 2, "IndicatorCode": "WHOSIS_000001", "SpatialDimType": "COUNTRY", "SpatialDim": "PRT", "TimeDim": 2019,
     "Dim1": "SEX_BTSX", "NumericValue": 81.1, "Value": "81.1"},
    {"Id": 3, "IndicatorCode": "WHOSIS_000001", "SpatialDimType": "COUNTRY", "SpatialDim": "XXX", "TimeDim": 2019,
     "Dim1": "SEX_BTSX", "NumericValue": None, "Value": ""},
]}).encode()


def reference(url):
    return ingest_reference(url=url, name="who", artifacts=wiring.artifact_store(),
                            metadata=wiring.metadata_store(), backoff_seconds=0.01)


def test_reference_data_is_stored_after_retries_and_kept_on_failure(gho_server):
    queue, url = gho_server
    queue.extend([(503, b"busy"), (500, b"oops"), (200, GHO)])
    summary = reference(url)
    assert summary["rows"] == 3 and queue == []
    stored = lake.read_frame(wiring.artifact_store(), "lake/reference/who/data.parquet")
    assert stored.get_column("spatial_dim").to_list() == ["ESP", "PRT", "XXX"]
    before = wiring.artifact_store().read_bytes("lake/reference/who/data.parquet")
    queue.extend([(500, b"")] * 4)
    with pytest.raises(ServiceUnavailable):
        reference(url)
    queue.append((200, json.dumps({"value": [{"IndicatorCode": "X"}]}).encode()))
    with pytest.raises(ReferenceDataInvalid):
        reference(url)
    assert wiring.artifact_store().read_bytes("lake/reference/who/data.parquet") == before
    assert pl.read_parquet(io.BytesIO(before)).height == 3


HOSPITAL_SCHEMA = """
DROP SCHEMA IF EXISTS hospital CASCADE;
CREATE SCHEMA hospital;
CREATE TABLE hospital.visits (
    visit_id BIGSERIAL PRIMARY KEY, pid TEXT, full_name TEXT, taken_at TIMESTAMPTZ, temp_c NUMERIC, pulse INTEGER,
    bp_sys INTEGER, dx TEXT)
"""
HOSPITAL_MAP = {"id": "visit_id", "patient_id": "pid", "recorded_at": "taken_at", "temperature": "temp_c",
                "temperature_unit": None, "heart_rate": "pulse", "blood_pressure": "bp_sys", "diagnosis": "dx"}


def ingest_event(data: dict):
    from tests.integration.events import post_event, pubsub_cloud_event
    from tests.integration.functions_client import client

    return post_event(client("ingest_clinical", "cloudevent"), pubsub_cloud_event(data))


def test_ingest_clinical_entry_point_reads_a_mapped_table(database):
    import os

    with psycopg.connect(database) as connection:
        connection.execute(HOSPITAL_SCHEMA)
        connection.cursor().executemany(
            "INSERT INTO hospital.visits (pid, full_name, taken_at, temp_c, pulse, bp_sys, dx)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(f"H-{i}", f"Nombre Secreto {i}", datetime(2026, 11, 20, 9, tzinfo=timezone.utc) + timedelta(minutes=i),
              36.5 + i / 100, 70 + i, 120, "Leve" if i % 2 else "sano") for i in range(30)])
    os.environ.update({"CLINICAL_DATABASE_URL": database, "PSEUDONYM_KEY": "k", "INGEST_TABLE": "hospital.visits",
                       "INGEST_COLUMN_MAP": json.dumps(HOSPITAL_MAP)})
    wiring.reset()
    assert ingest_event({"date": DAY1.isoformat()}).status_code == 200
    frame = lake_frame(lake.CLINICAL, DAY1)
    assert frame.height == 30 and frame.columns == OUTPUT_COLUMNS
    assert sorted(set(frame.get_column("label").to_list())) == ["ENFERMEDAD LEVE", "NO ENFERMO"]
    assert frame.get_column("patient_pseudonym").to_list()[0] == pseudonymize("H-0", b"k")
    assert "Nombre" not in json.dumps(frame.to_dicts(), default=str)
    # a map naming an unknown column key is refused before anything is read or written
    os.environ["INGEST_COLUMN_MAP"] = json.dumps(dict(HOSPITAL_MAP, pulse_rate="pulse"))
    wiring.reset()
    assert ingest_event({"date": DAY2.isoformat()}).status_code == 500
    assert lake.partition_dates(wiring.artifact_store()) == [DAY1]
    os.environ["INGEST_COLUMN_MAP"] = json.dumps(dict(HOSPITAL_MAP, heart_rate=None))
    with pytest.raises(IngestionConfigError, match="heart_rate") as refused:
        SourceMapping.from_settings("hospital.visits", os.environ["INGEST_COLUMN_MAP"])
    assert refused.value.field == "INGEST_COLUMN_MAP"
    with pytest.raises(IngestionConfigError, match="JSON object"):
        SourceMapping.from_settings("t", "[1, 2]")


def test_ingest_reference_entry_point_stores_a_valid_download_only(gho_server):
    import os

    from tests.integration.events import post_event, pubsub_cloud_event
    from tests.integration.functions_client import client

    queue, url = gho_server
    os.environ.update({"REFERENCE_DATA_URL": url, "REFERENCE_DATA_NAME": "who"})
    wiring.reset()
    queue.append((200, GHO))
    function = client("ingest_reference", "cloudevent")
    assert post_event(function, pubsub_cloud_event({})).status_code == 200
    stored = wiring.artifact_store().read_bytes("lake/reference/who/data.parquet")
    assert pl.read_parquet(io.BytesIO(stored)).height == 3
    queue.append((200, json.dumps({"value": [{"IndicatorCode": "X"}]}).encode()))
    assert post_event(function, pubsub_cloud_event({})).status_code == 200  # refused, acknowledged
    assert wiring.artifact_store().read_bytes("lake/reference/who/data.parquet") == stored


def test_ingest_reference_on_a_read_only_lake_answers_503_for_a_redelivery(gho_server):
    """A store that cannot be written (read-only or full) is a fault a retry can get past: 503, never 500."""
    import errno
    import os

    from functions_framework import create_app

    from functions.http_adapter import answer_framework_errors_as_json
    from shared.stores.artifacts.local import LocalArtifactStore
    from tests.integration.events import post_event, pubsub_cloud_event
    from tests.integration.functions_client import SOURCE

    class ReadOnlyLake(LocalArtifactStore):
        def write_bytes(self, path, data, content_type="application/octet-stream"):
            raise OSError(errno.EROFS, "Read-only file system")

    queue, url = gho_server
    os.environ.update({"REFERENCE_DATA_URL": url, "REFERENCE_DATA_NAME": "who"})
    wiring.reset()
    wiring.override("artifact_store", ReadOnlyLake(wiring.settings().local_path / "artifacts"))
    queue.append((200, GHO))
    function = answer_framework_errors_as_json(create_app("ingest_reference", SOURCE, "cloudevent")).test_client()
    response = post_event(function, pubsub_cloud_event({}))
    assert response.status_code == 503 and response.is_json and "retry later" in response.get_json()["error"]["message"]
