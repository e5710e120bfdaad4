"""Checks of infra/ and cloudbuild.yaml that need no Terraform binary.

Each function takes the repository root and returns a list of problems
(empty when consistent), so tests can run it on the real tree and on a
deliberately broken copy.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import fields
from pathlib import Path

import hcl2

from shared.config import FUNCTION_SETTINGS, Settings, env_name, variables_of

SIGNATURES = {"http": "http", "cloud_event": "pubsub"}


def unquote(value):
    return value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' else value


def load_terraform(root: Path) -> tuple[dict[str, dict], list[str]]:
    """Every .tf file parsed; problems for those that do not parse."""
    parsed, problems = {}, []
    for path in sorted((root / "infra").glob("*.tf")):
        try:
            with open(path) as handle:
                parsed[path.name] = hcl2.load(handle)
        except Exception as error:  # noqa: BLE001 -- any parser error is the finding
            problems.append(f"{path.name} does not parse: {type(error).__name__}: {str(error)[:200]}")
    return parsed, problems


def merged_locals(parsed: dict[str, dict]) -> dict:
    merged = {}
    for document in parsed.values():
        for block in document.get("locals", []):
            merged.update(block)
    return merged


def resources(parsed: dict[str, dict], kind: str, block_type: str = "resource") -> dict[str, dict]:
    """Every `block_type` block ("resource" or "data") of `kind`, by name."""
    found = {}
    for document in parsed.values():
        for block in document.get(block_type, []):
            for block_kind, named in block.items():
                if unquote(block_kind) == kind:
                    found.update({unquote(name): body for name, body in named.items()})
    return found


def exported_entry_points(root: Path) -> dict[str, str]:
    """entry point -> trigger kind, read from main.py and the decorators in functions/."""
    tree = ast.parse((root / "main.py").read_text())
    exported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("functions."):
            module = ast.parse((root / (node.module.replace(".", "/") + ".py")).read_text())
            for alias in node.names:
                definition = next((n for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                                   and n.name == alias.name),
                                  None)
                kinds = [d.attr for d in (definition.decorator_list if definition else [])
                         if isinstance(d, ast.Attribute) and d.attr in SIGNATURES]
                exported[alias.asname or alias.name] = SIGNATURES[kinds[0]] if kinds else "unknown"
    return exported


def check_functions(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    declared = merged_locals(parsed).get("functions", {})
    by_entry_point: dict[str, list[dict]] = {}
    for spec in declared.values():
        by_entry_point.setdefault(unquote(spec.get("entry_point")), []).append(spec)
    for entry_point, trigger in exported_entry_points(root).items():
        specs = by_entry_point.get(entry_point, [])
        if len(specs) != 1:
            problems.append(f"entry point {entry_point} has {len(specs)} function resources (want exactly 1)")
        elif unquote(specs[0].get("trigger")) != trigger:
            problems.append(f"entry point {entry_point} is a {trigger} function but infra triggers it by "
                            f"{unquote(specs[0].get('trigger'))}")
    exported = exported_entry_points(root)
    for entry_point in by_entry_point:
        if entry_point not in exported:
            problems.append(f"infra deploys {entry_point}, which main.py does not export")
    if not resources(parsed, "google_cloudfunctions2_function"):
        problems.append("no google_cloudfunctions2_function resource")
    return problems


def check_environment(root: Path) -> list[str]:
    """Each function gets exactly its own variables, infra repeats no default,
    and the README says who reads what."""
    parsed, problems = load_terraform(root)
    values = merged_locals(parsed).get("deployment_settings", {})
    secrets = merged_locals(parsed).get("secret_environment", {})
    with_secrets = merged_locals(parsed).get("functions_with_secrets", [])
    functions = resources(parsed, "google_cloudfunctions2_function").get("functions", {})
    service = (functions.get("service_config") or [{}])[0]
    environment = str(service.get("environment_variables"))
    if "local.function_variables[each.key]" not in environment or "local.deployment_settings" not in environment:
        problems.append("the function resource does not filter local.deployment_settings by local.function_variables")
    if secrets and "local.secret_environment" not in str(service.get("dynamic")):
        problems.append("the function resource does not attach local.secret_environment")
    try:
        declared = json.loads((root / "infra" / "function_variables.json").read_text())
    except (OSError, ValueError):
        declared = None
    expected = {function: variables_of(function) for function in FUNCTION_SETTINGS}
    if declared != expected:
        problems.append("infra/function_variables.json differs from shared/config.py FUNCTION_SETTINGS "
                        "(rewrite it: python -m tests.infra.consistency)")
    known = {env_name(f.name): f for f in fields(Settings)}
    for name, value in values.items():
        if name not in known:
            problems.append(f"infra sets {name}, which no function reads")
        elif isinstance(value, str) and unquote(value) == str(known[name].default) and '"' in value:
            problems.append(f"infra repeats {name}'s default ({unquote(value)}); defaults live in shared/config.py")
    for name, value in {"ARTIFACT_STORE": "gcs", "PREDICTION_STORE": "firestore", "EVENT_BUS": "pubsub"}.items():
        if unquote(values.get(name)) != value:
            problems.append(f"infra does not set {name}={value}")
    for function in with_secrets:
        for name in secrets:
            if name not in variables_of(unquote(function)):
                problems.append(f"{unquote(function)} gets the secret {name}, which it does not read")
    readme = (root / "README.md").read_text() if (root / "README.md").exists() else ""
    row = re.compile(r"^\| `([A-Z0-9_]+)` \|[^|]*\|([^|]*)\|", re.M)
    rows = {match.group(1): match.group(2) for match in row.finditer(readme)}
    for field in fields(Settings):
        name = env_name(field.name)
        if name not in rows:
            problems.append(f"{name} is missing from the README's configuration table")
        elif set(re.findall(r"`(\w+)`", rows[name])) != readers_of(name) and rows[name].strip() != readers_label(name):
            problems.append(f"the README says {rows[name].strip()!r} read {name}; the code: {readers_label(name)!r}")
    return problems


def readers_of(name: str) -> set[str]:
    return {function for function in FUNCTION_SETTINGS if name in variables_of(function)}


def readers_label(name: str) -> str:
    """The README's 'read by' cell for a variable."""
    readers = readers_of(name)
    if readers == set(FUNCTION_SETTINGS):
        return "all functions"
    if not readers:
        return "CLI and local server only"
    return ", ".join(f"`{function}`" for function in sorted(readers))


