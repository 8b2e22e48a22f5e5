"""The certificate core stays free of Home Assistant (like smart_home/ and rtsp/)."""

from __future__ import annotations

import ast
from pathlib import Path

CERTS = Path(__file__).parents[2] / "custom_components" / "alexa_cam_bridge" / "certs"
HA_GLUE = {"certificates", "config_flow", "diagnostics", "sensor", "bridge", "http"}


def test_certs_do_not_import_homeassistant() -> None:
    """No module under certs/ imports homeassistant or the integration's HA glue."""
    paths = sorted(CERTS.glob("*.py"))
    assert len(paths) >= 6
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.level > 1:  # ..module: must not be HA glue (nor the package root)
                    assert node.module is not None, path
                    assert node.module.split(".")[0] not in HA_GLUE, path
            else:
                continue
            assert not any(name.split(".")[0] == "homeassistant" for name in names), path
