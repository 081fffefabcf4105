"""The folders show the architecture: the core imports nothing from the HTTP side, so that
whatever the HTTP side does (or fails to do) cannot reach signals, children and reaping."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("module", sorted(APP.glob("core/*.py")), ids=lambda path: path.name)
def test_the_core_imports_nothing_from_the_http_side(module):
    http = {name for name in imported_modules(module) if name == "app.http" or name.startswith("app.http.")}
    assert not http, f"{module.relative_to(APP.parent)} imports {sorted(http)}"
    assert not {"starlette", "uvicorn", "prometheus_client"} & {
        name.split(".")[0] for name in imported_modules(module)}


def test_every_module_lives_in_one_of_the_two_halves_or_tells_the_story():
    top = sorted(path.name for path in APP.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py", "config.py", "excerpt.py", "lifecycle.py",
                   "log.py", "numbers.py", "output.py", "probe.py", "steer.py"]