def published_topic_settings(root: Path) -> set[str]:
    pattern = re.compile(r"\.publish\(\s*settings\.(\w+_topic)")
    found = set()
    for path in (root / "shared").rglob("*.py"):
        found.update(pattern.findall(path.read_text()))
    return found


def check_topics(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    topics = merged_locals(parsed).get("topics", {})
    environment = merged_locals(parsed).get("deployment_settings", {})
    if "drift_check" not in topics:  # Cloud Scheduler publishes there; no function does
        problems.append("infra has no topic 'drift_check' for the nightly schedule")
    for setting in sorted(published_topic_settings(root)):
        key = setting.removesuffix("_topic")
        if key not in topics:
            problems.append(f"code publishes to {setting} but infra has no topic {key!r}")
            continue
        reference = str(environment.get(env_name(setting), ""))
        if f'google_pubsub_topic.topics["{key}"]' not in reference:
            problems.append(f"{env_name(setting)} does not name the {key!r} topic resource")
    scheduled = {unquote(job.get("topic")) for job in merged_locals(parsed).get("schedules", {}).values()}
    scheduler = resources(parsed, "google_cloud_scheduler_job")
    uses_schedules = any("each.value.topic" in str(job) for job in scheduler.values())
    if "drift_check" not in scheduled or not uses_schedules:
        problems.append("no Cloud Scheduler job publishes to the drift-check topic")
    return problems


def check_cloudbuild(root: Path) -> list[str]:
    import yaml

    problems = []
    try:
        build = yaml.safe_load((root / "cloudbuild.yaml").read_text())
    except (OSError, yaml.YAMLError) as error:
        return [f"cloudbuild.yaml unreadable: {error}"]
    steps = build.get("steps", [])
    ids = [step.get("id") for step in steps]
    test = next((i for i, step in enumerate(steps) if "make test" in str(step.get("args"))), None)
    deploy = next((i for i, step in enumerate(steps) if "terraform apply" in str(step.get("args"))), None)
    if test is None:
        problems.append("cloudbuild.yaml runs no `make test`")
    if deploy is None:
        problems.append("cloudbuild.yaml has no `terraform apply` deploy step")
    if test is not None and deploy is not None:
        if deploy < test or ids[test] not in (steps[deploy].get("waitFor") or []):
            problems.append("the deploy step does not wait for the tests")
        if steps[deploy].get("dir") != "infra":
            problems.append("the deploy step does not apply infra/")
        if "-target" in str(steps[deploy].get("args")):
            problems.append("the deploy step uses -target: some functions would not be deployed")
    if re.search(r"(?i)(password|secret|private_key)\s*[:=]", (root / "cloudbuild.yaml").read_text()):
        problems.append("cloudbuild.yaml seems to contain a secret")
    if test is not None:
        problems += _check_terraform_runs_first(steps, test, deploy)
        problems += _check_test_image(root, steps[test])
        problems += _check_terraform_reaches_tests(steps, test)
    return problems


def _script(step: dict) -> str:
    return "\n".join(str(arg) for arg in step.get("args") or [])


def _check_terraform_runs_first(steps: list[dict], test: int, deploy: int | None) -> list[str]:
    commands = ("terraform fmt -check", "terraform init", "terraform validate")
    check = next((i for i, step in enumerate(steps) if all(command in _script(step) for command in commands)), None)
    if check is None:
        return ["cloudbuild.yaml never runs terraform fmt -check, init and validate"]
    problems = []
    if not re.search(r"terraform init[^\n]*-backend-config=\"?prefix=", _script(steps[check])):
        problems.append("terraform init takes no state prefix: deployments sharing the state bucket would share state")
    for name, index in (("tests", test), ("deploy", deploy)):
        if index is None:
            continue
        waits = steps[index].get("waitFor")
        if index < check or (waits is not None and steps[check].get("id") not in waits and index == test):
            problems.append(f"the {name} step does not wait for terraform validate")
    return problems


def _check_test_image(root: Path, step: dict) -> list[str]:
    """The suite runs on the deployed Python with Java, the emulators and PostgreSQL 15 set up by the step."""
    problems = []
    runtimes = set(re.findall(r'runtime\s*=\s*"python3(\d+)"', "".join(
        path.read_text() for path in (root / "infra").glob("*.tf"))))
    image = str(step.get("name", ""))
    version = re.match(r"(?:docker\.io/)?(?:library/)?python:3\.(\d+)", image)
    if not version or {version.group(1)} != runtimes:
        problems.append(f"the test step runs on {image}, not the functions' Python 3.{'/'.join(sorted(runtimes))}")
    script = _script(step) + " " + " ".join(str(item) for item in step.get("env") or [])
    if "CLOUDSDK_PLATFORM_DIR" not in script:
        for package in ("google-cloud-cli-firestore-emulator", "google-cloud-cli-pubsub-emulator"):
            if package not in script:
                problems.append(f"the test step does not install {package} (nor set CLOUDSDK_PLATFORM_DIR)")
    if not re.search(r"openjdk-\d+-jre|default-jre|temurin", script):
        problems.append("the test step installs no Java for the emulators")
    if "postgresql-15" not in script and "POSTGRES_BIN" not in script:
        problems.append("the test step installs no PostgreSQL 15 for the ingestion tests")
    return problems


def _check_terraform_reaches_tests(steps: list[dict], test: int) -> list[str]:
    """make test runs `terraform fmt -check`: the test step must find the binary."""
    for step in steps[:test]:
        copied = re.search(r"^\s*cp\s.*terraform.*\s(/[\w/.-]+)/terraform\s*$", _script(step), re.MULTILINE)
        if copied:
            folder = copied.group(1)
            shared = any(volume.get("path") == folder for volume in steps[test].get("volumes") or [])
            on_path = any(str(item).startswith("PATH=") and folder in str(item)
                          for item in steps[test].get("env") or [])
            if shared and on_path:
                return []
    if "terraform" in str(steps[test].get("name")):
        return []
    return ["the test step has no terraform binary for make test's fmt check"]


def check_skips_have_reasons(root: Path) -> list[str]:
    problems = []
    for path in (root / "infra").glob("*.tf"):
        for line_number, line in enumerate(path.read_text().splitlines(), 1):
            match = re.search(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?", line)
            if match and len((match.group(2) or "").strip()) < 15:
                problems.append(f"{path.name}:{line_number}: checkov skip {match.group(1)} without a reason")
    return problems


def check_dead_letters(root: Path) -> list[str]:
    """Every dead-letter topic is read by a push consumer or watched by an
    alert policy on a subscription to it, instance for instance."""
    parsed, problems = load_terraform(root)
    topics = {name: body for name, body in resources(parsed, "google_pubsub_topic").items()
              if "dead" in name or "dead-letter" in str(body.get("name"))}
    subscriptions = resources(parsed, "google_pubsub_subscription")
    policies = resources(parsed, "google_monitoring_alert_policy")
    for topic, body in topics.items():
        readers = [name for name, subscription in subscriptions.items()
                   if f"google_pubsub_topic.{topic}" in str(subscription.get("topic"))]
        consumed = any(subscriptions[name].get("push_config") for name in readers)
        watched = any(f"google_pubsub_subscription.{name}" in str(policy.get("conditions"))
                      and policy.get("for_each") == body.get("for_each")
                      and "num_undelivered_messages" in str(policy.get("conditions"))
                      for name in readers for policy in policies.values())
        if not (consumed or watched):
            problems.append(f"dead-letter topic {topic} has neither a consumer nor an alert")
    return problems


def check_training_job(root: Path) -> list[str]:
    """The training job exists, runs the job module, and its time limit, the
    lease and the deadline the code reads come from one place and agree."""
    from shared.config import ConfigError, check_training_time_limits
    from shared.training.launcher.port import JOB_MODULE
    from shared.training.retrain_handler import TRAINING_JOB_MAX_RETRIES

    parsed, problems = load_terraform(root)
    declared = merged_locals(parsed)
    jobs = resources(parsed, "google_cloud_run_v2_job")
    if len(jobs) != 1:
        return problems + [f"{len(jobs)} Cloud Run jobs (want exactly the training job)"]
    [job] = jobs.values()
    task = job["template"][0]["template"][0]
    dockerfile = root / "training-job.Dockerfile"
    entrypoint = re.search(r"^ENTRYPOINT\s+(.*)$", dockerfile.read_text() if dockerfile.exists() else "", re.M)
    if not entrypoint or JOB_MODULE not in entrypoint.group(1):
        problems.append(f"the training job does not run {JOB_MODULE} (training-job.Dockerfile's ENTRYPOINT)")
    if "command" in str(task.get("containers")):
        problems.append("the training job sets a command: the image's ENTRYPOINT is the one place that names it")
    if 'local.function_variables["training_job"]' not in str(task.get("containers")).replace('\\"', '"'):
        problems.append("the training job does not get its variables (local.function_variables[\"training_job\"])")
    if "local.training_time_limits.job_timeout_seconds" not in str(task.get("timeout")):
        problems.append("the training job's timeout is not local.training_time_limits.job_timeout_seconds")
    if declared.get("training_job_max_retries") != TRAINING_JOB_MAX_RETRIES \
            or "local.training_job_max_retries" not in str(task.get("max_retries")):
        problems.append(f"the training job's max_retries is not {TRAINING_JOB_MAX_RETRIES} "
                        "(retrain_handler.TRAINING_JOB_MAX_RETRIES)")
    environment = declared.get("deployment_settings", {})
    limits = declared.get("training_time_limits", {})
    for variable, key in (("TRAINING_DEADLINE_SECONDS", "deadline_seconds"),
                          ("TRAINING_LEASE_SECONDS", "lease_seconds"),
                          ("TRAINING_JOB_TIMEOUT_SECONDS", "job_timeout_seconds")):
        if f"local.training_time_limits.{key}" not in str(environment.get(variable)):
            problems.append(f"{variable} is not set from local.training_time_limits.{key}")
    try:
        check_training_time_limits(Settings(
            training_deadline_seconds=float(limits.get("deadline_seconds", 0)),
            training_lease_seconds=float(limits.get("lease_seconds", 0)),
            training_job_timeout_seconds=float(limits.get("job_timeout_seconds", 0))))
    except ConfigError as error:
        problems.append(f"training_time_limits disagree: {error.message}")
    if unquote(environment.get("TRAINING_LAUNCHER")) != "cloud_run":
        problems.append("TRAINING_LAUNCHER is not cloud_run in infra")
    if "local.training_job_name" not in str(environment.get("TRAINING_JOB_NAME")) \
            or "local.training_job_name" not in str(job.get("name")):
        problems.append("TRAINING_JOB_NAME does not name the training job")
    build = (root / "cloudbuild.yaml").read_text() if (root / "cloudbuild.yaml").exists() else ""
    if "training-job.Dockerfile" not in build or not (root / "training-job.Dockerfile").exists():
        problems.append("Cloud Build does not build the training job's image from training-job.Dockerfile")
    return problems


if __name__ == "__main__":
    # Rewrite infra/function_variables.json from shared/config.py.
    target = Path(__file__).resolve().parents[2] / "infra" / "function_variables.json"
    target.write_text(json.dumps({f: variables_of(f) for f in FUNCTION_SETTINGS}, indent=2) + "\n")
    print(f"wrote {target}")
