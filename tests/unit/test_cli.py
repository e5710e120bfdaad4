import csv
import json
from pathlib import Path

import pytest

from shared import wiring
from shared.models import registry
from shared.training.synthetic_data import generate_reference_data
from tests.conftest import register_model
from tools.cli import main

COMMANDS = {"bootstrap": [], "train": [], "models": ["list", "promote", "rollback", "history", "pending", "approve",
                                                    "reject"],
            "labellers": ["list", "quarantine", "lift", "agreement"], "trusted-set": ["show", "upload"],
            "experiments": ["list"], "drift-check": [], "drift-reports": ["list"], "drift-demo": [],
            "topics": ["create"], "ingest-clinical": [], "ingest-reference": [],
            "upgrade-prediction-log": []}


def write_csv(path, X, y):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["temperature", "heart_rate", "blood_pressure", "label"])
        writer.writerows([*row, label] for row, label in zip(X.tolist(), y))


@pytest.mark.slow
def test_train_from_csv_then_list_promote_rollback(tmp_path, capsys):
    X, y = generate_reference_data(1500, seed=2)
    data = tmp_path / "train.csv"
    write_csv(data, X, y)
    assert main(["train", "--data", str(data), "--families", "xgboost", "--budget", "0"]) == 0
    assert main(["train", "--data", str(data), "--families", "random_forest", "--budget", "0"]) == 0
    versions = [m["version"] for m in registry.list_versions(wiring.artifact_store())]
    assert len(versions) == 2
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(version in listing for version in versions)
    assert sum(line.startswith("*") for line in listing.splitlines()) == 1
    champion = registry.read_champion(wiring.artifact_store())[0]["version"]
    other = next(version for version in versions if version != champion)
    assert main(["models", "promote", champion]) == 2  # promoting the champion is a refused no-op
    assert main(["models", "promote", other]) == 0
    capsys.readouterr()
    assert main(["models", "rollback"]) == 0
    assert "MODEL_REFRESH_SECONDS (30 s)" in capsys.readouterr().out  # /predict may lag: say so
    assert registry.read_champion(wiring.artifact_store())[0]["version"] == champion
    assert main(["experiments", "list"]) == 0
    assert capsys.readouterr().out.count("winner=") == 2


@pytest.mark.parametrize("rows, message", [
    ([], "lacks the column"),
    ([[36.6, 70, 120, "NO ENFERMO"]] * 20, "two classes"),
])
def test_train_refuses_unusable_files(tmp_path, capsys, rows, message):
    data = tmp_path / "bad.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        if rows:
            writer.writerow(["temperature", "heart_rate", "blood_pressure", "label"])
        writer.writerows(rows)
    assert main(["train", "--data", str(data)]) == 2
    assert message in capsys.readouterr().err


def test_unknown_version_and_missing_file_are_clear_errors(tmp_path, capsys):
    assert main(["models", "promote", "nope"]) == 2
    assert "unknown model version" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_top_level_help_tells_a_newcomer_how_to_run_it(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "usage: .venv/bin/python -m tools.cli" in out and "Command line:" not in out
    assert all(command in out for command in COMMANDS) and "--json" in out


@pytest.mark.parametrize("words", [[command] for command in COMMANDS]
                         + [[command, action] for command, actions in COMMANDS.items() for action in actions])
def test_every_command_and_action_has_its_own_help(capsys, words):
    with pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert out.startswith(f"usage: .venv/bin/python -m tools.cli {' '.join(words)}")
    description = out.split("\n\n")[1].strip()
    assert description and not description.startswith("options")
    assert "--json" in out


def test_a_missing_action_is_said_in_the_tools_own_words(capsys):
    assert_exit(["models"], 2)
    err = capsys.readouterr().err
    assert "models needs an action: list, promote, rollback, history" in err and "models_command" not in err
    assert "tools.cli models --help" in err


@pytest.mark.parametrize("value", ["-1", "0", "1001", "ten", "1.5"])
def test_limit_is_a_whole_number_in_range(capsys, value):
    assert_exit(["experiments", "list", "--limit", value], 2)
    assert "from 1 to 1000" in capsys.readouterr().err


def assert_exit(argv, code):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == code


def test_json_before_or_after_the_command_and_text_otherwise(capsys):
    for argv in (["--json", "experiments", "list"], ["experiments", "list", "--json"]):
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out) == []
    assert main(["experiments", "list"]) == 0
    assert capsys.readouterr().out == "no training runs yet\n"


