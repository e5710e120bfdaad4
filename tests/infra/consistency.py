"""Checks of infra/ and cloudbuild.yaml that need no Terraform binary.

Each function takes the repository root and returns a list of problems
(empty when consistent), so tests can run it on the real tree and on a
deliberately broken copy.
"""

from __future__ import annotations

import ast
import json
import re
import sys
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


def data_sources(parsed: dict[str, dict], kind: str) -> dict[str, dict]:
    found = {}
    for document in parsed.values():
        for block in document.get("data", []):
            for block_kind, named in block.items():
                if unquote(block_kind) == kind:
                    found.update({unquote(name): body for name, body in named.items()})
    return found


def variable_default(parsed: dict[str, dict], name: str):
    for document in parsed.values():
        for block in document.get("variable", []):
            for variable_name, body in block.items():
                if unquote(variable_name) == name:
                    return body
    return None


# --- the deployed archive -----------------------------------------------------------------------

FORBIDDEN_IN_ARCHIVE = re.compile(r"(^|/)(tools|tests|bench|infra|\.venv[^/]*|__pycache__|\.local|\.git|\.build)(/|$)"
                                  r"|\.pyc$")


def archived_files(root: Path, parsed: dict[str, dict]) -> tuple[list[str], list[str]]:
    """The files the archive_file allow-list selects, as Terraform's fileset() would; and problems."""
    problems = []
    archives = data_sources(parsed, "archive_file")
    if not archives:
        return [], ["no archive_file data source builds the function source"]
    for name, archive in archives.items():
        if "source_dir" in archive or "excludes" in archive:
            problems.append(f"archive_file.{name} zips a directory minus excludes: list what goes in instead")
        if "local.source_files" not in str(archive.get("dynamic")):
            problems.append(f"archive_file.{name} does not build its entries from local.source_files")
    expression = str(merged_locals(parsed).get("source_files", ""))
    literals = re.findall(r'\[([^\]]*)\]', expression)
    selected = {unquote(item.strip()) for group in literals for item in group.split(",") if item.strip()}
    for pattern in re.findall(r'fileset\(local\.source_root,\s*"([^"]+)"\)', expression):
        # pathlib's glob matches `**` as zero or more folders, as fileset() does.
        selected.update(str(path.relative_to(root)) for path in root.glob(pattern) if path.is_file())
    if not selected:
        problems.append("local.source_files selects nothing")
    return sorted(selected), problems


