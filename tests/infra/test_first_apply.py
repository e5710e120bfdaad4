"""A fresh project to the first served prediction: each check of
tests/infra/first_apply.py and dependencies.py passes on the tree and fails on
a copy broken the way the old tree was (infra/README.md says how each was also
run against the tree before these fixes)."""

import shutil
import subprocess

import pytest

from tests.infra import dependencies, first_apply
from tests.infra.test_infra import copy, edit, terraform_binary  # noqa: F401 -- copy is a fixture


def test_an_alert_that_does_not_wait_for_its_log_metric_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "alerts.tf",
         "depends_on            = [google_project_service.required, google_logging_metric.counts, "
         "time_sleep.log_metrics_usable]",
         "depends_on            = [google_project_service.required, google_logging_metric.counts]")
    assert first_apply.check_alerts_wait_for_metrics(copy) == [
        "google_monitoring_alert_policy.log_metrics uses a log-based metric but does not wait for it (depends_on a "
        "time_sleep after google_logging_metric: terraform-provider-google#11102)"]


def test_a_service_account_created_before_the_iam_api_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "iam.tf", "  # it is enabled fails (tests/infra checks this dependency).\n"
         "  depends_on = [google_project_service.required]\n", "")
    assert first_apply.check_apis_come_first(copy) == [
        "google_service_account.accounts does not depend on google_project_service.required (its API may not be "
        "enabled yet on a fresh project)"]


def test_a_token_grant_to_the_pubsub_agent_before_its_api_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "iam.tf", "  # The Pub/Sub service agent exists once pubsub.googleapis.com is enabled.\n"
         "  depends_on = [google_project_service.required]\n", "")
    assert "google_service_account_iam_member.pubsub_token_creator does not depend on " \
           "google_project_service.required (its API may not be enabled yet on a fresh project)" \
           in first_apply.check_apis_come_first(copy)


def test_the_iam_api_missing_from_the_list_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "apis.tf", '    "iam.googleapis.com",\n', "")
    assert "iam.googleapis.com is not in local.required_apis" in first_apply.check_apis_come_first(copy)


def test_an_image_tag_that_cannot_exist_at_first_apply_is_reported(copy):  # noqa: F811
    """The old form: a tag built from code_version, whose default `unknown` no build ever pushes."""
    edit(copy / "infra" / "training_job.tf", "        image = var.training_job_image\n",
         '        image = "${local.training_image_repository}:${var.code_version}"\n')
    assert first_apply.check_job_image_exists(copy) == [
        "google_cloud_run_v2_job.training's image may be a tag nothing pushed before the first apply: take it from a "
        "variable with no default, validated as an image @sha256: digest"]


def test_an_image_variable_with_a_default_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "training_job.tf", '  type        = string\n\n  validation {\n    condition     = '
         'can(regex("^[a-z0-9-]+-docker', '  type        = string\n  default     = ""\n\n  validation {\n    '
         'condition     = can(regex("^[a-z0-9-]+-docker')
    assert len(first_apply.check_job_image_exists(copy)) == 1


def test_a_bootstrap_that_applies_before_pushing_the_image_is_reported(copy):  # noqa: F811
    script = (copy / "infra" / "bootstrap.sh").read_text()
    start, end = script.index('step "4/5'), script.index('step "5/5')
    (copy / "infra" / "bootstrap.sh").write_text(script[:start] + script[end:])
    assert first_apply.check_job_image_exists(copy) == [
        "infra/bootstrap.sh does not enable the APIs, create the state bucket and the image repository, push the "
        "first image and only then apply, in that order"]


def test_an_empty_notification_list_by_default_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "alerts.tf", "  type        = list(string)\n\n  validation {\n    condition     = "
         "var.environment", "  type        = list(string)\n  default     = []\n\n  validation {\n    condition     = "
         "var.environment")
    assert first_apply.check_alerts_page_someone(copy) == [
        "alert_notification_channels has a default: a deployment that forgets it pages nobody"]


