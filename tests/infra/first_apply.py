"""Checks that a fresh project goes from zero to the first served prediction
without an apply that fails and without an alert that pages nobody: what a
schema check cannot see.

Like consistency.py and deployability.py, each check takes the repository
root and returns a list of problems, so tests run it on the real tree, on a
copy broken on purpose, and (by hand, infra/README.md) on an older tree.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.infra.consistency import load_terraform, merged_locals, resources, unquote
from tests.infra.deployability import variable_default


def _depends_on(body: dict) -> str:
    return " ".join(str(item) for item in body.get("depends_on", []))


def _all_resources(parsed: dict[str, dict]):
    for document in parsed.values():
        for block in document.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    yield unquote(kind), unquote(name), body


# --- alerts wait for their log-based metrics ----------------------------------------------------

def check_alerts_wait_for_metrics(root: Path) -> list[str]:
    """A policy on a log-based metric created in the same apply gets 404 for
    minutes (terraform-provider-google#11102): it must depend on a time_sleep
    that itself comes after the metrics."""
    parsed, problems = load_terraform(root)
    sleeps = {name: body for name, body in resources(parsed, "time_sleep").items()
              if "google_logging_metric" in str(body.get("triggers")) + _depends_on(body)
              and str(body.get("create_duration", "")).strip('"') not in ("", "0s")}
    for name, policy in resources(parsed, "google_monitoring_alert_policy").items():
        if "logging.googleapis.com/user/" not in str(policy.get("conditions")):
            continue
        waits = [sleep for sleep in sleeps if f"time_sleep.{sleep}" in _depends_on(policy)]
        if not waits:
            problems.append(f"google_monitoring_alert_policy.{name} uses a log-based metric but does not wait for it "
                            "(depends_on a time_sleep after google_logging_metric: terraform-provider-google#11102)")
    return problems


# --- APIs before the accounts and grants that need them -----------------------------------------

SERVICE_AGENT = re.compile(r"pubsub_service_agent|gcp-sa-|google_storage_project_service_account")


def check_apis_come_first(root: Path) -> list[str]:
    """iam.googleapis.com is off in a new project: accounts, and grants to service
    agents that exist only once their API is on, depend on the enablement."""
    parsed, problems = load_terraform(root)
    apis = [unquote(api) for api in merged_locals(parsed).get("required_apis", [])]
    for api in ("iam.googleapis.com", "monitoring.googleapis.com", "run.googleapis.com"):
        if api not in apis:
            problems.append(f"{api} is not in local.required_apis")
    for kind, name, body in _all_resources(parsed):
        needs_api = kind == "google_service_account" or (
            kind.endswith("_iam_member") and SERVICE_AGENT.search(str(body.get("member", ""))))
        if needs_api and "google_project_service.required" not in _depends_on(body):
            problems.append(f"{kind}.{name} does not depend on google_project_service.required "
                            "(its API may not be enabled yet on a fresh project)")
    return problems


# --- an image that exists when the job is created -----------------------------------------------

def check_job_image_exists(root: Path) -> list[str]:
    """Cloud Run refuses a job whose image does not exist: the job runs an image
    by digest from a variable with no default, and every apply path pushes it first."""
    parsed, problems = load_terraform(root)
    for name, job in resources(parsed, "google_cloud_run_v2_job").items():
        image = str(job["template"][0]["template"][0]["containers"])
        variable = re.search(r"'image': '\$\{var\.(\w+)\}'", image)
        body = variable_default(parsed, variable.group(1)) if variable else None
        if not variable or body is None or "default" in body or "@sha256:" not in str(body.get("validation")):
            problems.append(f"google_cloud_run_v2_job.{name}'s image may be a tag nothing pushed before the first "
                            "apply: take it from a variable with no default, validated as an image @sha256: digest")
    build = (root / "cloudbuild.yaml").read_text() if (root / "cloudbuild.yaml").exists() else ""
    if "training_job_image=" not in build or "RepoDigests" not in build:
        problems.append("cloudbuild.yaml does not pass the digest it pushed as training_job_image")
    script = root / "infra" / "bootstrap.sh"
    bootstrap = "\n".join(line for line in (script.read_text() if script.exists() else "").splitlines()
                          if not line.lstrip().startswith("#"))
    position = 0
    for command in ("gcloud services enable", "gcloud storage buckets create", "terraform init",
                    "-target=google_artifact_registry_repository.training", "gcloud builds submit",
                    "image_summary.digest", "terraform apply"):
        position = bootstrap.find(command, position)
        if position == -1:
            break
    if position == -1:
        problems.append("infra/bootstrap.sh does not enable the APIs, create the state bucket and the image "
                        "repository, push the first image and only then apply, in that order")
    return problems


# --- alerts that page someone -------------------------------------------------------------------

def _tfvars(root: Path) -> dict[str, dict]:
    import hcl2

    found = {}
    for path in sorted((root / "infra" / "deployments").glob("*.tfvars")):
        with open(path) as handle:
            found[path.name] = hcl2.load(handle)
    return found


def check_alerts_page_someone(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    channels = variable_default(parsed, "alert_notification_channels")
    if channels is None or "default" in channels:
        problems.append("alert_notification_channels has a default: a deployment that forgets it pages nobody")
    elif not re.search(r"var\.environment.*length\(var\.alert_notification_channels\)\s*>\s*0",
                       str(channels.get("validation"))):
        problems.append("alert_notification_channels: no validation refuses an empty list for production")
    for name, policy in resources(parsed, "google_monitoring_alert_policy").items():
        if "var.alert_notification_channels" not in str(policy.get("notification_channels")):
            problems.append(f"google_monitoring_alert_policy.{name} does not notify var.alert_notification_channels")
    for file, values in _tfvars(root).items():
        if unquote(values.get("environment")) == "production" and not values.get("alert_notification_channels"):
            problems.append(f"infra/deployments/{file}: a production deployment with no alert_notification_channels")
    return problems


# --- configuration that survives CI -------------------------------------------------------------

PER_COMMIT = {"training_job_image", "code_version"}


def check_deployment_files(root: Path) -> list[str]:
    """Cloud Build applies a versioned tfvars file that sets every variable without a default."""
    parsed, problems = load_terraform(root)
    required = sorted(unquote(name) for document in parsed.values() for block in document.get("variable", [])
                      for name, body in block.items() if "default" not in body and unquote(name) not in PER_COMMIT)
    files = _tfvars(root)
    if not files:
        problems.append("no infra/deployments/*.tfvars: CI's settings are not versioned")
    for file, values in files.items():
        problems += [f"infra/deployments/{file} does not set {name}" for name in required if name not in values]
    build = _build_scripts(root)
    if not re.search(r"-var-file=\"?deployments/", build):
        problems.append("cloudbuild.yaml does not apply a deployments/*.tfvars file")
    if "-auto-approve" in build:
        problems.append("cloudbuild.yaml applies with -auto-approve: apply a saved plan behind an approval instead")
    runbook = (root / "infra" / "README.md").read_text() if (root / "infra" / "README.md").exists() else ""
    if "--require-approval" not in runbook:
        problems.append("infra/README.md creates the deploy trigger without --require-approval")
    return problems


def _build_scripts(root: Path) -> str:
    """What cloudbuild.yaml's steps run (its comments left out)."""
    import yaml

    if not (root / "cloudbuild.yaml").exists():
        return ""
    build = yaml.safe_load((root / "cloudbuild.yaml").read_text())
    return "\n".join(str(arg) for step in build.get("steps", []) for arg in step.get("args") or [])


# --- bounded retries, and schedules that do not starve each other -------------------------------

MAX_DELIVERY_ATTEMPTS = 10


def check_bounded_retries(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    for name, subscription in resources(parsed, "google_pubsub_subscription").items():
        if not subscription.get("push_config"):
            continue
        policy = (subscription.get("dead_letter_policy") or [{}])[0]
        attempts = policy.get("max_delivery_attempts")
        if not isinstance(attempts, int) or attempts > MAX_DELIVERY_ATTEMPTS:
            problems.append(f"google_pubsub_subscription.{name} retries forever: give it a dead_letter_policy with "
                            f"max_delivery_attempts <= {MAX_DELIVERY_ATTEMPTS}")
        if "maximum_backoff" not in str(subscription.get("retry_policy")):
            problems.append(f"google_pubsub_subscription.{name} has no retry_policy backoff: it redelivers at once")
    for name, job in resources(parsed, "google_cloud_scheduler_job").items():
        retry = (job.get("retry_config") or [{}])[0]
        if not isinstance(retry.get("retry_count"), int) or retry["retry_count"] > 5:
            problems.append(f"google_cloud_scheduler_job.{name} has no bounded retry_config.retry_count")
    all_locals = merged_locals(parsed)
    feeds: dict[str, int] = {}
    for schedule in all_locals.get("schedules", {}).values():
        topic = unquote(schedule.get("topic"))
        feeds[topic] = feeds.get(topic, 0) + 1
    for function, topic in all_locals.get("event_subscriptions", {}).items():
        spec = all_locals.get("functions", {}).get(function, {})
        slots = spec.get("max_instances", 1) * spec.get("concurrency", 1)
        if feeds.get(unquote(topic), 0) > 1 and isinstance(slots, int) and slots < 2:
            problems.append(f"{function}: {feeds[unquote(topic)]} schedules feed it but it takes one message at a "
                            "time: a long run makes the other schedule's message meet a 429 and spend its attempts")
    return problems


# --- least privilege ----------------------------------------------------------------------------

# Where the documented minimum is narrower than a common choice: the broader role -> what to grant.
BROADER_THAN_NEEDED = {
    "roles/run.developer": "roles/run.jobsExecutorWithOverrides (run.jobs.run + runWithOverrides)",
    "roles/run.admin": "roles/run.jobsExecutorWithOverrides or roles/run.invoker",
    "roles/editor": "the predefined role for the one thing it does",
    "roles/owner": "the predefined role for the one thing it does",
    "roles/iam.serviceAccountUser": "nothing: executions with overrides run as the job's own identity",
    "roles/datastore.owner": "roles/datastore.user on its own database",
    "roles/storage.admin": "roles/storage.objectUser on its prefixes",
}


def check_least_privilege(root: Path) -> list[str]:
    """No identity of the loop (a function's, the job's, the builder's) holds a
    role broader than the documented minimum; secrets stay in the region."""
    parsed, problems = load_terraform(root)
    for kind, name, body in _all_resources(parsed):
        if not kind.endswith("_iam_member") or "google_service_account.accounts" not in str(body.get("member")):
            continue
        role = unquote(str(body.get("role", "")))
        if role in BROADER_THAN_NEEDED:
            problems.append(f"{kind}.{name} grants {role}, broader than needed: {BROADER_THAN_NEEDED[role]}")
    for name, secret in resources(parsed, "google_secret_manager_secret").items():
        replication = str(secret.get("replication"))
        if "user_managed" not in replication or "var.region" not in replication:
            problems.append(f"google_secret_manager_secret.{name} replicates outside the region: "
                            "user_managed replicas in var.region")
    return problems


# --- what production needs ----------------------------------------------------------------------

def check_production_safeguards(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    for name, database in resources(parsed, "google_firestore_database").items():
        if "POINT_IN_TIME_RECOVERY_ENABLED" not in str(database.get("point_in_time_recovery_enablement")):
            problems.append(f"google_firestore_database.{name} has no point-in-time recovery")
    backups = str(resources(parsed, "google_firestore_backup_schedule")) + str(merged_locals(parsed))
    if not resources(parsed, "google_firestore_backup_schedule") or "ingestion" not in backups:
        problems.append("no google_firestore_backup_schedule covers both Firestore databases")
    if not resources(parsed, "google_monitoring_uptime_check_config"):
        problems.append("no uptime check")
    policies = str(resources(parsed, "google_monitoring_alert_policy"))
    for metric, what in (("run.googleapis.com/request_latencies", "predict's latency"),
                         ("response_code_class", "predict's 5xx"),
                         ("uptime_check/check_passed", "the uptime check")):
        if metric not in policies:
            problems.append(f"no alert policy on {what}")
    metrics = str(resources(parsed, "google_logging_metric")) + str(merged_locals(parsed).get("log_metrics"))
    for needle, what in (("cloud_scheduler_job", "Cloud Scheduler failures"),
                         ("varlog/system", "function crashes"),
                         ("message dropped", "messages dropped without a retry")):
        if needle not in metrics:
            problems.append(f"no log-based metric (and alert) on {what}")
    if not resources(parsed, "google_billing_budget"):
        problems.append("no budget alert (google_billing_budget)")
    return problems


# --- key grants before the image repository -----------------------------------------------------

def check_repository_key_grant(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    grants = str(resources(parsed, "google_kms_crypto_key_iam_member"))
    for name, repository in resources(parsed, "google_artifact_registry_repository").items():
        if "var.kms_key_name" not in str(repository.get("kms_key_name")):
            continue
        if "gcp-sa-artifactregistry" not in grants:
            problems.append(f"google_artifact_registry_repository.{name} uses var.kms_key_name but the Artifact "
                            "Registry service agent is never granted the key")
        elif "google_kms_crypto_key_iam_member" not in _depends_on(repository):
            problems.append(f"google_artifact_registry_repository.{name} uses var.kms_key_name before the key "
                            "grant exists (depends_on)")
    return problems
