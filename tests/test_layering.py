"""The library-shaped core imports neither Home Assistant nor the integration's HA glue.

Covers every module of smart_home/, rtsp/, certs/ and the pure top-level modules
(tests/rtsp/test_purity.py adds a stricter rule for the sans-IO rtsp modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "custom_components" / "alexa_cam_bridge"
CORE = ["smart_home", "rtsp", "certs", "broker", "front_door", "restreamer", "gateway"]
HA_GLUE = {
    "bridge", "certificates", "config_flow", "diagnostics", "events", "http", "sensor",
}  # fmt: skip


def _core_files() -> list[Path]:
    files: list[Path] = []
    for name in CORE:
        package = PACKAGE / name
        files += sorted(package.rglob("*.py")) if package.is_dir() else [PACKAGE / f"{name}.py"]
    return files


def test_core_files_found() -> None:
    """The walk sees every package and module named in CORE."""
    files = _core_files()
    assert all(path.exists() for path in files)
    assert len(files) >= 25


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_homeassistant_import(path: Path) -> None:
    """No import of homeassistant, of the HA glue, or of the package root (its
    ``__init__`` is HA glue)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            if node.level:
                depth = len(path.relative_to(PACKAGE).parts)  # 1: top level, 2: a subpackage
                if node.level == depth:  # relative to the integration's package
                    assert node.module is not None, f"{path} imports the package root"
                    assert node.module.split(".")[0] not in HA_GLUE, (path, node.module)
        else:
            continue
        assert not any(n.split(".")[0] == "homeassistant" for n in names), (path, names)
        assert not any(n.startswith("custom_components") for n in names), (path, names)
