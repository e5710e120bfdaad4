"""Checks that the first `terraform apply`, the first Cloud Build run and a
deployed loop work -- what a schema check cannot see: the archive's contents,
names within their limits, secrets with versions and grants, data grants
narrowed by conditions, build identity, key grants, lifecycle rules, emulator
mode's push routes and the deploying identity's roles.

Like consistency.py, each check takes the repository root and returns a list
of problems, so tests run it on the real tree and on a copy broken on purpose.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from tests.infra.consistency import load_terraform, merged_locals, resources, unquote


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
    archives = resources(parsed, "archive_file", block_type="data")
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
    return "prediction_store" in wiring_builders(root, entry_point)


def launches_training(root: Path, entry_point: str) -> bool:
    """Whether the entry point launches the training job: it then shares the
    job's processed events and training requests in the records database."""
    return "training_launcher" in wiring_builders(root, entry_point)


def wiring_builders(root: Path, entry_point: str) -> set[str]:
    """Every shared/wiring.py function the entry point reaches."""
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
    return seen


def _check_prediction_database_readers(root: Path, parsed: dict[str, dict]) -> list[str]:
    """A function that never builds the prediction store gets no grant on its database."""
    all_locals = merged_locals(parsed)
    databases = all_locals.get("function_databases", {})
    problems = []
    for key, spec in all_locals.get("functions", {}).items():
        if key not in databases:
            problems.append(f"local.function_databases does not say which database {key} uses")
        elif key in all_locals.get("firestore_roles", {}) and "google_firestore_database.main." in str(databases[key]) \
                and not reads_predictions(root, unquote(spec.get("entry_point"))) \
                and not launches_training(root, unquote(spec.get("entry_point"))):
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
    "google_logging_metric": "roles/logging.configWriter",
    "google_monitoring_": "roles/monitoring.alertPolicyEditor",
    "google_monitoring_uptime_check_config": "roles/monitoring.uptimeCheckConfigEditor",
    "google_billing_budget": "roles/billing.costsManager",
}
# Granted on something other than the project (the key, the billing account):
# the runbook lists them, its project-level grant loop does not.
NOT_PROJECT_ROLES = {"roles/cloudkms.admin", "roles/billing.costsManager"}
ACTING_AS_ACCOUNTS = "roles/iam.serviceAccountUser"


def check_deployer_roles(root: Path) -> list[str]:
    """infra/README.md lists a role for every kind of resource Terraform manages, and grants it."""
    parsed, problems = load_terraform(root)
    runbook = (root / "infra" / "README.md").read_text() if (root / "infra" / "README.md").exists() else ""
    grant_loop = re.search(r"for role in (.*?); do", runbook, re.DOTALL)
    granted = set(grant_loop.group(1).replace("\\", " ").split()) if grant_loop else set()
    kinds = sorted({unquote(kind) for document in parsed.values() for block in document.get("resource", [])
                    for kind in block if unquote(kind).startswith("google_")})  # time_sleep needs no role
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
        elif role not in NOT_PROJECT_ROLES and role.removeprefix("roles/") not in granted:
            problems.append(f"infra/README.md's grant commands do not grant {role} (needed for {reason})")
    return problems
