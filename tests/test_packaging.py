"""Packaging: pyproject.toml declares what the code imports, and the two locks agree with it.

``requirements.txt`` (what ``make run`` installs) is the hashed lock of the runtime dependencies
only; ``requirements-test.txt`` (what ``make test`` installs) adds the test and dev tools at the
same pins. A clinic's server must not get Playwright, a mock OIDC provider or pytest.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _lock(path: Path) -> dict[str, tuple[str, int]]:
    """Package -> (version, number of hashes) of a lock file written by uv pip compile --generate-hashes."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^ ]+)", line):
            current = match.group(1).lower().replace("_", "-")
            pins[current] = (match.group(2), 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


RUNTIME = _lock(PROJECT / "requirements.txt")
TEST = _lock(PROJECT / "requirements-test.txt")


def test_every_locked_package_is_pinned_with_hashes() -> None:
    for lock in (RUNTIME, TEST):
        assert lock
        assert all(hashes > 0 for _, hashes in lock.values()), [p for p, (_, h) in lock.items() if not h]


def test_the_runtime_lock_holds_the_runtime_dependencies_and_no_test_tools() -> None:
    for requirement in PYPROJECT["project"]["dependencies"]:
        assert _name(requirement) in RUNTIME, requirement
    for group in ("test", "dev"):
        for requirement in PYPROJECT["dependency-groups"][group]:
            assert _name(requirement) not in RUNTIME, requirement
            assert _name(requirement) in TEST, requirement
    for tool in ("playwright", "oidc-provider-mock", "flask", "pytest", "hypothesis"):
        assert tool not in RUNTIME


def test_both_locks_pin_shared_packages_to_the_same_version() -> None:
    assert {p: v for p, (v, _) in RUNTIME.items()} == {p: TEST[p][0] for p in RUNTIME}


def test_third_party_imports_of_the_package_are_declared() -> None:
    """Every top-level module that analytics/ imports is the standard library, itself or a runtime dependency."""
    import sys

    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    module_to_package = {"yaml": "pyyaml", "dateutil": "python-dateutil"}
    imported = set()
    for path in (PROJECT / "analytics").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    # _typeshed exists for type checkers only (imported under TYPE_CHECKING).
    stdlib = {*sys.stdlib_module_names, "_typeshed"}
    third_party = {m for m in imported if m not in stdlib and m not in ("analytics", "__future__")}
    missing = {m for m in third_party if module_to_package.get(m, m).lower().replace("_", "-") not in declared}
    assert not missing, f"imported by analytics/ but not a runtime dependency in pyproject.toml: {sorted(missing)}"


def test_the_console_script_points_at_the_command_line() -> None:
    import importlib

    target = PYPROJECT["project"]["scripts"]["botox-outcomes"]
    module, function = target.split(":")
    assert callable(getattr(importlib.import_module(module), function))
