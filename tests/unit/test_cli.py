import csv

import pytest

from shared import wiring
from shared.models import registry
from shared.training.synthetic_data import generate_reference_data
from tools.cli import main


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
    assert all(version in listing for version in versions) and listing.count("*") == 1
    assert main(["models", "promote", versions[0]]) == 0
    assert main(["models", "promote", versions[1]]) == 0
    assert main(["models", "rollback"]) == 0
    assert registry.read_champion(wiring.artifact_store())[0]["version"] == versions[0]
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