def test_drift_check_prints_a_report_page_a_person_can_open(trained_candidate, capsys):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    window = ["--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z"]
    assert main(["drift-check", *window]) == 0
    out = capsys.readouterr().out
    assert "insufficient_data" in out
    page = Path(out.split("open the report: ")[1].splitlines()[0].strip())
    report_id = page.parent.name
    assert f"/console/drift-reports/{report_id}/report.html" in out  # opens in emulator mode too
    assert page.is_absolute() and page.name == "report.html"
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert (page.parent / "report.json").is_file()
    assert main(["drift-check", *window, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["html"] == str(page) and all(Path(path).is_file() for path in summary["plots"].values())
    assert main(["drift-reports", "list"]) == 0
    assert str(page) in capsys.readouterr().out



def test_an_empty_lake_is_a_plain_error_with_status_2(capfd):
    assert main(["drift-check", "--lake-partition", "latest"]) == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: no clinical partition") and "Traceback" not in captured.err


def test_a_bad_partition_date_is_a_plain_error_with_status_2(capfd):
    assert main(["drift-check", "--lake-partition", "yesterday-ish"]) == 2
    captured = capfd.readouterr()
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err


def test_while_a_command_runs_stdout_carries_nothing_but_its_result(capfd):
    import subprocess
    import sys

    from tools.cli import _stdout_to_stderr

    with _stdout_to_stderr():
        print("a stray print")
        subprocess.run([sys.executable, "-c", "print('{\"status\": \"trained\"}')"], check=True)
    print("the result")
    captured = capfd.readouterr()
    assert captured.out == "the result\n"
    assert "a stray print" in captured.err and '{"status": "trained"}' in captured.err


def test_experiments_list_says_why_the_gate_decided(capsys):
    from shared.stores.metadata.port import EXPERIMENTS

    wiring.metadata_store().put(EXPERIMENTS, "run-1", {
        "run_id": "run-1", "created_at": "2026-01-01T00:00:00.123456+00:00", "actor": "cli",
        "winner": {"family": "xgboost", "version": "v2"},
        "promotion": {"promote": False, "promoted": False, "notes": ["kept the champion"],
                      "reasons": ["macro-F1 0.80 is below the bar 0.90 from v1"]}})
    assert main(["experiments", "list"]) == 0
    out = capsys.readouterr().out
    assert "2026-01-01 00:00:00 UTC  run-1" in out and "promoted=no" in out
    assert "gate: macro-F1 0.80 is below the bar 0.90 from v1" in out and "note: kept the champion" in out


def test_the_demo_without_a_server_says_so_with_status_2(capfd):
    from tests.emulators import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["drift-demo", "--url", url]) == 2
    captured = capfd.readouterr()
    assert f"error: no server answers at {url}" in captured.err and "Traceback" not in captured.err


def test_an_operators_retrain_is_sent_as_the_retrain_schema_wants(capsys):
    from shared.stores.metadata.port import TRAINING_REQUESTS

    class Recording:
        launched = []

        def launch(self, request_id):
            self.launched.append(request_id)
            return "recorded"

    launcher = Recording()
    wiring.override("training_launcher", launcher)
    assert main(["retrain", "--requested-by", "ops.lead"]) == 0
    [key] = launcher.launched
    stored = wiring.metadata_store().get(TRAINING_REQUESTS, key)
    assert stored["request"]["trigger"] == {"reason": "manual", "requested_by": "ops.lead"}
    assert main(["retrain", "--requested-by", "Jane Roe, MRN 123"]) == 2
    assert "requested_by" in capsys.readouterr().err and len(launcher.launched) == 1


def test_governance_commands_answer_and_refuse_plainly(tmp_path, capsys):
    assert main(["models", "pending"]) == 0
    assert "no challenger waits for approval" in capsys.readouterr().out
    assert main(["models", "approve", "20260101T000000Z-abcdef", "--by", "dr.lead"]) == 2
    assert "no challenger 20260101T000000Z-abcdef waits for approval" in capsys.readouterr().err
    assert main(["labellers", "quarantine", "Mallory@Example.com", "--from", "2026-01-01T00:00:00Z",
                 "--by", "dr.lead"]) == 0
    assert main(["labellers", "quarantine", "x@example.com", "--from", "yesterday", "--by", "dr.lead"]) == 2
    assert "--from must be ISO 8601" in capsys.readouterr().err
    assert main(["--json", "labellers", "list"]) == 0
    [document] = json.loads(capsys.readouterr().out)
    assert document["caller"] == "mallory@example.com" and document["status"] == "active"
    assert main(["labellers", "lift", "mallory@example.com", "--by", "dr.lead"]) == 0
    assert main(["labellers", "lift", "mallory@example.com", "--by", "dr.lead"]) == 2
    X, y = generate_reference_data(50, seed=3)
    write_csv(tmp_path / "trusted.csv", X, y)
    assert main(["trusted-set", "upload", str(tmp_path / "trusted.csv"), "--by", "dr.lead"]) == 0
    capsys.readouterr()
    assert main(["--json", "trusted-set", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"] == "uploaded" and shown["rows"] == 50 and shown["uploaded_by"] == "dr.lead"
