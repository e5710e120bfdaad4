"""Per-function invokers (issue 26): record_outcome only for the labeller
list, the others by role, none public -- checked on infra/ as parsed, and
shown to fail on a copy broken on purpose."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.infra.consistency import exported_entry_points, load_terraform, merged_locals, resources, unquote

PUBLIC = ("allUsers", "allAuthenticatedUsers")


def check_invokers(root: Path) -> list[str]:
    parsed, problems = load_terraform(root)
    invokers = merged_locals(parsed).get("function_specific_invokers", {})
    http = sorted(name for name, kind in exported_entry_points(root).items() if kind == "http")
    problems += [f"HTTP function {name} has no entry in local.function_specific_invokers"
                 for name in http if name not in invokers]
    variables_used = {name: set(re.findall(r"var\.(\w+)", str(value))) for name, value in invokers.items()}
    if variables_used.get("record_outcome") != {"labeller_members"}:
        problems.append("record_outcome must be invoked by var.labeller_members only, "
                        f"not {sorted(variables_used.get('record_outcome', []))}")
    problems += [f"{name} is invoked by the labeller list" for name, used in variables_used.items()
                 if name != "record_outcome" and "labeller_members" in used]
    binding = resources(parsed, "google_cloud_run_service_iam_member").get("http_invokers", {})
    if binding.get("for_each") != "${local.http_invokers}" \
            or "http_function_invokers" not in str(merged_locals(parsed).get("http_invokers")) \
            or "function_specific_invokers" not in str(merged_locals(parsed).get("http_function_invokers")):
        problems.append("the http_invokers binding is not built from local.function_specific_invokers")
    declared = {unquote(name): body for document in parsed.values() for block in document.get("variable", [])
                for name, body in block.items()}
    for name in sorted(set().union(*variables_used.values())):
        conditions = " ".join(str(v.get("condition")) for v in declared.get(name, {}).get("validation", []))
        if not all(public in conditions for public in PUBLIC):
            problems.append(f"var.{name} does not refuse {' and '.join(PUBLIC)}")
    return problems


def test_each_http_function_has_its_own_invokers_and_outcomes_only_the_labellers():
    assert check_invokers(ROOT) == []


@pytest.mark.parametrize("old, new, problem", [
    ("record_outcome      = var.labeller_members", "record_outcome      = var.invoker_members",
     "record_outcome must be invoked by var.labeller_members only"),
    ("predict             = coalesce(var.predict_invokers, var.invoker_members)",
     "predict             = concat(var.predict_invokers, var.labeller_members)", "predict is invoked by the labeller"),
    ("    model_metadata      = coalesce(var.reader_invokers, var.invoker_members)\n", "",
     "HTTP function model_metadata has no entry"),
])
def test_a_broken_copy_is_reported(tmp_path, old, new, problem):
    for name in ("infra", "functions"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns(".terraform", "__pycache__"))
    shutil.copy(ROOT / "main.py", tmp_path / "main.py")
    iam = tmp_path / "infra" / "iam.tf"
    assert old in iam.read_text()
    iam.write_text(iam.read_text().replace(old, new))
    assert any(problem in found for found in check_invokers(tmp_path))


def test_a_labeller_variable_without_its_public_refusal_is_reported(tmp_path):
    for name in ("infra", "functions"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns(".terraform", "__pycache__"))
    shutil.copy(ROOT / "main.py", tmp_path / "main.py")
    variables = tmp_path / "infra" / "variables.tf"
    text = variables.read_text()
    variables.write_text(text.replace('for member in var.labeller_members : !contains(["allUsers", '
                                      '"allAuthenticatedUsers"], member)', "true"))
    assert "var.labeller_members does not refuse allUsers and allAuthenticatedUsers" in check_invokers(tmp_path)