def local_imports(root: Path, module_path: Path) -> set[Path]:
    """Files of this repository that `module_path` imports."""
    found = set()
    for node in ast.walk(ast.parse(module_path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            base = root / Path(*name.split("."))
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    found.add(candidate)
            parts = name.split(".")
            for depth in range(1, len(parts)):  # importing a.b.c runs a/__init__.py and a/b/__init__.py
                package = root / Path(*parts[:depth]) / "__init__.py"
                if package.is_file():
                    found.add(package)
    return found


def check_source_archive(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    selected, found = archived_files(root, parsed)
    problems += found
    if not selected:
        return problems
    problems += [f"the deployed zip would carry {path}" for path in selected if FORBIDDEN_IN_ARCHIVE.search(path)]
    needed, queue = set(), [root / "main.py"]
    while queue:
        module = queue.pop()
        if module in needed:
            continue
        needed.add(module)
        queue.extend(local_imports(root, module))
    for module in sorted(needed):
        relative = str(module.relative_to(root))
        if relative not in selected:
            problems.append(f"the deployed zip lacks {relative}, which main.py imports")
    if "requirements.txt" not in selected:
        problems.append("the deployed zip lacks requirements.txt")
    return problems


# --- names within their limits ------------------------------------------------------------------

NAME_LIMITS = {  # resource type, name attribute: (shortest, longest, allowed)
    ("google_service_account", "account_id"): (6, 30, r"^[a-z][a-z0-9-]*[a-z0-9]$"),
    ("google_storage_bucket", "name"): (3, 63, r"^[a-z0-9][a-z0-9_.-]*[a-z0-9]$"),
    ("google_firestore_database", "name"): (4, 63, r"^[a-z][a-z0-9-]*[a-z0-9]$"),
}
LONGEST_PROJECT_ID = 30


def longest_prefix(parsed: dict[str, dict]) -> int | None:
    body = variable_default(parsed, "name_prefix") or {}
    match = re.search(r"length\(var\.name_prefix\)\s*<=\s*(\d+)", str(body.get("validation")))
    return int(match.group(1)) if match else None


def _name_part(expression: str, key: str, value, prefix: str) -> str:
    """One ${...} of a name: the prefix, the longest project id, or the for_each key/value."""
    if expression == "var.name_prefix":
        return prefix
    if expression == "var.project_id":
        return "p" * LONGEST_PROJECT_ID
    if expression == "each.key":
        return key
    if expression == "each.value" and isinstance(value, str):
        return unquote(value)
    attribute = re.fullmatch(r"each\.value\.(\w+)", expression)
    if attribute and isinstance(value, dict) and attribute.group(1) in value:
        return unquote(value[attribute.group(1)])
    raise ValueError(expression)


def expand_name(template: str, instances: dict, prefix: str) -> tuple[dict[str, str], str | None]:
    """Each instance's name with the given prefix and the longest project id; or why it cannot be evaluated."""
    names = {}
    for key, value in instances.items():
        try:
            names[key] = re.sub(r"\$\{([^}]*)\}", lambda match, key=key, value=value: _name_part(
                match.group(1), key, value, prefix), unquote(template))
        except ValueError as error:
            return {}, f"cannot evaluate ${{{error}}}"
    return names, None


def check_name_limits(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    prefix_length = longest_prefix(parsed)
    if prefix_length is None:
        return problems + ["var.name_prefix has no length limit (validation `length(var.name_prefix) <= N`)"]
    all_locals = merged_locals(parsed)
    for (kind, attribute), (shortest, longest, allowed) in NAME_LIMITS.items():
        seen: dict[str, str] = {}
        for resource_name, body in resources(parsed, kind).items():
            for_each = str(body.get("for_each", ""))
            local = re.fullmatch(r"\$\{local\.(\w+)\}", for_each)
            if for_each and not local:
                problems.append(f"{kind}.{resource_name}: for_each must be a local map to check its names")
                continue
            instances = all_locals.get(local.group(1), {}) if local else {"": ""}
            for length in {prefix_length, 2}:
                names, reason = expand_name(str(body.get(attribute, "")), instances, "a" * length)
                if reason:
                    problems.append(f"{kind}.{resource_name}.{attribute}: {reason}")
                    break
                for key, name in names.items():
                    where = f"{kind}.{resource_name}[{key}]" if key else f"{kind}.{resource_name}"
                    if not shortest <= len(name) <= longest:
                        problems.append(f"{where}.{attribute} {name!r} has {len(name)} characters with a "
                                        f"{length}-character name_prefix (allowed {shortest}-{longest})")
                    elif not re.match(allowed, name):
                        problems.append(f"{where}.{attribute} {name!r} is not a valid name")
                    if length == prefix_length:
                        if name in seen and seen[name] != where:
                            problems.append(f"{where}.{attribute} {name!r} collides with {seen[name]}")
                        seen[name] = where
    return problems


# --- secrets ------------------------------------------------------------------------------------

def check_secrets(root: Path) -> list[str]:
    """Every secret a function reads names a version (never `latest`) and the
    function depends on the accessor grant, so the first deploy finds both."""
    parsed, problems = load_terraform(root)
    grants = resources(parsed, "google_secret_manager_secret_iam_member")
    for function_name, function in resources(parsed, "google_cloudfunctions2_function").items():
        service = (function.get("service_config") or [{}])[0]
        blocks = [block for dynamic in service.get("dynamic", []) for kind, block in dynamic.items()
                  if unquote(kind) == "secret_environment_variables"]
        blocks = [content for block in blocks for content in block.get("content", [])]
        blocks += service.get("secret_environment_variables", [])
        depends_on = " ".join(str(item) for item in function.get("depends_on", []))
        for block in blocks:
            version = unquote(str(block.get("version", "")))
            if version in ("", "latest"):
                problems.append(f"google_cloudfunctions2_function.{function_name} reads secret "
                                f"{block.get('key')} at version {version or '(none)'!r}: pin a version that exists")
            accessor = [name for name, grant in grants.items() if "secretAccessor" in str(grant.get("role"))
                        and f"google_secret_manager_secret_iam_member.{name}" in depends_on]
            if not accessor:
                problems.append(f"google_cloudfunctions2_function.{function_name} reads secret {block.get('key')} "
                                "but does not depend on a secretAccessor grant")
    return problems


# --- least privilege on data --------------------------------------------------------------------

DATA_ROLES = re.compile(r"roles/(datastore\.|storage\.object|storage\.admin|secretmanager\.secretAccessor|"
                        r"bigquery\.data)")


def binding_roles(binding: dict, all_locals: dict) -> list[str]:
    """The role(s) an IAM member resource grants, through its for_each local if it uses one."""
    role = unquote(str(binding.get("role", "")))
    if role.startswith("roles/"):
        return [role]
    local = re.fullmatch(r"\$\{local\.(\w+)\}", str(binding.get("for_each", "")))
    values = all_locals.get(local.group(1), {}).values() if local else []
    return [unquote(value if isinstance(value, str) else str(value.get("role", ""))) for value in values] or [role]


def check_data_access_is_narrowed(root: Path) -> list[str]:
    """No data role on the whole project or the whole artifact bucket where a condition can narrow it."""
    parsed, problems = load_terraform(root)
    for name, binding in resources(parsed, "google_project_iam_member").items():
        granted = [role for role in binding_roles(binding, merged_locals(parsed)) if DATA_ROLES.search(role)]
        if not granted:
            continue
        role = ", ".join(granted)
        condition = (binding.get("condition") or [{}])[0]
        if "resource.name" not in str(condition.get("expression", "")):
            problems.append(f"google_project_iam_member.{name} grants {unquote(role)} on the whole project: "
                            "add a condition on resource.name")
    for name, binding in resources(parsed, "google_storage_bucket_iam_member").items():
        if "google_storage_bucket.artifacts" not in str(binding.get("bucket")):
            continue
        condition = (binding.get("condition") or [{}])[0]
        expression = str(condition.get("expression", ""))
        if "startsWith" not in expression:
            problems.append(f"google_storage_bucket_iam_member.{name} grants the whole artifact bucket: "
                            "condition it on object prefixes")
        elif "resource.type" in expression and "objectListPrefix" not in expression:
            problems.append(f"google_storage_bucket_iam_member.{name} lets its holder list every object name: "
                            "condition listing on storage.googleapis.com/objectListPrefix")
    problems += _check_prediction_database_readers(root, parsed)
    database = resources(parsed, "google_firestore_database").get("main", {})
    if "(default)" in str(database.get("name")) or "var.name_prefix" not in str(database.get("name")):
        problems.append("the Firestore database is shared by every deployment in the project: name it after "
                        "var.name_prefix")
    return problems


# --- what makes the first apply work, and the deployment work -----------------------------------

def check_deployment_works(root: Path) -> list[str]:
    """Failures a schema check cannot see: builds, keys, ingress, lifecycle."""
    parsed, problems = load_terraform(root)
    for name, function in resources(parsed, "google_cloudfunctions2_function").items():
        build = (function.get("build_config") or [{}])[0]
        if "service_account" not in build:
            problems.append(f"google_cloudfunctions2_function.{name} has no build_config.service_account: new "
                            "projects build with an under-privileged default account")
    ingress = variable_default(parsed, "http_ingress") or {}
    balancers = [kind for document in parsed.values() for block in document.get("resource", []) for kind in block
                 if re.search(r"google_compute_(region_)?(url_map|backend_service)", unquote(kind))]
    if unquote(str(ingress.get("default"))) != "ALLOW_ALL" and not balancers:
        problems.append("HTTP functions default to an internal ingress but no load balancer is defined: "
                        "their run.app URLs refuse every caller")
    uses_key = {kind: names for kind in ("google_storage_bucket", "google_pubsub_topic")
                for names in [[n for n, body in resources(parsed, kind).items() if "var.kms_key_name" in str(body)]]
                if names}
    grants = str(resources(parsed, "google_kms_crypto_key_iam_member"))
    for kind, agent in (("google_storage_bucket", "google_storage_project_service_account"),
                        ("google_pubsub_topic", "pubsub_service_agent")):
        if kind in uses_key and agent not in grants:
            problems.append(f"{kind} uses var.kms_key_name but its service agent is never granted the key")
        for name in uses_key.get(kind, []):
            if "google_kms_crypto_key_iam_member" not in str(resources(parsed, kind)[name].get("depends_on")):
                problems.append(f"{kind}.{name} uses var.kms_key_name before the key grant exists (depends_on)")
    for name, bucket in resources(parsed, "google_storage_bucket").items():
        versioned = "True" in str(bucket.get("versioning")) or "true" in str(bucket.get("versioning"))
        for rule in bucket.get("lifecycle_rule", []):
            action = str(rule.get("action"))
            condition = (rule.get("condition") or [{}])[0]
            noncurrent_only = any(key in condition for key in ("num_newer_versions", "days_since_noncurrent_time",
                                                                "noncurrent_time_before")) or \
                "ARCHIVED" in str(condition.get("with_state"))
            if versioned and "Delete" in action and not noncurrent_only:
                problems.append(f"google_storage_bucket.{name}: a Delete rule matches live objects in a versioned "
                                "bucket (condition it on noncurrent versions)")
    return problems


def check_emulator_routes(root: Path) -> list[str]:
    """`make emulators` creates the push subscriptions the deployment has, to the local server's paths."""
    parsed, problems = load_terraform(root)
    all_locals = merged_locals(parsed)
    source = (root / "tests" / "emulators.py").read_text() if (root / "tests" / "emulators.py").exists() else ""
    tree = ast.parse(source or "")
    routes = next((node.value for node in tree.body if isinstance(node, ast.Assign)
                   and any(getattr(target, "id", "") == "PUSH_ROUTES" for target in node.targets)), None)
    declared = {}
    if isinstance(routes, ast.Dict):
        declared = {ast.literal_eval(key): ast.literal_eval(value) for key, value in zip(routes.keys, routes.values)}
    if not declared:
        return problems + ["tests/emulators.py declares no PUSH_ROUTES"]
    emulated_topics = _emulator_topic_names(root)
    for topic_key, template in all_locals.get("topics", {}).items():
        topic = unquote(str(template)).replace("${var.name_prefix}-", "")
        if emulated_topics.get(topic_key) != topic:
            problems.append(f"emulator mode names topic {topic_key!r} {emulated_topics.get(topic_key)!r}, "
                            f"the deployment {topic!r}")
    for function_key, topic_key in all_locals.get("event_subscriptions", {}).items():
        entry_point = unquote(all_locals.get("functions", {}).get(function_key, {}).get("entry_point"))
        if declared.get(unquote(topic_key)) != f"/{entry_point}":
            problems.append(f"emulator mode does not push topic {unquote(topic_key)!r} to /{entry_point}")
    return problems


def _emulator_topic_names(root: Path) -> dict[str, str]:
    """tests/emulators.py's topic_names() as found under `root` (a copy in the tests)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("emulators_under_check", root / "tests" / "emulators.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        return module.topic_names({})
    finally:
        del sys.modules[spec.name]


def reads_predictions(root: Path, entry_point: str) -> bool:
    """Whether the entry point, through shared/wiring.py, ever builds the prediction store."""
    wiring = ast.parse((root / "shared" / "wiring.py").read_text())
    calls = {node.name: {inner.id for inner in ast.walk(node) if isinstance(inner, ast.Name)}
             for node in wiring.body if isinstance(node, ast.FunctionDef)}
    module = ast.parse((root / "functions" / f"{entry_point}.py").read_text())
    pending = [node.attr for node in ast.walk(module) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Name) and node.value.id == "wiring"]
    seen = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(calls.get(name, ()))
    return "prediction_store" in seen


def _check_prediction_database_readers(root: Path, parsed: dict[str, dict]) -> list[str]:
    """A function that never builds the prediction store gets no grant on its database."""
    all_locals = merged_locals(parsed)
    databases = all_locals.get("function_databases", {})
    problems = []
    for key, spec in all_locals.get("functions", {}).items():
        if key not in databases:
            problems.append(f"local.function_databases does not say which database {key} uses")
        elif key in all_locals.get("firestore_roles", {}) and "google_firestore_database.main." in str(databases[key]) \
                and not reads_predictions(root, unquote(spec.get("entry_point"))):
            problems.append(f"{key} never reads predictions but is granted the prediction database")
    return problems


# --- the deploying identity ---------------------------------------------------------------------

# Resource type (prefix) -> the role that lets the deploying identity manage it.
DEPLOYER_ROLES = {
    "google_project_service": "roles/serviceusage.serviceUsageAdmin",
    "google_service_account_iam_": "roles/iam.serviceAccountAdmin",
    "google_service_account": "roles/iam.serviceAccountAdmin",
    "google_project_iam_": "roles/resourcemanager.projectIamAdmin",
    "google_storage_": "roles/storage.admin",
    "google_firestore_": "roles/datastore.owner",
    "google_pubsub_": "roles/pubsub.admin",
    "google_cloudfunctions2_": "roles/cloudfunctions.developer",
    "google_cloud_run_": "roles/run.admin",
    "google_cloud_scheduler_": "roles/cloudscheduler.admin",
    "google_secret_manager_": "roles/secretmanager.admin",
    "google_artifact_registry_": "roles/artifactregistry.admin",
    "google_kms_": "roles/cloudkms.admin",
}
ACTING_AS_ACCOUNTS = "roles/iam.serviceAccountUser"


def check_deployer_roles(root: Path) -> list[str]:
    """infra/README.md lists a role for every kind of resource Terraform manages, and grants it."""
    parsed, problems = load_terraform(root)
    runbook = (root / "infra" / "README.md").read_text() if (root / "infra" / "README.md").exists() else ""
    grant_loop = re.search(r"for role in (.*?); do", runbook, re.DOTALL)
    granted = set(grant_loop.group(1).replace("\\", " ").split()) if grant_loop else set()
    kinds = sorted({unquote(kind) for document in parsed.values() for block in document.get("resource", [])
                    for kind in block})
    needed = {}
    for kind in kinds:
        role = next((role for prefix, role in sorted(DEPLOYER_ROLES.items(), key=lambda item: -len(item[0]))
                     if kind.startswith(prefix)), None)
        if role is None:
            problems.append(f"no deploying-identity role is known for {kind}: add it to DEPLOYER_ROLES and the runbook")
        else:
            needed.setdefault(role, kind)
    if any("service_account" in str(body) for kind in kinds for body in resources(parsed, kind).values()):
        needed.setdefault(ACTING_AS_ACCOUNTS, "functions and subscriptions that run as a service account")
    for role, reason in sorted(needed.items()):
        if f"`{role}`" not in runbook:
            problems.append(f"infra/README.md does not list {role} (needed for {reason})")
        elif role != "roles/cloudkms.admin" and role.removeprefix("roles/") not in granted:
            problems.append(f"infra/README.md's grant commands do not grant {role} (needed for {reason})")
    return problems


if __name__ == "__main__":
    # Rewrite infra/function_variables.json from shared/config.py.
    target = Path(__file__).resolve().parents[2] / "infra" / "function_variables.json"
    target.write_text(json.dumps({f: variables_of(f) for f in FUNCTION_SETTINGS}, indent=2) + "\n")
    print(f"wrote {target}")
