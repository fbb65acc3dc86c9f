"""The layers hold: contracts below all, drivers never reach into the core, the core names no driver."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The command line offers some drivers' own tools (hj212 decode, the bus plan of check --explain).
CORE_MAY_NAME_DRIVERS = {"gateway/cli.py"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


def _offenders(package: str, allowed: Callable[[str, str], bool]) -> list[str]:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        where = str(path.relative_to(ROOT))
        offenders += [f"{where}: {name}" for name in sorted(_imports(path)) if not allowed(where, name)]
    return offenders


def test_contracts_import_neither_the_gateway_nor_the_drivers() -> None:
    assert _offenders("contracts", lambda where, name: name.split(".")[0] not in ("gateway", "drivers")) == []


def test_drivers_never_import_the_gateway_core() -> None:
    assert _offenders("drivers", lambda where, name: name.split(".")[0] != "gateway") == []


def test_the_core_reaches_drivers_only_through_the_registry() -> None:
    def allowed(where: str, name: str) -> bool:
        return not name.startswith("drivers") or name == "drivers.registry" or where in CORE_MAY_NAME_DRIVERS

    assert _offenders("gateway", allowed) == []
