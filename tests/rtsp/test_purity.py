"""The sans-IO RTSP modules stay pure: no Home Assistant, no sockets, no event loop."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RTSP_DIR = Path(__file__).parents[2] / "custom_components" / "alexa_cam_bridge" / "rtsp"
PURE_MODULES = ["__init__.py", "messages.py", "rtp.py", "h264.py", "sdp.py", "auth.py"]
FORBIDDEN = {"homeassistant", "asyncio", "socket", "ssl", "selectors", "threading"}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement anywhere in the file names (top-level package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif node.module:
                # Relative imports must stay among the pure modules.
                names.add("." * (node.level - 1) + "." + node.module.split(".")[0])
            else:
                names.update("." * node.level + alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add("__import__")
    return names


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports(module: str) -> None:
    names = imported_modules(RTSP_DIR / module)
    assert not names & FORBIDDEN, f"{module} imports {names & FORBIDDEN}"
    assert "__import__" not in names
    pure = {f".{m.removesuffix('.py')}" for m in PURE_MODULES}
    relative = {n for n in names if n.startswith(".")}
    assert relative <= pure, f"{module} imports non-pure siblings {relative - pure}"


def test_detector_sees_nested_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    import asyncio.events\n    from homeassistant.core import HomeAssistant\n"
        "from . import client\nfrom .. import broker\nfrom ..rtsp.relay import x\n"
    )
    assert imported_modules(sample) == {
        "asyncio",
        "homeassistant",
        ".client",
        "..broker",
        "..rtsp",
    }
