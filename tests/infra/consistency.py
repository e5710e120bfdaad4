"""Checks of infra/ and cloudbuild.yaml that need no Terraform binary.

Each function takes the repository root and returns a list of problems
(empty when consistent), so tests can run it on the real tree and on a
deliberately broken copy.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

import hcl2

from shared.config import Settings, env_name

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


def resources(parsed: dict[str, dict], kind: str) -> dict[str, dict]:
    found = {}
    for document in parsed.values():
        for block in document.get("resource", []):
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
                definition = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == alias.name),
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
    parsed, problems = load_terraform(root)
    environment = merged_locals(parsed).get("common_environment", {})
    secrets = merged_locals(parsed).get("secret_environment", {})
    functions = resources(parsed, "google_cloudfunctions2_function").get("functions", {})
    service = (functions.get("service_config") or [{}])[0]
    if "local.common_environment" not in str(service.get("environment_variables")):
        problems.append("the function resource does not set local.common_environment")
    if secrets and "local.secret_environment" not in str(service.get("dynamic")):
        problems.append("the function resource does not attach local.secret_environment")
    for field in fields(Settings):
        if env_name(field.name) not in environment and env_name(field.name) not in secrets:
            problems.append(f"{env_name(field.name)} is read by every function but not set in infra")
    readme = (root / "README.md").read_text() if (root / "README.md").exists() else ""
    for field in fields(Settings):
        if f"`{env_name(field.name)}`" not in readme:
            problems.append(f"{env_name(field.name)} is missing from the README's configuration table")
    return problems


def published_topic_settings(root: Path) -> set[str]:
    pattern = re.compile(r"\.publish\(\s*settings\.(\w+_topic)")
    found = set()
    for path in (root / "shared").rglob("*.py"):
        found.update(pattern.findall(path.read_text()))
    return found


def check_topics(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    topics = merged_locals(parsed).get("topics", {})
    environment = merged_locals(parsed).get("common_environment", {})
    for setting in sorted(published_topic_settings(root) | {"drift_check_topic"}):
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
    return problems


def check_skips_have_reasons(root: Path) -> list[str]:
    problems = []
    for path in (root / "infra").glob("*.tf"):
        for line_number, line in enumerate(path.read_text().splitlines(), 1):
            match = re.search(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?", line)
            if match and len((match.group(2) or "").strip()) < 15:
                problems.append(f"{path.name}:{line_number}: checkov skip {match.group(1)} without a reason")
    return problems
