"""The core imports no broker, framework, metrics library, wall clock or environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "streams"
FORBIDDEN_MODULES = ("faust", "mode", "confluent_kafka", "aiokafka", "prometheus_client",
                     "testcontainers", "agents")
FORBIDDEN_ATTRS = {("time", "time"), ("time", "time_ns"), ("time", "monotonic"),
                   ("os", "environ"), ("os", "getenv"), ("datetime", "now"),
                   ("datetime", "utcnow"), ("date", "today")}


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            names += [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{path.name}:{node.lineno} imports {name}")
            if tuple(name.split(".")[:2]) in FORBIDDEN_ATTRS:
                found.append(f"{path.name}:{node.lineno} imports {name}")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in FORBIDDEN_ATTRS):
            found.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_is_pure(path: Path) -> None:
    assert violations(path) == []


def test_the_checker_catches_what_it_forbids(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import faust\nimport os\nfrom time import time\nx = os.environ\n")
    assert len(violations(bad)) == 3
