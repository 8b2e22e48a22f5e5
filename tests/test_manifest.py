"""Packaging rules: HA's manifest rules for custom integrations (as hassfest checks them),
HACS's hacs.json rules, and translations matching strings.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "custom_components" / "alexa_cam_bridge"
IOT_CLASSES = {
    "assumed_state", "cloud_polling", "cloud_push", "local_polling", "local_push", "calculated",
}  # fmt: skip


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_manifest_rules() -> None:
    """Required keys, key order, values and pinned requirements."""
    manifest = _json(PACKAGE / "manifest.json")
    assert list(manifest)[:2] == ["domain", "name"]
    rest = list(manifest)[2:]
    assert rest == sorted(rest), "hassfest wants domain, name, then sorted keys"
    assert manifest["domain"] == PACKAGE.name == "alexa_cam_bridge"
    for key in ("codeowners", "documentation", "issue_tracker", "iot_class", "version"):
        assert manifest.get(key), key
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] in IOT_CLASSES
    assert set(manifest["dependencies"]) == {"camera", "http"}
    assert AwesomeVersion(manifest["version"]).valid
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", r) for r in manifest["requirements"])
    assert all(c.startswith("@") for c in manifest["codeowners"])
    assert manifest["documentation"].startswith("https://")


def test_hacs_json() -> None:
    """hacs.json: a name and a minimum HA version that is not newer than the tested one."""
    hacs = _json(ROOT / "hacs.json")
    allowed = {
        "name", "content_in_root", "zip_release", "filename", "hide_default_branch",
        "country", "homeassistant", "persistent_directory", "render_readme", "hacs",
    }  # fmt: skip
    assert set(hacs) <= allowed
    assert hacs["name"]
    assert hacs["content_in_root"] is False
    assert AwesomeVersion(hacs["homeassistant"]) <= AwesomeVersion(HA_VERSION)


def test_translations_match_strings() -> None:
    """translations/en.json is strings.json (HA loads the former at run time)."""
    assert _json(PACKAGE / "strings.json") == _json(PACKAGE / "translations" / "en.json")


def test_every_error_key_is_translated() -> None:
    """Each error key the flows and validators can produce has a text."""
    strings = _json(PACKAGE / "strings.json")
    certfiles = (PACKAGE / "certfiles.py").read_text()
    produced = set(re.findall(r'CertificateError\(\s*"([a-z_]+)"', certfiles))
    produced |= (
        {"cert_unreadable", "key_unreadable"} if 'f"{what}_unreadable"' in certfiles else set()
    )
    produced |= set(re.findall(r'return "([a-z_]+)"', (PACKAGE / "hostnames.py").read_text()))
    produced |= set(
        re.findall(r'errors\[[^\]]+\] = "([a-z_]+)"', (PACKAGE / "config_flow.py").read_text())
    )
    translated = set(strings["config"]["error"]) | set(strings["options"]["error"])
    assert len(produced) >= 12
    assert produced <= translated, produced - translated


async def test_integration_loads_from_manifest(hass: HomeAssistant) -> None:
    """HA's loader accepts the manifest of this custom integration."""
    integration = await async_get_integration(hass, "alexa_cam_bridge")
    assert integration.config_flow
    assert integration.version == AwesomeVersion(_json(PACKAGE / "manifest.json")["version"])