def test_a_production_deployment_without_channels_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "deployments" / "example.tfvars",
         'alert_notification_channels = ["projects/my-clinical-project/notificationChannels/1234567890"]',
         "alert_notification_channels = []")
    assert first_apply.check_alerts_page_someone(copy) == [
        "infra/deployments/example.tfvars: a production deployment with no alert_notification_channels"]


def test_terraform_refuses_an_empty_notification_list_for_production(tmp_path):
    """The validation itself, run by Terraform on the variables alone (no provider needed)."""
    import re

    from tests.conftest import ROOT

    binary = terraform_binary()
    blocks = [block for path in (ROOT / "infra").glob("*.tf")
              for block in re.findall(r'^variable "[^"]+" \{.*?^\}\n', path.read_text(), re.S | re.M)]
    (tmp_path / "variables.tf").write_text("\n".join(blocks))
    image = "europe-west1-docker.pkg.dev/p/mlops-training/training-job@sha256:" + "a" * 64

    def plan(*extra):
        return subprocess.run([binary, "plan", "-input=false", "-no-color", "-var-file",
                               str(ROOT / "infra" / "deployments" / "example.tfvars"),
                               f"-var=training_job_image={image}", *extra],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    subprocess.run([binary, "init", "-input=false", "-no-color"], cwd=tmp_path, capture_output=True, timeout=120)
    assert plan().returncode == 0
    refused = plan("-var=alert_notification_channels=[]")
    assert refused.returncode == 1 and "a production deployment needs at least one notification channel" \
        in refused.stderr.replace("\n", " ").replace("│", "").replace("  ", " ")
    assert plan("-var=alert_notification_channels=[]", "-var=environment=staging").returncode == 0
    tag = plan(f"-var=training_job_image={image.split('@')[0]}:unknown")
    assert tag.returncode == 1 and "training_job_image" in tag.stderr


def test_a_tfvars_file_missing_a_required_setting_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "deployments" / "example.tfvars", 'firestore_location = "europe-west1"\n', "")
    assert first_apply.check_deployment_files(copy) == [
        "infra/deployments/example.tfvars does not set firestore_location"]


@pytest.mark.parametrize("old, new, expected", [
    ("terraform apply -input=false /workspace/deploy.tfplan", "terraform apply -input=false -auto-approve",
     "cloudbuild.yaml applies with -auto-approve: apply a saved plan behind an approval instead"),
    ('-var-file="deployments/$${DEPLOYMENT}.tfvars"', '-var="project_id=${PROJECT_ID}"',
     "cloudbuild.yaml does not apply a deployments/*.tfvars file"),
])
def test_a_build_that_reverts_settings_or_applies_unreviewed_is_reported(copy, old, new, expected):  # noqa: F811
    edit(copy / "cloudbuild.yaml", old, new)
    assert expected in first_apply.check_deployment_files(copy)


def test_a_retry_forever_subscription_is_reported(copy):  # noqa: F811
    text = (copy / "infra" / "pubsub.tf").read_text()
    start = text.index("  dead_letter_policy {\n    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key]")
    end = text.index("  }\n", start) + len("  }\n")
    (copy / "infra" / "pubsub.tf").write_text(text[:start] + text[end:])
    assert first_apply.check_bounded_retries(copy) == [
        "google_pubsub_subscription.events retries forever: give it a dead_letter_policy with "
        "max_delivery_attempts <= 10"]


def test_one_drift_instance_fed_by_two_schedules_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "functions.tf", 'timeout = 540, concurrency = 1, threads = 1, max_instances = 2',
         'timeout = 540, concurrency = 1, threads = 1, max_instances = 1')
    assert first_apply.check_bounded_retries(copy) == [
        "drift_check: 2 schedules feed it but it takes one message at a time: a long run makes the other schedule's "
        "message meet a 429 and spend its attempts"]


