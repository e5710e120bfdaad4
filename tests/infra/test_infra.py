"""infra/ and cloudbuild.yaml, checked without the Terraform binary -- and
each check shown to fail on a copy broken on purpose."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT
from tests.infra import consistency, dependencies, deployability, first_apply

CHECKS = [consistency.check_functions, consistency.check_environment, consistency.check_topics,
          consistency.check_cloudbuild, consistency.check_skips_have_reasons, deployability.check_source_archive,
          deployability.check_name_limits, deployability.check_secrets, deployability.check_data_access_is_narrowed,
          deployability.check_deployment_works, deployability.check_emulator_routes, deployability.check_deployer_roles,
          consistency.check_dead_letters, consistency.check_training_job, first_apply.check_alerts_wait_for_metrics,
          first_apply.check_apis_come_first, first_apply.check_job_image_exists, first_apply.check_alerts_page_someone,
          first_apply.check_deployment_files, first_apply.check_bounded_retries, first_apply.check_least_privilege,
          first_apply.check_production_safeguards, first_apply.check_repository_key_grant, dependencies.check_lock,
          dependencies.check_lock_is_installed, dependencies.check_base_image_pinned]


@pytest.fixture
def copy(tmp_path) -> Path:
    for name in ("infra", "functions", "shared"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns(".build", ".terraform",
                                                                                    "__pycache__"))
    for name in ("main.py", "README.md", "cloudbuild.yaml", "requirements.txt", "requirements.lock", "Makefile",
                 "tests/emulators.py", "training-job.Dockerfile"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
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
    edit(copy / "infra" / "pubsub.tf", "    model_promoted   = ", "    model_promotions = ")
    assert any("model_promoted_topic" in p for p in consistency.check_topics(copy))


@pytest.mark.parametrize("old, new, expected", [
    ("    waitFor: [test, plan]\n", "", "the deploy step does not wait for the tests"),
    ("terraform apply -input=false", "terraform apply -target=google_storage_bucket.artifacts -input=false",
     "the deploy step uses -target: some functions would not be deployed"),
    ("        make test\n", "        make lint\n", "cloudbuild.yaml runs no `make test`"),
])
def test_cloudbuild_problems_are_reported(copy, old, new, expected):
    edit(copy / "cloudbuild.yaml", old, new)
    assert expected in consistency.check_cloudbuild(copy)


def test_a_skip_without_reason_is_reported(copy):
    edit(copy / "infra" / "storage.tf",
         "#checkov:skip=CKV_GCP_62:Access is recorded by Data Access audit logs (audit.tf), which Google recommends",
         "#checkov:skip=CKV_GCP_62 ")
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
    for _ in ("nightly check", "hourly aggregate"):
        edit(copy / "infra" / "scheduler.tf", 'topic       = "drift_check"', 'topic       = "retrain"')
    assert "no Cloud Scheduler job publishes to the drift-check topic" in consistency.check_topics(copy)


# --- the deployed archive -----------------------------------------------------------------------

def leftovers(copy: Path) -> None:
    """What `make test` and a developer leave behind: a venv with a dangling symlink, bytecode, tools."""
    (copy / ".venv-checkov" / "bin").mkdir(parents=True)
    (copy / ".venv-checkov" / "bin" / "python").symlink_to("/nonexistent/python3.13")
    (copy / ".venv-checkov" / "lib.py").write_text("")
    (copy / "shared" / "__pycache__").mkdir(exist_ok=True)
    (copy / "shared" / "__pycache__" / "config.cpython-311.pyc").write_bytes(b"\0")
    (copy / "tools").mkdir()
    (copy / "tools" / "cli.py").write_text("")
    (copy / "bench").mkdir()
    (copy / "bench" / "run_all.py").write_text("")


def test_the_archive_is_exactly_the_deployed_code(copy):
    leftovers(copy)
    selected, problems = deployability.archived_files(copy, consistency.load_terraform(copy)[0])
    assert problems == []
    assert "main.py" in selected and "requirements.txt" in selected and "shared/config.py" in selected
    assert not [path for path in selected if deployability.FORBIDDEN_IN_ARCHIVE.search(path)]
    assert deployability.check_source_archive(copy) == []


def test_an_archive_of_the_whole_repository_is_reported(copy):
    """The form that zipped .venv-checkov (a dangling symlink) and __pycache__."""
    text = (copy / "infra" / "storage.tf").read_text()
    start, end = text.index('data "archive_file" "source" {'), text.index('resource "google_storage_bucket_object"')
    (copy / "infra" / "storage.tf").write_text(text[:start] + '''data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/.build/source.zip"
  excludes    = [".git", ".venv", "tests", "infra"]
}

''' + text[end:])
    problems = deployability.check_source_archive(copy)
    assert "archive_file.source zips a directory minus excludes: list what goes in instead" in problems


def test_a_pattern_that_lets_leftovers_in_is_reported(copy):
    leftovers(copy)
    edit(copy / "infra" / "storage.tf", 'fileset(local.source_root, "shared/**/*.py")',
         'fileset(local.source_root, "**/*.py")')
    problems = deployability.check_source_archive(copy)
    assert "the deployed zip would carry tools/cli.py" in problems
    assert "the deployed zip would carry tests/emulators.py" in problems
    assert "the deployed zip would carry bench/run_all.py" in problems
    assert "the deployed zip would carry .venv-checkov/lib.py" in problems


def test_a_module_left_out_of_the_archive_is_reported(copy):
    edit(copy / "infra" / "storage.tf", '    fileset(local.source_root, "functions/*.py"),\n', "")
    problems = deployability.check_source_archive(copy)
    assert "the deployed zip lacks functions/predict.py, which main.py imports" in problems


# --- names --------------------------------------------------------------------------------------

@pytest.mark.parametrize("old, new, expected", [
    # The pusher's id before the fix: 13 characters after a 12-character prefix and a hyphen.
    ('pubsub_pusher       = "pubsub-pusher"', 'pubsub_pusher       = "pubsub-push-identity"',
     "google_service_account.accounts[pubsub_pusher].account_id 'aaaaaaaaaaaa-pubsub-push-identity' has 33 "
     "characters with a 12-character name_prefix (allowed 6-30)"),
    ('model_metadata      = "model"', 'model_metadata      = "predict"',
     "google_service_account.accounts[model_metadata].account_id 'aaaaaaaaaaaa-predict' collides with "
     "google_service_account.accounts[predict]"),
])
def test_account_ids_over_their_limit_or_colliding_are_reported(copy, old, new, expected):
    edit(copy / "infra" / "iam.tf", old, new)
    assert expected in deployability.check_name_limits(copy)


def test_a_separate_account_with_a_long_literal_id_is_reported(copy):
    (copy / "infra" / "extra.tf").write_text('resource "google_service_account" "pusher" {\n'
                                             '  account_id = "${var.name_prefix}-pubsub-push-identity"\n}\n')
    assert "google_service_account.pusher.account_id 'aaaaaaaaaaaa-pubsub-push-identity' has 33 characters with a " \
           "12-character name_prefix (allowed 6-30)" in deployability.check_name_limits(copy)


def test_an_unbounded_prefix_is_reported(copy):
    edit(copy / "infra" / "variables.tf", "length(var.name_prefix) <= 12 && ", "")
    assert deployability.check_name_limits(copy) == [
        "var.name_prefix has no length limit (validation `length(var.name_prefix) <= N`)"]


# --- secrets ------------------------------------------------------------------------------------

def test_a_secret_read_at_latest_is_reported(copy):
    edit(copy / "infra" / "functions.tf", "version    = local.secret_versions[secret_environment_variables.value]",
         'version    = "latest"')
    problems = deployability.check_secrets(copy)
    assert problems == ["google_cloudfunctions2_function.functions reads secret ${secret_environment_variables.key} "
                        "at version 'latest': pin a version that exists"]


def test_a_secret_read_without_depending_on_its_grant_is_reported(copy):
    edit(copy / "infra" / "functions.tf", "    google_secret_manager_secret_iam_member.ingestion,\n", "")
    assert deployability.check_secrets(copy) == [
        "google_cloudfunctions2_function.functions reads secret ${secret_environment_variables.key} but does not "
        "depend on a secretAccessor grant"]


# --- least privilege ----------------------------------------------------------------------------

def test_a_project_wide_firestore_grant_is_reported(copy):
    text = (copy / "infra" / "iam.tf").read_text()
    start = text.index('resource "google_project_iam_member" "firestore" {')
    condition = text.index("  condition {", start)
    end = text.index("  }\n", condition) + len("  }\n")
    (copy / "infra" / "iam.tf").write_text(text[:condition] + text[end:])
    problems = deployability.check_data_access_is_narrowed(copy)
    assert problems == ["google_project_iam_member.firestore grants roles/datastore.user, roles/datastore.viewer, "
                        "roles/datastore.user, roles/datastore.user, roles/datastore.user, roles/datastore.user, "
                        "roles/datastore.user, roles/datastore.user on the whole project: "
                        "add a condition on resource.name"]


def test_a_whole_bucket_grant_and_unbounded_listing_are_reported(copy):
    (copy / "infra" / "extra.tf").write_text('''
resource "google_storage_bucket_iam_member" "drift_writes_everything" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:x@example.iam.gserviceaccount.com"
}

resource "google_storage_bucket_iam_member" "lists_everything" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:y@example.iam.gserviceaccount.com"
  condition {
    title      = "lake"
    expression = "EXPRESSION"
  }
}
'''.replace("EXPRESSION", 'resource.name.startsWith(\\"projects/_/buckets/b/objects/lake/\\") || '
                           'resource.type == \\"storage.googleapis.com/Bucket\\"'))
    problems = deployability.check_data_access_is_narrowed(copy)
    assert "google_storage_bucket_iam_member.drift_writes_everything grants the whole artifact bucket: condition it " \
           "on object prefixes" in problems
    assert "google_storage_bucket_iam_member.lists_everything lets its holder list every object name: condition " \
           "listing on storage.googleapis.com/objectListPrefix" in problems


def test_the_shared_default_database_is_reported(copy):
    edit(copy / "infra" / "firestore.tf", 'name                    = "${var.name_prefix}-records"',
         'name                    = "(default)"')
    assert "the Firestore database is shared by every deployment in the project: name it after var.name_prefix" \
        in deployability.check_data_access_is_narrowed(copy)


# --- first apply, and a deployment that works ---------------------------------------------------

@pytest.mark.parametrize("path, old, new, expected", [
    ("functions.tf", '    service_account   = google_service_account.accounts["function_build"].id\n', "",
     "google_cloudfunctions2_function.functions has no build_config.service_account: new projects build with an "
     "under-privileged default account"),
    ("functions.tf", 'default     = "ALLOW_ALL"', 'default     = "ALLOW_INTERNAL_AND_GCLB"',
     "HTTP functions default to an internal ingress but no load balancer is defined: their run.app URLs refuse "
     "every caller"),
    ("iam.tf", "    pubsub           = local.pubsub_service_agent\n", "",
     "google_pubsub_topic uses var.kms_key_name but its service agent is never granted the key"),
    ("storage.tf", "      days_since_noncurrent_time = 30\n", "      age = 30\n",
     "google_storage_bucket.source: a Delete rule matches live objects in a versioned bucket (condition it on "
     "noncurrent versions)"),
])
def test_deployment_problems_are_reported(copy, path, old, new, expected):
    edit(copy / "infra" / path, old, new)
    assert expected in deployability.check_deployment_works(copy)


def test_a_bucket_created_before_its_key_grant_is_reported(copy):
    edit(copy / "infra" / "storage.tf",
         "  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]",
         "  depends_on = [google_project_service.required]")
    assert "google_storage_bucket.artifacts uses var.kms_key_name before the key grant exists (depends_on)" \
        in deployability.check_deployment_works(copy)


# --- emulator mode ------------------------------------------------------------------------------

def test_a_missing_emulator_route_is_reported(copy):
    edit(copy / "tests" / "emulators.py", '    "retrain": "/retrain",\n', "")
    assert deployability.check_emulator_routes(copy) == ["emulator mode does not push topic 'retrain' to /retrain"]


def test_an_emulator_topic_named_differently_is_reported(copy):
    edit(copy / "tests" / "emulators.py", '"ingest_clinical": "ingest-clinical-requests"',
         '"ingest_clinical": "clinical-requests"')
    assert deployability.check_emulator_routes(copy) == [
        "emulator mode names topic 'ingest_clinical' 'clinical-requests', the deployment 'ingest-clinical-requests'"]


# --- Cloud Build --------------------------------------------------------------------------------

@pytest.mark.parametrize("old, new, expected", [
    # The image the issue found: SDK under /google-cloud-sdk, Python 3.13, no PostgreSQL.
    ("name: python:3.11-bookworm", "name: gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators",
     "the test step runs on gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators, not the functions' Python 3.11"),
    ("name: python:3.11-bookworm", "name: python:3.13-bookworm",
     "the test step runs on python:3.13-bookworm, not the functions' Python 3.11"),
    ("make openjdk-17-jre-headless postgresql-15 ", "make openjdk-17-jre-headless ",
     "the test step installs no PostgreSQL 15 for the ingestion tests"),
    ("          google-cloud-cli-pubsub-emulator=${_CLOUD_SDK_VERSION} ", "          ",
     "the test step does not install google-cloud-cli-pubsub-emulator (nor set CLOUDSDK_PLATFORM_DIR)"),
    ("        terraform validate\n", "", "cloudbuild.yaml never runs terraform fmt -check, init and validate"),
    ("        cp \"$(command -v terraform)\" /tools/terraform\n", "",
     "the test step has no terraform binary for make test's fmt check"),
    ("    waitFor: [terraform-check]\n", "    waitFor: ['-']\n", "the tests step does not wait for terraform validate"),
    (' -backend-config="prefix=$${TF_STATE_PREFIX:-$${DEPLOYMENT}}"', "",
     "terraform init takes no state prefix: deployments sharing the state bucket would share state"),
])
def test_cloudbuild_setup_problems_are_reported(copy, old, new, expected):
    edit(copy / "cloudbuild.yaml", old, new)
    assert expected in consistency.check_cloudbuild(copy)


# --- terraform fmt, as make test runs it --------------------------------------------------------

def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if not binary:
        if IN_CI:
            pytest.fail("terraform is not installed (make test runs terraform fmt -check)")
        pytest.skip("terraform is not installed")
    return binary


def test_make_test_checks_terraform_formatting():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ntest:"):].split("\n\n")[0]
    assert "terraform fmt -check -recursive infra" in recipe


def test_terraform_fmt_passes_here_and_fails_on_a_misformatted_copy(copy):
    binary = terraform_binary()
    run = lambda directory: subprocess.run([binary, "fmt", "-check", "-recursive", str(directory)],  # noqa: E731
                                           capture_output=True, text=True, timeout=60)
    assert run(ROOT / "infra").returncode == 0
    edit(copy / "infra" / "pubsub.tf", "    model_promoted   = ", "    model_promoted = ")
    result = run(copy / "infra")
    assert result.returncode == 3 and "pubsub.tf" in result.stdout


def test_an_ingestion_function_granted_the_prediction_database_is_reported(copy):
    edit(copy / "infra" / "firestore.tf", "    ingest_reference    = google_firestore_database.ingestion.name",
         "    ingest_reference    = google_firestore_database.main.name")
    assert deployability.check_data_access_is_narrowed(copy) == [
        "ingest_reference never reads predictions but is granted the prediction database"]


# --- the deploying identity ---------------------------------------------------------------------

def test_a_role_missing_from_the_runbook_is_reported(copy):
    edit(copy / "infra" / "README.md",
         "| `roles/cloudscheduler.admin` | the four jobs (the hourly drift aggregate among them) |\n", "")
    assert deployability.check_deployer_roles(copy) == [
        "infra/README.md does not list roles/cloudscheduler.admin (needed for google_cloud_scheduler_job)"]


def test_a_role_listed_but_not_granted_is_reported(copy):
    edit(copy / "infra" / "README.md", "artifactregistry.admin logging.logWriter", "logging.logWriter")
    assert deployability.check_deployer_roles(copy) == [
        "infra/README.md's grant commands do not grant roles/artifactregistry.admin (needed for "
        "google_artifact_registry_repository)"]


def test_a_new_kind_of_resource_needs_its_role_written_down(copy):
    (copy / "infra" / "extra.tf").write_text('resource "google_compute_network" "vpc" {\n  name = "vpc"\n}\n')
    assert deployability.check_deployer_roles(copy) == [
        "no deploying-identity role is known for google_compute_network: add it to DEPLOYER_ROLES and the runbook"]
def test_a_dead_letter_topic_without_an_alert_is_reported(copy):
    policy = 'resource "google_monitoring_alert_policy" "dead_letters" {\n  for_each     = '
    edit(copy / "infra" / "alerts.tf", policy + "local.event_subscriptions", policy + '{ retrain = "retrain" }')
    assert consistency.check_dead_letters(copy) == ["dead-letter topic dead_letter has neither a consumer nor an alert"]


@pytest.mark.parametrize("file, old, new, expected", [
    ("training_job.tf", "    lease_seconds       = 3300", "    lease_seconds       = 900",
     "training_time_limits disagree: TRAINING_LEASE_SECONDS must be at least"),
    ("training_job.tf", "    job_timeout_seconds = 7200", "    job_timeout_seconds = 3600",
     "training_time_limits disagree: TRAINING_JOB_TIMEOUT_SECONDS must be at least"),
    ("training_job.tf", 'timeout         = "${local.training_time_limits.job_timeout_seconds}s"',
     'timeout         = "3600s"', "the training job's timeout is not local.training_time_limits"),
    ("training_job.tf", "training_job_max_retries = 1", "training_job_max_retries = 3",
     "the training job's max_retries is not 1"),
    ("functions.tf", "tostring(local.training_time_limits.lease_seconds)", '"900"',
     "TRAINING_LEASE_SECONDS is not set from local.training_time_limits.lease_seconds"),
])
def test_a_training_job_out_of_agreement_is_reported(copy, file, old, new, expected):
    edit(copy / "infra" / file, old, new)
    assert any(problem.startswith(expected) for problem in consistency.check_training_job(copy)), \
        consistency.check_training_job(copy)
