"""Checks that the deployed code installs exactly the locked dependencies:
requirements.lock (pins and hashes of every package, `make lock`) agrees with
requirements.txt, and the functions' archive, the training image and `make`
install it; the training image's base is pinned by digest."""

from __future__ import annotations

import re
from pathlib import Path

LOCK_COMMAND = "make lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(text: str) -> tuple[dict[str, str], list[str]]:
    """name -> version of every requirement line; and the lines that are not pinned with ==."""
    pins, unpinned = {}, []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
        else:
            unpinned.append(line)
    return pins, unpinned


def lock_entries(text: str) -> dict[str, dict]:
    """name -> {version, hashes, direct} of every entry of a pip-compile --generate-hashes file."""
    entries, current = {}, None
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            current = entries.setdefault(canonical(match.group(1)),
                                         {"version": match.group(2), "hashes": 0, "direct": False})
        elif current is not None and "--hash=sha256:" in line:
            current["hashes"] += 1
        elif current is not None and re.search(r"#\s+(via\s+)?-r requirements\.txt", line):
            current["direct"] = True
    return entries


def check_lock(root: Path) -> list[str]:
    """requirements.lock pins what requirements.txt pins, with hashes for everything."""
    fix = f"run `{LOCK_COMMAND}` and commit requirements.lock"
    if not (root / "requirements.lock").exists():
        return [f"no requirements.lock: {fix}"]
    wanted, unpinned = requirement_pins((root / "requirements.txt").read_text())
    problems = [f"requirements.txt does not pin {line!r} with ==" for line in unpinned]
    locked = lock_entries((root / "requirements.lock").read_text())
    for name, version in sorted(wanted.items()):
        if name not in locked:
            problems.append(f"requirements.lock lacks {name}=={version} from requirements.txt: {fix}")
        elif locked[name]["version"] != version:
            problems.append(f"requirements.lock pins {name}=={locked[name]['version']}, requirements.txt "
                            f"{name}=={version}: {fix}")
    for name, entry in sorted(locked.items()):
        if entry["direct"] and name not in wanted:
            problems.append(f"requirements.lock still carries {name} from requirements.txt, which no longer "
                            f"names it: {fix}")
        if entry["hashes"] == 0:
            problems.append(f"requirements.lock has no hash for {name}: {fix}")
    return problems


def check_lock_is_installed(root: Path) -> list[str]:
    """Every place that installs the deployed dependencies installs the lock, hashes checked."""
    problems = []
    storage = (root / "infra" / "storage.tf").read_text() if (root / "infra" / "storage.tf").exists() else ""
    if not re.search(r'"requirements\.txt"\s*\?\s*"requirements\.lock"', storage):
        problems.append("the functions' archive ships requirements.txt, not requirements.lock, as its "
                        "requirements.txt: Cloud Functions would resolve unpinned dependencies at build time")
    dockerfile = root / "training-job.Dockerfile"
    text = dockerfile.read_text() if dockerfile.exists() else ""
    if not re.search(r"pip install[^\n]*--require-hashes[^\n]*-r requirements\.lock", text):
        problems.append("training-job.Dockerfile does not install requirements.lock with --require-hashes")
    makefile = (root / "Makefile").read_text() if (root / "Makefile").exists() else ""
    if not re.search(r"pip install[^\n]*--require-hashes[^\n]*-r requirements\.lock", makefile):
        problems.append("make does not install requirements.lock with --require-hashes")
    if not re.search(r"^lock:", makefile, re.M) or "--generate-hashes" not in makefile:
        problems.append("no `make lock` target regenerates requirements.lock with hashes")
    return problems


def check_base_image_pinned(root: Path) -> list[str]:
    dockerfile = root / "training-job.Dockerfile"
    text = dockerfile.read_text() if dockerfile.exists() else ""
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if not bases:
        return ["training-job.Dockerfile has no FROM"]
    return [f"training-job.Dockerfile's base {base} is not pinned by digest (@sha256:<64 hex>)"
            for base in bases if not re.search(r"@sha256:[0-9a-f]{64}$", base)]