@pytest.mark.parametrize("old, new, expected", [
    ('role     = "roles/run.jobsExecutorWithOverrides"', 'role     = "roles/run.developer"',
     "google_cloud_run_v2_job_iam_member.retrain_launches_training grants roles/run.developer, broader than "
     "needed: roles/run.jobsExecutorWithOverrides (run.jobs.run + runWithOverrides)"),
])
def test_a_role_broader_than_the_documented_minimum_is_reported(copy, old, new, expected):  # noqa: F811
    edit(copy / "infra" / "training_job.tf", old, new)
    assert first_apply.check_least_privilege(copy) == [expected]


def test_acting_as_the_training_account_is_reported(copy):  # noqa: F811
    (copy / "infra" / "extra.tf").write_text('''resource "google_service_account_iam_member" "retrain_acts_as" {
  service_account_id = google_service_account.accounts["training_job"].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.accounts["retrain"].email}"
}
''')
    assert len(first_apply.check_least_privilege(copy)) == 1


def test_secrets_replicated_globally_are_reported(copy):  # noqa: F811
    text = (copy / "infra" / "functions.tf").read_text()
    start = text.index("  replication {\n    user_managed")
    end = text.index("\n  }\n", start) + len("\n  }\n")
    (copy / "infra" / "functions.tf").write_text(text[:start] + "  replication {\n    auto {}\n  }\n" + text[end:])
    assert first_apply.check_least_privilege(copy) == [
        "google_secret_manager_secret.ingestion replicates outside the region: user_managed replicas in var.region"]


def test_missing_production_safeguards_are_reported(copy):  # noqa: F811
    edit(copy / "infra" / "firestore.tf", '  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"\n',
         "")
    edit(copy / "infra" / "service_health.tf", 'resource "google_billing_budget"', 'resource "null_thing"')
    assert first_apply.check_production_safeguards(copy) == [
        "google_firestore_database.main has no point-in-time recovery", "no budget alert (google_billing_budget)"]


def test_a_repository_key_without_its_agent_grant_is_reported(copy):  # noqa: F811
    edit(copy / "infra" / "iam.tf", '    artifactregistry = "serviceAccount:service-${data.google_project.this.'
         'number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"\n', "")
    assert first_apply.check_repository_key_grant(copy) == [
        "google_artifact_registry_repository.training uses var.kms_key_name but the Artifact Registry service agent "
        "is never granted the key"]


# --- the lock ------------------------------------------------------------------------------------

def test_a_lock_behind_requirements_txt_says_to_run_make_lock(copy):  # noqa: F811
    edit(copy / "requirements.txt", "joblib==1.6.0", "joblib==1.5.0")
    edit(copy / "requirements.txt", "jinja2==3.1.6\n", "jinja2==3.1.6\nrich==14.0.0\n")
    assert dependencies.check_lock(copy) == [
        "requirements.lock pins joblib==1.6.0, requirements.txt joblib==1.5.0: run `make lock` and commit "
        "requirements.lock",
        "requirements.lock lacks rich==14.0.0 from requirements.txt: run `make lock` and commit requirements.lock"]


def test_a_dependency_dropped_from_requirements_txt_but_locked_is_reported(copy):  # noqa: F811
    edit(copy / "requirements.txt", "jinja2==3.1.6\n", "")
    assert dependencies.check_lock(copy) == [
        "requirements.lock still carries jinja2 from requirements.txt, which no longer names it: run `make lock` and "
        "commit requirements.lock"]


def test_a_lock_without_hashes_or_an_unpinned_requirement_is_reported(copy):  # noqa: F811
    text = (copy / "requirements.lock").read_text()
    (copy / "requirements.lock").write_text("\n".join(line for line in text.splitlines() if "--hash" not in line))
    edit(copy / "requirements.txt", "joblib==1.6.0", "joblib>=1.6")
    problems = dependencies.check_lock(copy)
    assert "requirements.txt does not pin 'joblib>=1.6' with ==" in problems
    assert "requirements.lock has no hash for numpy: run `make lock` and commit requirements.lock" in problems


