"""smart_home/ is self-contained: it imports nothing else of the integration
(tests/test_layering.py checks that no core module imports Home Assistant)."""

from __future__ import annotations

import ast
from pathlib import Path

from custom_components.alexa_cam_bridge import smart_home

PACKAGE_DIR = Path(smart_home.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Return every module name an ``import`` or ``from ... import`` in ``path`` names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_modules_found() -> None:
    """The walk below sees the package's modules."""
    found = {path.name for path in PACKAGE_DIR.rglob("*.py")}
    assert {"__init__.py", "handler.py", "models.py", "errors.py", "discovery.py"} <= found


def test_only_relative_imports_within_the_integration() -> None:
    """Nothing reaches into the HA glue of the integration from here either."""
    for path in PACKAGE_DIR.rglob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith("custom_components"), (path, name)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                raise AssertionError(f"{path.name} imports from outside smart_home/")
