"""infra/ and cloudbuild.yaml, checked without the Terraform binary -- and
each check shown to fail on a copy broken on purpose."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT
from tests.infra import consistency

CHECKS = [consistency.check_functions, consistency.check_environment, consistency.check_topics,
          consistency.check_cloudbuild, consistency.check_skips_have_reasons]


@pytest.fixture
def copy(tmp_path) -> Path:
    for name in ("infra", "functions", "shared"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns(".build", ".terraform",
                                                                                    "__pycache__"))
    for name in ("main.py", "README.md", "cloudbuild.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_repository_is_consistent(check):
    assert check(ROOT) == []


def test_every_tf_file_parses_and_a_broken_one_is_reported(copy):
    assert consistency.load_terraform(ROOT)[1] == []
    (copy / "infra" / "broken.tf").write_text('resource "google_storage_bucket" "x" {\n  name = \n')
    assert any("broken.tf does not parse" in p for p in consistency.load_terraform(copy)[1])


def test_a_missing_function_resource_is_reported(copy):
    edit(copy / "infra" / "functions.tf", 'entry_point = "record_outcome"', 'entry_point = "record_outcomes"')
    problems = consistency.check_functions(copy)
    assert "entry point record_outcome has 0 function resources (want exactly 1)" in problems


def test_a_wrong_trigger_is_reported(copy):
    edit(copy / "infra" / "functions.tf", 'entry_point = "retrain", trigger = "pubsub"',
         'entry_point = "retrain", trigger = "http"')
    assert any("retrain is a pubsub function" in p for p in consistency.check_functions(copy))


def test_function_variables_out_of_step_with_the_code_are_reported(copy):
    edit(copy / "infra" / "function_variables.json", '    "MAX_BATCH_SIZE",\n', "")
    assert consistency.check_environment(copy) == [
        "infra/function_variables.json differs from shared/config.py FUNCTION_SETTINGS "
        "(rewrite it: python -m tests.infra.consistency)"]


def test_a_default_repeated_in_infra_is_reported(copy):
    edit(copy / "infra" / "functions.tf", '    EVENT_BUS ', '    DRIFT_MIN_SAMPLES = "200"\n    EVENT_BUS ')
    assert consistency.check_environment(copy) == [
        "infra repeats DRIFT_MIN_SAMPLES's default (200); defaults live in shared/config.py"]


def test_a_variable_no_function_reads_is_reported(copy):
    edit(copy / "infra" / "functions.tf", '    EVENT_BUS ', '    DRIFT_MIN_SAMPLE = "300"\n    EVENT_BUS ')
    assert consistency.check_environment(copy) == ["infra sets DRIFT_MIN_SAMPLE, which no function reads"]


def test_every_function_getting_every_variable_is_reported(copy):
    edit(copy / "infra" / "functions.tf", " if contains(local.function_variables[each.key], name)", "")
    assert consistency.check_environment(copy) == [
        "the function resource does not filter local.deployment_settings by local.function_variables"]


def test_a_readme_that_names_the_wrong_readers_is_reported(copy):
    edit(copy / "README.md", "| `MAX_BATCH_SIZE` | `1000` | `predict` |",
         "| `MAX_BATCH_SIZE` | `1000` | all functions |")
    assert consistency.check_environment(copy) == [
        "the README says 'all functions' read MAX_BATCH_SIZE; the code: '`predict`'"]


def test_a_missing_topic_is_reported(copy):
    edit(copy / "infra" / "pubsub.tf", "    model_promoted = ", "    model_promotions = ")
    assert any("model_promoted_topic" in p for p in consistency.check_topics(copy))


@pytest.mark.parametrize("old, new, expected", [
    ("    waitFor: [test]\n", "", "the deploy step does not wait for the tests"),
    ("terraform apply -input=false", "terraform apply -target=google_storage_bucket.artifacts -input=false",
     "the deploy step uses -target: some functions would not be deployed"),
    ("        make test\n", "        make lint\n", "cloudbuild.yaml runs no `make test`"),
])
def test_cloudbuild_problems_are_reported(copy, old, new, expected):
    edit(copy / "cloudbuild.yaml", old, new)
    assert expected in consistency.check_cloudbuild(copy)


def test_a_skip_without_reason_is_reported(copy):
    edit(copy / "infra" / "storage.tf",
         "#checkov:skip=CKV_GCP_62:This bucket is the access-log sink; logging it into itself would recurse.",
         "#checkov:skip=CKV_GCP_62")
    assert any("without a reason" in p for p in consistency.check_skips_have_reasons(copy))


def checkov_summary(directory: Path) -> dict:
    binary = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not binary or not Path(binary).exists():
        if IN_CI:
            pytest.fail("checkov is not installed (make test installs it in .venv-checkov)")
        pytest.skip("checkov is not installed; `make test` installs it")
    result = subprocess.run([binary, "-d", str(directory), "--framework", "terraform", "--skip-download",
                             "--compact", "--quiet", "-o", "json"], capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    return report["summary"], report.get("results", {}).get("failed_checks", [])


def test_checkov_passes_with_only_reasoned_skips():
    summary, failed = checkov_summary(ROOT / "infra")
    assert summary["failed"] == 0, [(f["check_id"], f["resource"]) for f in failed]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 30


def test_checkov_catches_a_public_bucket(copy):
    edit(copy / "infra" / "storage.tf", 'public_access_prevention    = "enforced"',
         'public_access_prevention    = "inherited"')
    summary, failed = checkov_summary(copy / "infra")
    assert summary["failed"] >= 1
    assert any(f["resource"] == "google_storage_bucket.artifacts" for f in failed)


def test_a_missing_nightly_schedule_is_reported(copy):
    edit(copy / "infra" / "scheduler.tf", 'topic       = "drift_check"', 'topic       = "retrain"')
    assert "no Cloud Scheduler job publishes to the drift-check topic" in consistency.check_topics(copy)