def test_no_lock_at_all_is_reported(copy):  # noqa: F811
    (copy / "requirements.lock").unlink()
    assert dependencies.check_lock(copy) == ["no requirements.lock: run `make lock` and commit requirements.lock"]


@pytest.mark.parametrize("path, old, new, expected", [
    ("infra/storage.tf", '"requirements.txt" ? "requirements.lock" : source.value', "source.value",
     "the functions' archive ships requirements.txt, not requirements.lock, as its requirements.txt: Cloud "
     "Functions would resolve unpinned dependencies at build time"),
    ("training-job.Dockerfile", "--require-hashes --no-deps -r requirements.lock", "-r requirements.txt",
     "training-job.Dockerfile does not install requirements.lock with --require-hashes"),
    ("Makefile", "--require-hashes -r requirements.lock", "-r requirements.txt",
     "make does not install requirements.lock with --require-hashes"),
])
def test_a_place_that_installs_around_the_lock_is_reported(copy, path, old, new, expected):  # noqa: F811
    edit(copy / path, old, new)
    assert dependencies.check_lock_is_installed(copy) == [expected]


def test_a_base_image_by_tag_is_reported(copy):  # noqa: F811
    text = (copy / "training-job.Dockerfile").read_text()
    (copy / "training-job.Dockerfile").write_text(
        "\n".join("FROM python:3.11-slim" if line.startswith("FROM ") else line for line in text.splitlines()))
    assert dependencies.check_base_image_pinned(copy) == [
        "training-job.Dockerfile's base python:3.11-slim is not pinned by digest (@sha256:<64 hex>)"]


def test_the_scripts_parse():
    from tests.conftest import ROOT

    for script in ("bootstrap.sh", "smoke_test.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / "infra" / script)], capture_output=True).returncode == 0
    assert shutil.which("bash")


# --- bootstrap.sh, run against stand-ins for gcloud, terraform and git ------------------------------

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$*" in
  *"image_summary.digest"*) echo "sha256:$(printf 'b%.0s' $(seq 64))" ;;
  *"storage buckets describe"*|*"docker images describe"*"$TAG "*) [ -n "$EXISTS" ] ;;
  *"rev-parse"*) echo 0123456789ab ;;
esac
"""


def run_bootstrap(tmp_path, exists: bool) -> list[str]:
    from tests.conftest import ROOT

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("gcloud", "terraform", "git"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "EXISTS": "1" if exists else "",
                   "TAG": "training-job:bootstrap-0123456789ab", "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(ROOT / "infra" / "bootstrap.sh"), "example"], env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return calls.read_text().splitlines()


def test_bootstrap_creates_pushes_then_applies_by_digest(tmp_path):
    calls = run_bootstrap(tmp_path, exists=False)
    kinds = [next((kind for kind in ("services enable", "buckets create", "terraform init", "-target=",
                                     "builds submit", "terraform apply") if kind in call), None) for call in calls]
    assert [kind for kind in kinds if kind] == ["services enable", "services enable", "buckets create",
                                                "terraform init", "-target=", "builds submit", "terraform apply"]
    apply = [call for call in calls if call.startswith("terraform apply") and "-target" not in call][0]
    repository = "europe-west1-docker.pkg.dev/my-clinical-project/mlops-training/training-job"
    assert f"-var=training_job_image={repository}@sha256:{'b' * 64}" in apply
    assert "-var-file=" in apply and "deployments/example.tfvars" in apply
    assert any("iam.googleapis.com" in call for call in calls if "services enable" in call)


def test_bootstrap_run_again_rebuilds_and_recreates_nothing(tmp_path):
    calls = run_bootstrap(tmp_path, exists=True)
    assert not [call for call in calls if "buckets create" in call or "builds submit" in call]
    assert [call for call in calls if call.startswith("terraform apply") and "-target" not in call]
